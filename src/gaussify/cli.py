"""The ``gaussify`` command line: fit, transform, evaluate, tsne, demo, bench.

Inputs and outputs are .npy, .csv (header row, numeric columns) or .parquet, chosen by extension.
A user error (missing file, non-numeric column, unknown label column, NaN, bad option) prints one
line on stderr and exits with status 2; a traceback always means a bug.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

app = typer.Typer(help="Make a learned embedding Gaussian, and measure how Gaussian it is.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
bench_app = typer.Typer(help="Benchmarks: speed against the peers, training speed, quality trade-offs.",
                        no_args_is_help=True)
app.add_typer(bench_app, name="bench")

USER_ERRORS = (ValueError, FileNotFoundError, PermissionError, IsADirectoryError, FloatingPointError)


def _user_errors(command: Callable) -> Callable:
    """Turn a user error into one line on stderr and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except USER_ERRORS as err:
            message = str(err).splitlines()[0] if str(err) else type(err).__name__
            typer.echo(f"gaussify: error: {message}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def _parse_weight(weight: str) -> float | str:
    if weight == "auto":
        return weight
    try:
        value = float(weight)
    except ValueError:
        raise ValueError(f"--weight must be a non-negative number or 'auto', got {weight!r}") from None
    if not value >= 0:
        raise ValueError(f"--weight must be a non-negative number or 'auto', got {weight!r}")
    return value


def _parse_list(text: str, kind: type, option: str) -> list:
    try:
        return [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"{option} must be a comma-separated list of {kind.__name__} values, got {text!r}") \
            from None


def _write_report(report, json_path: Optional[Path], html_path: Optional[Path], title: str) -> None:
    from .io import write_text_atomic

    if json_path is not None:
        write_text_atomic(json_path, json.dumps(report.to_dict(), indent=2))
        typer.echo(f"wrote {json_path}")
    if html_path is not None:
        report.to_html(html_path, title=title)
        typer.echo(f"wrote {html_path}")


LabelsOption = Annotated[Optional[str], typer.Option("--labels", help="Column holding labels (csv/parquet).")]


@app.command()
@_user_errors
def fit(input: Annotated[Path, typer.Argument(help="Training table (.npy, .csv, .parquet).")],
        model: Annotated[Path, typer.Option("--model", help="Directory to save the trained model in.")],
        dim: Annotated[int, typer.Option("--dim", min=1, help="Embedding dimension.")] = 2,
        labels: LabelsOption = None,
        regularizer: Annotated[Optional[str], typer.Option(
            help="Regularizer: swd, sigreg, mmd, cramer-wold, knn, moments, adversarial, kl, or a weighted sum "
                 "such as 'swd+0.003*knn' (default: the estimator's).")]
        = None,
        weight: Annotated[Optional[str], typer.Option(help="Regularizer weight, or 'auto' (default: the "
                                                     "estimator's).")] = None,
        task: Annotated[str, typer.Option(help="auto, supervised, reconstruction or neighbors.")] = "auto",
        epochs: Annotated[Optional[int], typer.Option(min=1, help="Maximum number of epochs (default: the "
                                                      "estimator's).")] = None,
        seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
        out: Annotated[Optional[Path], typer.Option(help="Also write the training embedding here.")] = None,
        report: Annotated[Optional[Path], typer.Option(help="Write an HTML report of the training embedding.")]
        = None,
        quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False) -> None:
    """Train an encoder whose embedding of INPUT is Gaussian, and save it to --model."""
    from .embedder import DEFAULT_REGULARIZER, GaussianEmbedder
    from .io import read_table, write_table

    X, y, _ = read_table(input, labels)
    options = {"regularizer": regularizer or DEFAULT_REGULARIZER, "task": task, "random_state": seed,
               "verbose": not quiet}
    if weight is not None:
        options["weight"] = _parse_weight(weight)
    if epochs is not None:
        options["max_epochs"] = epochs
    estimator = GaussianEmbedder(dim, **options)
    estimator.fit(X, y)
    estimator.save(model)
    typer.echo(f"trained {estimator.n_epochs_} epochs; saved the model to {model}")
    typer.echo(str(estimator.gaussianity_))
    if out is not None:
        write_table(out, estimator.transform(X))
        typer.echo(f"wrote {out}")
    _write_report(estimator.gaussianity_, None, report, f"gaussify fit: {input.name}")


@app.command()
@_user_errors
def transform(model: Annotated[Path, typer.Argument(help="Model directory written by 'gaussify fit'.")],
              input: Annotated[Path, typer.Argument(help="Table to embed (.npy, .csv, .parquet).")],
              out: Annotated[Path, typer.Option("--out", help="Output table (.npy, .csv, .parquet).")],
              labels: LabelsOption = None) -> None:
    """Embed the rows of INPUT with a saved model."""
    from .embedder import GaussianEmbedder
    from .io import read_table, write_table

    estimator = GaussianEmbedder.load(model)
    X, _, _ = read_table(input, labels)
    write_table(out, estimator.transform(X))
    typer.echo(f"wrote {out} ({X.shape[0]} rows, {estimator.n_components} columns)")


@app.command()
@_user_errors
def evaluate(input: Annotated[Path, typer.Argument(help="Embedding table (.npy, .csv, .parquet).")],
             json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the results as JSON.")] = None,
             report: Annotated[Optional[Path], typer.Option(help="Write a self-contained HTML report.")] = None,
             labels: LabelsOption = None,
             tests: Annotated[str, typer.Option(help="all, fast, none, or comma-separated test names.")] = "all",
             seed: Annotated[int, typer.Option(help="Random seed for subsamples and slices.")] = 0) -> None:
    """How Gaussian (against N(0, I)) is the embedding in INPUT?"""
    from .io import read_table
    from .metrics import evaluate as evaluate_sample

    Z, y, _ = read_table(input, labels, mmap=True)
    names = tests if tests in ("all", "fast", "none") else _parse_list(tests, str, "--tests")
    result = evaluate_sample(Z, tests=names, labels=y, random_state=seed, verbose=sys.stderr.isatty())
    typer.echo(str(result))
    _write_report(result, json_out, report, f"gaussify evaluate: {input.name}")


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
         n_jobs: Annotated[int, typer.Option(help="Threads (-1 = all cores; 1, the default, is fastest on a "
                                                  "busy machine).")] = 1,
         labels: LabelsOption = None,
         report: Annotated[Optional[Path], typer.Option(help="Write an HTML report of the chosen run.")] = None,
         quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False) -> None:
    """t-SNE over a perplexity x seed grid; keep the most Gaussian run (smallest KL)."""
    from .io import read_table, write_table
    from .metrics import evaluate as evaluate_sample
    from .tsne import most_gaussian_tsne

    X, y, _ = read_table(input, labels)
    result = most_gaussian_tsne(X, perplexities=_parse_list(perplexities, float, "--perplexities"),
                                seeds=tuple(range(seed, seed + seeds)), n_components=dim, post=post,
                                random_state=seed, n_jobs=n_jobs, verbose=not quiet)
    write_table(out, result.embedding)
    best = result.best
    typer.echo("chosen run: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in best.items()))
    typer.echo(f"wrote {out}")
    if report is not None:
        _write_report(evaluate_sample(result.embedding, tests="fast", labels=y, n_jobs=n_jobs), None, report,
                      f"gaussify tsne: {input.name}")


@app.command()
@_user_errors
def demo(out: Annotated[Path, typer.Option(help="Directory for the report and tables.")] = Path("demo_output"),
         quick: Annotated[bool, typer.Option("--quick", help="Fewer methods and epochs (a smoke test).")] = False
         ) -> None:
    """Embed held-out digits with several methods, print the comparison, write an HTML report."""
    from .demo import run_demo

    run_demo(out, quick=quick, echo=typer.echo)


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


if __name__ == "__main__":  # pragma: no cover
    app()
