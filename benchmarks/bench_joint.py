"""Joint mode, measured: the flow as the encoder's last block, trained end to end with the task (issue 12, item 4).

The encoder E (the default's MLP), its task head on the pre-flow features z = E(x) (the default's prototype
head) and a flow f (zuko NSF, as ``GaussianizingFlow`` builds it, identity at the start) train together; the
final embedding is y = f(z). Two Gaussian terms, weight ``--weights``:

- ``nll``: the flow's exact negative log-likelihood of the features, −log N(f(z); 0, I) − log |det ∂f/∂z|. It is
  a cross-entropy, E_P[−log p_f] = H(P_z) + KL(P_z ‖ p_f), so the encoder lowers it by lowering the entropy of its
  features: shrinking z by s lowers it by d log(1/s) without bound, and the task head can undo any scale.
- ``nll-entropy``: the same minus the batch's Kozachenko–Leonenko entropy H(z) (``knn`` regularizer, k = 1), so
  the term estimates KL(P_z ‖ p_f) = KL(f#P_z ‖ N(0, I)), the KL of the final embedding, ≥ 0 and bounded below.

Against the post-hoc route (the default, then ``post="flow"``), on the same splits: held-out KL of y to N(0, I)
(``score_embedding``, kNN estimate), 5-NN accuracy on y, the training rows' KL, and the spread of z (median
per-coordinate sd at the end). Early stopping on a validation fifth of the training rows (task loss); held-out
rows are only scored.

    python benchmarks/bench_joint.py --splits 0 1 2 --out benchmarks/results/joint.md
"""

from __future__ import annotations

import argparse
import copy
import math
import time
import warnings

import numpy as np
import torch

from gaussify import GaussianEmbedder, GaussianizingFlow, evaluate
from gaussify.bench import machine_lines
from gaussify.compare import score_embedding
from gaussify.datasets import load
from gaussify.embedder import Encoder
from gaussify.io import write_text_atomic
from gaussify.regularizers import make_regularizer
from gaussify.tasks import ClassificationTask

TERMS = ("nll", "nll-entropy")


def _split(dataset: str, split: int):
    from sklearn.model_selection import train_test_split

    X, y = load(dataset)
    return train_test_split(X, y, test_size=0.3, random_state=split, stratify=y)


