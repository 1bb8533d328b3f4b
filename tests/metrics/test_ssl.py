"""RankMe and LiDAR: known values, invariances, inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import ortho_group

from gaussify.metrics import lidar, rankme


def low_rank(n: int, d: int, singular_values: list[float], seed: int = 0) -> np.ndarray:
    """An n × d matrix U diag(s) Vᵀ with random orthonormal U (n × r) and V (d × r)."""
    rng = np.random.default_rng(seed)
    r = len(singular_values)
    u = np.linalg.qr(rng.standard_normal((n, r)))[0]
    v = np.linalg.qr(rng.standard_normal((d, r)))[0]
    return u @ np.diag(singular_values) @ v.T


@pytest.mark.parametrize("r", [1, 3, 8])
def test_rankme_of_equal_singular_values_is_the_rank(r):
    assert rankme(low_rank(200, 8, [5.0] * r)) == pytest.approx(r, rel=1e-4)


def test_rankme_known_value():
    """σ ∝ (2, 1, 1): p = (1/2, 1/4, 1/4), entropy 1.5 log 2, RankMe 2^1.5."""
    assert rankme(low_rank(50, 6, [2.0, 1.0, 1.0])) == pytest.approx(2 ** 1.5, rel=1e-4)


def test_rankme_of_isotropic_gaussian_is_close_to_d():
    """σ_k = √n (1 + O(√(d/n))): RankMe = d (1 − O(d/n)) — within 0.01 of d = 16 at n = 40,000."""
    Z = np.random.default_rng(1).standard_normal((40_000, 16))
    assert 15.99 < rankme(Z) <= 16.0 + 1e-4


def test_rankme_invariances():
    rng = np.random.default_rng(2)
    Z = rng.standard_normal((300, 6)) @ np.diag([3.0, 2.0, 1.0, 0.5, 0.1, 0.0])
    value = rankme(Z)
    assert 1.0 < value < 5.0
    assert rankme(Z[rng.permutation(300)]) == pytest.approx(value, rel=1e-10)
    assert rankme(Z @ ortho_group.rvs(6, random_state=3)) == pytest.approx(value, rel=1e-10)
    assert rankme(7.0 * Z) == pytest.approx(value, rel=1e-10)
    assert rankme(torch.from_numpy(Z).float()) == pytest.approx(value, rel=1e-5)


def test_rankme_of_a_collapsed_embedding_is_one():
    assert rankme(np.ones((100, 8))) == pytest.approx(1.0, abs=1e-4)
    assert rankme(np.zeros((100, 8))) == 1.0


def classes_on_orthogonal_directions(r: int, d: int = 8, n_views: int = 50, separation: float = 10.0,
                                     seed: int = 0) -> np.ndarray:
    """2r classes with means ±separation·e_k (k < r) and N(0, I) views: Σ_b ∝ the projector on r directions,
    Σ_w = I; the estimated class means add only 1/n_views of noise in the other d − r directions."""
    rng = np.random.default_rng(seed)
    means = np.zeros((2 * r, d))
    means[np.arange(2 * r), np.arange(2 * r) // 2] = separation * np.tile([1.0, -1.0], r)
    return means[:, None, :] + rng.standard_normal((2 * r, n_views, d))


@pytest.mark.parametrize("r", [1, 3, 6])
def test_lidar_counts_the_directions_the_class_means_span(r):
    """Signal eigenvalues 2·10²/(2r − 1) ≥ 18 each, noise ≈ 1/50 in each of the 8 − r others: LiDAR within 0.1
    of r."""
    assert lidar(classes_on_orthogonal_directions(r)) == pytest.approx(r, abs=0.1)


def test_lidar_views_and_labels_agree_and_are_invariant():
    views = classes_on_orthogonal_directions(3, seed=4)
    value = lidar(views)
    rng = np.random.default_rng(5)
    assert lidar(views[rng.permutation(6)]) == pytest.approx(value, rel=1e-10)
    assert lidar(views[:, rng.permutation(50)]) == pytest.approx(value, rel=1e-10)
    rows, labels = views.reshape(-1, 8), np.repeat(np.array(list("abcdef")), 50)
    order = rng.permutation(300)
    assert lidar(rows[order], labels[order]) == pytest.approx(value, rel=1e-10)
    assert lidar(torch.from_numpy(views)) == pytest.approx(value, rel=1e-10)


def test_lidar_of_identical_embeddings_is_one():
    """Every view of every source at one point: Σ_b = 0, the all-zero spectrum counts as one direction."""
    assert lidar(np.zeros((10, 4, 8))) == 1.0


def test_lidar_rejects_bad_input():
    with pytest.raises(ValueError, match="n_classes, n_views, d"):
        lidar(np.zeros((10, 8)))
    with pytest.raises(ValueError, match="at least 2 classes"):
        lidar(np.zeros((1, 5, 3)))
    with pytest.raises(ValueError, match="at least 2 classes"):
        lidar(np.zeros((4, 1, 3)))
    with pytest.raises(ValueError, match="labels has 3 entries"):
        lidar(np.zeros((4, 3)), [0, 1, 1])
    with pytest.raises(ValueError, match="delta"):
        lidar(np.zeros((4, 2, 3)), delta=0.0)
    with pytest.raises(ValueError, match="eps"):
        rankme(np.zeros((4, 3)), eps=-1.0)
