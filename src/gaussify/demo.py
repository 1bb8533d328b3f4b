"""``gaussify demo``: embed held-out digits with several methods, compare them on one yardstick,
and write an HTML report (scikit-learn's bundled digits: nothing is downloaded)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

__all__ = ["run_demo", "DEMO_REGULARIZERS"]

DEMO_REGULARIZERS = ("swd", "sigreg", "mmd", "moments")
"""Regularizers compared in 2-D in the full demo; the estimator's default is also fitted in 8-D."""

COLUMNS = ("method", "dim", "kl", "kl_low", "kl_high", "negentropy", "placement", "min_pvalue", "knn_accuracy",
           "trustworthiness", "seconds")


def _fit_embedders(X_train, y_train, X_test, configs, epochs, seed, echo):
    """Fit one GaussianEmbedder per (regularizer, dim); yield (name, dim, Z_train, Z_test, seconds, model)."""
    from .embedder import GaussianEmbedder

    for name, dim in configs:
        echo(f"  fitting GaussianEmbedder(regularizer={name!r}, n_components={dim}) ...")
        start = time.perf_counter()
        params = {} if epochs is None else {"max_epochs": epochs}
        model = GaussianEmbedder(dim, regularizer=name, random_state=seed, **params).fit(X_train, y_train)
        yield name, dim, model.transform(X_train), model.transform(X_test), time.perf_counter() - start, model


def _demo_rows(X, y, seed: int, quick: bool, echo: Callable[[str], None]):
    """Every method on one stratified 70/30 split (split and training seeded by ``seed``); returns the rows and, for
    the report, the default 2-D model with its held-out embedding and labels."""
    from sklearn.decomposition import PCA
    from sklearn.model_selection import train_test_split

    from .baselines import make_baseline
    from .compare import score_embedding
    from .embedder import DEFAULT_REGULARIZER, default_regularizer
    from .tsne import most_gaussian_tsne

    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
    echo(f"digits, split {seed}: {len(X_train)} training rows, {len(X_test)} held-out rows, {X.shape[1]} features")
    rows: list[dict] = []

    def add(method: str, dim: int, Z_train, Z_test, seconds: float) -> None:
        scores = score_embedding(Z_test, y_test, Z_train=Z_train, y_train=y_train, X_test=X_test)
        rows.append({"method": method, "dim": dim, **scores, "seconds": seconds})
        echo(f"    {method} ({dim}-D): KL {scores['kl']:.3f}, negentropy {scores['negentropy']:.3f}, "
             f"5-NN accuracy {scores['knn_accuracy']:.3f}")

    others = [] if quick else [r for r in DEMO_REGULARIZERS if r != DEFAULT_REGULARIZER]
    configs = [(DEFAULT_REGULARIZER, 2)] + ([] if quick else [(DEFAULT_REGULARIZER, 8)]) + [(r, 2) for r in others]
    default = None
    for name, dim, Z_train, Z_test, seconds, model in _fit_embedders(X_train, y_train, X_test, configs,
                                                                      5 if quick else None, seed, echo):
        is_default = name == DEFAULT_REGULARIZER
        if is_default and dim == 2:
            default = (model, Z_test, y_test)
        label = f"gaussify {default_regularizer(dim)} (default)" if is_default else f"gaussify {name}"
        add(label, dim, Z_train, Z_test, seconds)

    echo("  PCA whitening (2-D) ...")
    start = time.perf_counter()
    pca = PCA(2, whiten=True, random_state=seed).fit(X_train)
    add("PCA whitening", 2, pca.transform(X_train), pca.transform(X_test), time.perf_counter() - start)

    echo("  t-SNE: most Gaussian run over perplexities x seeds ...")
    perplexities, tsne_seeds = ((30,), (seed,)) if quick else ((15, 30, 50), (2 * seed, 2 * seed + 1))
    start = time.perf_counter()
    search = most_gaussian_tsne(X_train, perplexities=perplexities, seeds=tsne_seeds, n_iter=250 if quick else 500)
    T_train, T_test = search.embedding, search.transform(X_test)
    tsne_seconds = time.perf_counter() - start
    tsne = f"t-SNE (most Gaussian of perplexities {'/'.join(f'{p:g}' for p in perplexities)} × {len(tsne_seeds)} seeds)"
    add(tsne, 2, T_train, T_test, tsne_seconds)
    for post in ("whiten", "quantile", "rbig"):
        start = time.perf_counter()
        fitted = make_baseline(post, **({"random_state": seed} if post == "rbig" else {})).fit(T_train)
        add(f"t-SNE + {post}", 2, fitted.transform(T_train), fitted.transform(T_test),
            tsne_seconds + time.perf_counter() - start)
    return rows, default


