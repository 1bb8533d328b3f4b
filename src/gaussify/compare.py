r"""Score embeddings on one yardstick, shared by ``gaussify demo`` and the quality benchmark.

:func:`score_embedding` measures a held-out embedding Z as given (nothing is standardised) against N(0, I):

- ``kl`` = KL(P_Z ‖ N(0, I)) = ``negentropy`` + ``placement`` in nats (:func:`gaussify.metrics.kl_divergence`:
  kNN up to d = 8, held-out Gaussianization above; exact split), with ``kl_low`` and ``kl_high``, the ends of its
  95% interval from the measured error, and ``kl_lower_bound``, the largest of the calibrated lower confidence
  bounds (any dimension)
  (:func:`gaussify.metrics.evaluate`, ``tests="fast"``);
- ``min_pvalue`` = min_i p̃_i, with p̃ Holm's (1979, Scand. J. Statist. 6) step-down adjusted p-values across
  the fast normality tests: below α some test rejects at family-wise level α. The Mahalanobis radius test is
  taken w.r.t. N(0, I), so a misplaced (shifted or scaled) Gaussian is rejected too;

and what it keeps, with models fitted on the training embedding and scored on the held-out one:

- ``knn_accuracy`` (5-nearest-neighbour vote) and ``linear_accuracy`` (logistic regression on standardised
  coordinates, a linear probe) for class labels; ``knn_r2`` and ``linear_r2`` (5-NN and ridge regression,
  R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)²) for continuous targets;
- ``trustworthiness`` T(k) = 1 − 2 / (n k (2n − 3k − 1)) Σ_i Σ_{j ∈ U_k(i)} (r(i, j) − k) with k = 10, where
  U_k(i) are the k nearest embedding neighbours of i that are not among its k nearest input neighbours and
  r(i, j) their rank in input space (Venna & Kaski 2001, ICANN; 1 = no false neighbours). It is computed
  on at most 2000 held-out rows (a seeded random subset), since it needs all pairwise input distances.

:func:`format_table` and :func:`to_html_table` render rows of such scores.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._validation import as_sample, is_real_number

__all__ = ["score_embedding", "format_table", "to_html_table"]

KNN_NEIGHBORS = 5
TRUST_NEIGHBORS = 10
TRUST_MAX_ROWS = 2000
MISSING = "—"


def _targets(y: Any, n: int, name: str) -> np.ndarray:
    y = np.asarray(y).reshape(-1) if np.ndim(y) <= 1 else np.asarray(y)
    if y.shape[0] != n:
        raise ValueError(f"{name} has {y.shape[0]} rows but its embedding has {n}")
    return y


def _probe_scores(Z_train: np.ndarray, y_train: np.ndarray, Z_test: np.ndarray, y_test: np.ndarray) -> dict[str, float]:
    """Held-out accuracy (class labels) or R² (continuous targets) of a 5-NN model and of a linear model."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from .tasks import target_kind

    if target_kind(np.concatenate([y_train, y_test])) == "classification":
        knn, linear, suffix = KNeighborsClassifier(KNN_NEIGHBORS), LogisticRegression(max_iter=1000), "accuracy"
    else:
        knn, linear, suffix = KNeighborsRegressor(KNN_NEIGHBORS), Ridge(), "r2"
    k = min(KNN_NEIGHBORS, Z_train.shape[0])
    return {f"knn_{suffix}": float(knn.set_params(n_neighbors=k).fit(Z_train, y_train).score(Z_test, y_test)),
            f"linear_{suffix}": float(make_pipeline(StandardScaler(), linear).fit(Z_train, y_train)
                                      .score(Z_test, y_test))}


