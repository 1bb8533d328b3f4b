"""Tests of gaussify.metrics.normality.

Reference values come from literal O(n²) transcriptions of the published formulas (written here with
full n x n matrices and explicit loops), from pingouin and SciPy, and from Monte Carlo. Statistical
tolerances are derived from the binomial / sampling standard errors stated next to each check.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, special, stats
from scipy.spatial.distance import pdist

from gaussify.metrics import normality as nt
from gaussify.metrics.normality import (
    TEST_NAMES,
    TestResult,
    coordinate_tests,
    doornik_hansen,
    energy_test,
    epps_pulley,
    henze_zirkler,
    mahalanobis_radius_test,
    mardia_kurtosis,
    mardia_skewness,
    normality_tests,
)


def gaussian(n: int, d: int, seed: int) -> np.ndarray:
    """N(mu, A Aᵀ) sample with a random, well-conditioned A and a non-zero mean."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((d, d)) + 2.0 * np.eye(d)
    return rng.standard_normal((n, d)) @ A + rng.normal(0.0, 3.0, d)


def heavy_tailed(n: int, d: int, seed: int, df: float = 5.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) / np.sqrt(rng.chisquare(df, (n, 1)) / df)


# ----------------------------------------------------------------------------------------------
# literal transcriptions of the papers


def mle_mahalanobis_gram(X: np.ndarray) -> np.ndarray:
    """G_jk = (x_j − x̄)ᵀ S⁻¹ (x_k − x̄) with the MLE covariance, as an explicit n x n matrix."""
    W = X - X.mean(axis=0)
    return W @ np.linalg.inv(W.T @ W / len(X)) @ W.T


def bhep_literal(X: np.ndarray, beta: float) -> float:
    """T_β of Henze & Zirkler (1990), eq. (2.4), double loop over the full distance matrix."""
    n, p = X.shape
    G = mle_mahalanobis_gram(X)
    total = 0.0
    for j in range(n):
        for k in range(n):
            total += math.exp(-beta**2 / 2 * (G[j, j] - 2 * G[j, k] + G[k, k]))
    single = sum(math.exp(-beta**2 / (2 * (1 + beta**2)) * G[j, j]) for j in range(n))
    return total / n - 2 * (1 + beta**2) ** (-p / 2) * single + n * (1 + 2 * beta**2) ** (-p / 2)


def hz_literal(X: np.ndarray) -> tuple[float, float]:
    """Henze–Zirkler statistic and lognormal p-value, transcribed from Henze & Zirkler (1990)."""
    n, p = X.shape
    beta = (1 / math.sqrt(2)) * ((2 * p + 1) * n / 4) ** (1 / (p + 4))
    T = bhep_literal(X, beta)
    b2 = beta**2
    a = 1 + 2 * b2
    w = (1 + b2) * (1 + 3 * b2)
    mu = 1 - a ** (-p / 2) * (1 + p * b2 / a + p * (p + 2) * b2**2 / (2 * a**2))
    s2 = (2 * (1 + 4 * b2) ** (-p / 2)
          + 2 * a ** (-p) * (1 + 2 * p * b2**2 / a**2 + 3 * p * (p + 2) * b2**4 / (4 * a**4))
          - 4 * w ** (-p / 2) * (1 + 3 * p * b2**2 / (2 * w) + p * (p + 2) * b2**4 / (2 * w**2)))
    m = math.log(mu / math.sqrt(1 + s2 / mu**2))
    s = math.sqrt(math.log(1 + s2 / mu**2))
    return T, 1 - stats.norm.cdf((math.log(T) - m) / s)


def energy_literal(X: np.ndarray) -> float:
    """n E_n of Székely & Rizzo (2005), as in R's energy::mvnorm.e (unbiased covariance, pdist, hyp1f1)."""
    n, d = X.shape
    evals, P = np.linalg.eigh(np.cov(X, rowvar=False).reshape(d, d))
    Y = (X - X.mean(axis=0)) @ P @ np.diag(evals**-0.5) @ P.T
    const = math.exp(special.gammaln((d + 1) / 2) - special.gammaln(d / 2))
    mean1 = math.sqrt(2) * const * np.mean(special.hyp1f1(-0.5, d / 2, -np.sum(Y**2, axis=1) / 2))
    mean3 = 2 * pdist(Y).sum() / n**2
    return n * (2 * mean1 - 2 * const - mean3)


def mardia_literal(X: np.ndarray) -> tuple[float, float]:
    n = len(X)
    G = mle_mahalanobis_gram(X)
    return float((G**3).sum() / n**2), float(np.mean(np.diag(G) ** 2))


