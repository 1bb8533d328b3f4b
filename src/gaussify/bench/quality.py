"""Quality benchmark: how Gaussian is each method's held-out embedding, and how much does it keep?

For every data set (generated offline or bundled with scikit-learn: nothing is downloaded), split 70/30
(stratified, seeded), every method is fitted on the training rows and scored on the held-out rows with
:func:`gaussify.compare.score_embedding`: KL to N(0, I) with its negentropy / placement split, the smallest
Holm-adjusted p-value of the fast normality tests, 5-NN and linear-probe accuracy (models fitted on the
training embedding), trustworthiness, and the fitting time. Methods, at each embedding dimension:

- ``GaussianEmbedder`` with every regularizer at every weight of ``--weights`` (``auto`` included), the
  default estimator, ``GaussianEmbedder(n_components, random_state=seed)`` (with ``--quick``: few epochs), and
  the default with a normalizing flow on top (``post="flow"``);
- PCA to the embedding dimension followed by each post-hoc baseline (``whiten``, ``quantile``, ``rbig``);
- in 2-D, the most Gaussian t-SNE over a perplexity sweep (:func:`gaussify.tsne.most_gaussian_tsne`;
  held-out points are placed by openTSNE's ``transform``), alone and followed by each baseline.

The headline is accuracy at a stated Gaussianity: per (data set, dimension), the best mean 5-NN and
logistic-regression accuracy among methods whose mean held-out KL is at most 0.10 and 0.25 nats (with the
spread over seeds). A method is Pareto-optimal when no other method at the same (data set, dimension) has both a
lower KL and a higher 5-NN accuracy (one of them strictly). Scores are averaged over ``--seeds``. Output in ``--out``:
``quality.md`` (header with machine, versions and date; one table per data set, Pareto-optimal rows and
the default estimator marked), ``quality.json`` (every run's scores, one object per method, data set,
dimension and seed) and ``quality_<dataset>.png`` (KL against 5-NN accuracy, the front drawn).

``--high`` runs the grid above 8 dimensions (:data:`HIGH`): digits and mnist1d at 16 and 32 dimensions, 3 seeds,
the linear probe as the Pareto axis and the levels 0.5 and 2 nats, into ``quality_high.md`` (``.json``, ``.png``).
``--n-jobs`` fits the (data set, seed) splits in parallel processes, with the rows one process gives.

    gaussify bench quality --quick
    python benchmarks/bench_quality.py --out benchmarks/results
    python benchmarks/bench_quality.py --high --n-jobs 2 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import machine_lines, timed

__all__ = ["main", "pareto_front", "DATASETS"]

DATASETS: dict[str, dict[str, Any]] = {"digits": {}, "mnist1d": {"n_samples": 10_000}, "moons": {},
                                       "swiss_roll": {}, "gaussian_mixture": {}}
"""Data sets and their loader options (:func:`gaussify.datasets.load`)."""
DEFAULT_DATASETS = ("digits", "mnist1d", "moons", "gaussian_mixture")
DEFAULT_WEIGHTS = ("0.1", "1", "10", "auto")
BASELINE_NAMES = ("whiten", "quantile", "rbig")
TSNE_PERPLEXITIES = (15, 30, 50)
GAUSSIANITY, INFORMATION = "kl", "knn_accuracy"  # the Pareto axes: lower and higher is better
LEVELS = (0.10, 0.25)
"""The stated Gaussianities of the headline: the best accuracy among methods whose mean held-out KL is at most
each level."""
HIGH: dict[str, Any] = {"datasets": ("digits", "mnist1d"), "dims": (16, 32), "seeds": (0, 1, 2),
                        "regularizers": ("swd+0.003*knn", "0.1*sigreg", "pursued-swd+0.1*placement+0.01*knn",
                                         "pursued-swd+0.1*placement+0.03*knn"),
                        "weights": ("10",), "input_noises": (0.0, 1.0), "baselines": ("whiten",), "levels": (0.5, 2.0),
                        "information": "linear_accuracy", "name": "quality_high", "task_only": True}
"""``--high``: where embeddings live above 8 dimensions. Digits and mnist1d (10,000 generated rows: 3,000 held out)
at 16 and 32 dimensions, 3 splits; the default (``regularizer="auto"``, ``input_noise="auto"``) beside the sliced
penalty, SIGReg (at weight 1) and the placement and pursued-direction sums, each without input noise and at noise 1,
and the default encoder trained at weight 0 (the task alone, with the default's input noise); the Pareto axis is
the linear probe, the levels 0.5 and 2 nats."""
TEST_SIZE = 0.3

QUICK: dict[str, Any] = {"datasets": ("moons",), "max_rows": 400, "dims": (2,), "regularizers": ("swd",),
         "weights": ("1",), "baselines": ("whiten", "quantile"), "epochs": 3, "perplexities": (30,),
         "tsne": {"n_iter": 100, "early_exaggeration_iter": 50}, "tsne_transform": {"n_iter": 50}}
"""``--quick``: one small data set, 2-D, the default and one other regularizer for a few epochs, two
baselines on PCA and a short t-SNE."""

SCORES = ("kl", "negentropy", "placement", "kl_lower_bound", "min_pvalue", "knn_accuracy", "linear_accuracy",
          "trustworthiness")
COLUMNS = ("method", "dim", *SCORES, "seconds", "pareto")


@dataclass
class Fitted:
    """One method's embedding of the training and the held-out rows, and its fitting time in seconds."""

    method: str
    family: str
    Z_train: np.ndarray | None  # None: the method failed (``note`` says how)
    Z_test: np.ndarray | None
    seconds: float
    default: bool = False
    note: str = ""


@dataclass
class Config:
    """What to run (built from the command line)."""

    datasets: Sequence[str]
    dims: Sequence[int]
    seeds: Sequence[int]
    regularizers: Sequence[str]
    weights: Sequence[float | str]
    baselines: Sequence[str] = BASELINE_NAMES
    epochs: int | None = None  # None: the estimator's default
    perplexities: Sequence[float] = TSNE_PERPLEXITIES
    tsne: dict[str, Any] = field(default_factory=dict)  # options of openTSNE.TSNE
    tsne_transform: dict[str, Any] = field(default_factory=dict)  # options of TSNEEmbedding.transform
    max_rows: int | None = None  # a stratified random subset of each data set when it has more rows
    levels: Sequence[float] = LEVELS  # the stated Gaussianities of the headline
    information: str = INFORMATION  # the Pareto axis of retained information
    name: str = "quality"  # the files: <name>.md, <name>.json, <name>_<dataset>.png
    task_only: bool = False  # also the default encoder trained at weight 0: what the task alone keeps
    input_noises: Sequence[float] = (0.0,)  # GaussianEmbedder(input_noise=…) values crossed with the sweep
    n_jobs: int = 1  # (data set, seed) splits fitted in parallel processes, each method on one thread


def _spec(text: str) -> str:
    """A regularizer name or weighted sum of them, checked (an argparse type)."""
    from ..regularizers import REGISTRY, parse_spec

    try:
        parse_spec(text, REGISTRY)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _weight(text: str) -> float | str:
    return "auto" if text == "auto" else float(text)


def _label(regularizer: str, weight: float | str, input_noise: float = 0.0) -> str:
    noise = f", input noise {input_noise:g}" if input_noise else ""
    return f"{regularizer}, w={weight if weight == 'auto' else format(weight, 'g')}{noise}"


def _embedder_methods(config: Config, dim: int, seed: int) -> list[tuple[str, dict[str, Any], bool]]:
    """(label, GaussianEmbedder params, is_default) for the default estimator and the sweep, without duplicates:
    a sweep entry that trains as the default does (``"auto"`` settings resolved at ``dim``) is the default's row."""
    from ..embedder import GaussianEmbedder

    def effective(params: dict[str, Any]) -> dict[str, Any]:
        """The parameters with ``"auto"`` resolved as the estimator resolves it when it trains."""
        model = GaussianEmbedder(**params)
        return {**model.get_params(), "regularizer": model._regularizer_spec(), "input_noise": model._input_noise()}

    fixed: dict[str, Any] = {"n_components": dim, "random_state": seed}
    if config.epochs is not None:
        fixed["max_epochs"] = config.epochs
    default = GaussianEmbedder(**fixed).get_params()
    methods: list[tuple[str, dict[str, Any], bool]] = [
        (f"gaussify default ({_label(default['regularizer'], default['weight'])})", fixed, True),
        ("gaussify default + flow (post='flow')", {**fixed, "post": "flow"}, False)]
    if config.task_only:
        methods.append(("gaussify task only (weight 0)", {**fixed, "weight": 0.0}, False))
    trains_as_default = effective(fixed)
    for regularizer, weight, noise in itertools.product(config.regularizers, config.weights, config.input_noises):
        params = {**fixed, "regularizer": regularizer, "weight": weight, "input_noise": noise}
        if effective(params) != trains_as_default:
            methods.append((f"gaussify {_label(regularizer, weight, noise)}", params, False))
    return methods


def _fit_methods(config: Config, X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, dim: int,
                 seed: int) -> Iterator[Fitted]:
    """Fit every method of ``config`` at dimension ``dim``; yields one :class:`Fitted` at a time."""
    from sklearn.decomposition import PCA

    from ..baselines import make_baseline
    from ..embedder import GaussianEmbedder
    from ..training import TrainingDiverged
    from ..tsne import most_gaussian_tsne

    for label, params, default in _embedder_methods(config, dim, seed):
        model = GaussianEmbedder(**params)
        try:
            _, seconds = timed(lambda: model.fit(X_train, y_train))
        except TrainingDiverged as error:  # keep going: the table says which settings diverge
            yield Fitted(label, "gaussify", None, None, float("nan"), default, f"diverged: {error}")
            continue
        yield Fitted(label, "gaussify", model.transform(X_train), model.transform(X_test), seconds, default)

    def with_baselines(name: str, family: str, T_train: np.ndarray, T_test: np.ndarray, seconds: float,
                       alone: bool) -> Iterator[Fitted]:
        if alone:
            yield Fitted(name, family, T_train, T_test, seconds)
        for baseline in config.baselines:
            options = {"random_state": seed} if baseline == "rbig" else {}
            post, post_seconds = timed(lambda: make_baseline(baseline, **options).fit(T_train))
            yield Fitted(f"{name} + {baseline}", family, post.transform(T_train), post.transform(T_test),
                         seconds + post_seconds)

    pca, seconds = timed(lambda: PCA(dim, random_state=seed).fit(X_train))
    yield from with_baselines("PCA", "PCA", pca.transform(X_train), pca.transform(X_test), seconds, alone=False)
    if dim == 2:
        search, seconds = timed(lambda: most_gaussian_tsne(X_train, perplexities=config.perplexities, seeds=(seed,),
                                                            **config.tsne))
        name = f"t-SNE (perplexity {search.best['perplexity']:g})"
        yield from with_baselines(name, "t-SNE", search.embedding, search.transform(X_test, **config.tsne_transform),
                                  seconds, alone=True)


def _count_methods(config: Config, dim: int) -> int:
    n_embedders = len(_embedder_methods(config, dim, 0))
    n_pca = len(config.baselines)
    n_tsne = (1 + len(config.baselines)) if dim == 2 else 0
    return n_embedders + n_pca + n_tsne


def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For each (cost, value) point: is it Pareto-optimal, i.e. does no other point have cost ≤ and value ≥
    with one of them strict? NaN points are never optimal and dominate nothing."""
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    valid = ~np.isnan(pts).any(axis=1)
    optimal = []
    for i, (cost, value) in enumerate(pts):
        others = pts[valid & (np.arange(len(pts)) != i)]
        dominated = np.any((others[:, 0] <= cost) & (others[:, 1] >= value)
                           & ((others[:, 0] < cost) | (others[:, 1] > value)))
        optimal.append(bool(valid[i] and not dominated))
    return optimal


def _average(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (dataset, dim, method): numeric scores averaged over seeds (NaN-free values only); each
    seed's own scores are kept under ``runs``."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["dim"], row["method"]), []).append(row)
    averaged = []
    for group in groups.values():
        row = dict(group[0])
        for key, value in row.items():
            if isinstance(value, float):
                values = [r[key] for r in group if not np.isnan(r[key])]
                row[key] = float(np.mean(values)) if values else float("nan")
        row["seeds"] = len(group)
        row["runs"] = [{key: r[key] for key in ("seed", *SCORES, "seconds")} for r in group]
        del row["seed"]
        averaged.append(row)
    return averaged


def _mark_front(rows: list[dict[str, Any]], information: str = INFORMATION) -> None:
    """Set ``row["pareto"]`` ("✓" or "") within each (dataset, dim) group, in place."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["dim"]), []).append(row)
    for group in groups.values():
        flags = pareto_front([(r.get(GAUSSIANITY, np.nan), r.get(information, np.nan)) for r in group])
        for row, flag in zip(group, flags):
            row["pareto"] = "✓" if flag else ""


def _split_rows(config: Config, dataset: str, seed: int,
                step: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """One row per (dim, method) of one seeded split of ``dataset``: every method fitted and scored
    (``step(label)`` after each)."""
    from sklearn.model_selection import train_test_split

    from ..compare import score_embedding
    from ..datasets import load

    X, y = load(dataset, **DATASETS[dataset])
    if config.max_rows is not None and len(X) > config.max_rows:
        X, _, y, _ = train_test_split(X, y, train_size=config.max_rows, random_state=seed, stratify=y)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=TEST_SIZE, random_state=seed, stratify=y)
    rows = []
    for dim in config.dims:
        for fitted in _fit_methods(config, X_train, y_train, X_test, dim, seed):
            scores = {} if fitted.Z_test is None else score_embedding(
                fitted.Z_test, y_test, Z_train=fitted.Z_train, y_train=y_train, X_test=X_test, random_state=seed)
            rows.append({"dataset": dataset, "dim": dim, "seed": seed, "method": fitted.method,
                         "family": fitted.family, "default": fitted.default, "note": fitted.note,
                         **{c: float(scores.get(c, np.nan)) for c in SCORES}, "seconds": fitted.seconds})
            if step is not None:
                step(f"{dataset} {dim}-D {fitted.method}")
    return rows


def run(config: Config, progress: bool = True) -> list[dict[str, Any]]:
    """Fit and score every method; returns one row per (dataset, dim, method), averaged over seeds and with
    the Pareto front marked. The (data set, seed) splits run in ``config.n_jobs`` processes."""
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    total = len(config.datasets) * len(config.seeds) * sum(_count_methods(config, dim) for dim in config.dims)
    sequential = config.n_jobs == 1  # then the bar moves after each method, else after each split
    rows = []
    with tqdm(total=total, desc="quality", unit="method", disable=not progress) as bar:
        def step(label: str) -> None:
            bar.set_postfix_str(label)
            bar.update()

        for split_rows in Parallel(n_jobs=config.n_jobs, return_as="generator_unordered")(
                delayed(_split_rows)(config, dataset, seed, step if sequential else None)
                for dataset, seed in itertools.product(config.datasets, config.seeds)):
            rows += split_rows
            if not sequential:
                bar.update(len(split_rows))
    rows.sort(key=lambda row: (config.datasets.index(row["dataset"]), row["dim"], row["seed"]))
    rows = _average(rows)
    _mark_front(rows, config.information)
    return rows


def _header(config: Config, argv: Sequence[str], quick: bool, seconds: float) -> list[str]:
    import torch

    from ..embedder import GaussianEmbedder

    defaults = {k: v for k, v in GaussianEmbedder().get_params().items() if k not in ("n_components", "random_state")}
    return [
        "# Quality benchmark: Gaussianity against retained information", "",
        *machine_lines(torch.device("cuda" if torch.cuda.is_available() else "cpu"),
                       ("gaussify", "torch", "numpy", "scipy", "scikit-learn", "openTSNE", "mnist1d")),
        f"- Command: `gaussify bench quality {' '.join(argv)}`".rstrip() + ("  (quick mode)" if quick else ""),
        f"- Total run time: {seconds:.0f} s",
        f"- Default estimator: `GaussianEmbedder(n_components, random_state=seed)` with {defaults}"
        + (f"; max_epochs={config.epochs} for every GaussianEmbedder here" if config.epochs is not None else ""),
        f"- Grid: datasets {list(config.datasets)}, dims {list(config.dims)}, seeds {list(config.seeds)}, "
        f"regularizers {list(config.regularizers)} at weights {list(config.weights)}"
        + (f" and input noises {list(config.input_noises)}" if any(config.input_noises) else "") + ", baselines "
        f"{list(config.baselines)} after PCA and (2-D) after the most Gaussian t-SNE over perplexities "
        f"{list(config.perplexities)}",
        f"- Held-out rows: {TEST_SIZE:.0%} of each data set (stratified). kl, negentropy, placement: nats, "
        "lower is more Gaussian (kl_divergence: kNN up to 8-D, the held-out Gaussianization above); kl_lower_bound: "
        "largest 1-D bound; min_pvalue: smallest Holm-adjusted p-value of the fast normality tests (below 0.05: "
        "normality rejected); knn_accuracy / linear_accuracy: 5-NN and logistic-regression accuracy; "
        "trustworthiness: k = 10; seconds: fitting time on the training rows (t-SNE: the whole perplexity search; "
        "+ baseline: both).",
        f"- pareto ✓: no method at the same (data set, dim) has both lower {GAUSSIANITY} and higher "
        f"{config.information}. **Bold**: the default estimator.", "",
    ]


def _mean_sd(row: dict[str, Any], key: str) -> str:
    values = [run[key] for run in row["runs"] if run[key] is not None and not np.isnan(run[key])]
    spread = f" ± {np.std(values, ddof=1):.3f}" if len(values) > 1 else ""
    return f"{np.mean(values):.3f}{spread}"


def at_levels(rows: list[dict[str, Any]], levels: Sequence[float] = LEVELS) -> list[dict[str, Any]]:
    """Accuracy at a stated Gaussianity: per (dataset, dim) and level, the method with the best mean 5-NN accuracy
    (and, separately, linear accuracy) among those whose mean held-out KL is at most the level; "—" when none
    is that Gaussian. Values are "mean ± sd over seeds (method, its KL)"."""
    table = []
    for key in dict.fromkeys((r["dataset"], r["dim"]) for r in rows):
        group = [r for r in rows if (r["dataset"], r["dim"]) == key and not np.isnan(r[GAUSSIANITY])]
        entry: dict[str, Any] = {"dataset": key[0], "dim": key[1]}
        for level in levels:
            within = [r for r in group if r[GAUSSIANITY] <= level]
            for score, label in (("knn_accuracy", "5-NN"), ("linear_accuracy", "linear")):
                best = max(within, key=lambda r: r[score], default=None)
                entry[f"{label} at KL ≤ {level:.2f}"] = "—" if best is None else (
                    f"{_mean_sd(best, score)} ({best['method']}, KL {best[GAUSSIANITY]:.3f})")
        table.append(entry)
    return table


def _summary(rows: list[dict[str, Any]], levels: Sequence[float] = LEVELS) -> list[str]:
    """Per (dataset, dim): is the default estimator on the front, and which methods are."""
    from ..compare import format_table

    summary = []
    for key in dict.fromkeys((r["dataset"], r["dim"]) for r in rows):
        group = [r for r in rows if (r["dataset"], r["dim"]) == key]
        default = next(r for r in group if r["default"])
        summary.append({"dataset": key[0], "dim": key[1], "default on front": "yes" if default["pareto"] else "no",
                        "Pareto front (by KL)": "; ".join(r["method"] for r in sorted(group, key=lambda r: r["kl"])
                                                          if r["pareto"])})
    return ["## Accuracy at a stated Gaussianity (held-out, mean ± sd over seeds)", "",
            format_table(at_levels(rows, levels)),
            "", "## Pareto fronts", "", format_table(summary), ""]


def markdown(rows: list[dict[str, Any]], header: list[str], levels: Sequence[float] = LEVELS,
             name: str = "quality") -> str:
    """The report: header, summary, one table per data set (its Pareto plot ``<name>_<dataset>.png``), notes on
    failed fits."""
    from ..compare import format_table

    lines = header + _summary(rows, levels)
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        shown = [{**r, "method": f"**{r['method']}**" if r["default"] else r["method"]}
                 for r in rows if r["dataset"] == dataset]
        lines += [f"## {dataset}", "", format_table(shown, COLUMNS), "", f"![Pareto plot]({name}_{dataset}.png)", ""]
    failed = [f"- {r['dataset']} {r['dim']}-D {r['method']}: {r['note']}" for r in rows if r["note"]]
    if failed:
        lines += ["## Failed fits", "", *failed, ""]
    return "\n".join(lines)


def pareto_plot(rows: list[dict[str, Any]], dataset: str, path: Path, information: str = INFORMATION) -> None:
    """KL (symlog) against ``information`` (5-NN accuracy by default), one panel per dimension; the front is drawn
    as a step line, its points numbered and named in a key under the panel (labels on the plot would overlap), the
    default estimator is a star."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dims = sorted({r["dim"] for r in rows if r["dataset"] == dataset})
    fig, axes = plt.subplots(1, len(dims), figsize=(6.5 * len(dims), 5), squeeze=False)
    colors = {"gaussify": "#1f77b4", "PCA": "#2ca02c", "t-SNE": "#d62728"}
    for ax, dim in zip(axes[0], dims):
        group = [r for r in rows if r["dataset"] == dataset and r["dim"] == dim and not np.isnan(r[GAUSSIANITY])]
        for family, color in colors.items():
            pts = [(r[GAUSSIANITY], r[information]) for r in group if r["family"] == family and not r["default"]]
            if pts:
                ax.scatter(*zip(*pts), s=25, color=color, alpha=0.7, label=family)
        default = [r for r in group if r["default"]]
        ax.scatter([r[GAUSSIANITY] for r in default], [r[information] for r in default], marker="*", s=250,
                   color="#ff7f0e", edgecolor="black", zorder=5, label="default estimator")
        front = sorted((r for r in group if r["pareto"]), key=lambda r: r[GAUSSIANITY])
        ax.step([r[GAUSSIANITY] for r in front], [r[information] for r in front], where="post", color="gray",
                lw=1, zorder=1)
        for number, r in enumerate(front, 1):
            ax.annotate(str(number), (r[GAUSSIANITY], r[information]), fontsize=8, fontweight="bold",
                        xytext=(4, 3), textcoords="offset points")
        ax.text(0.0, -0.14, "Pareto front:\n" + "\n".join(f"{i}  {r['method']}" for i, r in enumerate(front, 1)),
                transform=ax.transAxes, va="top", fontsize=8)
        ax.set_xscale("symlog", linthresh=0.01)
        ax.set_xlim(left=0)
        ax.set(xlabel=f"{GAUSSIANITY} to N(0, I), held-out (nats, lower is more Gaussian)",
               ylabel=f"{_AXIS_NAMES[information]}, held-out (higher keeps more)", title=f"{dataset}, {dim}-D")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper right", bbox_to_anchor=(1.0, -0.12))
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


_AXIS_NAMES = {"knn_accuracy": "5-NN accuracy", "linear_accuracy": "linear-probe accuracy"}


def _parser() -> argparse.ArgumentParser:
    from ..regularizers import REGISTRY

    parser = argparse.ArgumentParser(prog="gaussify bench quality", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    presets = parser.add_mutually_exclusive_group()
    presets.add_argument("--quick", action="store_true", help="one small data set, few methods, few epochs")
    presets.add_argument("--high", action="store_true",
                         help="above 8 dimensions: digits and mnist1d at 16 and 32 dims, 3 seeds, the linear probe "
                              "as the Pareto axis, levels 0.5 and 2 nats; writes quality_high.md")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"),
                        help="directory for quality.md and quality_<dataset>.png (default: benchmarks/results)")
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), help=f"default: {list(DEFAULT_DATASETS)}")
    parser.add_argument("--dims", nargs="+", type=int, help="embedding dimensions (default: 2 8)")
    parser.add_argument("--seeds", nargs="+", type=int, help="seeds of the split and of every method (default: 0)")
    parser.add_argument("--regularizers", nargs="+", type=_spec,
                        help=f"names ({', '.join(REGISTRY)}) or weighted sums such as swd+0.1*placement (default: all "
                             "names)")
    parser.add_argument("--weights", nargs="+", help=f"weights, numbers or auto (default: {list(DEFAULT_WEIGHTS)})")
    parser.add_argument("--perplexities", nargs="+", type=float,
                        help=f"t-SNE perplexities searched (default: {list(TSNE_PERPLEXITIES)})")
    parser.add_argument("--input-noise", nargs="+", type=float, dest="input_noises",
                        help="GaussianEmbedder input_noise values crossed with the regularizers and weights "
                             "(default: 0)")
    parser.add_argument("--n-jobs", type=int, default=1,
                        help="(data set, seed) splits fitted in parallel processes (default: 1; -1: every core)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Config:
    from ..regularizers import REGISTRY

    base = dict(QUICK) if args.quick else dict(HIGH) if args.high else {}
    try:
        weights = [_weight(w) for w in (args.weights or base.get("weights", DEFAULT_WEIGHTS))]
    except ValueError:
        parser.error(f"--weights must be numbers or 'auto', got {args.weights}")
    dims = args.dims or base.get("dims", (2, 8))
    if any(d < 1 for d in dims):
        parser.error("--dims must be positive")
    noises = args.input_noises or base.get("input_noises", (0.0,))
    if any(not math.isfinite(noise) or noise < 0 for noise in noises):
        parser.error("--input-noise must be finite and >= 0")
    if args.n_jobs == 0 or args.n_jobs < -1:
        parser.error("--n-jobs must be a positive number of processes or -1")
    return Config(datasets=args.datasets or base.get("datasets", DEFAULT_DATASETS), dims=dims,
                  seeds=args.seeds or base.get("seeds", (0,)),
                  regularizers=args.regularizers or base.get("regularizers", tuple(REGISTRY)),
                  weights=weights, baselines=base.get("baselines", BASELINE_NAMES), epochs=base.get("epochs"),
                  perplexities=args.perplexities or base.get("perplexities", TSNE_PERPLEXITIES),
                  tsne=base.get("tsne", {}), tsne_transform=base.get("tsne_transform", {}),
                  max_rows=base.get("max_rows"), levels=base.get("levels", LEVELS),
                  information=base.get("information", INFORMATION), name=base.get("name", "quality"),
                  task_only=base.get("task_only", False), input_noises=noises, n_jobs=args.n_jobs)


def _json_safe(value: Any) -> Any:
    """NaN as null, NumPy scalars as Python numbers, recursively."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    return value.item() if isinstance(value, np.generic) else value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, write ``quality.md`` and the Pareto plots to ``--out``; returns the exit status."""
    from ..io import write_text_atomic

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(argv)
    config = _config(args, parser)
    start = time.perf_counter()
    rows = run(config, progress=not args.no_progress)
    header = _header(config, argv, args.quick, time.perf_counter() - start)
    report = markdown(rows, header, config.levels, config.name)
    write_text_atomic(args.out / f"{config.name}.md", report)
    write_text_atomic(args.out / f"{config.name}.json", json.dumps(_json_safe(rows), indent=1) + "\n")
    for dataset in config.datasets:
        pareto_plot(rows, dataset, args.out / f"{config.name}_{dataset}.png", config.information)
    print(report)
    print(f"wrote {args.out / (config.name + '.md')}, {args.out / (config.name + '.json')} (every run) and "
          f"{len(config.datasets)} Pareto plot(s)")
    return 0
