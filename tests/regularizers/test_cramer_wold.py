"""Cramér–Wold distance: φ_D against scipy, the 1-D quadrature and sliced Monte Carlo definitions,
the null expectation, alternatives, gradients and option checking."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special as sp
import torch

from gaussify import CramerWold, Gaussian
from gaussify.regularizers.cramer_wold import ASYMPTOTIC_FROM_DIM, cw_phi, cw_phi_and_slope

F64 = torch.float64
# 0, tiny, both sides of the series/recurrence switch at s = 3, and far into the tail
S_GRID = np.concatenate([[0.0, 1e-12, 1e-6, 2.999999, 3.0, 3.000001], np.geomspace(1e-4, 1e4, 800)])


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def exact_phi(s: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """scipy's ₁F₁(1/2; D/2; −s) and its derivative −(1/D) ₁F₁(3/2; D/2 + 1; −s)."""
    return sp.hyp1f1(0.5, dim / 2, -s), -sp.hyp1f1(1.5, dim / 2 + 1, -s) / dim


@pytest.mark.parametrize("dim", range(1, ASYMPTOTIC_FROM_DIM))
def test_exact_phi_matches_scipy(dim):
    """Relative 1e-12 for the value; 1e-9 for the slope, which is formed as ((D−1)/D) φ_{D+2} − φ_D
    and loses about log10(s) digits to cancellation in the tail (s ≤ 1e4 here)."""
    s = S_GRID[S_GRID < 700] if dim == 1 else S_GRID  # e^{−s} underflows beyond
    value, slope = cw_phi_and_slope(torch.tensor(s), dim)
    ref_value, ref_slope = exact_phi(s, dim)
    np.testing.assert_allclose(value.numpy(), ref_value, rtol=1e-12, atol=0)
    np.testing.assert_allclose(slope.numpy(), ref_slope, rtol=1e-9, atol=0)


@pytest.mark.parametrize("dim", [20, 21, 32, 64, 256, 512])
def test_asymptotic_phi_error_is_as_documented(dim):
    """From D = 20: relative error below 0.22/D for the value and at most 1.5/(D − 3/2) for the
    slope (docstring), and above a tenth of those, so this really is the approximation."""
    s = np.concatenate([S_GRID, np.geomspace(1e4, 1e6, 50)])
    value, slope = cw_phi_and_slope(torch.tensor(s), dim)
    ref_value, ref_slope = exact_phi(s, dim)
    value_err = np.max(np.abs(value.numpy() - ref_value) / ref_value)
    slope_err = np.max(np.abs(slope.numpy() - ref_slope) / np.abs(ref_slope))
    slope_bound = 1.5 / (dim - 1.5)
    assert 0.022 / dim < value_err < 0.22 / dim
    assert 0.1 * slope_bound < slope_err < slope_bound * (1 + 1e-9)


@pytest.mark.parametrize("dim", [1, 2, 3, 6, 13, 25])
def test_phi_autograd_and_float32(dim):
    # s > 0: gradcheck's central differences step below 0, outside the domain (φ₂ uses |s|);
    # the slope at 0 is checked against scipy above
    s = torch.tensor([1e-3, 0.4, 2.9, 3.1, 7.0, 40.0, 900.0], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: cw_phi(t, dim), (s,))
    single = cw_phi(s.detach().float(), dim)
    assert single.dtype == torch.float32
    torch.testing.assert_close(single.double(), cw_phi(s.detach(), dim), rtol=1e-6, atol=1e-7)


def test_one_dimensional_value_is_l2_distance_of_smoothed_densities():
    """In D = 1 the distance is ∫ (KDE_γ(t) − N(t; 0, 1+γ))² dt: a trapezoid rule with step 1e-4 on
    [−15, 15] (the Gaussian sums are analytic and negligible beyond, so its error is far below
    1e-10) must match the closed form."""
    x = torch.cat([torch.randn(25, 1, generator=gen(0), dtype=F64) * 0.7 - 0.5,
                   torch.rand(15, 1, generator=gen(1), dtype=F64) * 3.0])
    reg = CramerWold(1).double()
    gamma = reg.smoothing(len(x))
    t = np.linspace(-15.0, 15.0, 300_001)
    a = x.numpy()[:, 0]
    kde = np.exp(-((t[None] - a[:, None]) ** 2) / (2 * gamma)).sum(0) / (len(a) * math.sqrt(2 * math.pi * gamma))
    target = np.exp(-(t**2) / (2 * (1 + gamma))) / math.sqrt(2 * math.pi * (1 + gamma))
    quadrature = np.trapezoid((kde - target) ** 2, t)
    assert reg(x).item() == pytest.approx(quadrature, rel=1e-10)


def sliced_monte_carlo(x: torch.Tensor, gamma: float, num: int, seed: int) -> tuple[float, float]:
    """Average over ``num`` random unit directions v of the exact 1-D smoothed L2 distance of the
    projections vᵀx_i (the D = 1 formula, φ₁(s) = e^{−s}); returns (mean, standard error)."""
    v = torch.randn(x.shape[1], num, generator=gen(seed), dtype=F64)
    p = x @ (v / v.norm(dim=0))  # (n, num)
    n = x.shape[0]
    pairs = torch.exp(-((p[:, None, :] - p[None, :, :]) ** 2) / (4 * gamma)).sum((0, 1))
    radial = torch.exp(-(p**2) / (2 + 4 * gamma)).sum(0)
    per_direction = (pairs / (2 * n * n * math.sqrt(math.pi * gamma))
                     + 1 / (2 * math.sqrt(math.pi * (1 + gamma)))
                     - radial / (n * math.sqrt(math.pi * (gamma + 0.5))))
    return per_direction.mean().item(), per_direction.std().item() / math.sqrt(num)