def anderson_darling_literal(x: np.ndarray, cdf) -> float:
    """A² = −n − (1/n) Σ (2i − 1)[ln F(x_(i)) + ln(1 − F(x_(n+1−i)))]."""
    u = cdf(np.sort(x))
    n = len(u)
    i = np.arange(1, n + 1)
    return float(-n - np.sum((2 * i - 1) * (np.log(u) + np.log1p(-u[::-1]))) / n)


# ----------------------------------------------------------------------------------------------
# Henze–Zirkler and BHEP


@pytest.mark.parametrize("n,d,seed", [(40, 1, 0), (60, 3, 1), (35, 6, 2)])
def test_henze_zirkler_equals_literal_transcription(n, d, seed):
    for X in (gaussian(n, d, seed), heavy_tailed(n, d, seed, df=3)):
        T, p = hz_literal(X)
        result = henze_zirkler(X)
        assert result.statistic == pytest.approx(T, rel=1e-10)
        assert result.pvalue == pytest.approx(p, rel=1e-9, abs=1e-14)
        assert result.pvalue_source == "lognormal"


@pytest.mark.parametrize("n,d", [(300, 2), (200, 5), (150, 12)])
def test_henze_zirkler_agrees_with_pingouin(n, d):
    pingouin = pytest.importorskip("pingouin")
    for X in (gaussian(n, d, n + d), heavy_tailed(n, d, n + d)):
        reference = pingouin.multivariate_normality(X)  # MLE covariance (bias=True), like ours
        result = henze_zirkler(X)
        assert result.statistic == pytest.approx(float(reference.hz), rel=1e-9)
        assert result.pvalue == pytest.approx(float(reference.pval), rel=1e-8, abs=1e-14)


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_epps_pulley_is_bhep_literal(beta):
    X = heavy_tailed(45, 3, 7)
    assert epps_pulley(X, beta=beta, n_sim=50).statistic == pytest.approx(bhep_literal(X, beta), rel=1e-10)


@pytest.mark.parametrize("block_size", [1, 7, 64, 10_000])
def test_blocked_pairwise_sums_agree_with_unblocked(block_size):
    X = heavy_tailed(203, 4, 3)  # 203 = 7 x 29 rows: one-row tiles, 29 tiles of 7, ragged tiles of 51 and 50, one tile
    reference = {"hz": hz_literal(X)[0], "energy": energy_literal(X), "b1": mardia_literal(X)[0]}
    assert henze_zirkler(X, block_size=block_size).statistic == pytest.approx(reference["hz"], rel=1e-11)
    assert energy_test(X, block_size=block_size, n_sim=20).statistic == pytest.approx(reference["energy"],
                                                                                       rel=1e-10)
    b1 = mardia_skewness(X, route="gram", block_size=block_size).details["b1"]
    assert b1 == pytest.approx(reference["b1"], rel=1e-11)


# ----------------------------------------------------------------------------------------------
# Mardia


@pytest.mark.parametrize("n,d", [(12, 2), (19, 3), (20, 3), (150, 4), (40, 9)])
def test_mardia_matches_literal_formulas(n, d):
    X = heavy_tailed(n, d, n * d)
    b1, b2 = mardia_literal(X)
    factor = (d + 1) * (n + 1) * (n + 3) / (n * ((n + 1) * (d + 1) - 6)) if n < 20 else 1.0
    df = d * (d + 1) * (d + 2) / 6
    for route in ("tensor", "gram", "auto"):
        result = mardia_skewness(X, route=route, block_size=5)
        assert result.details["b1"] == pytest.approx(b1, rel=1e-11)
        assert result.statistic == pytest.approx(n * factor * b1 / 6, rel=1e-11)
        assert result.pvalue == pytest.approx(stats.chi2.sf(n * factor * b1 / 6, df), rel=1e-9)
    mean = d * (d + 2) * (n - 1) / (n + 1)
    var = 8 * d * (d + 2) * (n - 3) * (n - d - 1) * (n - d + 1) / ((n + 1) ** 2 * (n + 3) * (n + 5))
    kurt = mardia_kurtosis(X)
    z = (b2 - mean) / math.sqrt(var)
    assert kurt.details["b2"] == pytest.approx(b2, rel=1e-12)
    assert kurt.statistic == pytest.approx(z, rel=1e-10, abs=1e-12)
    assert kurt.pvalue == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)


