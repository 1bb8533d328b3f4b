r"""Score embeddings on one yardstick, shared by ``gaussify demo`` and the quality benchmark.

:func:`score_embedding` measures a held-out embedding Z as given (nothing is standardised) against N(0, I):

- ``kl`` = KL(P_Z ‖ N(0, I)) = ``negentropy`` + ``placement`` in nats (kNN estimate, exact split), and
  ``kl_lower_bound``, the largest of the calibrated lower confidence bounds (1-D estimates, any dimension)
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
    """Scores of the held-out embedding ``Z_test`` (n × d, at least :data:`gaussify.metrics.MIN_ROWS` rows), see
    the module docstring.

    Keys: kl, negentropy, placement, kl_lower_bound, min_pvalue always; knn_accuracy and linear_accuracy
    (knn_r2 and linear_r2 for continuous targets) when ``y_test``, ``Z_train`` and ``y_train`` are given;
    trustworthiness when the inputs ``X_test`` (n × p) are given. ``n_jobs`` (1 by default, -1 for all cores) goes to
    the kNN searches of the KL estimate. Raises ``ValueError`` when shapes disagree.
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
    scores = {"kl": report.kl, "negentropy": report.negentropy, "placement": report.placement_kl,
              "kl_lower_bound": report.kl_lower_bound, "min_pvalue": float(holm(pvalues).min())}
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
    """A markdown table of ``rows`` (dicts), one column per key of ``columns`` (default: every key, in order of
    first appearance); numeric columns are right-aligned, absent values shown as a dash."""
    columns = _columns(rows, columns)
    if not columns:
        raise ValueError("format_table needs at least one column")
    lines = ["| " + " | ".join(columns) + " |",
             "|" + "|".join("---:" if _numeric(rows, c) else "---" for c in columns) + "|"]
    lines += ["| " + " | ".join(_format_value(row.get(c)).replace("|", "\\|") for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def to_html_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """The same table as :func:`format_table`, as an escaped HTML ``<table>``."""
    columns = _columns(rows, columns)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_format_value(row.get(c)))}</td>" for c in columns) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
