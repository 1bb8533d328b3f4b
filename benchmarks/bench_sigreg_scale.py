"""Does one SIGReg weight mean one trade-off at any batch size? ``scale="sum"`` against ``scale="mean"`` (issue 15).

``GaussianEmbedder(regularizer="sigreg")`` on digits (70/30 stratified, split seed = training seed) at two batch
sizes, with SIGReg's statistic as LeJEPA scales it (``"sum"``, n × the integral) and divided by the batch size
(``"mean"``); the same weight at both batch sizes. Held-out KL (``score_embedding``, kNN estimate, nats) and
5-NN accuracy, mean ± sd over the splits.

    python benchmarks/bench_sigreg_scale.py --out benchmarks/results/sigreg_scale.md
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

from gaussify import GaussianEmbedder
from gaussify.bench import machine_lines
from gaussify.compare import score_embedding
from gaussify.datasets import load
from gaussify.io import write_text_atomic

SETTINGS = {"sum": 1.0, "mean": 256.0}
"""Weight per scale: equal pulls at batch size 256, where the "sum" statistic is 256 × the "mean" one."""


def run(scale: str, batch_size: int, split: int, dim: int) -> tuple[float, float]:
    from sklearn.model_selection import train_test_split

    X, y = load("digits")
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=split, stratify=y)
    model = GaussianEmbedder(dim, regularizer="sigreg", regularizer_kwargs={"scale": scale},
                             weight=SETTINGS[scale], batch_size=batch_size, random_state=split).fit(X_train, y_train)
    scores = score_embedding(model.transform(X_test), y_test, Z_train=model.transform(X_train), y_train=y_train)
    return scores["kl"], scores["knn_accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", nargs=2, type=int, default=[128, 1024])
    parser.add_argument("--splits", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--dim", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/sigreg_scale.md")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    lines = ["# SIGReg: one weight at two batch sizes", "",
             *machine_lines(None, ("gaussify", "torch", "numpy", "scikit-learn")),
             f"- digits, {args.dim}-D, splits (= seeds) {args.splits}; weights {SETTINGS} (equal at batch 256).", "",
             "| scale | weight | batch size | held-out KL | 5-NN accuracy |", "|---|---:|---:|---:|---:|"]
    for scale in SETTINGS:
        for batch_size in args.batch_sizes:
            kl, acc = np.array([run(scale, batch_size, split, args.dim) for split in args.splits]).T
            lines.append(f"| {scale} | {SETTINGS[scale]:g} | {batch_size} | {kl.mean():.3f} ± {kl.std(ddof=1):.3f} | "
                         f"{acc.mean():.3f} ± {acc.std(ddof=1):.3f} |")
            print(lines[-1], flush=True)
    write_text_atomic(args.out, "\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
