"""SIGReg: the Epps–Pulley integral against scipy quad and the closed form, exact expectations
under the null and under alternatives (characteristic functions), jepa-science's value, gradients.

(The laws shared by every divergence — alternatives above the null, general target equal to the
whitened standard case, bad input, seeding — are in test_common.py.)"""

from __future__ import annotations

import math

import jepa_science
import numpy as np
import pytest
import torch
from scipy import integrate

from _alternatives import A, draw

from gaussify import make_regularizer
from gaussify.regularizers.sigreg import SIGReg, epps_pulley_1d, epps_pulley_null_mean, epps_pulley_quadrature

X = np.random.default_rng(0).standard_t(df=4, size=60) * 0.8 + 0.2  # fixed non-Gaussian data


def ep_integrand(t: float, x: np.ndarray) -> float:
    """n |φ̂_n(t) − e^{−t²/2}|² e^{−t²/2}, straight from the definition."""
    ecf = np.exp(1j * t * x).mean()
    return len(x) * abs(ecf - math.exp(-t * t / 2)) ** 2 * math.exp(-t * t / 2)


def test_statistic_equals_quad_integral():
    """With a fine grid the trapezoid rule converges to the integral over [−t_max, t_max]
    (error ≈ h²/12 · ∫|f''| ≈ 1e-7 relative for h = 1e-3)."""
    exact, _ = integrate.quad(ep_integrand, -2.5, 2.5, args=(X,), epsabs=1e-12, epsrel=1e-12, limit=200)
    ours = epps_pulley_1d(torch.from_numpy(X)[None], t_max=2.5, knots=2501)
    assert math.isclose(ours.item(), exact, rel_tol=1e-6)


@pytest.mark.parametrize("t_max,knots", [(3.0, 17), (2.0, 2), (4.0, 10), (3.0, 26)])
def test_statistic_equals_trapezoid_rule_on_the_knots(t_max, knots):
    """At coarse grids too, it is exactly the trapezoid rule of the definition (this checks the
    angle-addition evaluation for knot counts that do and do not fill the A × B grid)."""
    t = np.linspace(-t_max, t_max, 2 * knots - 1)
    expected = np.trapezoid([ep_integrand(s, X) for s in t], t)
    ours = epps_pulley_1d(torch.from_numpy(X)[None], t_max=t_max, knots=knots)
    assert math.isclose(ours.item(), expected, rel_tol=1e-12)


def test_statistic_equals_closed_form_on_the_whole_line():
    """Over the whole line (t_max = 12, tail < e^{−72}) with a Gaussian window the statistic has the
    closed form n[√(2π)/n² ΣΣ e^{−(x_j−x_l)²/2} − (2√π/n) Σ e^{−x_j²/4} + √(2π/3)]."""
    n = len(X)
    diff = X[:, None] - X[None, :]
    closed = n * (math.sqrt(2 * math.pi) * np.exp(-diff**2 / 2).sum() / n**2
                  - 2 * math.sqrt(math.pi) * np.exp(-X**2 / 4).mean() + math.sqrt(2 * math.pi / 3))
    ours = epps_pulley_1d(torch.from_numpy(X)[None], t_max=12.0, knots=401)
    assert math.isclose(ours.item(), closed, rel_tol=1e-9)


def test_null_mean_formula():
    assert math.isclose(epps_pulley_null_mean(12.0, 401), math.sqrt(2 * math.pi) - math.sqrt(2 * math.pi / 3),
                        rel_tol=1e-12)
    t, c = epps_pulley_quadrature(3.0, 17)
    assert math.isclose(epps_pulley_null_mean(), float((c * (1 - torch.exp(-t * t))).sum()), rel_tol=1e-14)
    assert math.isclose(SIGReg(4).null_mean, 1.05246, rel_tol=1e-5)  # the value in the docstring


def test_module_averages_to_null_mean_on_target_samples():
    """Every slice of N(0, I_6) is exactly N(0, 1), so E[SIGReg] = Σ c_m (1 − e^{−t_m²}) for any n.
    The mean over 60 batches must be within 4 standard errors (sd from the same 60 values)."""
    reg = SIGReg(6, num_slices=64, random_state=0)
    g = torch.Generator().manual_seed(1)
    values = torch.stack([reg(torch.randn(150, 6, generator=g)) for _ in range(60)]).double()
    se = values.std().item() / math.sqrt(len(values))
    assert abs(values.mean().item() - reg.null_mean) < 4 * se