@pytest.mark.parametrize("n,d", [(12, 3), (25, 6)])
def test_mardia_kurtosis_exact_moments_by_monte_carlo(n, d):
    """Mardia (1974)'s exact E b₂ and Var b₂ against 40,000 simulated b₂ (batched literal formula)."""
    reps = 40_000
    rng = np.random.default_rng(11)
    W = rng.standard_normal((reps, n, d))
    W -= W.mean(axis=1, keepdims=True)
    S_inv = np.linalg.inv(np.einsum("rni,rnj->rij", W, W) / n)
    b2 = np.mean(np.einsum("rni,rij,rnj->rn", W, S_inv, W) ** 2, axis=1)
    details = mardia_kurtosis(gaussian(n, d, 0)).details
    centred = b2 - b2.mean()
    se_mean = b2.std() / math.sqrt(reps)
    se_var = math.sqrt((np.mean(centred**4) - np.mean(centred**2) ** 2) / reps)
    assert abs(b2.mean() - details["mean"]) < 4 * se_mean
    assert abs(b2.var() - details["var"]) < 4 * se_var
    # the asymptotic moments p(p+2) and 8p(p+2)/n are far outside these tolerances
    assert abs(b2.mean() - d * (d + 2)) > 20 * se_mean
    assert abs(b2.var() - 8 * d * (d + 2) / n) > 20 * se_var


@pytest.mark.slow
def test_mardia_kurtosis_calibrated_where_asymptotic_moments_fail():
    """At n=100, d=20 the usual asymptotic standardisation rejects ~28% of Gaussian samples at α = 0.05;
    the exact one is calibrated."""
    n, d, reps = 100, 20, 1000
    rng = np.random.default_rng(5)
    exact = asymptotic = 0
    for _ in range(reps):
        result = mardia_kurtosis(rng.standard_normal((n, d)))
        exact += result.pvalue <= 0.05
        z = (result.details["b2"] - d * (d + 2)) / math.sqrt(8 * d * (d + 2) / n)
        asymptotic += 2 * stats.norm.sf(abs(z)) <= 0.05
    # binomial SE at 0.05 with 1000 reps is 0.007
    assert 0.03 <= exact / reps <= 0.08
    assert asymptotic / reps > 0.2


# ----------------------------------------------------------------------------------------------
# energy


@pytest.mark.parametrize("d", [1, 2, 7, 64, 65, 256])
def test_expected_distance_to_gaussian_matches_noncentral_chi_quadrature(d):
    """E‖a − G‖ = E√χ'²_d(‖a‖²), integrated numerically against SciPy's noncentral χ² density."""
    b = d / 2
    switch = 8 * max(b, 30.0)  # the series / expansion switch is at ‖a‖² = 8 max(d/2, 30)
    sq_norms = np.array([0.0, 1e-3, 0.7, d, 3.0 * d, 0.99 * switch, 1.01 * switch, 5e3, 1e5])
    got = nt._expected_distance_to_gaussian(sq_norms, d)
    for value, lam in zip(got, sq_norms):
        mean, sd = lam + d, math.sqrt(2 * (d + 2 * lam))
        density = (lambda x: stats.ncx2.pdf(x, d, lam)) if lam > 0 else (lambda x: stats.chi2.pdf(x, d))
        reference = integrate.quad(lambda x: math.sqrt(x) * density(x), max(0.0, mean - 40 * sd),
                                   mean + 40 * sd, points=[mean], epsabs=0, epsrel=1e-13, limit=1000)[0]
        assert value == pytest.approx(reference, rel=1e-11)


def test_expected_distance_to_gaussian_by_monte_carlo():
    rng = np.random.default_rng(2)
    d = 5
    G = rng.standard_normal((400_000, d))
    for norm in (0.0, 1.5, 6.0):
        a = np.zeros(d)
        a[0] = norm
        dist = np.linalg.norm(G - a, axis=1)
        value = nt._expected_distance_to_gaussian(np.array([norm**2]), d)[0]
        assert abs(value - dist.mean()) < 4 * dist.std() / math.sqrt(len(dist))


@pytest.mark.parametrize("n,d", [(30, 1), (80, 3), (50, 8)])
def test_energy_equals_literal_transcription(n, d):
    for X in (gaussian(n, d, d), heavy_tailed(n, d, d)):
        result = energy_test(X, n_sim=30)
        assert result.statistic == pytest.approx(energy_literal(X), rel=1e-10)
        assert result.pvalue_source == "monte-carlo"


# ----------------------------------------------------------------------------------------------
# Doornik–Hansen


