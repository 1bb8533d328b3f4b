"""KLDivergence against torch.distributions and its laws; GaussianHead's sampling."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import MultivariateNormal, kl_divergence

from gaussify import Gaussian, GaussianHead, KLDivergence, Posterior

F64 = torch.float64


def random_target(d: int, seed: int) -> Gaussian:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=F64)
    cov = a @ a.T + 0.3 * torch.eye(d, dtype=F64)  # full, well away from singular
    return Gaussian(torch.randn(d, generator=g, dtype=F64), cov)


def random_posterior(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=F64) * 2, torch.randn(n, d, generator=g, dtype=F64)


def reference(target: Gaussian, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    q = MultivariateNormal(mean, covariance_matrix=torch.diag_embed(logvar.exp()))
    p = MultivariateNormal(target.mean, covariance_matrix=target.cov)
    return kl_divergence(q, p)


@pytest.mark.parametrize("d,seed", [(1, 0), (3, 1), (7, 2), (16, 3)])
def test_matches_torch_distributions_for_full_covariance_targets(d, seed):
    target = random_target(d, seed)
    mean, logvar = random_posterior(10, d, seed + 100)
    kl = KLDivergence(target)
    ref = reference(target, mean, logvar)
    torch.testing.assert_close(kl.per_sample(mean, logvar), ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(kl((mean, logvar)), ref.mean(), rtol=1e-10, atol=1e-10)
    # float32 statistics: same value to float32 accuracy
    out32 = kl((mean.float(), logvar.float()))
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), ref.mean(), rtol=1e-4, atol=1e-4)


def test_standard_normal_case_is_the_seed_formula():
    mean, logvar = random_posterior(20, 5, seed=7)
    # ½[−log|S| − d + tr S + mᵀm] with S = diag exp(logvar)
    seed_formula = 0.5 * (-logvar.sum(1) - 5 + logvar.exp().sum(1) + mean.square().sum(1))
    torch.testing.assert_close(KLDivergence(5).per_sample(mean, logvar), seed_formula)


def test_zero_when_posterior_equals_a_diagonal_target():
    var = torch.tensor([0.5, 2.0, 3.0], dtype=F64)
    mu = torch.tensor([1.0, -1.0, 0.25], dtype=F64)
    kl = KLDivergence(Gaussian(mu, torch.diag(var)))
    value = kl(Posterior(mu.expand(4, 3), mu.expand(4, 3), var.log().expand(4, 3)))
    assert abs(value.item()) < 1e-12
    assert kl((mu.expand(4, 3) + 0.1, var.log().expand(4, 3))).item() > 0


def test_best_diagonal_fit_to_a_full_covariance_target():
    # argmin over diagonal q of KL(q || N(mu, Sigma)) is m = mu, s_j = 1 / (Sigma⁻¹)_jj,
    # with value ½[log|Sigma| + Σ_j log (Sigma⁻¹)_jj] > 0 when Sigma is not diagonal.
    target = random_target(4, seed=5)
    prec_diag = torch.diagonal(torch.linalg.inv(target.cov))
    mean = target.mean.clone().unsqueeze(0).requires_grad_(True)
    logvar = (-prec_diag.log()).unsqueeze(0).requires_grad_(True)
    value = KLDivergence(target)((mean, logvar))
    expected = 0.5 * (torch.logdet(target.cov) + prec_diag.log().sum())
    torch.testing.assert_close(value, expected)
    assert expected > 0.01
    grad_m, grad_v = torch.autograd.grad(value, (mean, logvar))
    assert grad_m.abs().max() < 1e-12 and grad_v.abs().max() < 1e-12


def test_gradcheck_float64():
    target = random_target(3, seed=11)
    mean, logvar = random_posterior(5, 3, seed=12)
    kl = KLDivergence(target)
    assert torch.autograd.gradcheck(lambda m, v: kl((m, v)),
                                    (mean.requires_grad_(True), logvar.requires_grad_(True)))


def test_one_row_and_half_precision():
    target = random_target(3, seed=4)
    mean, logvar = random_posterior(1, 3, seed=6)
    kl = KLDivergence(target)
    torch.testing.assert_close(kl((mean, logvar)), reference(target, mean, logvar)[0])
    bf_mean, bf_logvar = mean.to(torch.bfloat16), logvar.to(torch.bfloat16)
    out = kl((bf_mean, bf_logvar))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, kl((bf_mean.float(), bf_logvar.float())))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert kl((mean.float(), logvar.float())).dtype == torch.float32


@pytest.mark.parametrize(
    "arg,exc,match",
    [
        (torch.zeros(4, 3), TypeError, "Posterior"),
        ((torch.zeros(4, 3),), TypeError, "Posterior"),
        ((torch.zeros(4, 3), torch.zeros(5, 3)), ValueError, "same shape"),
        ((torch.zeros(4, 3), torch.zeros(4, 2)), ValueError, "logvar has dimension 2"),
        ((torch.zeros(4, 3), torch.full((4, 3), float("inf"))), ValueError, "logvar contains NaN"),
        ((torch.zeros(4, 3, dtype=torch.int32), torch.zeros(4, 3)), TypeError, "mean must be a floating"),
        ((torch.zeros(4, 3), torch.full((4, 3), 200.0)), ValueError, "overflowed"),
    ],
)
def test_bad_input(arg, exc, match):
    with pytest.raises(exc, match=match):
        KLDivergence(3)(arg)


def test_head_train_and_eval():
    torch.manual_seed(0)
    head = GaussianHead(6, 3, generator=torch.Generator().manual_seed(1))
    x = torch.randn(8, 6)
    post = head(x)
    assert isinstance(post, Posterior) and post.sample.shape == post.mean.shape == post.logvar.shape == (8, 3)
    assert not torch.equal(post.sample, post.mean)
    # the reparametrised sample carries gradient to both heads
    post.sample.sum().backward()
    assert head.mean.weight.grad.abs().sum() > 0 and head.logvar.weight.grad.abs().sum() > 0
    head.eval()
    post = head(x)
    assert torch.equal(post.sample, post.mean)
    torch.testing.assert_close(post.mean, head.mean(x))


def test_head_generator_makes_samples_reproducible_and_clamps_logvar():
    torch.manual_seed(0)
    head = GaussianHead(4, 2, generator=torch.Generator().manual_seed(3))
    x = torch.randn(5, 4)
    first = head(x).sample
    head.generator.manual_seed(3)
    torch.testing.assert_close(head(x).sample, first, rtol=0, atol=0)
    with torch.no_grad():
        head.logvar.bias.fill_(1e4)
    assert (head(x).logvar == GaussianHead.LOGVAR_MAX).all()
    with torch.no_grad():
        head.logvar.bias.fill_(-1e4)
    assert (head(x).logvar == GaussianHead.LOGVAR_MIN).all()


def test_head_sample_moments_monte_carlo():
    torch.manual_seed(0)
    head = GaussianHead(2, 3)
    with torch.no_grad():
        head.logvar.bias.copy_(torch.tensor([-1.0, 0.0, 1.5]))
    n = 100_000
    post = head(torch.ones(1, 2).expand(n, 2))
    mean, var = post.mean[0], post.logvar[0].exp()
    s = post.sample.detach()
    # sd of the sample mean is sqrt(var / n); of the sample variance var * sqrt(2 / (n - 1)); 5 sd margins
    assert ((s.mean(0) - mean).abs() < 5 * (var / n).sqrt()).all()
    assert ((s.var(0) - var).abs() < 5 * var * math.sqrt(2 / (n - 1))).all()


def test_head_bad_arguments():
    with pytest.raises(ValueError, match="in_features"):
        GaussianHead(0, 2)
    with pytest.raises(ValueError, match="out_features"):
        GaussianHead(2, 1.5)
    with pytest.raises(TypeError, match="generator"):
        GaussianHead(2, 2, generator=0)


def test_training_a_head_with_kl_alone_reaches_the_target():
    # KL against a diagonal target is minimised (to 0) by mean = mu, logvar = log var for every x
    target = Gaussian(torch.tensor([1.0, -2.0]), torch.diag(torch.tensor([0.25, 4.0])))
    torch.manual_seed(0)
    head, kl = GaussianHead(3, 2), KLDivergence(target)
    opt = torch.optim.Adam(head.parameters(), lr=0.1)
    x = torch.randn(64, 3)
    start = kl(head(x)).item()
    for _ in range(200):
        opt.zero_grad()
        loss = kl(head(x))
        loss.backward()
        opt.step()
    assert start > 1.0 and loss.item() < 1e-3