CF = {  # characteristic functions of the 1-D alternatives (all unit-variance except "scaled")
    "target": lambda t: np.exp(-t * t / 2),
    "shifted": lambda t: np.exp(1j * t - t * t / 2),
    "scaled": lambda t: np.exp(-2 * t * t),
    "uniform": lambda t: np.sinc(math.sqrt(3) * t / math.pi),
    "bimodal": lambda t: np.cos(A * t) * np.exp(-(1 - A * A) * t * t / 2),
}


@pytest.mark.parametrize("kind", list(CF))
def test_expected_statistic_matches_characteristic_function(kind):
    """For i.i.d. data with CF φ_X, E|φ̂_n − φ|² = |φ_X − φ|² + (1 − |φ_X|²)/n, hence
    E[EP] = Σ c_m [n |φ_X(t_m) − φ(t_m)|² + 1 − |φ_X(t_m)|²]. Mean over 3000 samples of n = 100
    within 4 standard errors; the alternatives lie far above the null level."""
    n, rows = 100, 3000
    t, c = (v.numpy() for v in epps_pulley_quadrature())
    phi_x = CF[kind](t)
    exact = float((c * (n * np.abs(phi_x - np.exp(-t * t / 2)) ** 2 + 1 - np.abs(phi_x) ** 2)).sum())
    values = epps_pulley_1d(draw(kind, rows, n, torch.Generator().manual_seed(3)))
    se = values.std().item() / math.sqrt(rows)
    assert abs(values.mean().item() - exact) < 4 * se, (kind, values.mean().item(), exact, se)
    if kind != "target":
        assert exact > 2 * epps_pulley_null_mean()


@pytest.mark.parametrize("t_max,knots", [(3.0, 17), (5.0, 17), (2.0, 9)])
def test_equals_jepa_science(t_max, knots):
    """jepa-science folds the same integrand onto [0, t_max] with the same knots and no extra
    factor. In d = 1 every slice is ±z and EP is invariant to the sign (φ is real), so the value
    does not depend on which directions either library draws: the constant factor is 1."""
    z = torch.randn(300, 1, generator=torch.Generator().manual_seed(4), dtype=torch.float64) * 1.3 + 0.2
    peer = jepa_science.sigreg_loss(z, num_slices=8, n_knots=knots, t_max=t_max)
    ours = SIGReg(1, num_slices=8, knots=knots, t_max=t_max, random_state=0).double()(z)
    torch.testing.assert_close(ours, peer, rtol=1e-10, atol=0.0)


@pytest.mark.parametrize("knots", [17, 2, 10])
def test_gradcheck_float64(knots):
    z = torch.randn(20, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: SIGReg(2, num_slices=5, knots=knots, random_state=4).double()(x), (z,))


def test_float32_matches_float64():
    z = torch.randn(2000, 8, generator=torch.Generator().manual_seed(6)) * 1.2 + 0.1
    v32 = SIGReg(8, random_state=1)(z)
    v64 = SIGReg(8, random_state=1).double()(z.double())
    assert math.isclose(v32.item(), v64.item(), rel_tol=1e-4)


def _gradient_scale(batch: int, **kwargs) -> float:
    """√B ‖∇_z SIGReg‖ = B × (norm of the gradient) / √B on B rows of 1.5 · N(0, I_16) (every slice is
    N(0, 2.25), a fixed distance from the target): constant when each row's gradient is O(1/B), as a
    batch-mean task loss's is."""
    z = 1.5 * torch.randn(batch, 16, generator=torch.Generator().manual_seed(1))
    z.requires_grad_(True)
    (grad,) = torch.autograd.grad(make_regularizer("sigreg", 16, random_state=0, **kwargs)(z), z)
    return math.sqrt(batch) * grad.norm().item()


def test_mean_scale_makes_the_weight_batch_size_invariant():
    """scale="mean": the per-row gradient scales like a batch-mean loss's from B = 128 to 4096 (within 25%;
    measured 4.8%); the default "sum" (n × the integral) grows like B (measured 30.7× over the 32× in B)."""
    batches = (128, 512, 4096)
    mean = [_gradient_scale(b, scale="mean") for b in batches]
    assert max(mean) / min(mean) < 1.25
    total = [_gradient_scale(b) for b in batches]
    assert total[-1] / total[0] > 16
    z = torch.randn(300, 4, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(SIGReg(4, scale="mean", random_state=3)(z), SIGReg(4, random_state=3)(z) / 300)


@pytest.mark.parametrize("kwargs", [{"num_slices": 0}, {"knots": 1}, {"knots": 3.0}, {"t_max": 0.0},
                                    {"t_max": float("nan")}, {"scale": "batch"}])
def test_bad_options(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        SIGReg(3, **kwargs)