def test_doornik_hansen_skewness_transform_is_dagostino_and_statistic_sums_squares():
    X = heavy_tailed(60, 4, 9)
    result = doornik_hansen(X)
    W = (X - X.mean(axis=0)) / X.std(axis=0)
    evals, H = np.linalg.eigh(np.corrcoef(X, rowvar=False))
    Y = W @ H @ np.diag(evals**-0.5) @ H.T
    np.testing.assert_allclose(result.details["z_skewness"], stats.skewtest(Y, axis=0).statistic, rtol=1e-10)
    np.testing.assert_allclose(result.details["skewness"], stats.skew(Y, axis=0), rtol=1e-10)
    np.testing.assert_allclose(result.details["kurtosis"], stats.kurtosis(Y, axis=0, fisher=False), rtol=1e-10)
    z1, z2 = np.array(result.details["z_skewness"]), np.array(result.details["z_kurtosis"])
    assert result.statistic == pytest.approx(z1 @ z1 + z2 @ z2, rel=1e-12)
    assert result.pvalue == pytest.approx(stats.chi2.sf(result.statistic, 8), rel=1e-10)


@pytest.mark.parametrize("n", [20, 50, 200])
def test_doornik_hansen_kurtosis_transform_is_near_standard_normal(n):
    """z₂ under normality: 20,000 samples. SE of the mean 0.007, of the variance 0.01; the
    Wilson–Hilferty approximation gives Var z₂ ≈ 0.93 (a slightly conservative kurtosis part)."""
    rng = np.random.default_rng(n)
    W = rng.standard_normal((20_000, n))
    W -= W.mean(axis=1, keepdims=True)
    m2 = np.mean(W**2, axis=1)
    skew, kurt = np.mean(W**3, axis=1) / m2**1.5, np.mean(W**4, axis=1) / m2**2
    z2 = nt._doornik_hansen_kurtosis_z(skew, kurt, n)
    assert abs(z2.mean()) < 0.04
    assert 0.88 < z2.var() < 1.02
    assert 0.03 < np.mean(np.abs(z2) > 1.96) < 0.06


# ----------------------------------------------------------------------------------------------
# per-coordinate tests


def holm_literal(p: np.ndarray) -> np.ndarray:
    m = len(p)
    order = np.argsort(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def test_holm_adjustment_is_step_down_and_monotone():
    assert nt.holm(np.array([0.011, 0.01])) == pytest.approx([0.02, 0.02])  # 1 x 0.011 is lifted to 0.02
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = rng.uniform(0, 0.1, 6) ** 2
        np.testing.assert_allclose(nt.holm(p), holm_literal(p), rtol=1e-15)


def test_coordinate_tests_match_scipy_and_holm():
    rng = np.random.default_rng(4)
    X = np.column_stack([rng.standard_normal(80), rng.standard_exponential(80), rng.uniform(size=80),
                         rng.standard_t(4, 80)])
    for test, scipy_test in (("shapiro", stats.shapiro), ("dagostino", stats.normaltest)):
        result = coordinate_tests(X, test)
        reference = [scipy_test(column) for column in X.T]
        np.testing.assert_allclose(result.details["pvalues"], [r.pvalue for r in reference], rtol=1e-9)
        np.testing.assert_allclose(result.details["statistics"], [r.statistic for r in reference], rtol=1e-12)
        p = np.array(result.details["pvalues"])
        np.testing.assert_allclose(result.details["adjusted_pvalues"], holm_literal(p), rtol=1e-15)
        assert result.pvalue == pytest.approx(holm_literal(p).min(), rel=1e-15)
        assert result.statistic == result.details["statistics"][int(np.argmin(p))]


def awkward_columns(n: int, seed: int) -> np.ndarray:
    """Normal, skewed, heavy-tailed, bounded, offset, tiny-scale, two-valued and one-outlier columns."""
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.standard_normal(n), rng.standard_exponential(n), rng.standard_t(2, n),
                            rng.standard_cauchy(n), rng.uniform(size=n), rng.lognormal(0.0, 2.0, n),
                            1e6 + rng.standard_normal(n), 1e-8 * rng.standard_normal(n), np.arange(n) % 2.0,
                            np.r_[np.zeros(n - 1), 1.0]])


def test_vectorised_shapiro_wilk_matches_scipy_for_every_branch():
    """Exact n = 3, Royston's small-sample transform (4 <= n <= 11), n = 5 and 6 (one or two polynomial
    coefficients), odd and even n, up to 5000 rows: W to 1e-12, p-values to 1e-9 (scipy's AS 66 normal tail
    against our exact one; p = 0 vs 8e-16 at the n = 3 boundary W = 3/4)."""
    for n in [*range(3, 40), 50, 99, 100, 101, 255, 1000, 2047, 4999, 5000]:
        X = awkward_columns(n, n)
        result = coordinate_tests(X, "shapiro")
        reference = np.array([stats.shapiro(column) for column in X.T])
        np.testing.assert_allclose(result.details["statistics"], reference[:, 0], rtol=1e-12, err_msg=f"n={n}")
        np.testing.assert_allclose(result.details["pvalues"], reference[:, 1], rtol=1e-9, atol=1e-14,
                                   err_msg=f"n={n}")


