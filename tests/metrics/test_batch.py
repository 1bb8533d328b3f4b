"""batch_pvalue: the regularizers' sliced statistics, calibrated by simulation at the batch's size."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from gaussify import Gaussian
from gaussify.metrics import batch_pvalue
from gaussify.metrics import batch as bt
from gaussify.regularizers import SIGReg, SlicedWasserstein


def test_the_statistic_is_the_regularizers_value(monkeypatch):
    z = torch.randn(100, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    theta = torch.from_numpy(bt._unit_directions(np.random.default_rng(1), (5, 32))).double()
    for name, reg in (("sigreg", SIGReg(5, num_slices=32)), ("swd", SlicedWasserstein(5, num_slices=32))):
        monkeypatch.setattr(reg, "random_directions", lambda num, like: theta)
        assert float(bt._sliced_means(z[None], theta[None], name)[0]) == pytest.approx(float(reg(z)), rel=1e-12)


@pytest.mark.parametrize("statistic", bt.BATCH_STATISTICS)
def test_pvalues_are_uniform_under_the_null(statistic):
    # The p-values of 1000 N(0, I) batches share one simulated null of n_sim values, so their ECDF is compared
    # with the null's own (two-sample KS): p = (1 + #{T_sim >= T})/(n_sim + 1) orders the batches against the
    # grid (1.5 + j)/(n_sim + 1), j < n_sim, exactly as T orders them against the simulated statistics.
    rng = np.random.default_rng(13)
    n_sim, grid = 1000, (1.5 + np.arange(1000)) / 1001
    for n in (64, 256, 1024):
        pvalues = [batch_pvalue(torch.from_numpy(rng.standard_normal((n, 8), dtype=np.float32)), statistic,
                                num_slices=16, n_sim=n_sim, random_state=rng) for _ in range(1000)]
        assert stats.ks_2samp(pvalues, grid).pvalue > 0.01, n


def test_power_against_a_whitened_uniform_cube():
    # Mean 0, covariance I. Random slices of it in d = 8 are close to normal, so sigreg alone needs n ≈ 2048 for
    # power 0.99 (0.1-0.2 at n = 256, at any num_slices); its radii are far from chi²_8 (variance 6.4, not 16),
    # so the default combination rejects it at n = 256. 50 batches: sd ≤ 0.045 near 0.9.
    rng = np.random.default_rng(5)

    def power(statistic, n, **kwargs):
        return np.mean([batch_pvalue(rng.uniform(-math.sqrt(3), math.sqrt(3), (n, 8)), statistic, n_sim=200,
                                     random_state=rng, **kwargs) <= 0.05 for _ in range(50)])

    assert power("sigreg+radius", 256) >= 0.9
    assert power("sigreg", 256) <= 0.4
    assert power("sigreg", 2048, num_slices=64) >= 0.9


def test_the_combination_sees_what_the_radius_misses():
    # Radius law exact (chi²_2), directions clumped around ±e₁: the slices reject, the radius cannot.
    rng = np.random.default_rng(8)

    def batch():
        r = np.sqrt(rng.chisquare(2, 256))
        angle = rng.integers(0, 2, 256) * np.pi + rng.normal(0, 0.15, 256)
        return np.c_[r * np.cos(angle), r * np.sin(angle)]

    pvalues = {name: np.mean([batch_pvalue(batch(), name, n_sim=200, random_state=rng) <= 0.05 for _ in range(30)])
               for name in ("radius", "sigreg+radius")}
    assert pvalues["radius"] <= 0.2 and pvalues["sigreg+radius"] >= 0.9


def test_a_misplaced_batch_gets_the_smallest_pvalue_and_a_target_moves_it_back():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((200, 3))
    mean, cov = np.array([1.0, -2.0, 0.5]), np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 0.5]])
    Z = mean + X @ np.linalg.cholesky(cov).T
    for statistic in ("sigreg", "swd"):
        kwargs = {"statistic": statistic, "n_sim": 100, "random_state": 3}
        assert batch_pvalue(Z, **kwargs) == 1 / 101
        assert batch_pvalue(Z, target=(mean, cov), **kwargs) == batch_pvalue(X, **kwargs)
        assert batch_pvalue(Z, target=Gaussian(mean, cov), **kwargs) == batch_pvalue(X, **kwargs)


def test_tensors_and_arrays_agree_and_a_seed_reproduces():
    X = np.random.default_rng(4).standard_normal((50, 4))
    p = batch_pvalue(X, n_sim=100, random_state=7)
    assert isinstance(p, float) and 0 < p <= 1
    assert batch_pvalue(torch.from_numpy(X), n_sim=100, random_state=7) == p
    assert batch_pvalue(X.tolist(), n_sim=100, random_state=7) == p
    assert batch_pvalue(torch.from_numpy(X).float().requires_grad_(), n_sim=100, random_state=7) == pytest.approx(
        p, abs=0.02)


def test_the_null_is_simulated_once_then_read_from_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("GAUSSIFY_CACHE_DIR", str(tmp_path))
    calls = []
    simulate = bt._simulate_batch_null
    monkeypatch.setattr(bt, "_simulate_batch_null", lambda *args: calls.append(args) or simulate(*args))
    z = torch.randn(40, 3)
    bt._batch_null.cache_clear()
    first = batch_pvalue(z, "swd", n_sim=60, random_state=0)
    bt._batch_null.cache_clear()  # a new process
    assert batch_pvalue(z, "swd", n_sim=60, random_state=0) == first and len(calls) == 1
    assert len(list((tmp_path / "monte-carlo").glob("batch-swd-n40-d3-*.npy"))) == 1
    batch_pvalue(z, "swd", num_slices=10, n_sim=60)
    assert len(calls) == 2


@pytest.mark.parametrize("z, kwargs, error, match", [
    (np.full((10, 2), np.nan), {}, ValueError, "NaN or Inf"),
    (torch.tensor([[0.0, 1.0], [math.inf, 0.0], [1.0, 1.0]]), {}, ValueError, "NaN or Inf"),
    (torch.ones(1, 3), {}, ValueError, "at least 2 rows"),
    (np.ones((1, 3)), {}, ValueError, "at least 2 rows"),
    (torch.ones(2, 3, 4), {}, ValueError, r"shape \(n, d\)"),
    (np.array([["a", "b"], ["c", "d"]]), {}, TypeError, "numeric"),
    (torch.ones(5, 2, dtype=torch.complex64), {}, TypeError, "real-valued"),
    (np.ones((5, 2)), {"statistic": "mmd"}, ValueError, "statistic must be one of"),
    (np.ones((5, 2)), {"num_slices": 0}, ValueError, "num_slices"),
    (np.ones((5, 2)), {"n_sim": 2.5}, ValueError, "n_sim"),
    (np.ones((5, 2)), {"target": 3}, ValueError, "dimension"),
])
def test_bad_input_gets_one_clear_error(z, kwargs, error, match):
    with pytest.raises(error, match=match):
        batch_pvalue(z, **kwargs)