@pytest.mark.parametrize("dim", [2, 3, 6, 24])
def test_closed_form_equals_average_over_directions(dim):
    """The Cramér–Wold distance is the mean over directions of the 1-D smoothed L2 distance:
    20000 directions must agree within 4 Monte Carlo standard errors. From D = 20 the
    asymptotic φ_D adds at most max_s |Δφ_D(s)| (1/(2√(πγ)) + 1/√(π(γ + 1/2))) to the gap."""
    x = torch.randn(30, dim, generator=gen(dim), dtype=F64) * 1.2 + 0.3
    x[:10] *= 0.4  # a non-Gaussian mixture
    reg = CramerWold(dim).double()
    gamma = reg.smoothing(len(x))
    mc, se = sliced_monte_carlo(x, gamma, 20_000, seed=dim)
    bound = 0.0
    if dim >= ASYMPTOTIC_FROM_DIM:
        s = np.concatenate([[0.0], np.geomspace(1e-4, 1e5, 2000)])
        gap = np.max(np.abs(cw_phi(torch.tensor(s), dim).numpy() - exact_phi(s, dim)[0]))
        bound = gap * (1 / (2 * math.sqrt(math.pi * gamma)) + 1 / math.sqrt(math.pi * (gamma + 0.5)))
    assert abs(reg(x).item() - mc) < 4 * se + bound, (reg(x).item(), mc, se, bound)


@pytest.mark.parametrize("dim", [2, 5])
def test_null_mean_is_the_integrated_variance(dim):
    """On N(0, I) batches the smoothed sample density is unbiased for the smoothed target, so
    E d²_cw = (1/n)(1/(2√(πγ)) − 1/(2√(π(1+γ)))) exactly (exact φ_D below D = 20). 300 batches of
    n = 50: the mean is within 4 standard errors of it."""
    n = 50
    reg = CramerWold(dim).double()
    gamma = reg.smoothing(n)
    expected = (1 / (2 * math.sqrt(math.pi * gamma)) - 1 / (2 * math.sqrt(math.pi * (1 + gamma)))) / n
    values = torch.stack([reg(torch.randn(n, dim, generator=gen(s), dtype=F64)) for s in range(300)])
    se = values.std().item() / math.sqrt(len(values))
    assert abs(values.mean().item() - expected) < 4 * se, (values.mean(), expected, se)
    assert bool((values >= 0).all())  # a squared L2 distance


def _batch(kind: str, n: int, d: int, seed: int) -> torch.Tensor:
    g = gen(seed)
    z = torch.randn(n, d, generator=g, dtype=F64)
    if kind == "shifted":
        return z + 0.5
    if kind == "scaled":
        return 1.5 * z
    if kind == "uniform":  # zero mean, unit variance
        return (torch.rand(n, d, generator=g, dtype=F64) - 0.5) * math.sqrt(12.0)
    if kind == "bimodal":  # ±0.9 along every axis, unit variance
        sign = torch.where(torch.rand(n, 1, generator=g, dtype=F64) < 0.5, -1.0, 1.0)
        return 0.9 * sign + math.sqrt(1 - 0.81) * z
    return z


ALTERNATIVES = [(dim, kind) for dim in (3, 24) for kind in ("shifted", "scaled", "uniform", "bimodal")
                if (dim, kind) != (24, "uniform")]


@pytest.mark.parametrize("dim,kind", ALTERNATIVES)
def test_alternatives_score_higher(dim, kind):
    """Mean of 3 alternative batches (n = 1000) above the null mean + 4 null sd (12 null
    batches; a null batch passes that bar with probability about 1e-3), for the exact (D = 3)
    and the asymptotic (D = 24) φ_D. Measured margins: 119-2700 sd for shift, scaling and
    bimodality; the whitened uniform (right mean and covariance) 23 sd at D = 3, 5.5 at D = 8 and
    only 2.5 at D = 24, a case left out: projections of a 24-D cube are already nearly normal."""
@pytest.mark.parametrize("dim", [1, 2, 5, 25])
def test_gradcheck_float64(dim):
    """Against a full-covariance target; D = 5 with γ = 0.5 puts pairs on both sides of the
    series/recurrence switch (s = ‖Δ‖²/2 from 0 to ≈ 20)."""
    a = torch.randn(dim, dim, generator=gen(dim), dtype=F64)
    target = Gaussian(torch.linspace(-1, 1, dim, dtype=F64), a @ a.T + dim * torch.eye(dim, dtype=F64))
    z = (torch.randn(7, dim, generator=gen(10 + dim), dtype=F64) * 2).requires_grad_(True)
    reg = CramerWold(target, gamma=0.5 if dim == 5 else None).double()
    assert torch.autograd.gradcheck(reg, (z,))


def test_silverman_default_and_fixed_gamma():
    assert CramerWold(3).smoothing(300) == pytest.approx((4 / 900) ** 0.4)
    assert CramerWold(3, gamma=0.2).smoothing(300) == 0.2
    z = torch.randn(64, 3, generator=gen(0))
    assert CramerWold(3, gamma=0.05)(z) > CramerWold(3, gamma=1.0)(z)  # sharper smoothing, larger gap


@pytest.mark.parametrize(
    "gamma,exc,match",
    [(0.0, ValueError, "gamma must be a finite number > 0"), (-1.0, ValueError, "gamma must be a finite number > 0"),
     (float("nan"), ValueError, "gamma must be a finite number > 0"), ("0.1", TypeError, "number"),
     (True, TypeError, "number")],
)
def test_bad_gamma(gamma, exc, match):
    with pytest.raises(exc, match=match):
        CramerWold(3, gamma=gamma)


def test_phi_rejects_bad_dimension():
    with pytest.raises(ValueError, match="positive integer"):
        cw_phi(torch.ones(3), 0)
