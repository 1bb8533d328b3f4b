"""GaussianizingFlow: fit time and train vs held-out Gaussianity for a few regularisation settings.

Data (70/30 train/held-out split unless said): a uniform square (n = 2000), ten Gaussian blobs in 2-D
(n = 2000, an embedding-like multimodal sample), sklearn's digits embedded in 2-D by t-SNE (openTSNE,
n = 1797), and for speed a 10,000-row train set of an 8-D mixed banana chain (x_j = z_j + 0.8 (z_{j-1}² − 1),
then a random linear map; its exact entropy is known, so the held-out NLL has an ideal value). Reported:
the kNN KL estimate to N(0, I) of the flow's output on the training and held-out rows (gaussify's
``kl_divergence``), the held-out NLL (−score; for the square, minus its entropy, the exact KL), fit seconds and
epochs; the kNN KL of exact N(0, I) samples of the held-out size gives the yardstick's noise floor.

    python benchmarks/bench_flow.py                 # everything (a few minutes on 2 cores)
    python benchmarks/bench_flow.py --only speed
    python benchmarks/bench_flow.py --out benchmarks/results/flow.md

``--high`` instead measures d = 16 … 256 (results in ``benchmarks/results/flow_high.md``; about an hour on 2 busy
cores), on held-out rows only (never fitted, never used for early stopping):

- cost against d: seconds per epoch on 4,000 rows and seconds to invert 500 rows, autoregressive NSF against
  the coupling flows;
- a labelled 256-D embedding: mnist1d (30,000 rows generated offline, 10 classes) through a fixed random ReLU map
  40 → 1024 (standardised, plus N(0, 0.1²) noise so that the embedding has a density in 256-D) and PCA to 256, all
  fitted on the first 20,000 rows; the flow is fitted on those 20,000 rows (its own 20% early-stopping split) and
  scored on the other 10,000: (a) the mean log-likelihood gain over the whitening Gaussian, E[log q_f − log N(μ̂,
  Σ̂)], (b) ``kl_divergence`` of the flow's output with its interval, (c) a linear probe (logistic regression on
  the standardised embedding, trained on the 20,000 rows) before and after the flow. Its fit is also the
  20,000 x 256 timing against the 10-minute goal;
- a law with exact KL at d = 256 (``gaussify.bench.accuracy``'s rotated products: a few bimodal coordinates,
  rotated), where KL(p ‖ q_f) = E[log p − log q_f] is exact on fresh rows.

    python benchmarks/bench_flow.py --high --out benchmarks/results/flow_high.md
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from gaussify.baselines import RBIG, PCAWhitening
from gaussify.bench import machine_lines
from gaussify.bench.accuracy import RotatedProduct
from gaussify.flows import AUTO_MAX_DIM, GaussianizingFlow
from gaussify.metrics import kl_divergence

CONFIGS = {
    "defaults (nsf, 3 x (64, 64), 16 bins, val 0.2, patience 20)": {},
    "bins=8": {"bins": 8},
    "validation_fraction=0.1, n_iter_no_change=10": {"validation_fraction": 0.1, "n_iter_no_change": 10},
    "learning_rate=3e-3": {"learning_rate": 3e-3},
    "weight_decay=1e-2": {"weight_decay": 1e-2},
    "weight_decay=0.1": {"weight_decay": 0.1},
    "noise=0.05": {"noise": 0.05},
    "n_transforms=2": {"n_transforms": 2},
    "n_transforms=5": {"n_transforms": 5},
    "hidden_features=(32, 32)": {"hidden_features": (32, 32)},
    "hidden_features=(128, 128)": {"hidden_features": (128, 128)},
    "maf, 5 transforms": {"flow": "maf", "n_transforms": 5},
    "realnvp, 6 transforms": {"flow": "realnvp", "n_transforms": 6},
}
SEEDS = 3


def _kl(Z: np.ndarray) -> float:
    return kl_divergence(Z, n_jobs=1).value


def square(rng):
    return rng.uniform(-1.0, 1.0, (2000, 2))


def blobs(rng):
    centres = rng.uniform(-10.0, 10.0, (10, 2))
    labels = rng.integers(10, size=2000)
    return centres[labels] + rng.standard_normal((2000, 2)) * rng.uniform(0.5, 1.5, 10)[labels, None]


def digits_tsne(rng):
    from openTSNE import TSNE
    from sklearn.datasets import load_digits

    X = load_digits().data
    return np.asarray(TSNE(n_jobs=1, random_state=0).fit(X))[rng.permutation(len(X))]


def banana(rng, n=12500, d=8):
    Z = rng.standard_normal((n, d))
    X = Z.copy()
    X[:, 1:] += 0.8 * (Z[:, :-1] ** 2 - 1)  # unit Jacobian: H(X) = H(Z) + log|det A|
    A = rng.standard_normal((d, d))
    return X @ A, d * 0.5 * np.log(2 * np.pi * np.e) + np.linalg.slogdet(A)[1]


def quality(lines: list[str]) -> None:
    rng = np.random.default_rng(0)
    data = {"uniform square": square(rng), "10 blobs": blobs(rng), "digits t-SNE": digits_tsne(rng)}
    floor = [_kl(rng.standard_normal((600, 2))) for _ in range(20)]
    lines += ["", f"Quality: 2-D, 70/30 splits, mean over {SEEDS} splits (split seed = training seed). kNN KL of exact "
              f"N(0, I) samples of 600 x 2 (the held-out size): mean {np.mean(floor):.3f}, "
              f"sd {np.std(floor, ddof=1):.3f} "
              "(20 draws). For the square the exact held-out KL is known: NLL − log 4.", ""]
    columns = " | ".join(f"{name}: kNN KL train / held-out | NLL held-out | s" for name in data)
    lines += [f"| setting | {columns} |",
              "|---|" + "---:|---:|---:|" * len(data)]
    settings = {"whitening only (no flow)": "whiten", "RBIG (defaults)": "rbig", **CONFIGS}
    for label, params in settings.items():
        cells = []
        for name, X in data.items():
            runs = []
            for seed in range(SEEDS):
                order = np.random.default_rng(seed).permutation(len(X))
                n_train = int(0.7 * len(X))
                train, test = X[order[:n_train]], X[order[n_train:]]
                started = time.perf_counter()
                if params == "whiten":
                    model = PCAWhitening().fit(train)
                elif params == "rbig":
                    model = RBIG(random_state=seed).fit(train)
                else:
                    model = GaussianizingFlow(random_state=seed, **params).fit(train)
                seconds = time.perf_counter() - started
                nll = -model.score(test) if hasattr(model, "score") else np.nan
                runs.append((_kl(model.transform(train)), _kl(model.transform(test)), nll, seconds))
            kl_train, kl_test, nll, seconds = np.mean(runs, axis=0)
            nll_cell = "–" if np.isnan(nll) else f"{nll:.3f}"
            if name == "uniform square" and not np.isnan(nll):
                nll_cell += f" (KL {nll - np.log(4):.3f})"
            cells.append(f"{kl_train:.3f} / {kl_test:.3f} | {nll_cell} | {seconds:.1f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)


def speed(lines: list[str]) -> None:
    X, ideal = banana(np.random.default_rng(0))
    train, test = X[:10000], X[10000:]
    lines += ["", f"Speed: 10,000 x 8 banana chain, defaults but flow/n_transforms, n_jobs=1; held-out 2,500 rows, "
              f"ideal held-out NLL (its entropy) {ideal:.3f}.", "",
              "| setting | fit (s) | epochs (best) | s / epoch | NLL held-out | kNN KL held-out |",
              "|---|---:|---:|---:|---:|---:|"]
    for label, params in {"defaults": {}, "bins=8": {"bins": 8}, "nsf, 5 transforms": {"n_transforms": 5},
                          "maf, 5 transforms": {"flow": "maf", "n_transforms": 5}}.items():
        started = time.perf_counter()
        model = GaussianizingFlow(random_state=0, **params).fit(train)
        seconds = time.perf_counter() - started
        lines.append(f"| {label} | {seconds:.1f} | {model.n_epochs_} ({model.best_epoch_}) | "
                     f"{seconds / model.n_epochs_:.3f} | {-model.score(test):.3f} | {_kl(model.transform(test)):.3f} |")
        print(lines[-1], flush=True)


OLD_DEFAULT = "old default: nsf (autoregressive), 3 x (64, 64), 16 bins"
HIGH_CONFIGS = {
    "default (flow='auto': realnvp, 3 x (64, 64), batch 256)": {},
    "nsf-coupling, 3 x (64, 64), 16 bins, batch 256": {"flow": "nsf-coupling"},
    "realnvp (affine coupling), 6 x (256, 256), batch 1024": {"flow": "realnvp", "n_transforms": 6,
                                                              "hidden_features": (256, 256), "batch_size": 1024},
    OLD_DEFAULT: {"flow": "nsf"},
}
"""The settings compared above d = 8 (``flow="auto"`` picks by d; the default's other options as they are)."""
COST_ONLY = (OLD_DEFAULT,)
"""Settings timed in the cost table only: the autoregressive flow's 20,000 x 256 fit takes about half an hour on 2
busy cores (27 s per epoch idle), and its inverse grows with d."""


def mnist1d_embedding(d: int = 256, n: int = 30_000, n_train: int = 20_000, noise: float = 0.1):
    """A labelled d-D embedding of mnist1d (see the module docstring); every fitted step uses the first n_train rows."""
    from sklearn.decomposition import PCA

    from gaussify.datasets import mnist1d

    X, y = mnist1d(n_samples=n, random_state=0)
    rng = np.random.default_rng(0)
    X = (X - X[:n_train].mean(0)) / X[:n_train].std(0)
    F = np.maximum(X @ rng.standard_normal((X.shape[1], 1024)) / np.sqrt(X.shape[1]) + rng.standard_normal(1024), 0)
    F = (F - F[:n_train].mean(0)) / np.maximum(F[:n_train].std(0), 1e-3) + noise * rng.standard_normal(F.shape)
    return PCA(d, random_state=0).fit(F[:n_train]).transform(F), y


def _gaussian_logpdf(whitening: PCAWhitening, X: np.ndarray) -> np.ndarray:
    """log N(x; μ̂, Σ̂) of the whitening's Gaussian (the flow's start)."""
    U = whitening.transform(X)
    return (-0.5 * np.einsum("ij,ij->i", U, U) - 0.5 * U.shape[1] * np.log(2 * np.pi)
            - 0.5 * np.log(whitening.explained_variance_).sum())


def _probe(train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(train, y_train).score(test, y_test)


def _kl_cell(Z: np.ndarray) -> str:
    estimate = kl_divergence(Z, n_jobs=1)
    low, high = estimate.interval
    return f"{estimate.value:.2f} [{low:.2f}, {high:.2f}]"


def cost_by_dimension(lines: list[str], dims: list[int]) -> None:
    lines += ["", "Cost against d: a rotated product with d/4 bimodal coordinates, 4,000 rows, one epoch without "
              "validation (batch as configured), and the inverse of 100 rows (n_jobs=2).", "",
              "| d | setting | s / epoch | inverse of 100 rows (s) |", "|---:|---|---:|---:|"]
    for d in dims:
        X = RotatedProduct(d, kind="bimodal", count="d/4").sample(4000, np.random.default_rng(0))
        for label, params in HIGH_CONFIGS.items():
            model = GaussianizingFlow(**{**params, "max_epochs": 1, "validation_fraction": 0.0, "n_jobs": 2,
                                         "random_state": 0})
            started = time.perf_counter()
            model.fit(X)
            fit = time.perf_counter() - started
            Z = model.transform(X[:100])
            started = time.perf_counter()
            model.inverse_transform(Z)
            lines.append(f"| {d} | {label.split(',')[0]} | {fit:.2f} | {time.perf_counter() - started:.2f} |")
            print(lines[-1], flush=True)


def embedding_256(lines: list[str], seeds: int) -> None:
    Z, y = mnist1d_embedding()
    train, test, y_train, y_test = Z[:20_000], Z[20_000:], y[:20_000], y[20_000:]
    whitening = PCAWhitening().fit(train)
    log_gauss = _gaussian_logpdf(whitening, test)
    lines += ["", f"mnist1d embedding, 20,000 x 256 fitted, 10,000 held out; flow seeds 0–{seeds - 1}, mean ± sd "
              "over seeds (the old default is timed in the cost table only). No flow: held-out KL "
              f"{_kl_cell(whitening.transform(test))}, linear probe {_probe(train, y_train, test, y_test):.3f}.",
              "", "| setting | fit (s) | epochs (best) | held-out log-lik. gain (nats) | held-out KL [interval] | "
              "linear probe |", "|---|---:|---:|---:|---:|---:|"]
    for label, params in HIGH_CONFIGS.items():
        if label in COST_ONLY:
            continue
        runs, epochs, kls = [], [], []
        for seed in range(seeds):
            started = time.perf_counter()
            model = GaussianizingFlow(**params, n_jobs=2, random_state=seed).fit(train)
            seconds = time.perf_counter() - started
            gain = float(np.mean(model.score_samples(test) - log_gauss))
            runs.append((seconds, gain, _probe(model.transform(train), y_train, model.transform(test), y_test)))
            epochs.append(f"{model.n_epochs_} ({model.best_epoch_})")
            kls.append(_kl_cell(model.transform(test)))
        mean, sd = np.mean(runs, axis=0), np.std(runs, axis=0, ddof=1) if len(runs) > 1 else np.zeros(3)
        lines.append(f"| {label} | {mean[0]:.0f} ± {sd[0]:.0f} | {'; '.join(epochs)} | {mean[1]:.2f} ± {sd[1]:.2f} | "
                     f"{'; '.join(kls)} | {mean[2]:.3f} ± {sd[2]:.3f} |")
        print(lines[-1], flush=True)


def exact_kl_256(lines: list[str], seeds: int) -> None:
    lines += ["", "Exact KL at d = 256: a rotated product (20,000 rows fitted, KL(p ‖ q) = E[log p − log q] on 5,000 "
              "fresh rows; its Monte Carlo sd is below 0.02). 'whitening' is the Gaussian the flow starts from.", "",
              "| law | setting | fit (s) | exact held-out KL |", "|---|---|---:|---:|"]
    family = RotatedProduct(256, kind="bimodal", count=4)
    rng = np.random.default_rng(0)
    train, test = family.sample(20_000, rng), family.sample(5000, rng)
    log_p = family.log_prob(test)
    whitening = PCAWhitening().fit(train)
    lines.append(f"| {family.describe()} | whitening | 0 | {np.mean(log_p - _gaussian_logpdf(whitening, test)):.3f} |")
    for label, params in HIGH_CONFIGS.items():
        if label in COST_ONLY:
            continue
        runs = []
        for seed in range(seeds):
            started = time.perf_counter()
            model = GaussianizingFlow(**params, n_jobs=2, random_state=seed).fit(train)
            runs.append((time.perf_counter() - started, np.mean(log_p - model.score_samples(test))))
        mean, sd = np.mean(runs, axis=0), np.std(runs, axis=0, ddof=1) if seeds > 1 else np.zeros(2)
        lines.append(f"| {family.describe()} | {label} | {mean[0]:.0f} | {mean[1]:.3f} ± {sd[1]:.3f} |")
        print(lines[-1], flush=True)


def high(lines: list[str], seeds: int, dims: list[int], out: str | None) -> None:
    """The sections in order of importance, the results file rewritten after each (a long run leaves a record)."""
    import torch

    torch.set_num_threads(2)
    lines += ["", f"High dimensions. `flow=\"auto\"` is autoregressive NSF up to d = {AUTO_MAX_DIM}, the coupling "
              "flow above."]
    for section in (lambda: embedding_256(lines, seeds), lambda: exact_kl_256(lines, seeds),
                    lambda: cost_by_dimension(lines, dims)):
        section()
        _write(lines, out)


def _write(lines: list[str], out: str | None) -> None:
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("speed", "quality"))
    parser.add_argument("--high", action="store_true", help="the d = 16 … 256 measurements instead")
    parser.add_argument("--seeds", type=int, default=2, help="flow seeds of the high-dimensional runs")
    parser.add_argument("--dims", type=int, nargs="+", default=[16, 32, 64, 128, 256],
                        help="dimensions of the high-dimensional cost table")
    parser.add_argument("--out")
    args = parser.parse_args()
    lines = [f"# GaussianizingFlow: speed and held-out Gaussianity{' in high dimensions' if args.high else ''}", "",
             *machine_lines(None, ["gaussify", "torch", "zuko", "numpy", "scikit-learn"])]
    if args.high:
        high(lines, args.seeds, args.dims, args.out)
    if not args.high and args.only in (None, "speed"):
        speed(lines)
    if not args.high and args.only in (None, "quality"):
        quality(lines)
    _write(lines, args.out)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
