"""SlicedWasserstein: equality with POT on the same projections, exact expectations of the
quantile-matching cost (order-statistic integrals), gradients, options.

(The laws shared by every divergence — alternatives above the null, general target equal to the
whitened standard case, bad input, seeding — are in test_common.py.)"""

from __future__ import annotations

import math

import numpy as np
import ot
import pytest
import torch
from scipy import special, stats

from _alternatives import A, draw

from gaussify import Gaussian
from gaussify.regularizers.sliced import SlicedWasserstein, normal_quantiles, wasserstein_to_normal_1d


def projections_of(d: int, k: int, seed: int, z: torch.Tensor) -> torch.Tensor:
    """The (d, k) directions that a fresh module with this seed uses on its first call."""
    return SlicedWasserstein(d, num_slices=k, random_state=seed).random_directions(k, like=z)


def test_quantiles_are_exact_and_cached():
    q = normal_quantiles(7, torch.device("cpu"), torch.float64)
    np.testing.assert_allclose(q.numpy(), stats.norm.ppf((np.arange(1, 8) - 0.5) / 7), rtol=1e-14, atol=1e-15)
    assert normal_quantiles(7, torch.device("cpu"), torch.float64) is q
    assert normal_quantiles(7, torch.device("cpu"), torch.float32).dtype == torch.float32


@pytest.mark.parametrize("p", [1, 2, 3])
def test_each_direction_equals_pot_wasserstein_1d(p):
    """Per direction, our cost is POT's W_p^p between the projected batch and the uniform
    measure on the n normal quantiles; the module's value is their mean over directions."""
    g = torch.Generator().manual_seed(0)
    n, d, k = 90, 4, 16
    z = -torch.log(torch.rand(n, d, generator=g, dtype=torch.float64))  # skewed: Exp(1)
    theta = projections_of(d, k, 7, z)
    proj = z @ theta  # (n, k)
    quantiles = normal_quantiles(n, z.device, z.dtype)[:, None].expand(n, k)
    pot = ot.wasserstein_1d(proj, quantiles, p=p)
    ours = wasserstein_to_normal_1d(proj.T, p)
    torch.testing.assert_close(ours, pot, rtol=1e-10, atol=1e-12)
    value = SlicedWasserstein(d, num_slices=k, p=p, random_state=7).double()(z)
    torch.testing.assert_close(value, pot.mean(), rtol=1e-10, atol=1e-12)