def test_dagostino_pearson_matches_scipy_normaltest():
    """Except where √b₁ = 0 exactly (the two-valued column at even n): there scipy's skewtest replaces y = 0
    by 1 and reports z = δ asinh(1/α) (1.04 at n = 20) where D'Agostino's transform gives 0."""
    for n in (20, 21, 35, 100, 1000, 20_000):
        X = awkward_columns(n, n)
        result = coordinate_tests(X, "dagostino")
        reference = np.array([stats.normaltest(column) for column in X.T])
        for j in np.flatnonzero(stats.skew(X, axis=0) == 0):
            reference[j, 0] = stats.kurtosistest(X[:, j]).statistic ** 2
            reference[j, 1] = math.exp(-reference[j, 0] / 2)
        np.testing.assert_allclose(result.details["statistics"], reference[:, 0], rtol=1e-10, err_msg=f"n={n}")
        np.testing.assert_allclose(result.details["pvalues"], reference[:, 1], rtol=1e-10, err_msg=f"n={n}")


@pytest.mark.parametrize("test", ["shapiro", "dagostino", "anderson"])
def test_coordinate_tests_name_constant_columns(test):
    X = gaussian(40, 4, 0)
    X[:, [1, 3]] = [2.5, -1.0]
    with pytest.raises(ValueError, match=rf"coordinate_tests\({test}\): column\(s\) \[1, 3\] are constant"):
        coordinate_tests(X, test)
    big = np.random.default_rng(0).standard_normal((5_001, 2))
    big[:, 1] = 0.1
    with pytest.raises(ValueError, match=r"column\(s\) \[1\] are constant"):
        coordinate_tests(big, test)


def test_dagostino_variance_lost_to_rounding_is_refused_like_scipy():
    X = gaussian(40, 2, 0)
    X[:, 1] = 0.1
    X[::2, 1] = np.nextafter(0.1, 1.0)  # not constant, but the spread is one ulp of the mean
    with pytest.warns(RuntimeWarning, match="Precision loss"):
        assert np.isnan(stats.normaltest(X[:, 1]).statistic)
    with pytest.raises(ValueError, match="non-finite"):
        coordinate_tests(X, "dagostino")


def test_anderson_statistic_and_pvalue_against_scipy():
    """A² equals SciPy's; the D'Agostino–Stephens p-value agrees with SciPy's interpolation of
    Stephens' critical-value table inside the table's range (0.01, 0.15) to within 0.01."""
    rng = np.random.default_rng(8)
    compared = 0
    for _ in range(300):
        X = rng.standard_normal((40, 1)) + rng.random() * 0.8 * rng.standard_exponential((40, 1))
        result = coordinate_tests(X, "anderson")
        reference = stats.anderson(X[:, 0], method="interpolate")
        assert result.statistic == pytest.approx(reference.statistic, rel=1e-10)
        if 0.01 < reference.pvalue < 0.15:
            compared += 1
            assert abs(result.pvalue - reference.pvalue) < 0.01
    assert compared > 30


def test_shapiro_above_5000_rows_is_an_announced_subsample():
    X = np.random.default_rng(0).standard_normal((5_001, 2))
    result = coordinate_tests(X, "shapiro", random_state=3)
    assert result.n == 5_000 and "subsample of 5000 of 5001 rows" in result.note
    assert coordinate_tests(X, "anderson").note == ""


# ----------------------------------------------------------------------------------------------
# radius test


def test_fitted_radius_law_is_beta_not_scaled_chi2():
    """n d_i²/(n−1)² ~ Beta(d/2, (n−d−1)/2) exactly (unbiased S): pooled first-row radii of 4,000 samples."""
    n, d, reps = 10, 3, 4000
    rng = np.random.default_rng(6)
    u = np.empty(reps)
    for r in range(reps):
        X = rng.standard_normal((n, d))
        W = X - X.mean(axis=0)
        u[r] = n * (W[0] @ np.linalg.inv(np.cov(X, rowvar=False)) @ W[0]) / (n - 1) ** 2
    assert stats.kstest(u, stats.beta(d / 2, (n - d - 1) / 2).cdf).pvalue > 1e-3
    assert stats.kstest(u * (n - 1) ** 2 / n, stats.chi2(d).cdf).pvalue < 1e-6  # the χ²_d law fails at small n


