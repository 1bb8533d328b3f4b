"""Regularizer options, measured side by side on held-out digits (issue 15).

Studies (``--study``):

- ``sigreg-scale``: does one SIGReg weight mean one trade-off at any batch size? ``scale="sum"`` (LeJEPA's
  statistic, n × the integral) against ``scale="mean"`` (the integral), the same weight at batch sizes 128 and
  1024 (the weights are equal pulls at batch size 256), in three tables: the same epochs and learning rate
  (at 1024 that is a fifth of the optimizer steps); the same optimizer steps (more epochs at 1024); the same
  epochs with Adam's square-root rule, learning rate × √(B/128) (Malladi et al., "On the SDEs and Scaling
  Rules for Adaptive Gradient Algorithms", NeurIPS 2022: the rule that keeps Adam's dynamics when the steps
  shrink by B/128, so it is not combined with matched steps);
- ``swd-split``: sliced Wasserstein as it is against its VISReg-style shape/centre/scale split (``split=True``),
  at the same weight.

``GaussianEmbedder`` on digits (70/30 stratified, split seed = training seed); held-out KL (``score_embedding``,
kNN estimate, nats) and 5-NN accuracy, mean ± sd over the splits. The held-out rows are only measured, never
used to choose a setting. A setting that appears in several tables is fitted once.

    python benchmarks/bench_options.py --study sigreg-scale --splits 0 1 2 --out benchmarks/results/sigreg_scale.md
    python benchmarks/bench_options.py --study swd-split --splits 0 1 2 --out benchmarks/results/swd_split.md
"""

from __future__ import annotations

import argparse
import math
import warnings

import numpy as np

from gaussify import GaussianEmbedder
from gaussify.bench import machine_lines
from gaussify.compare import score_embedding
from gaussify.datasets import load
from gaussify.io import write_text_atomic



def sigreg_table(note: str, extra: dict) -> dict[str, dict]:
    """One SIGReg weight per scale at batch sizes 128 and 1024; ``extra`` (described by ``note``) only at 1024."""
    rows = {}
    for scale, weight in (("sum", 1.0), ("mean", 256.0)):  # equal pulls at batch size 256
        for batch, more in ((128, {}), (1024, extra)):
            label = f"{scale}, weight {weight:g}, batch {batch}" + (f" ({note})" if more else "")
            rows[label] = {"regularizer": "sigreg", "regularizer_kwargs": {"scale": scale}, "weight": weight,
                           "batch_size": batch, **more}
    return rows


STUDIES = {
    "sigreg-scale": {
        "title": "SIGReg: one weight at two batch sizes",
        "tables": {"Same epochs and learning rate": sigreg_table("", {}),
                   "Same optimizer steps": sigreg_table("same steps as 128", {"same_steps_as": 128}),
                   "Same epochs, Adam's square-root rule":
                       sigreg_table("learning rate × √8", {"sqrt_lr_from": 128})}},
    "swd-split": {
        "title": "Sliced Wasserstein: plain against the shape/centre/scale split",
        "tables": {"Same weight": {f"swd{', split' if split else ''}, weight 10": {
            "regularizer": "swd", "regularizer_kwargs": {"split": split}, "weight": 10.0} for split in (False, True)}}},
}
"""Each study: a title and its tables, each a title and its settings (label → GaussianEmbedder keyword arguments,
plus the derived ones of :func:`resolve`)."""


def resolve(setting: dict, n_train: int) -> dict:
    """GaussianEmbedder keyword arguments of a setting. ``same_steps_as=B₀``: ``max_epochs`` such that the
    number of optimizer steps (⌈n/B⌉ per epoch) equals batch B₀'s at the default epochs; ``sqrt_lr_from=B₀``:
    the default learning rate × √(B/B₀)."""
    options, defaults = dict(setting), GaussianEmbedder().get_params()
    batch = options["batch_size"]
    if (reference := options.pop("same_steps_as", None)) is not None:
        steps = defaults["max_epochs"] * math.ceil(n_train / reference)
        options["max_epochs"] = round(steps / math.ceil(n_train / batch))
    if (reference := options.pop("sqrt_lr_from", None)) is not None:
        options["learning_rate"] = defaults["learning_rate"] * math.sqrt(batch / reference)
    return options


def run(setting: dict, split: int, dim: int) -> tuple[float, float]:
    from sklearn.model_selection import train_test_split

    X, y = load("digits")
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=split, stratify=y)
    model = GaussianEmbedder(dim, random_state=split, **resolve(setting, len(X_train))).fit(X_train, y_train)
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
             f"{args.splits}, 70/30 stratified."]
    fitted: dict[str, np.ndarray] = {}  # repr(setting) -> (split, [KL, accuracy])
    for title, settings in study["tables"].items():
        lines += ["", f"## {title}", "", "| setting | held-out KL | KL per split | 5-NN accuracy |",
                  "|---|---:|---:|---:|"]
        for label, setting in settings.items():
            key = repr(setting)
            if key not in fitted:
                fitted[key] = np.array([run(setting, split, args.dim) for split in args.splits])
            kl, acc = fitted[key].T
            lines.append(f"| {label} | {kl.mean():.3f} ± {kl.std(ddof=1):.3f} | {', '.join(f'{v:.3f}' for v in kl)} "
                         f"| {acc.mean():.3f} ± {acc.std(ddof=1):.3f} |")
            print(lines[-1], flush=True)
    write_text_atomic(args.out, "\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
