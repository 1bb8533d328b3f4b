"""Where the non-Gaussianity is: the placement split is exact, a rotated collapsed direction is found by name and
size, the pursuit finds planted bimodal directions with their exact negentropy, the radial part is the negentropy
of an elliptical law, and a Gaussian sample reads as noise."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import digamma, gammaln

from gaussify.metrics import (non_gaussian_directions, placement_directions, placement_kl, radial_part,
                              where_non_gaussian)
from gaussify.metrics.divergence import _negentropy_1d

MU, VAR = 0.9, 0.19  # bimodal 0.5 N(±0.9, 0.19): unit variance


def _bimodal(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    return rng.choice([-MU, MU], size) + math.sqrt(VAR) * rng.standard_normal(size)


def _exact_bimodal_negentropy() -> float:
    """J = H(N(0, 1)) − H(p) by quadrature, p = 0.5 N(−0.9, 0.19) + 0.5 N(0.9, 0.19)."""
    def p(x: float) -> float:
        return 0.5 * (stats.norm.pdf(x, -MU, math.sqrt(VAR)) + stats.norm.pdf(x, MU, math.sqrt(VAR)))

    entropy = integrate.quad(lambda x: -p(x) * math.log(p(x)) if p(x) > 0 else 0.0, -8, 8, limit=200)[0]
    return 0.5 * math.log(2 * math.pi * math.e) - entropy


def _rotation(rng: np.random.Generator, d: int) -> np.ndarray:
    return np.linalg.qr(rng.standard_normal((d, d)))[0]


# ---------------------------------------------------------------------------------------------- placement
@pytest.mark.parametrize("target", [None, (np.array([0.5, -1.0, 0.0, 2.0]),
                                            np.array([[2.0, 0.3, 0, 0], [0.3, 1.0, 0, 0], [0, 0, 0.5, 0.1],
                                                      [0, 0, 0.1, 3.0]]))])
def test_placement_shares_add_up_to_the_closed_form_placement(target):
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((500, 4)) @ rng.standard_normal((4, 4)) + [0.3, 0.0, -0.2, 1.0]
    split = placement_directions(Z, target)
    assert split.kl.sum() == pytest.approx(placement_kl(Z, target, bias_correct=False), rel=1e-10)
    assert split.total == pytest.approx(split.kl.sum(), rel=1e-12)
    assert (np.diff(split.kl) <= 0).all()
    # each share is ½(λ − 1 − log λ) + ½ m², from the direction's own scores
    scores = split.scores(Z, target)
    np.testing.assert_allclose(scores.mean(axis=0), split.mean_shift, atol=1e-10)
    np.testing.assert_allclose(scores.var(axis=0, ddof=1), split.variance, rtol=1e-10)
    np.testing.assert_allclose(split.kl, 0.5 * (split.variance - 1 - np.log(split.variance) + split.mean_shift**2),
                               rtol=1e-10)


def test_a_rotated_collapsed_direction_is_found_with_its_variance():
    rng = np.random.default_rng(1)
    n, d, var = 4000, 16, 0.04
    R = _rotation(rng, d)
    G = rng.standard_normal((n, d))
    G[:, 0] *= math.sqrt(var)
    split = placement_directions(G @ R.T)
    assert split.labels[0] == "collapsed"
    assert abs(split.directions[0] @ R[:, 0]) > 0.99
    # the sample variance of n normal values has sd var·√(2/(n−1))
    assert abs(split.variance[0] - var) < 4 * var * math.sqrt(2 / (n - 1))
    assert split.kl[0] == pytest.approx(0.5 * (var - 1 - math.log(var)), rel=0.05)
    assert split.labels[1:].count("near target") >= d - 3  # the other directions are N(0, 1) up to noise


def test_a_shift_is_labelled_and_a_gaussian_sample_is_near_target():
    rng = np.random.default_rng(2)
    Z = rng.standard_normal((3000, 5))
    assert set(placement_directions(Z).labels) == {"near target"}
    Z[:, 3] += 1.0
    split = placement_directions(Z)
    # the shift splits exactly over the basis; with every variance near 1 the basis is arbitrary among those
    # directions, so the shift may spread over several of them, each labelled by what dominates its share
    assert split.labels[0] == "shifted"
    assert (split.mean_shift**2).sum() == pytest.approx((Z.mean(axis=0) ** 2).sum(), rel=1e-10)
    assert (split.mean_shift[[i for i, lab in enumerate(split.labels) if lab == "shifted"]] ** 2).sum() > 0.9


# ---------------------------------------------------------------------------------------------- pursuit
@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(3)
    n, d = 4000, 32
    G = rng.standard_normal((n, d))
    G[:, :4] = _bimodal(rng, (n, 4))
    R = _rotation(rng, d)
    return G @ R.T, R[:, :4]


def test_the_estimator_reads_the_exact_bimodal_negentropy():
    """The 1-D estimator the pursuit uses, along a known direction: its mean over 200 samples of 2000 values is the
    quadrature value within 4 standard errors plus its small m-spacing bias at this n (measured: −0.004)."""
    exact = _exact_bimodal_negentropy()
    assert exact == pytest.approx(0.757 / 4, abs=0.002)  # the 0.757 for four directions
    values = _negentropy_1d(_bimodal(np.random.default_rng(4), (2000, 200)))
    assert abs(values.mean() - exact) < 4 * values.std(ddof=1) / math.sqrt(200) + 0.01


def test_the_pursuit_finds_planted_bimodal_directions(planted):
    X, planted_span = planted
    found = non_gaussian_directions(X, top=4, random_state=0)
    Q = np.linalg.qr(found.directions.T)[0]
    cosines = np.linalg.svd(Q.T @ planted_span, compute_uv=False)
    assert cosines.min() > 0.9
    assert (found.negentropy > found.threshold).all()
    exact = 4 * _exact_bimodal_negentropy()
    # Upper side: Σ J(bᵢᵀw) ≤ J = 0.757 (Comon 1994) up to the held-out noise of 4 values (sd 2·noise_sd).
    # Lower side: directions fitted on 2000 rows are off by ~10° (cosines 0.97–0.99), which lowers each
    # negentropy: over 12 seeds the sum was 0.654 ± 0.031 (0.615–0.705); 0.75 of the exact value is 3 sd below that.
    assert 0.75 * exact < found.negentropy.sum() < exact + 4 * 2 * found.noise_sd
    # the held-out values are what the plot shows: unit-variance coordinates, two bumps
    assert found.held_out.shape == (2000, 4)
    np.testing.assert_allclose(found.held_out.std(axis=0), 1.0, atol=0.1)
    assert stats.kurtosis(found.held_out[:, 0]) < -0.8  # the bimodal law's excess kurtosis is −1.31


def test_the_projections_give_the_held_out_coordinates(planted):
    X, _ = planted
    found = non_gaussian_directions(X, top=2, random_state=0)
    scores = (X - X.mean(axis=0)) @ found.projections.T
    np.testing.assert_allclose(np.sort(scores, axis=0)[[0, -1]].std(), np.sort(found.held_out, axis=0)[[0, -1]].std(),
                               rtol=0.5)
    assert scores.std(axis=0, ddof=1) == pytest.approx([1.0, 1.0], rel=1e-10)  # whitened: unit variance exactly


def test_a_gaussian_sample_has_no_direction_above_noise():
    found = non_gaussian_directions(np.random.default_rng(5).standard_normal((4000, 32)), top=3, random_state=0)
    assert found.negentropy[0] < found.threshold
    assert abs(found.total) < 4 * math.sqrt(32) * found.noise_sd  # Σ of 32 estimates centred at 0


def test_the_pursuit_needs_two_halves():
    with pytest.raises(ValueError, match="n >= max"):
        non_gaussian_directions(np.random.default_rng(0).standard_normal((30, 20)))


# ---------------------------------------------------------------------------------------------- radial
def _student_t_negentropy(nu: float, d: int) -> float:
    """J of the multivariate Student t (scale I): entropy of N(0, ν/(ν−2) I) minus its closed-form entropy."""
    h = (-gammaln((nu + d) / 2) + gammaln(nu / 2) + d / 2 * math.log(nu * math.pi)
         + (nu + d) / 2 * (digamma((nu + d) / 2) - digamma(nu / 2)))
    return d / 2 * math.log(2 * math.pi * math.e * nu / (nu - 2)) - h


def test_the_radial_part_is_the_negentropy_of_an_elliptical_law():
    """Student t, ν = 10, d = 8, n = 20,000: J = 0.1707 is all radial. Over 8 seeds the estimate was 0.1709 with sd
    0.004; the tolerance is 5 of those sd."""
    rng = np.random.default_rng(6)
    n, d, nu = 20_000, 8, 10.0
    t = rng.standard_normal((n, d)) / np.sqrt(rng.chisquare(nu, (n, 1)) / nu)
    assert abs(radial_part(t).kl - _student_t_negentropy(nu, d)) < 0.02


@pytest.mark.parametrize("n, d", [(500, 3), (2000, 64)])
def test_the_radial_part_is_centred_on_gaussian_samples(n, d):
    parts = [radial_part(np.random.default_rng(seed).standard_normal((n, d))) for seed in range(6)]
    mean = np.mean([p.kl for p in parts])
    assert abs(mean) < 4 * parts[0].noise_sd / math.sqrt(6)


# ---------------------------------------------------------------------------------------------- together
def test_where_gathers_the_three_parts_and_says_what_is_missing():
    rng = np.random.default_rng(7)
    where = where_non_gaussian(rng.standard_normal((40, 25)))
    assert where.pursuit is None and where.radial is not None and "no pursued directions" in where.notes[0]
    data = json.loads(json.dumps(where.to_dict()))
    assert data["pursuit"] is None and len(data["placement"]["directions"]) == 5