def test_one_dimension_equals_pot_sliced_wasserstein():
    """In d = 1 the directions are ±1 and the quantile set is symmetric, so POT's sliced distance
    to the point cloud of quantiles, raised to the power p, is exactly our value."""
    z = torch.randn(200, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 1.5 + 0.3
    theta = projections_of(1, 8, 3, z)
    target = normal_quantiles(200, z.device, z.dtype)[:, None]
    pot = ot.sliced_wasserstein_distance(z, target, projections=theta, p=2)
    value = SlicedWasserstein(1, num_slices=8, random_state=3).double()(z)
    torch.testing.assert_close(value, pot**2, rtol=1e-10, atol=1e-12)


# Exact expectations. For a sample of n points from F, the i-th order statistic has density
# f_(i)(x) = f(x) F(x)^{i-1} (1 - F(x))^{n-i} / B(i, n - i + 1), so
# E[(1/n) Σ_i (X_(i) - q_i)^2] is a sum of one-dimensional integrals, done on a fine grid.
S = math.sqrt(1 - A * A)
GRID = np.linspace(-9.0, 9.0, 36001)


def _order_statistic_cost(n: int, logpdf, logcdf, logsf) -> float:
    i = np.arange(1, n + 1)[:, None]
    q = special.ndtri((i - 0.5) / n)
    with np.errstate(divide="ignore"):
        log_density = ((i - 1) * logcdf(GRID) + (n - i) * logsf(GRID) - special.betaln(i, n - i + 1)
                       + logpdf(GRID))
    return float(np.trapezoid((GRID - q) ** 2 * np.exp(log_density), GRID, axis=1).mean())


def _normal_cost(n: int, loc: float = 0.0, scale: float = 1.0) -> float:
    law = stats.norm(loc, scale)
    return _order_statistic_cost(n, law.logpdf, law.logcdf, law.logsf)


def _bimodal_cost(n: int) -> float:
    def log_mix(f):
        return lambda x: np.logaddexp(f((x - A) / S), f((x + A) / S)) - math.log(2)
    return _order_statistic_cost(n, lambda x: log_mix(stats.norm.logpdf)(x) - math.log(S),
                                 log_mix(special.log_ndtr), log_mix(lambda y: special.log_ndtr(-y)))


def _uniform_cost(n: int) -> float:
    """Uniform on [-√3, √3]: X_(i) = √3 (2 U_(i) - 1) with U_(i) ~ Beta(i, n - i + 1), closed form."""
    i = np.arange(1, n + 1)
    q = special.ndtri((i - 0.5) / n)
    mean_u, var_u = i / (n + 1), i * (n - i + 1) / ((n + 1) ** 2 * (n + 2))
    return float((12 * var_u + (math.sqrt(3) * (2 * mean_u - 1) - q) ** 2).mean())


EXACT = {
    "target": lambda n: _normal_cost(n),
    "shifted": lambda n: _normal_cost(n, loc=1.0),
    "scaled": lambda n: _normal_cost(n, scale=2.0),
    "uniform": _uniform_cost,
    "bimodal": _bimodal_cost,
}


def test_documented_null_values():
    """The N(0, I) values quoted in the docstring (p = 2)."""
    for n, documented in [(64, 0.0414), (256, 0.01146)]:
        assert math.isclose(_normal_cost(n), documented, rel_tol=2e-3)


@pytest.mark.parametrize("kind", list(EXACT))
def test_mean_cost_matches_order_statistic_integral(kind):
    """Average of the 1-D cost over 3000 independent samples of n = 64 points equals its exact
    expectation within 4 Monte Carlo standard errors (sd estimated from the same 3000 values).
    The alternatives' expectations are far above the null's (0.041): ≥ 0.9 for shift/scale."""
    n, rows = 64, 3000
    values = wasserstein_to_normal_1d(draw(kind, rows, n, torch.Generator().manual_seed(11)))
    exact = EXACT[kind](n)
    se = values.std().item() / math.sqrt(rows)
    assert abs(values.mean().item() - exact) < 4 * se, (kind, values.mean().item(), exact, se)
    if kind != "target":
        assert exact > 1.5 * EXACT["target"](n)


def test_null_level_of_the_module_in_several_dimensions():
    """On N(0, I_6) batches every projection is exactly N(0, 1), so the module's mean over 80
    batches equals the 1-D expectation (unit directions, sorting per direction)."""
    n, d, reps = 128, 6, 80
    reg = SlicedWasserstein(d, num_slices=64, random_state=0).double()
    g = torch.Generator().manual_seed(5)
    values = torch.stack([reg(torch.randn(n, d, generator=g, dtype=torch.float64)) for _ in range(reps)])
    se = values.std().item() / math.sqrt(reps)
    assert abs(values.mean().item() - _normal_cost(n)) < 4 * se


@pytest.mark.parametrize("p", [2.0, 1.5])
def test_gradcheck_float64(p):
    z = torch.randn(20, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: SlicedWasserstein(2, num_slices=5, p=p, random_state=4).double()(x), (z,))


def test_general_target_gradient_flows_through_whitening():
    mean = torch.tensor([1.0, -1.0], dtype=torch.float64)
    cov = torch.tensor([[2.0, 0.6], [0.6, 1.0]], dtype=torch.float64)
    z = torch.randn(25, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: SlicedWasserstein(Gaussian(mean, cov), num_slices=4, random_state=1)
                                    .double()(x), (z,))


def test_split_scores_shape_centre_and_scale_apart():
    # x = θᵀw per slice: W₂²((x − m)/sg(s), N(0, 1)) + m² + (s − 1)², with the scale's gradient only in its own term
    g = torch.randn(400, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    z = (2.0 * g + 0.5).requires_grad_(True)
    reg = SlicedWasserstein(3, num_slices=8, split=True, random_state=6).double()
    theta = projections_of(3, 8, 6, z.double())
    value = reg(z)
    x = theta.T @ z.T
    m, sd = x.mean(1), x.std(1)
    expected = (wasserstein_to_normal_1d((x - m[:, None]) / sd.detach()[:, None]) + m**2 + (sd - 1) ** 2).mean()
    assert value.item() == pytest.approx(expected.item(), rel=1e-12)
    grad, = torch.autograd.grad(value, z)
    expected_grad, = torch.autograd.grad(expected, z)
    assert torch.allclose(grad, expected_grad, rtol=1e-10, atol=1e-12)
    # a spread-out Gaussian: the shape term is at its null level, the centre and scale terms carry the error
    shape = wasserstein_to_normal_1d((x - m[:, None]) / sd[:, None]).mean().item()
    assert shape < 0.02 and value.item() - shape == pytest.approx(((m**2) + (sd - 1) ** 2).mean().item(), rel=1e-9)
    assert 0.9 < ((sd - 1) ** 2).mean().item() < 1.1  # sd ≈ 2 in every direction


@pytest.mark.parametrize("kwargs", [{"num_slices": 0}, {"num_slices": 2.5}, {"p": 0.5},
                                    {"p": float("inf")}, {"split": 1}])
def test_bad_options(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        SlicedWasserstein(3, **kwargs)