def test_radius_statistic_is_anderson_darling_against_the_exact_laws():
    n, d = 70, 3
    X = gaussian(n, d, 12)
    W = X - X.mean(axis=0)
    u = n * np.einsum("ij,jk,ik->i", W, np.linalg.inv(np.cov(X, rowvar=False)), W) / (n - 1) ** 2
    fitted = mahalanobis_radius_test(X, n_sim=50)
    assert fitted.statistic == pytest.approx(
        anderson_darling_literal(u, stats.beta(d / 2, (n - d - 1) / 2).cdf), rel=1e-10)
    mean, cov = np.arange(d, dtype=float), np.diag([1.0, 4.0, 9.0])
    Z = np.random.default_rng(1).multivariate_normal(mean, cov, n)
    r2 = np.einsum("ij,jk,ik->i", Z - mean, np.linalg.inv(cov), Z - mean)
    targeted = mahalanobis_radius_test(Z, (mean, cov), n_sim=50)
    assert targeted.statistic == pytest.approx(anderson_darling_literal(r2, stats.chi2(d).cdf), rel=1e-10)
    assert targeted.details["fitted"] is False and fitted.details["fitted"] is True


def test_radius_test_with_target_detects_wrong_scale_and_survives_outliers():
    rng = np.random.default_rng(2)
    rejections = sum(mahalanobis_radius_test(1.3 * rng.standard_normal((200, 4)), 4, n_sim=200).pvalue <= 0.05
                     for _ in range(50))
    assert rejections >= 45  # power ≈ 1: the scale is wrong although the shape is Gaussian
    X = rng.standard_normal((100, 4))
    X[0] = 1e3  # χ²_4 survival function underflows: the statistic stays finite, the p-value minimal
    result = mahalanobis_radius_test(X, 4, n_sim=100)
    assert math.isfinite(result.statistic) and result.pvalue == pytest.approx(1 / 101)


# ----------------------------------------------------------------------------------------------
# invariance


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_affine_invariance(seed):
    rng = np.random.default_rng(seed)
    X = heavy_tailed(60, 3, seed)
    A = rng.standard_normal((3, 3)) + 3 * np.eye(3)
    XA = X @ A + rng.normal(0, 10, 3)
    for fn in (mardia_skewness, mardia_kurtosis, henze_zirkler):
        assert fn(XA).statistic == pytest.approx(fn(X).statistic, rel=1e-8, abs=1e-10)
    for fn in (energy_test, epps_pulley, mahalanobis_radius_test):
        assert fn(XA, n_sim=20).statistic == pytest.approx(fn(X, n_sim=20).statistic, rel=1e-8, abs=1e-10)
    # Doornik–Hansen and the coordinate tests: scale invariant only. Adding 5 to a column of scale 1e-6 keeps only
    # 5·eps/1e-6 ≈ 1e-9 of its relative precision, and the statistics (sums of powers of ~60 standardised values)
    # amplify that by up to ~10² (measured relative errors up to 1.2e-8 across machines): rel=1e-6 is that bound
    # with a margin; a statistic that were not scale invariant would move by orders of magnitude more here.
    scales = np.array([1e-6, 1.0, 1e6])
    assert doornik_hansen(X * scales + 5).statistic == pytest.approx(doornik_hansen(X).statistic, rel=1e-6)
    assert coordinate_tests(X * scales + 5).pvalue == pytest.approx(coordinate_tests(X).pvalue, rel=1e-6)


# ----------------------------------------------------------------------------------------------
# calibration and power


def calibration_runs() -> dict:
    """Every p-value of every test of the spec table: its asymptotic one (where it has one) and its Monte Carlo
    one (where it has a null; "[mc]" when it has both), with a null of 1000 draws."""
    runs = {}
    for spec in nt._TESTS:
        both = spec.null is not None and "monte_carlo" in inspect.signature(spec.function).parameters
        if spec.null is None or both:
            runs[spec.name] = functools.partial(spec.run, options={})
        if spec.null is not None:
            runs[spec.name + ("[mc]" if both else "")] = functools.partial(
                spec.run, options={"monte_carlo": True, "n_sim": 1000})
    return runs


CALIBRATION = calibration_runs()


