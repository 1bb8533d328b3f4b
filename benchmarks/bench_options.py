"""Regularizer options, measured side by side on held-out digits (issue 15).

Studies (``--study``):

- ``sigreg-scale``: does one SIGReg weight mean one trade-off at any batch size? ``scale="sum"`` (LeJEPA's
  statistic, n × the integral) against ``scale="mean"`` (the integral), the same weight at two batch sizes
  (the weights are equal pulls at batch size 256);
- ``swd-split``: sliced Wasserstein as it is against its VISReg-style shape/centre/scale split (``split=True``),
  at the same weight.

``GaussianEmbedder`` on digits (70/30 stratified, split seed = training seed); held-out KL (``score_embedding``,
kNN estimate, nats) and 5-NN accuracy, mean ± sd over the splits.

    python benchmarks/bench_options.py --study sigreg-scale --out benchmarks/results/sigreg_scale.md
    python benchmarks/bench_options.py --study swd-split --splits 0 1 2 --out benchmarks/results/swd_split.md
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

STUDIES = {
    "sigreg-scale": {
        "title": "SIGReg: one weight at two batch sizes",
        "settings": {f"{scale}, weight {weight:g}, batch {batch}": {
            "regularizer": "sigreg", "regularizer_kwargs": {"scale": scale}, "weight": weight, "batch_size": batch}
            for scale, weight in (("sum", 1.0), ("mean", 256.0)) for batch in (128, 1024)}},
    "swd-split": {
        "title": "Sliced Wasserstein: plain against the shape/centre/scale split",
        "settings": {f"swd{', split' if split else ''}, weight 10": {
            "regularizer": "swd", "regularizer_kwargs": {"split": split}, "weight": 10.0} for split in (False, True)}},
}
"""Each study: a title and its settings (label → GaussianEmbedder keyword arguments)."""


def run(options: dict, split: int, dim: int) -> tuple[float, float]:
    from sklearn.model_selection import train_test_split

    X, y = load("digits")
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=split, stratify=y)
    model = GaussianEmbedder(dim, random_state=split, **options).fit(X_train, y_train)
    scores = score_embedding(model.transform(X_test), y_test, Z_train=model.transform(X_train), y_train=y_train)
    return scores["kl"], scores["knn_accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", required=True, choices=sorted(STUDIES))
    parser.add_argument("--splits", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--dim", type=int, default=2)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    study = STUDIES[args.study]
    lines = [f"# {study['title']}", "", *machine_lines(None, ("gaussify", "torch", "numpy", "scikit-learn")),
             f"- `python benchmarks/bench_options.py --study {args.study}`: digits, {args.dim}-D, splits (= seeds) "
             f"{args.splits}, 70/30 stratified.", "",
             "| setting | held-out KL | 5-NN accuracy |", "|---|---:|---:|"]
    for label, options in study["settings"].items():
        kl, acc = np.array([run(options, split, args.dim) for split in args.splits]).T
        lines.append(f"| {label} | {kl.mean():.3f} ± {kl.std(ddof=1):.3f} | {acc.mean():.3f} ± {acc.std(ddof=1):.3f} |")
        print(lines[-1], flush=True)
    write_text_atomic(args.out, "\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
