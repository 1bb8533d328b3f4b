"""Gaussian on new points: GaussianEmbedder with and without a post-hoc invertible map, on held-out rows.

Routes (each on the same stratified 70/30 split, split seed = training seed, several splits):
- ``none``: the default estimator;
- ``flow (default post)``: the default estimator, then a GaussianizingFlow fitted on its training embedding with
  training noise 0.2 (``post="flow"``);
- ``flow, held-back 0.2``: the encoder trains on 80% of the training rows, the flow is fitted on their embedding
  and early-stopped on the other 20% (embedded like new points) (``post="flow", post_fraction=0.2``);
- ``rbig, held-back 0.2``: the same with RBIG (no early stopping: the held-back rows only measure the gap).

Scores (``gaussify.compare.score_embedding`` on the held-out rows): KL to N(0, I) (kNN estimate, nats), 5-NN
accuracy (classifier fitted on the training embedding), how many of the 6 fast normality tests reject at 0.05
(Holm), and the gap: KL on the training rows' final embedding minus KL on the held-out rows'. Mean ± sd over
the splits.

    python benchmarks/bench_post.py --datasets digits --dims 2 8 --splits 0 1 2 --out benchmarks/results/post.md
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from gaussify import GaussianEmbedder, evaluate
from gaussify.bench import machine_lines
from gaussify.compare import score_embedding
from gaussify.datasets import load
from gaussify.io import write_text_atomic

ROUTES = {"none": {}, "flow (default post)": {"post": "flow"},
          "flow, held-back 0.2": {"post": "flow", "post_fraction": 0.2},
          "rbig, held-back 0.2": {"post": "rbig", "post_fraction": 0.2}}
DATASETS = {"digits": {}, "mnist1d": {"n_samples": 10_000}}


def run(dataset: str, dim: int, split: int, route: str) -> dict[str, float]:
    from sklearn.model_selection import train_test_split

    X, y = load(dataset, **DATASETS[dataset])
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=split, stratify=y)
    start = time.perf_counter()
    model = GaussianEmbedder(dim, random_state=split, **ROUTES[route]).fit(X_train, y_train)
    seconds = time.perf_counter() - start
    Z_train, Z_test = model.transform(X_train), model.transform(X_test)
    scores = score_embedding(Z_test, y_test, Z_train=Z_train, y_train=y_train)
    report = evaluate(Z_test, tests="fast")
    return {"kl": scores["kl"], "knn_accuracy": scores["knn_accuracy"], "rejected": len(report.rejected(0.05)),
            "gap": evaluate(Z_train, tests="none").kl - scores["kl"], "seconds": seconds}


def _cell(values: list[float], digits: int = 3) -> str:
    mean = np.mean(values)
    return f"{mean:.{digits}f} ± {np.std(values, ddof=1):.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["digits"], choices=sorted(DATASETS))
    parser.add_argument("--dims", nargs="+", type=int, default=[2, 8])
    parser.add_argument("--splits", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--routes", nargs="+", default=list(ROUTES), choices=list(ROUTES))
    parser.add_argument("--out", default="benchmarks/results/post.md")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    lines = ["# Gaussian on new points: post-hoc maps on top of the encoder (held-out rows)", "",
             *machine_lines(None, ("gaussify", "torch", "zuko", "numpy", "scikit-learn")),
             f"- Splits (= training seeds): {args.splits}; 70/30 stratified; `gaussify.evaluate` / "
             "`score_embedding` KL (kNN estimate, nats); rejected: fast tests rejecting at 0.05 (Holm), one count "
             "per split; gap: KL(training rows) − KL(held-out rows) of the final embedding.", "",
             "| data set | dim | route | held-out KL | 5-NN accuracy | rejected per split | gap | fit s |",
             "|---|---:|---|---:|---:|---|---:|---:|"]
    for dataset in args.datasets:
        for dim in args.dims:
            for route in args.routes:
                rows = [run(dataset, dim, split, route) for split in args.splits]
                lines.append(f"| {dataset} | {dim} | {route} | {_cell([r['kl'] for r in rows])} | "
                             f"{_cell([r['knn_accuracy'] for r in rows])} | "
                             f"{', '.join(str(r['rejected']) for r in rows)} | {_cell([r['gap'] for r in rows])} | "
                             f"{_cell([r['seconds'] for r in rows], 1)} |")
                print(lines[-1], flush=True)
    write_text_atomic(args.out, "\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