def _mean_sd(runs: list[list[dict]]) -> list[dict]:
    """One row per method: each numeric score as 'mean ± sd' over the runs (sample sd, ddof = 1)."""
    import numpy as np

    out = []
    for same in zip(*runs):
        row = dict(same[0])
        for key, value in row.items():
            if isinstance(value, float):
                values = np.array([r[key] for r in same])
                row[key] = f"{values.mean():.3f} ± {values.std(ddof=1):.3f}"
        out.append(row)
    return out


def run_demo(out: str | Path, *, quick: bool = False, seeds: int = 1,
             echo: Callable[[str], None] = print) -> list[dict]:
    """Run the demo on scikit-learn's digits: every method on a stratified 70/30 split, scored on the held-out rows.

    Writes ``out/report.html``, ``out/comparison.md`` and the default model to ``out/model``. ``out`` is the demo's
    own folder: it replaces the files it wrote there before (an earlier demo's ``model`` folder included).

    Parameters
    ----------
    out : str or os.PathLike
        The output folder (created if needed).
    quick : bool, default False
        Fit the default regularizer only, in 2-D, with few epochs (about 10 s).
    seeds : int, default 1
        Splits and training seeds, one per run; above 1 the scores are 'mean ± sd' strings.
    echo : callable, default print
        Where the progress lines and the table go.

    Returns
    -------
    list of dict
        The comparison rows (:data:`COLUMNS`).

    Examples
    --------
    >>> from gaussify.demo import run_demo
    >>> rows = run_demo("demo_out", quick=True, echo=lambda line: None)
    >>> [row["method"] for row in rows][0], rows[0]["kl_low"] <= rows[0]["kl"] <= rows[0]["kl_high"]
    ('gaussify swd+0.003*knn (default)', True)
    >>> import os
    >>> sorted(os.listdir("demo_out"))
    ['comparison.md', 'model', 'report.html']
    """
    from ._validation import check_bool, check_int
    from .compare import format_table, to_html_table
    from .datasets import digits
    from .embedder import GaussianEmbedder
    from .io import write_text_atomic
    from .metrics import evaluate
    from .plots import figure_to_base64_png, training_curves

    check_bool(quick, "quick")
    check_int(seeds, "seeds")
    out = Path(out)
    model_path = out / "model"
    GaussianEmbedder.check_save_path(model_path, overwrite=True)  # before any work; never deletes other files
    X, y = digits()
    runs, default = [], None
    for seed in range(seeds):
        rows, fitted = _demo_rows(X, y, seed, quick, echo)
        runs.append(rows)
        default = fitted if default is None else default  # the report shows split 0
    rows = runs[0] if seeds == 1 else _mean_sd(runs)

    table = format_table(rows, COLUMNS)
    spread = f", mean ± sd over {seeds} splits and seeds" if seeds > 1 else ""
    echo(f"\nHeld-out digits{spread} (lower KL / negentropy is more Gaussian; higher accuracy keeps more of the "
         "classes):\n")
    echo(table)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "comparison.md", table + "\n")
    assert default is not None  # seeds >= 1 (checked above)
    default_model, default_test, labels_test = default
    default_model.save(model_path, overwrite=True)
    report = evaluate(default_test, tests="all", labels=labels_test, n_jobs=1)
    curves = training_curves({k: v for k, v in default_model.history_.items() if k in ("task", "regularizer")})
    report.to_html(out / "report.html", title="gaussify demo: held-out digits, default estimator in 2-D (split 0)",
                   extra_sections=[(f"Comparison of methods on held-out digits{spread}", to_html_table(rows, COLUMNS)),
                                   ("Training curves of the default estimator",
                                    f"<img alt='training curves' src='data:image/png;base64,"
                                    f"{figure_to_base64_png(curves)}'>")])
    echo(f"\nwrote {out / 'report.html'}, {out / 'comparison.md'} and the default model in {model_path}")
    return rows
