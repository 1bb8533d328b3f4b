"""MomentMatching: the literal formula, its expectation at the target, what two moments cannot see."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gaussify import Gaussian, MomentMatching
from gaussify.regularizers.moments import third_moment_norm_sq

F64 = torch.float64


def random_target(d: int, seed: int) -> Gaussian:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=F64)
    return Gaussian(torch.randn(d, generator=g, dtype=F64), a @ a.T / d + 0.5 * torch.eye(d, dtype=F64))


def numpy_penalty(z, mu, sigma, alpha, gamma, skew, kurtosis):
    """Literal transcription of the documented formula."""
    n, d = z.shape
    zbar = z.mean(0)
    cov = np.cov(z, rowvar=False, ddof=1).reshape(d, d)
    value = alpha * np.sum((mu - zbar) ** 2) + gamma * np.sum((sigma - cov) ** 2)
    w = np.linalg.solve(np.linalg.cholesky(sigma), (z - zbar).T).T
    t = np.einsum("ia,ib,ic->abc", w, w, w) / n
    b2 = np.mean(np.sum(w**2, axis=1) ** 2)
    c = ((n - 1) / n) ** 2 * d * (d + 2)
    return value + skew * np.sum(t**2) + kurtosis * (b2 - c) ** 2 / (8 * d * (d + 2))


@pytest.mark.parametrize("n,d", [(7, 3), (9, 3), (40, 3), (300, 5)])  # Gram route (n <= d²) and tensor route
def test_value_is_the_literal_formula(n, d):
    target = random_target(d, seed=n)
    g = torch.Generator().manual_seed(d)
    z = torch.randn(n, d, generator=g, dtype=F64).exp()  # skewed, heavy-ish tails: every term is non-zero
    weights = dict(alpha=0.7, gamma=1.3, skew=0.5, kurtosis=2.0)
    value = MomentMatching(target, **weights)(z)
    expected = numpy_penalty(z.numpy(), target.mean.numpy(), target.cov.numpy(), **weights)
    assert value.item() == pytest.approx(expected, rel=1e-10)


def test_default_is_the_seed_formula_with_unbiased_covariance():
    target = random_target(4, seed=1)
    z = torch.randn(25, 4, generator=torch.Generator().manual_seed(0), dtype=F64)
    seed_formula = (target.mean - z.mean(0)).square().sum() + (target.cov - torch.cov(z.T)).square().sum()
    torch.testing.assert_close(MomentMatching(target)(z), seed_formula)


def test_third_moment_routes_agree_when_blocked(monkeypatch):
    # tiny blocks force many checkpointed blocks on both routes; the value and gradient must not change
    import gaussify.regularizers.moments as moments

    g = torch.Generator().manual_seed(3)
    for n, d in [(30, 6), (50, 3)]:
        w = torch.randn(n, d, generator=g, dtype=F64, requires_grad=True)
        full = third_moment_norm_sq(w)
        (grad_full,) = torch.autograd.grad(full, w)
        monkeypatch.setattr(moments, "_BLOCK_ELEMENTS", 7)
        blocked = third_moment_norm_sq(w)
        (grad_blocked,) = torch.autograd.grad(blocked, w)
        monkeypatch.undo()
        torch.testing.assert_close(blocked, full)
        torch.testing.assert_close(grad_blocked, grad_full)


def test_expected_value_at_the_target_monte_carlo():
    # E‖mu − mean‖² = tr Sigma / n and E‖Sigma − cov‖²_F = (tr(Sigma²) + (tr Sigma)²)/(n − 1) for
    # Gaussian data (Var cov_ab = (Sigma_aa Sigma_bb + Sigma_ab²)/(n − 1)). The Monte Carlo mean over R batches
    # must agree within 4 of its own standard errors.
    target, n, reps = random_target(3, seed=2), 20, 3000
    reg = MomentMatching(target)
    g = torch.Generator().manual_seed(1)
    values = torch.stack([reg(target.sample(n, generator=g)) for _ in range(reps)])
    tr, tr2 = torch.trace(target.cov), torch.trace(target.cov @ target.cov)
    expected = tr / n + (tr2 + tr**2) / (n - 1)
    se = values.std() / math.sqrt(reps)
    assert abs(values.mean() - expected) < 4 * se


def test_higher_moment_null_values_monte_carlo():
    # To leading order n‖T‖² / 6 ~ chi²(d(d+1)(d+2)/6) (Mardia 1970) and n κ / (d + 3) ~ chi²(1)
    # (Var ‖w‖⁴ = 8 d(d+2)(d+3) for w ~ N(0, I)); the Monte Carlo means must agree within 4 standard
    # errors plus 3/n relative for the O(1/n) terms the asymptotics leave out.
    d, n, reps = 2, 400, 1000
    target = random_target(d, seed=4)
    skew_reg, kurt_reg = (MomentMatching(target, alpha=0, gamma=0, **w) for w in ({"skew": 1}, {"kurtosis": 1}))
    g = torch.Generator().manual_seed(2)
    batches = [target.sample(n, generator=g) for _ in range(reps)]
    for reg, expected in ((skew_reg, d * (d + 1) * (d + 2) / n), (kurt_reg, (d + 3) / n)):
        values = torch.stack([reg(z) for z in batches])
        se = values.std() / math.sqrt(reps)
        assert abs(values.mean() - expected) < 4 * se + 3 * expected / n


def test_near_null_on_large_standard_normal_and_larger_elsewhere():
    d, n = 4, 50_000
    g = torch.Generator().manual_seed(5)
    reg = MomentMatching(d, skew=1.0, kurtosis=1.0)
    # expected at the target: d/n + (d + d²)/(n−1) + d(d+1)(d+2)/n + (d+3)/n ≈ 0.0042; each term is a
    # scaled chi-square with >= d degrees of freedom (or 1 for kurtosis), so 5x the mean is far in the tail
    null = (d + d * d) / (n - 1) + d / n + d * (d + 1) * (d + 2) / n + (d + 3) / n
    z = torch.randn(n, d, generator=g)
    assert reg(z).item() < 5 * null
    uniform = (torch.rand(n, d, generator=g) * 2 - 1) * math.sqrt(3)
    bimodal = torch.randn(n, d, generator=g) * 0.3 + torch.sign(torch.randn(n, 1, generator=g))
    for other in (z + 0.2, z * 1.2, uniform, bimodal):
        assert reg(other).item() > 20 * null


def test_whitened_uniform_cube_fools_two_moments_but_not_kurtosis():
    # A cube with the target's mean and covariance, z = mu + L u, u uniform on [−√3, √3]^d.
    d, n = 3, 100_000
    target = random_target(d, seed=6)
    u = (torch.rand(n, d, generator=torch.Generator().manual_seed(7), dtype=F64) * 2 - 1) * math.sqrt(3)
    z = target.mean + u @ target.chol.T
    two = MomentMatching(target)(z).item()
    kurt = MomentMatching(target, alpha=0, gamma=0, kurtosis=1)(z).item()
    # two-moment terms: O(d² tr(Sigma)²/n) sampling noise only
    assert two < 0.01
    # E‖u‖⁴ = d (9/5) + d(d−1) = d(d + 0.8), so kappa -> (1.2 d)² / (8 d(d+2)) = 0.108 for d = 3;
    # tolerance: 5 delta-method standard errors of b2 (sd of ‖u‖⁴ / sqrt n)
    b2_limit, c = d * (d + 0.8), d * (d + 2)
    analytic = (b2_limit - c) ** 2 / (8 * c)
    se = 2 * abs(b2_limit - c) / (8 * c) * u.square().sum(1).square().std().item() / math.sqrt(n)
    assert analytic == pytest.approx(0.108)
    assert abs(kurt - analytic) < 5 * se
    assert kurt > 50 * two


def test_skew_term_on_standardised_exponential():
    # iid standardised Exp(1) coordinates: third moment tensor is 2 on the diagonal a=b=c, 0 elsewhere,
    # so ‖T‖² -> 4d. The sample third central moment has sd sqrt(216 / n) (mu6 − 6 mu4 mu2 + 9 mu2³ − mu3²
    # = 265 − 54 + 9 − 4), so ‖T‖² has delta-method sd 2 ‖T‖ sqrt(216/n); 5 of them as tolerance.
    d, n = 2, 200_000
    z = torch.empty(n, d, dtype=F64).exponential_(generator=torch.Generator().manual_seed(8)) - 1
    value = MomentMatching(d, alpha=0, gamma=0, skew=1)(z).item()
    se = 2 * math.sqrt(4 * d) * math.sqrt(216 / n)
    assert abs(value - 4 * d) < 5 * se


@pytest.mark.parametrize("n,d", [(6, 3), (12, 2)])  # Gram route, tensor route
def test_gradcheck_float64(n, d):
    target = random_target(d, seed=9)
    z = torch.randn(n, d, generator=torch.Generator().manual_seed(n), dtype=F64, requires_grad=True)
    reg = MomentMatching(target, alpha=0.5, gamma=2.0, skew=1.5, kurtosis=0.7)
    assert torch.autograd.gradcheck(reg, (z,))


def test_optimising_a_cube_with_higher_moments_fixes_its_kurtosis():
    # gradient sanity: the kurtosis term pulls Mardia's b2 of a whitened cube from d(d+0.8) to d(d+2),
    # while the two-moment terms keep the covariance at I.
    d, n = 2, 1024
    z = ((torch.rand(n, d, generator=torch.Generator().manual_seed(10)) * 2 - 1) * math.sqrt(3)).requires_grad_(True)
    reg = MomentMatching(d, skew=1.0, kurtosis=10.0)
    opt = torch.optim.Adam([z], lr=0.02)
    for _ in range(150):
        opt.zero_grad()
        reg(z).backward()
        opt.step()
    w = z.detach() - z.detach().mean(0)
    b2 = w.square().sum(1).square().mean().item()
    assert abs(b2 - d * (d + 2)) < 0.05 * d * (d + 2) and d * (d + 2) - d * (d + 0.8) > 0.25 * d * (d + 2)
    torch.testing.assert_close(torch.cov(w.T), torch.eye(d), atol=0.05, rtol=0)


@pytest.mark.parametrize("kwargs", [{"alpha": -1.0}, {"gamma": float("nan")}, {"skew": "1"},
                                    {"kurtosis": True}, {"alpha": float("inf")}])
def test_bad_weights(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=f"{name} must be a finite number >= 0"):
        MomentMatching(3, **kwargs)