def _trustworthiness(X: np.ndarray, Z: np.ndarray, random_state: int) -> float:
    from sklearn.manifold import trustworthiness

    rows = np.arange(X.shape[0])
    if rows.size > TRUST_MAX_ROWS:
        rows = np.sort(np.random.default_rng(random_state).choice(rows, TRUST_MAX_ROWS, replace=False))
    k = min(TRUST_NEIGHBORS, (rows.size - 1) // 2)  # scikit-learn needs k < n / 2
    return float(trustworthiness(X[rows], Z[rows], n_neighbors=k))


def score_embedding(Z_test: Any, y_test: Any = None, *, Z_train: Any = None, y_train: Any = None, X_test: Any = None,
                    random_state: int = 0, n_jobs: int = 1) -> dict[str, float]:
    r"""Scores of the held-out embedding ``Z_test`` on the yardstick of the module docstring.

    Keys: kl, kl_low, kl_high, negentropy, placement, kl_lower_bound, min_pvalue always; knn_accuracy and
    linear_accuracy (knn_r2 and linear_r2 for continuous targets) when ``y_test``, ``Z_train`` and ``y_train``
    are given; trustworthiness when the inputs ``X_test`` are given. Raises ``ValueError`` when shapes disagree.

    Parameters
    ----------
    Z_test : array-like of shape (n, d)
        The held-out embedding, at least :data:`gaussify.metrics.MIN_ROWS` rows.
    y_test : array-like of shape (n,), optional
        Its class labels or continuous targets.
    Z_train : array-like of shape (m, d), optional
        The training embedding the probes are fitted on (with ``y_train``).
    y_train : array-like of shape (m,), optional
        Its labels or targets.
    X_test : array-like of shape (n, p), optional
        The inputs of ``Z_test``, for the trustworthiness.
    random_state : int, default 0
        Seeds the evaluation and the trustworthiness subset.
    n_jobs : int, default 1
        Threads of the kNN searches of the KL estimate (-1 for all cores).

    Returns
    -------
    dict of str to float
        The scores.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.compare import score_embedding
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 100)
    >>> Z = rng.standard_normal((200, 2)) + 3.0 * y[:, None]
    >>> scores = score_embedding(Z[1::2], y[1::2], Z_train=Z[::2], y_train=y[::2])
    >>> sorted(scores)
    ['kl', 'kl_high', 'kl_low', 'kl_lower_bound', 'knn_accuracy', 'linear_accuracy', 'min_pvalue', 'negentropy',
     'placement']
    >>> scores["knn_accuracy"] > 0.9, scores["placement"] > 1.0
    (True, True)
    """
    from .metrics import MIN_ROWS, evaluate
    from .metrics.normality import holm

    Z = as_sample(Z_test, min_rows=MIN_ROWS, name="Z_test")
    n, d = Z.shape
    if (Z_train is None) != (y_train is None):
        raise ValueError("Z_train and y_train must be given together")
    probe = y_test is not None and Z_train is not None
    if probe:
        Z_fit = as_sample(Z_train, name="Z_train")
        if Z_fit.shape[1] != d:
            raise ValueError(f"Z_train has {Z_fit.shape[1]} columns but Z_test has {d}")
        targets = _targets(y_train, Z_fit.shape[0], "y_train"), _targets(y_test, n, "y_test")
    if X_test is not None:
        X = as_sample(X_test, name="X_test")
        if X.shape[0] != n:
            raise ValueError(f"X_test has {X.shape[0]} rows but Z_test has {n}")
    report = evaluate(Z, d, tests="fast", random_state=random_state, n_jobs=n_jobs)
    pvalues = np.array([result.pvalue for result in report.tests.values()])
    low, high = report.kl_estimate.interval or (math.nan, math.nan)
    scores = {"kl": report.kl, "kl_low": low, "kl_high": high, "negentropy": report.negentropy,
              "placement": report.placement_kl, "kl_lower_bound": report.kl_lower_bound,
              "min_pvalue": float(holm(pvalues).min())}
    if probe:
        scores.update(_probe_scores(Z_fit, targets[0], Z, targets[1]))
    if X_test is not None:
        scores["trustworthiness"] = _trustworthiness(X, Z, random_state)
    return {key: float(value) for key, value in scores.items()}


def _format_value(value: Any) -> str:
    """Numbers to 3 decimals, or 3 significant digits when tiny or huge; None / NaN as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, (bool, np.bool_, str)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return "0" if value == 0 else f"{value:.3f}" if 1e-3 <= abs(value) < 1e5 else f"{value:.2e}"
    return str(value)


def _columns(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None) -> list[str]:
    return list(columns) if columns is not None else list(dict.fromkeys(key for row in rows for key in row))


def _numeric(rows: Sequence[Mapping[str, Any]], column: str) -> bool:
    values = [row.get(column) for row in rows if row.get(column) is not None]
    return bool(values) and all(is_real_number(v) for v in values)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    r"""A markdown table of ``rows`` (dicts), numeric columns right-aligned, absent values shown as a dash.

    Numbers are shown to 3 decimals, or 3 significant digits when tiny or huge.

    Parameters
    ----------
    rows : sequence of mapping
        One dict per row.
    columns : sequence of str, optional
        The keys to show, in order (default: every key, in order of first appearance).

    Returns
    -------
    str
        The markdown table.

    Examples
    --------
    >>> from gaussify.compare import format_table
    >>> print(format_table([{"method": "pca", "kl": 0.41}, {"method": "flow", "kl": 0.0123, "note": "best"}]))
    | method | kl | note |
    |---|---:|---|
    | pca | 0.410 | — |
    | flow | 0.012 | best |
    """
    columns = _columns(rows, columns)
    if not columns:
        raise ValueError("format_table needs at least one column")
    lines = ["| " + " | ".join(columns) + " |",
             "|" + "|".join("---:" if _numeric(rows, c) else "---" for c in columns) + "|"]
    lines += ["| " + " | ".join(_format_value(row.get(c)).replace("|", "\\|") for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def to_html_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    r"""The same table as :func:`format_table`, as an escaped HTML ``<table>``.

    Parameters
    ----------
    rows : sequence of mapping
        One dict per row.
    columns : sequence of str, optional
        The keys to show, in order (default: every key, in order of first appearance).

    Returns
    -------
    str
        The HTML table.

    Examples
    --------
    >>> from gaussify.compare import to_html_table
    >>> print(to_html_table([{"method": "a < b", "kl": 0.5}]).replace("<tr>", "\n<tr>"))
    <table><thead>
    <tr><th>method</th><th>kl</th></tr></thead><tbody>
    <tr><td>a &lt; b</td><td>0.500</td></tr></tbody></table>
    """
    columns = _columns(rows, columns)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_format_value(row.get(c)))}</td>" for c in columns) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
