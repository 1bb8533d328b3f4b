"""gaussify.compare: the shared scores and tables."""

import numpy as np
import pytest

from gaussify.compare import TRUST_MAX_ROWS, _trustworthiness, format_table, score_embedding, to_html_table

GAUSSIAN_KEYS = {"kl", "kl_low", "kl_high", "negentropy", "placement", "kl_lower_bound", "min_pvalue"}


@pytest.fixture(scope="module")
def gaussian_split():
    """A 2-D standard normal sample split in two, labelled by the sign of the first coordinate after a gap
    (so the classes are separable)."""
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(1200, 2))
    Z = Z[np.abs(Z[:, 0]) > 0.2][:1000]
    y = (Z[:, 0] > 0).astype(int)
    return Z[:500], y[:500], Z[500:], y[500:]


def test_scores_of_a_gaussian_sample(gaussian_split):
    Z_train, y_train, Z_test, y_test = gaussian_split
    X_test = np.hstack([Z_test, np.zeros((len(Z_test), 3))])  # inputs whose neighbours the identity keeps
    scores = score_embedding(Z_test, y_test, Z_train=Z_train, y_train=y_train, X_test=X_test, n_jobs=1)
    assert set(scores) == GAUSSIAN_KEYS | {"knn_accuracy", "linear_accuracy", "trustworthiness"}
    assert all(isinstance(v, float) and np.isfinite(v) for v in scores.values())
    # the gap at |z_1| < 0.2 removes ~16% of the mass: a small but real departure from N(0, I)
    assert 0.0 <= scores["kl"] < 0.15 and 0.0 <= scores["negentropy"] <= scores["kl"] + 1e-12
    assert scores["kl"] == pytest.approx(scores["negentropy"] + scores["placement"])
    assert scores["kl_low"] <= scores["kl"] <= scores["kl_high"]
    assert 0.0 <= scores["min_pvalue"] <= 1.0
    assert scores["knn_accuracy"] == 1.0 and scores["linear_accuracy"] == 1.0
    assert scores["trustworthiness"] == pytest.approx(1.0)


def test_exact_gaussian_is_not_rejected():
    Z = np.random.default_rng(1).normal(size=(500, 2))  # the size of the split: its kNN calibration is cached
    scores = score_embedding(Z, n_jobs=1)
    assert set(scores) == GAUSSIAN_KEYS
    assert scores["kl"] < 0.05 and scores["min_pvalue"] > 0.01


def test_shifted_sample_is_scored_as_given():
    Z = np.random.default_rng(2).normal(size=(500, 2)) * 2.0 + 1.0
    scores = score_embedding(Z, n_jobs=1)
    # placement KL of N(1, 4 I) to N(0, I) in 2-D: ½ Σ_j (σ² + μ² − 1 − log σ²) = 4 − log 4 ≈ 2.61
    assert scores["placement"] == pytest.approx(4 - np.log(4), rel=0.1)
    assert scores["min_pvalue"] < 0.05  # the radius test is taken w.r.t. N(0, I)


def test_continuous_targets_give_r2(gaussian_split):
    Z_train, _, Z_test, _ = gaussian_split
    scores = score_embedding(Z_test, Z_test[:, 1] * 0.5, Z_train=Z_train, y_train=Z_train[:, 1] * 0.5, n_jobs=1)
    assert {"knn_r2", "linear_r2"} <= set(scores) and "knn_accuracy" not in scores
    assert scores["linear_r2"] == pytest.approx(1.0, abs=1e-3) and scores["knn_r2"] > 0.9


def test_large_inputs_use_a_subset_for_trustworthiness():
    X = np.random.default_rng(3).normal(size=(TRUST_MAX_ROWS + 500, 2))
    assert _trustworthiness(X, X, random_state=0) == pytest.approx(1.0)
    assert _trustworthiness(X, X[::-1], random_state=0) < 0.6  # shuffled rows: neighbours are lost


@pytest.mark.parametrize("kwargs, match", [
    ({"Z_train": np.zeros((50, 3)), "y_train": np.zeros(50)}, "columns"),
    ({"Z_train": np.zeros((50, 2))}, "together"),
    ({"Z_train": np.zeros((50, 2)), "y_train": np.zeros(40)}, "rows"),
    ({"X_test": np.zeros((99, 4))}, "rows"),
])
def test_shape_mismatch_raises(kwargs, match):
    Z = np.random.default_rng(4).normal(size=(100, 2))
    with pytest.raises(ValueError, match=match):
        score_embedding(Z, np.zeros(100), n_jobs=1, **kwargs)


def test_bad_samples_raise():
    with pytest.raises(ValueError):
        score_embedding(np.zeros((10, 2)))  # fewer than 16 rows
    with pytest.raises(ValueError, match="NaN"):
        score_embedding(np.full((100, 2), np.nan))
    with pytest.raises(ValueError, match="y_test"):
        score_embedding(np.zeros((100, 2)), np.zeros(90), Z_train=np.zeros((50, 2)), y_train=np.zeros(50))


def test_tables():
    rows = [{"method": "a|b", "kl": 0.12345, "p": 1e-7, "n": 3}, {"method": "<c>", "kl": float("nan")}]
    table = format_table(rows, ["method", "kl", "p", "n"]).splitlines()
    assert table[0] == "| method | kl | p | n |"
    assert table[1] == "|---|---:|---:|---:|"
    assert table[2] == "| a\\|b | 0.123 | 1.00e-07 | 3 |"
    assert table[3] == "| <c> | — | — | — |"
    assert format_table(rows).splitlines()[0] == "| method | kl | p | n |"
    html_table = to_html_table(rows, ["method", "kl"])
    assert "<td>&lt;c&gt;</td>" in html_table and html_table.count("<tr>") == 3
    with pytest.raises(ValueError):
        format_table([], [])
