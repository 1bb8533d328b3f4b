"""The ``gaussify`` command line: fit, transform, evaluate, tsne, demo, bench.

Inputs and outputs are .npy, .csv (numeric columns, header row) or .parquet, chosen by extension.
A user error (missing file, non-numeric column, unknown label column, NaN, bad option) prints one
line on stderr and exits with status 2; a traceback always means a bug. Output paths are checked
before any work: an existing file is replaced only with --overwrite, an input never.
"""

from __future__ import annotations

import functools
import json
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, Optional

import typer

from .io import FORMATS as TABLE
from .regularizers import REGISTRY

if TYPE_CHECKING:  # imported lazily at run time
    from .metrics import GaussianityReport
    from .metrics.streaming import StreamingResult

app = typer.Typer(help="Make a learned embedding Gaussian, and measure how Gaussian it is.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
bench_app = typer.Typer(help="Benchmarks: speed against the peers, training speed, quality trade-offs, KL accuracy.",
                        no_args_is_help=True, rich_markup_mode=None)
app.add_typer(bench_app, name="bench")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"gaussify {version('gaussify')}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False) -> None:
    """Make a learned embedding Gaussian, and measure how Gaussian it is."""

USER_ERRORS = (ValueError, FileNotFoundError, PermissionError, IsADirectoryError, FloatingPointError)


def _user_errors(command: Callable) -> Callable:
    """Turn a user error into one line on stderr and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                return command(*args, **kwargs)
        except USER_ERRORS as err:
            message = str(err).splitlines()[0] if str(err) else type(err).__name__
            typer.echo(f"gaussify: error: {message}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line on stderr, without Python's source-line dump."""
    typer.echo(f"gaussify: warning: {str(message).splitlines()[0]}", err=True)


def _check_outputs(inputs: tuple[Path, ...], overwrite: bool, **outputs: tuple[Optional[Path], tuple | None]
                   ) -> None:
    """Check every ``--option=(path, formats)`` before any work (:func:`gaussify.io.check_output`); two options
    may not name the same file."""
    from .io import check_output

    given = {option: (path, formats) for option, (path, formats) in outputs.items() if path is not None}
    for option, (path, formats) in given.items():
        check_output(path, inputs=inputs, overwrite=overwrite, formats=formats, option=f"--{option}")
    paths = [path.resolve() for path, _ in given.values()]
    if len(set(paths)) < len(paths):
        raise ValueError("two output options name the same file")


def _parse_auto_number(text: str, name: str) -> float | str:
    """An option that takes ``'auto'`` or a number (``--weight``, ``--input-noise``), as the estimator takes it and
    checked by the estimator's own rule for its parameter ``name``."""
    from .embedder import GaussianEmbedder

    value: float | str = text
    if text != "auto":
        try:
            value = float(text)
        except ValueError:
            pass  # not a number: the estimator's check rejects it, naming the option
    GaussianEmbedder._parameter_checks[name](value, "--" + name.replace("_", "-"))
    return value


def _parse_list(text: str, kind: type, option: str) -> list:
    try:
        return [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"{option} must be a comma-separated list of {kind.__name__} values, got {text!r}") \
            from None


def _summary(report) -> str:
    """The report's text, or why there is none."""
    if report is None:
        from .metrics import MIN_ROWS

        return f"no Gaussianity report: it needs at least {MIN_ROWS} training rows"
    return str(report)


def _write_json(path: Path, content: dict) -> None:
    from .io import write_text_atomic

    write_text_atomic(path, json.dumps(content, indent=2))
    typer.echo(f"wrote {path}")


def _write_html(report, path: Optional[Path], title: str) -> None:
    if path is not None:
        report.to_html(path, title=title)
        typer.echo(f"wrote {path}")


LabelsOption = Annotated[Optional[str], typer.Option("--labels", help="Column holding labels (csv/parquet).")]
OverwriteOption = Annotated[bool, typer.Option("--overwrite", help="Replace existing output files (and an earlier "
                                                                    "model folder); inputs are never replaced.")]
NJobsOption = Annotated[int, typer.Option("--n-jobs", help="CPU threads (-1: every core). 1 is fastest for small "
                                                           "data and does not slow down when other jobs run.")]
HTML, JSON = (".html", ".htm"), (".json",)


@app.command()
@_user_errors
def fit(input: Annotated[Path, typer.Argument(help="Training table (.npy, .csv, .parquet).")],
        model: Annotated[Path, typer.Option("--model", help="Directory to save the trained model in.")],
        dim: Annotated[int, typer.Option("--dim", min=1, help="Embedding dimension.")] = 2,
        labels: LabelsOption = None,
        regularizer: Annotated[Optional[str], typer.Option(
            help=f"Regularizer: 'auto' (the estimator's default, by dimension), {', '.join(REGISTRY)}, or a weighted "
                 "sum such as 'swd+0.003*knn' (default: 'auto').")]
        = None,
        weight: Annotated[Optional[str], typer.Option(help="Regularizer weight, or 'auto' (default: the "
                                                     "estimator's).")] = None,
        gaussianity_level: Annotated[Optional[float], typer.Option(
            help="With --weight auto: the batch KL (nats) to hold (default: as Gaussian as "
                                       "exact Gaussian batches).")] = None,
        task: Annotated[str, typer.Option(help="auto (supervised with --labels, else neighbors), classification, "
                                               "regression, supervised (classification or regression by the label "
                                               "column), reconstruction or neighbors.")] = "auto",
        epochs: Annotated[Optional[int], typer.Option(min=1, help="Maximum number of epochs (default: the "
                                                      "estimator's).")] = None,
        input_noise: Annotated[Optional[str], typer.Option(
            help="Noise sd (standardised input units) of the noisy copies the task also trains on, 0 for none, "
                 "or 'auto' (default: 0 up to 8 dims, 0.3 up to 16, 1 above).")] = None,
        post: Annotated[Optional[str], typer.Option(help="Post-hoc invertible map on the embedding: flow (a "
                                                         "normalizing flow, exact log-density) or rbig.")] = None,
        post_fraction: Annotated[float, typer.Option(help="With --post: fraction of the rows the encoder does not "
                                                          "train on, embedded like new points to fit the map "
                                                          "for new points (default 0: the flow's training noise "
                                                          "closes most of the gap).")] = 0.0,
        seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
        out: Annotated[Optional[Path], typer.Option(help="Also write the training embedding here.")] = None,
        report: Annotated[Optional[Path], typer.Option(help="Write an HTML report of the training embedding.")]
        = None,
        overwrite: OverwriteOption = False,
        n_jobs: NJobsOption = 1,
        quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False) -> None:
    """Train an encoder whose embedding of INPUT is Gaussian, and save it to --model (a new or empty folder,
    or an earlier model with --overwrite)."""
    import pandas as pd

    from .embedder import DEFAULT_REGULARIZER, GaussianEmbedder
    from .io import read_table, write_table
    from .metrics import MIN_ROWS

    _check_outputs((input,), overwrite, out=(out, TABLE), report=(report, HTML))
    GaussianEmbedder.check_save_path(model, overwrite=overwrite)
    X, y, columns = read_table(input, labels)
    options: dict[str, Any] = {"regularizer": regularizer or DEFAULT_REGULARIZER, "task": task, "random_state": seed,
               "n_jobs": n_jobs, "verbose": not quiet, "post": post, "post_fraction": post_fraction}
    if weight is not None:
        options["weight"] = _parse_auto_number(weight, "weight")
    if gaussianity_level is not None:
        options["gaussianity_level"] = gaussianity_level
    if epochs is not None:
        options["max_epochs"] = epochs
    if input_noise is not None:
        options["input_noise"] = _parse_auto_number(input_noise, "input_noise")
    if report is not None and X.shape[0] < MIN_ROWS:
        raise ValueError(f"--report {report}: {_summary(None)}, {input} has {X.shape[0]}")
    estimator = GaussianEmbedder(dim, **options)
    X = X if columns is None else pd.DataFrame(X, columns=columns)  # the model records the column names
    estimator.fit(X, y)
    estimator.save(model, overwrite=overwrite)
    typer.echo(f"trained {estimator.n_epochs_} epochs; saved the model to {model}")
    typer.echo(_summary(estimator.gaussianity_))
    if hasattr(estimator, "post_gap_"):
        gap = estimator.post_gap_
        typer.echo(f"post-hoc {post}: KL {gap['fit_rows']:.4g} on the rows it was fitted on, {gap['held_back']:.4g} "
                   "on rows the encoder did not train on (what new points will read)")
    if out is not None:
        write_table(out, estimator.transform(X), list(estimator.get_feature_names_out()))
        typer.echo(f"wrote {out}")
    _write_html(estimator.gaussianity_, report, f"gaussify fit: {input.name}")


@app.command()
@_user_errors
def transform(model: Annotated[Path, typer.Argument(help="Model directory written by 'gaussify fit'.")],
              input: Annotated[Path, typer.Argument(help="Table to embed (.npy, .csv, .parquet).")],
              out: Annotated[Path, typer.Option("--out", help="Output table (.npy, .csv, .parquet).")],
              labels: LabelsOption = None,
              overwrite: OverwriteOption = False,
              n_jobs: NJobsOption = 1) -> None:
    """Embed the rows of INPUT with a saved model. Columns are matched by name when both the model and INPUT
    have names (csv/parquet), by position otherwise."""
    import pandas as pd

    from .embedder import GaussianEmbedder
    from .io import align_columns, read_table, write_table

    _check_outputs((input,), overwrite, out=(out, TABLE))
    estimator = GaussianEmbedder.load(model).set_params(n_jobs=n_jobs)
    X, _, columns = read_table(input, labels)
    expected = getattr(estimator, "feature_names_in_", None)
    X = align_columns(X, columns, None if expected is None else list(expected), input)
    Z = estimator.transform(X if expected is None else pd.DataFrame(X, columns=expected))
    write_table(out, Z, list(estimator.get_feature_names_out()))
    typer.echo(f"wrote {out} ({X.shape[0]} rows, {estimator.n_components} columns)")


MEMORY_BUDGET_MIB = 256.0
"""``gaussify evaluate`` streams when a float64 copy of the table (rows x columns x 8 bytes, read from the .npy
header or the parquet metadata; for a .csv file its size) would exceed this many MiB (``--memory-budget``)."""
STREAMED = "placement KL, Mardia skewness and kurtosis, sliced Epps–Pulley, radius summary"
NOT_STREAMED = ("KL and negentropy, where the non-Gaussianity is, KL lower bounds, sliced Wasserstein, the --tests "
                "normality tests, plots")


def _read_target(path: Path, dim: int) -> tuple:
    """``--target``: a model folder from ``gaussify fit`` (N(0, I) in its dimension) or a .json/.npz target file."""
    if path.is_dir():
        from .model_folder import embedder_target

        return embedder_target(path, dim)
    from .io import read_target

    return read_target(path, dim)


@app.command()
@_user_errors
def evaluate(input: Annotated[Path, typer.Argument(help="Embedding table (.npy, .csv, .parquet).")],
             json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the results as JSON.")] = None,
             report: Annotated[Optional[Path], typer.Option(help="Write a self-contained HTML report (in memory "
                                                           "only).")] = None,
             labels: LabelsOption = None,
             tests: Annotated[str, typer.Option(help="all, fast, none, or comma-separated test names (in memory "
                                                "only).")] = "all",
             seed: Annotated[int, typer.Option(help="Random seed for subsamples and slices.")] = 0,
             target_file: Annotated[Optional[Path], typer.Option(
                 "--target", help='The Gaussian to measure against: a .json file {"mean": [...], "cov": [[...]]}, '
                                  "a .npz file with arrays mean and cov, or a model folder from 'gaussify fit' "
                                  "(N(0, I) in its dimension). Default: N(0, I).")] = None,
             stream: Annotated[Optional[bool], typer.Option(
                 "--stream/--no-stream",
                 help=f"Stream: two passes over the file in chunks, bounded memory, only the statistics that are "
                      f"sums over rows ({STREAMED}); or load it and compute everything. Default: stream when a "
                      f"float64 copy would exceed --memory-budget.")] = None,
             memory_budget: Annotated[float, typer.Option(
                 min=0, help="MiB a float64 copy of the table may take before evaluate streams (a .csv file: its "
                             "size).")] = MEMORY_BUDGET_MIB,
             overwrite: OverwriteOption = False,
             n_jobs: NJobsOption = 1) -> None:
    """How Gaussian (against N(0, I), or --target) is the embedding in INPUT?"""
    from .io import read_table, table_header

    _check_outputs((input,), overwrite, json=(json_out, JSON), report=(report, HTML))
    rows, columns = table_header(input, labels)
    size = input.stat().st_size if rows is None else rows * len(columns) * 8
    reason = "--stream"
    if stream is None:
        stream = size > memory_budget * 2**20
        table = "the .csv file" if rows is None else f"a float64 copy of the {rows} x {len(columns)} table"
        reason = f"{table} takes {size / 2**20:.3g} MiB, over the --memory-budget of {memory_budget:g} MiB"
    if stream and report is not None:
        raise ValueError("--report needs the in-memory evaluation (its plots use every row); add --no-stream, or "
                         "use --json for the streamed statistics")
    target = None if target_file is None else _read_target(target_file, len(columns))
    if target_file is not None:
        typer.echo(f"target: the Gaussian in {target_file}")
    if stream:
        from .metrics.streaming import CHUNK_SIZE, evaluate_streaming

        typer.echo(f"streaming ({reason}): two passes over {input}, {CHUNK_SIZE} rows at a time\n"
                   f"  computed from the stream: {STREAMED}\n"
                   f"  not computed, they need every row in memory (use --no-stream): {NOT_STREAMED}")
        result: StreamingResult | GaussianityReport = evaluate_streaming(input, target, columns=columns if labels
                                                                         else None, random_state=seed)
        mode = "streaming"
    else:
        from .metrics import evaluate as evaluate_sample

        Z, y, _ = read_table(input, labels, mmap=True)
        names = tests if tests in ("all", "fast", "none") else _parse_list(tests, str, "--tests")
        result = evaluate_sample(Z, target, tests=names, labels=y, random_state=seed, n_jobs=n_jobs,
                                 verbose=sys.stderr.isatty())
        mode = "in-memory"
    typer.echo(str(result))
    if json_out is not None:
        _write_json(json_out, {"mode": mode, **result.to_dict()})
    if report is not None:
        _write_html(result, report, f"gaussify evaluate: {input.name}")


@app.command()
@_user_errors
def tsne(input: Annotated[Path, typer.Argument(help="Table to embed (.npy, .csv, .parquet).")],
         out: Annotated[Path, typer.Option("--out", help="Output table of the chosen embedding.")],
         perplexities: Annotated[str, typer.Option(help="Comma-separated perplexities.")] = "5,15,30,50,100",
         seeds: Annotated[int, typer.Option(min=1, help="Number of random initialisations per perplexity.")] = 3,
         seed: Annotated[int, typer.Option(min=0, help="First seed: the runs use seed, seed+1, ...; it also seeds "
                                                       "the kNN graph and --post.")] = 0,
         dim: Annotated[int, typer.Option("--dim", min=1, help="Embedding dimension.")] = 2,
         post: Annotated[Optional[str], typer.Option(help="Post-hoc Gaussianization: whiten, quantile, rbig.")]
         = None,
         n_jobs: NJobsOption = 1,
         labels: LabelsOption = None,
         report: Annotated[Optional[Path], typer.Option(help="Write an HTML report of the chosen run.")] = None,
         overwrite: OverwriteOption = False,
         quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False) -> None:
    """t-SNE over a perplexity x seed grid; keep the most Gaussian run (smallest KL)."""
    from .io import read_table, write_table
    from .metrics import evaluate as evaluate_sample
    from .tsne import GaussianTSNE

    _check_outputs((input,), overwrite, out=(out, TABLE), report=(report, HTML))
    X, y, _ = read_table(input, labels)
    search = GaussianTSNE(perplexities=_parse_list(perplexities, float, "--perplexities"),
                          seeds=tuple(range(seed, seed + seeds)), n_components=dim, post=post, random_state=seed,
                          n_jobs=n_jobs, verbose=not quiet).fit(X)
    result = search.search_
    write_table(out, result.embedding, list(search.get_feature_names_out()))
    best = result.best
    typer.echo("chosen run: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in best.items()))
    typer.echo(f"wrote {out}")
    if report is not None:
        _write_html(evaluate_sample(result.embedding, tests="fast", labels=y, n_jobs=n_jobs), report,
                    f"gaussify tsne: {input.name}")


@app.command()
@_user_errors
def demo(out: Annotated[Path, typer.Option(help="Directory for the report and tables.")] = Path("demo_output"),
         quick: Annotated[bool, typer.Option("--quick", help="Fewer methods and epochs (a smoke test).")] = False,
         seeds: Annotated[int, typer.Option(min=1, help="Splits and training seeds; above 1 the table shows "
                                                        "mean ± sd.")] = 1) -> None:
    """Embed held-out digits with several methods, print the comparison, write an HTML report (OUT is the demo's
    own folder: it replaces what an earlier demo wrote there)."""
    from .demo import run_demo

    run_demo(out, quick=quick, seeds=seeds, echo=typer.echo)


_FORWARD = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


@bench_app.command("speed", context_settings=_FORWARD)
def bench_speed(ctx: typer.Context) -> None:
    """Speed of every regularizer and metric next to its PyPI peer (options: see --help)."""
    from .bench.speed import main

    raise typer.Exit(main(list(ctx.args)))


@bench_app.command("epoch", context_settings=_FORWARD)
def bench_epoch(ctx: typer.Context) -> None:
    """Wall time of one training epoch on a generated 70,000 x 784 array, the default and every regularizer
    (options: see --help)."""
    from .bench.epoch import main

    raise typer.Exit(main(list(ctx.args)))


@bench_app.command("quality", context_settings=_FORWARD)
def bench_quality(ctx: typer.Context) -> None:
    """Gaussianity vs retained information of every method on several data sets (options: see --help)."""
    from .bench.quality import main

    raise typer.Exit(main(list(ctx.args)))


@bench_app.command("accuracy", context_settings=_FORWARD)
def bench_accuracy(ctx: typer.Context) -> None:
    """KL estimates against the exact KL of laws with a known density (options: see --help)."""
    from .bench.accuracy import main

    raise typer.Exit(main(list(ctx.args)))


if __name__ == "__main__":  # pragma: no cover
    app()
