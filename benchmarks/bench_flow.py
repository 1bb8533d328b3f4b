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
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from gaussify.baselines import RBIG, PCAWhitening
from gaussify.bench import machine_lines
from gaussify.flows import GaussianizingFlow
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("speed", "quality"))
    parser.add_argument("--out")
    args = parser.parse_args()
    lines = ["# GaussianizingFlow: speed and held-out Gaussianity", "",
             *machine_lines(None, ["gaussify", "torch", "zuko", "numpy"])]
    if args.only in (None, "speed"):
        speed(lines)
    if args.only in (None, "quality"):
        quality(lines)
    text = "\n".join(lines) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