@pytest.mark.slow
@pytest.mark.parametrize("n,d", [(50, 2), (200, 5)])
def test_null_rejection_rate(n, d):
    """Rejection rate at α = 0.05 over 1000 N(μ, Σ) samples. SE: binomial 0.0069; a Monte Carlo
    p-value from a fixed null of 1000 draws adds a conditional SD 0.0069, total 0.0097: the window
    [0.03, 0.08] is > 2 SE on either side. Σ is a full matrix (so affine invariance is exercised),
    except for the coordinate tests, whose Holm correction is exact only for independent columns
    (with dependent columns it is conservative, as Holm's family-wise guarantee allows)."""
    reps = 1000
    rng = np.random.default_rng(2024 + n)
    A = rng.standard_normal((d, d)) + 2 * np.eye(d)
    mu, scales = rng.normal(0, 5, d), rng.uniform(0.1, 10, d)
    rejected = dict.fromkeys(CALIBRATION, 0)
    for _ in range(reps):
        G = rng.standard_normal((n, d))
        mixed, independent = G @ A + mu, G * scales + mu
        for name, run in CALIBRATION.items():
            rejected[name] += run(independent if name == "coordinates" else mixed).pvalue <= 0.05
    rates = {name: count / reps for name, count in rejected.items()}
    assert all(0.03 <= rate <= 0.08 for rate in rates.values()), rates


def uniform_cube(n, d, rng):
    return rng.uniform(-1, 1, (n, d))


def multivariate_t(n, d, rng):
    return rng.standard_normal((n, d)) / np.sqrt(rng.chisquare(5, (n, 1)) / 5)


def bimodal(n, d, rng):
    X = rng.standard_normal((n, d))
    X[:, 0] += np.where(rng.random(n) < 0.5, -2.0, 2.0)
    return X


def skewed(n, d, rng):
    return rng.standard_exponential((n, d))


@pytest.mark.slow
@pytest.mark.parametrize("alternative,d", [(uniform_cube, 5), (multivariate_t, 5), (bimodal, 2), (skewed, 5)])
def test_power_against_alternatives(alternative, d):
    """Rejection rate over 100 samples of n = 200 (SE ≤ 0.05). Measured power is ≥ 0.92 for every pair
    below except Mardia's kurtosis against the bimodal mixture (≈ 0.7); Mardia's skewness has no power
    against symmetric alternatives by construction, which is checked too."""
    reps, n = 100, 200
    rng = np.random.default_rng(99)
    rejected = dict.fromkeys(TEST_NAMES, 0)
    for _ in range(reps):
        for name, result in normality_tests(alternative(n, d, rng), n_sim=200).items():
            rejected[name] += result.pvalue <= 0.05
    rates = {name: count / reps for name, count in rejected.items()}
    symmetric = alternative in (uniform_cube, bimodal)
    for name, rate in rates.items():
        if name == "mardia_skewness" and symmetric:
            assert rate <= 0.12, rates
        elif name == "mardia_kurtosis" and alternative is bimodal:
            assert rate >= 0.5, rates
        else:
            assert rate >= 0.8, rates


# ----------------------------------------------------------------------------------------------
# runner, Monte Carlo cache, results


def test_normality_tests_runs_all_and_matches_individual_calls():
    X = heavy_tailed(120, 3, 1)
    results = normality_tests(X, n_sim=100)
    assert tuple(results) == TEST_NAMES
    assert results["henze_zirkler"] == henze_zirkler(X)
    assert results["energy"] == energy_test(X, n_sim=100)
    assert results["coordinates"] == coordinate_tests(X)
    payload = json.loads(json.dumps({name: r.to_dict() for name, r in results.items()}))
    assert payload["doornik_hansen"]["details"]["df"] == 6
    assert set(payload["energy"]) == {"name", "statistic", "pvalue", "pvalue_source", "n", "d", "details", "note"}
    only = normality_tests(X, tests="mardia_kurtosis", monte_carlo=True, n_sim=100)
    assert list(only) == ["mardia_kurtosis"] and only["mardia_kurtosis"].pvalue_source == "monte-carlo"


def test_quadratic_tests_subsample_beyond_max_exact_and_say_so():
    X = gaussian(600, 2, 5)
    results = normality_tests(X, max_exact=200, n_sim=50, random_state=1)
    for spec in nt._TESTS:
        if spec.quadratic:
            assert results[spec.name].n == 200
            assert "random subsample of 200 of 600 rows" in results[spec.name].note
        else:
            assert results[spec.name].n == 600 and results[spec.name].note == ""
    again = normality_tests(X, tests=["henze_zirkler"], max_exact=200, random_state=1)
    other = normality_tests(X, tests=["henze_zirkler"], max_exact=200, random_state=2)
    assert again["henze_zirkler"] == results["henze_zirkler"]
    assert other["henze_zirkler"].statistic != results["henze_zirkler"].statistic