def fit_joint(X: np.ndarray, y: np.ndarray, dim: int, term: str, weight: float, seed: int, *,
              max_epochs: int = 200, patience: int = 20, batch_size: int = 256):
    """Train encoder + prototype head + flow with ``task + weight · term``; returns (embed, history)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    classes, codes = np.unique(y, return_inverse=True)
    perm = rng.permutation(len(X))
    val, train = perm[: len(X) // 5], perm[len(X) // 5:]
    encoder = Encoder(X.shape[1], dim, (256, 256), stochastic=False)
    shift, scale = X[train].mean(0), X[train].std(0)
    encoder.shift.copy_(torch.from_numpy(shift)), encoder.scale.copy_(torch.from_numpy(np.where(scale > 0, scale, 1.0)))
    task = ClassificationTask(torch.as_tensor(codes), dim, len(classes))
    flow = GaussianizingFlow()._make_flow(dim)
    knn = make_regularizer("knn", dim)
    modules = (encoder, task, flow)
    optimizer = torch.optim.Adam([p for m in modules for p in m.parameters()], lr=1e-3)
    X_t = torch.as_tensor(X, dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    history = {"task": [], "term": [], "z_sd": []}
    best, best_state, stale = math.inf, None, 0
    for _ in range(max_epochs):
        for m in modules:
            m.train()
        order = torch.as_tensor(train)[torch.randperm(len(train), generator=generator)]
        sums = np.zeros(2)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            z = encoder(X_t[idx])
            task_loss = task(z, X_t[idx], idx)
            gauss = -flow().log_prob(z).mean()
            if term == "nll-entropy":  # knn(z) = cross-entropy to N(0, I) − Ĥ(z)
                gauss = gauss - (0.5 * z.square().sum(1).mean() + 0.5 * dim * math.log(2 * math.pi) - knn(z))
            loss = task_loss + weight * gauss
            if not torch.isfinite(loss):
                history["diverged"] = True
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sums += [task_loss.item(), gauss.item()]
        if history.get("diverged"):
            break
        with torch.no_grad():
            for m in modules:
                m.eval()
            z_val = encoder(X_t[val])
            val_loss = task(z_val, X_t[val], torch.as_tensor(val)).item()
            history["z_sd"].append(float(z_val.std(0).median()))
        history["task"].append(sums[0] / math.ceil(len(order) / batch_size))
        history["term"].append(sums[1] / math.ceil(len(order) / batch_size))
        if val_loss < best - 1e-4 * abs(best):
            best, stale, best_state = val_loss, 0, copy.deepcopy([m.state_dict() for m in modules])
        else:
            stale += 1
            if stale >= patience:
                break
    if best_state is not None:
        for m, state in zip(modules, best_state):
            m.load_state_dict(state)
    for m in modules:
        m.eval()

    def embed(rows: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return flow().transform(encoder(torch.as_tensor(rows, dtype=torch.float32))).double().numpy()

    return embed, history


def run(dataset: str, dim: int, split: int, route: str, weight: float) -> dict[str, float]:
    X_train, X_test, y_train, y_test = _split(dataset, split)
    start = time.perf_counter()
    if route == "post-hoc":
        model = GaussianEmbedder(dim, post="flow", random_state=split).fit(X_train, y_train)
        embed, history = model.transform, {}
    else:
        embed, history = fit_joint(X_train, y_train, dim, route, weight, split)
    seconds = time.perf_counter() - start
    Z_train, Z_test = embed(X_train), embed(X_test)
    if not (np.isfinite(Z_train).all() and np.isfinite(Z_test).all()):
        return {"kl": math.nan, "knn_accuracy": math.nan, "train_kl": math.nan, "z_sd": math.nan,
                "seconds": seconds, "diverged": 1.0}
    scores = score_embedding(Z_test, y_test, Z_train=Z_train, y_train=y_train)
    return {"kl": scores["kl"], "knn_accuracy": scores["knn_accuracy"],
            "train_kl": evaluate(Z_train, tests="none").kl,
            "z_sd": history["z_sd"][-1] if history.get("z_sd") else math.nan, "seconds": seconds,
            "diverged": float(bool(history.get("diverged")))}


def _cell(values: list[float], digits: int = 3) -> str:
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.{digits}g}"
    return f"{np.mean(values):.{digits}g} ± {np.std(values, ddof=1):.2g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="digits", choices=("digits", "mnist1d"))
    parser.add_argument("--dims", nargs="+", type=int, default=[2])
    parser.add_argument("--splits", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--weights", nargs="+", type=float, default=[0.1, 1.0])
    parser.add_argument("--terms", nargs="+", default=list(TERMS), choices=TERMS)
    parser.add_argument("--no-post-hoc", action="store_true", help="skip the post-hoc reference route")
    parser.add_argument("--out", default="benchmarks/results/joint.md")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    lines = ["# Joint mode: encoder + flow trained end to end, against the flow fitted after (held-out rows)", "",
             *machine_lines(None, ("gaussify", "torch", "zuko", "numpy", "scikit-learn")),
             f"- {args.dataset}, splits (= seeds) {args.splits}, 70/30 stratified; KL: `score_embedding` (kNN "
             "estimate, nats) of the final embedding y = f(z); z sd: median per-coordinate sd of the pre-flow "
             "features on the validation rows at the last epoch; diverged: splits whose loss became non-finite.",
             "", "| dim | route | weight | held-out KL | 5-NN accuracy | training-rows KL | z sd | diverged | fit s |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for dim in args.dims:
        cells = [] if args.no_post_hoc else [("post-hoc", math.nan)]
        cells += [(term, w) for term in args.terms for w in args.weights]
        for route, weight in cells:
            rows = [run(args.dataset, dim, split, route, weight) for split in args.splits]
            lines.append(f"| {dim} | {route} | {'' if math.isnan(weight) else f'{weight:g}'} | "
                         + " | ".join(_cell([r[key] for r in rows], 3 if key != "seconds" else 2)
                                      for key in ("kl", "knn_accuracy", "train_kl", "z_sd"))
                         + f" | {int(sum(r['diverged'] for r in rows))} | {_cell([r['seconds'] for r in rows], 2)} |")
            print(lines[-1], flush=True)
    write_text_atomic(args.out, "\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
