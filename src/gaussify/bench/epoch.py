"""Training speed: wall time of one epoch of :class:`~gaussify.GaussianEmbedder` on a generated
n x p array with labels (default 70,000 x 784, the size of MNIST; goal: under 10 s on 2 cores), for
the estimator's default regularizer and every registered one.

The data are a 10-component Gaussian mixture (:func:`gaussify.datasets.gaussian_mixture`), so the
supervised task runs, as in the demo. Each regularizer is fitted for ``--epochs`` epochs with the
estimator's defaults otherwise; the epoch times are the trainer's own (``history_["seconds"]``: the
epoch's minibatch steps, no validation). The first epoch includes one-off warm-up; the table
reports it and the median of the later epochs, whose worst case is checked against the goal. The
fit total adds input scaling and the report on the training embedding (``gaussianity_``).

    gaussify bench epoch --quick
    python benchmarks/bench_epoch.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from . import machine_lines

__all__ = ["main", "run", "markdown", "GOAL_SECONDS"]

GOAL_SECONDS = 10.0
PACKAGES = ("gaussify", "torch", "numpy", "scikit-learn")
COLUMNS = ("regularizer", "first epoch (s)", "later epochs (s)", "ms / step", "fit total (s)", "goal")


def run(n: int = 70_000, p: int = 784, *, n_components: int = 2, epochs: int = 3, batch_size: int = 256,
        regularizers: Sequence[str] | None = None, device: str = "auto", progress: bool = True) -> list[dict]:
    """Fit one embedder per regularizer; returns rows with keys regularizer, steps, epoch_s (list), fit_s."""
    from tqdm.auto import tqdm

    from ..datasets import gaussian_mixture
    from ..embedder import GaussianEmbedder

    _check_sizes(n, p, n_components, epochs, batch_size)
    names = _regularizer_names(regularizers)
    X, y = gaussian_mixture(n, n_components=10, dim=p, random_state=0)
    rows = []
    for name in tqdm(names, desc="epoch", unit="regularizer", disable=not progress):
        model = GaussianEmbedder(n_components, regularizer=name, max_epochs=epochs, batch_size=batch_size,
                                 device=device, random_state=0)
        start = time.perf_counter()
        model.fit(X, y)
        rows.append({"regularizer": name, "steps": -(-n // min(batch_size, n)), "epoch_s": model.history_["seconds"],
                     "fit_s": time.perf_counter() - start})
    return rows


def _check_sizes(n: int, p: int, n_components: int, epochs: int, batch_size: int) -> None:
    if n < 2 or p < 1 or n_components < 1 or epochs < 2 or batch_size < 2:
        raise ValueError("need n >= 2, p >= 1, dim >= 1, epochs >= 2 and batch size >= 2")


def _regularizer_names(regularizers: Sequence[str] | None) -> list[str]:
    """The given names or sums (checked), else the estimator's default followed by every registered one."""
    from ..embedder import DEFAULT_REGULARIZER
    from ..regularizers import REGISTRY, parse_spec

    if not regularizers:
        return [DEFAULT_REGULARIZER] + [name for name in REGISTRY if name != DEFAULT_REGULARIZER]
    for spec in regularizers:
        parse_spec(spec, REGISTRY)
    return list(regularizers)


def markdown(rows: list[dict], header: Sequence[str], *, n: int, p: int, n_components: int, batch_size: int) -> str:
    """The report: header bullets, the protocol and one table row per regularizer."""
    lines = ["# gaussify training speed: one epoch", "", *header, "",
             f"Data: {n:,} x {p} generated Gaussian mixture (10 classes, float32), supervised task, "
             f"{n_components}-D embedding, batch {batch_size}, estimator defaults otherwise. Goal: one epoch under "
             f"{GOAL_SECONDS:g} s.", "",
             "| " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * (len(COLUMNS) - 2) + "---|"]
    for row in rows:
        first, later = row["epoch_s"][0], statistics.median(row["epoch_s"][1:])
        worst = max(row["epoch_s"][1:])
        verdict = "meets" if worst <= GOAL_SECONDS else f"misses (slowest later epoch {worst:.1f} s)"
        lines.append(f"| {row['regularizer']} | {first:.3g} | {later:.3g} | {1000 * later / row['steps']:.3g} | "
                     f"{row['fit_s']:.3g} | {verdict} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gaussify bench epoch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a 4,000 x 64 array and two regularizers (seconds)")
    parser.add_argument("--out", metavar="DIR", help="write DIR/epoch.md")
    parser.add_argument("--n", type=int, help="rows of the generated array (default 70,000; 4,000 with --quick)")
    parser.add_argument("--p", type=int, help="columns of the generated array (default 784; 64 with --quick)")
    parser.add_argument("--dim", type=int, default=2, help="embedding dimension")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per fit (at least 2: the first is warm-up)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--regularizers", nargs="+", metavar="NAME",
                        help="names or sums such as swd+0.003*knn (default: the estimator's default, then every "
                             "registered regularizer)")
    parser.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda ...")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    args.n = (4000 if args.quick else 70_000) if args.n is None else args.n
    args.p = (64 if args.quick else 784) if args.p is None else args.p
    if args.quick:
        args.regularizers = args.regularizers or ["swd", "moments"]
    from .speed import resolve_device

    try:
        _check_sizes(args.n, args.p, args.dim, args.epochs, args.batch_size)
        _regularizer_names(args.regularizers)
        device = resolve_device(args.device)
    except ValueError as err:
        parser.error(str(err))
    header = machine_lines(device, PACKAGES)
    rows = run(args.n, args.p, n_components=args.dim, epochs=args.epochs, batch_size=args.batch_size,
               regularizers=args.regularizers, device=args.device, progress=not args.no_progress)
    report = markdown(rows, header, n=args.n, p=args.p, n_components=args.dim, batch_size=args.batch_size)
    print(report)
    if args.out:
        from ..io import write_text_atomic

        out = Path(args.out)
        write_text_atomic(out / "epoch.md", report)
        print(f"wrote {out / 'epoch.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