def test_monte_carlo_null_is_cached_reproducible_and_capped():
    X = heavy_tailed(150, 2, 0)
    first = energy_test(X, n_sim=99, random_state=4)
    hits = nt._null_distribution.cache_info().hits
    second = energy_test(X, n_sim=99, random_state=4)
    assert first == second and nt._null_distribution.cache_info().hits == hits + 1
    assert first.pvalue * 100 == pytest.approx(round(first.pvalue * 100))  # (1 + count) / (n_sim + 1)
    capped = henze_zirkler(X, monte_carlo=True, n_sim=50, mc_max_n=60)
    assert "simulated at n=60 rows" in capped.note and capped.n == 150


def test_test_result_unpacks_like_scipy_and_keeps_its_old_field_name_for_one_release():
    X = gaussian(30, 2, 0)
    result = henze_zirkler(X)
    statistic, pvalue = result
    assert (statistic, pvalue) == (result.statistic, result.pvalue) == (result[0], result[1]) == tuple(result[:])
    assert len(result) == 2 and result[-1] == result.pvalue
    with pytest.warns(FutureWarning, match="use TestResult.pvalue_source"):
        assert result.method == result.pvalue_source == "lognormal"
    assert nt.TEST_NAMES == tuple(spec.name for spec in nt._TESTS)


def test_test_result_is_frozen_and_rejects_nan():
    result = henze_zirkler(gaussian(30, 2, 0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.pvalue = 0.5  # type: ignore[misc]
    with pytest.raises(ValueError, match="non-finite"):
        TestResult("x", float("nan"), 0.5, "asymptotic", 10, 2)
    with pytest.raises(ValueError, match="outside"):
        TestResult("x", 1.0, 1.5, "asymptotic", 10, 2)


# ----------------------------------------------------------------------------------------------
# bad input

ALL_FUNCTIONS = {**{spec.name: functools.partial(spec.run, options={"n_sim": 10}) for spec in nt._TESTS},
                 "normality_tests": lambda X: normality_tests(X, n_sim=10)}


@pytest.mark.parametrize("fn", ALL_FUNCTIONS.values(), ids=ALL_FUNCTIONS)
def test_bad_input_raises_clear_errors(fn):
    X = gaussian(40, 3, 0)
    for value in (np.nan, np.inf):
        bad = X.copy()
        bad[5, 1] = value
        with pytest.raises(ValueError, match="NaN or Inf"):
            fn(bad)
    with pytest.raises(ValueError, match="at least"):
        fn(X[:2])
    constant = X.copy()
    constant[:, 2] = 1.5
    with pytest.raises(ValueError, match=r"column\(s\) \[2\] are constant"):
        fn(constant)
    with pytest.raises(TypeError, match="numeric"):
        fn(np.array([["a", "b"]] * 10))


@pytest.mark.parametrize("spec", [spec for spec in nt._TESTS if spec.name != "coordinates"], ids=lambda s: s.name)
def test_covariance_problems_are_named(spec):
    """Every test but the per-coordinate one standardises with the sample covariance."""
    fn = functools.partial(spec.run, options={"n_sim": 10})
    X = gaussian(40, 3, 1)
    with pytest.raises(ValueError, match="n >= d"):
        fn(gaussian(9, 9, 0))
    collinear = np.column_stack([X, X[:, 0] - 2 * X[:, 1]])
    with pytest.raises(ValueError, match="singular"):
        fn(collinear)


def test_bad_options_raise():
    X = gaussian(40, 3, 0)
    with pytest.raises(ValueError, match="unknown test"):
        normality_tests(X, tests=["hz"])
    with pytest.raises(ValueError, match="test must be one of"):
        coordinate_tests(X, "lilliefors")
    with pytest.raises(ValueError, match="route"):
        mardia_skewness(X, route="fast")
    with pytest.raises(ValueError, match="beta"):
        epps_pulley(X, beta=0.0)
    with pytest.raises(ValueError, match="n_sim"):
        energy_test(X, n_sim=0)
    with pytest.raises(ValueError, match="random_state"):
        energy_test(X, random_state=-1)
    with pytest.raises(ValueError, match="block_size"):
        henze_zirkler(X, block_size=2.5)
    with pytest.raises(ValueError, match="dagostino.*at least 20|at least 20"):
        coordinate_tests(X[:15], "dagostino")
    with pytest.raises(ValueError, match="target"):
        mahalanobis_radius_test(X, (np.zeros(2), np.eye(2)))


def test_extreme_but_valid_data_give_finite_results():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 3)) * np.array([1e-9, 1.0, 1e9])
    X[0] *= 1e4  # one gross outlier
    for result in normality_tests(X, n_sim=50).values():
        assert math.isfinite(result.statistic) and 0.0 <= result.pvalue <= 1.0
