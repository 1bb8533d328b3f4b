"""The nearest-neighbour KL regularizer against an independent transcription, its exact scaling law,
its value at the target and on a uniform cube, and its gradient; weighted sums of regularizers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree
from scipy.special import digamma, gammaln

from gaussify import Gaussian
from gaussify.regularizers import REGISTRY, Combination, NearestNeighborKL, make_regularizer, parse_spec


def literal_kl(W: np.ndarray, k: int) -> float:
    """Cross-entropy to N(0, I) minus the Kozachenko–Leonenko entropy (Goria et al. 2005), with a k-d tree."""
    n, d = W.shape
    rho = cKDTree(W).query(W, k=k + 1)[0][:, k]
    entropy = digamma(n) - digamma(k) + 0.5 * d * math.log(math.pi) - gammaln(0.5 * d + 1) + d * np.log(rho).mean()
    return 0.5 * (W**2).sum(1).mean() + 0.5 * d * math.log(2 * math.pi) - entropy


@pytest.mark.parametrize("k", [1, 3])
def test_equals_the_literal_estimator_for_a_general_target(k):
    mean = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    a = torch.tensor([[2.0, 0.0, 0.0], [0.5, 1.0, 0.0], [-0.3, 0.2, 0.7]], dtype=torch.float64)
    target = Gaussian(mean, a @ a.T)
    z = torch.from_numpy(np.random.default_rng(k).standard_t(5, size=(400, 3))) * 1.5 + 0.3
    value = make_regularizer("knn", target, k=k, block_size=64)(z).item()
    assert value == pytest.approx(literal_kl(target.whiten(z).numpy(), k), rel=1e-10)


def test_scaling_law_is_exact():
    """Scaling the batch by s moves every log ρ by log s: KL(sY) − KL(Y) = ½(s² − 1) mean‖y‖² − d log s."""
    y = torch.randn(300, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    reg = NearestNeighborKL(4)
    for s in (0.3, 2.5):
        expected = 0.5 * (s * s - 1) * y.square().sum(1).mean() - 4 * math.log(s)
        torch.testing.assert_close(reg(s * y) - reg(y), expected)


def test_near_zero_at_the_target_and_near_the_truth_for_laplace_coordinates():
    reg = NearestNeighborKL(4)
    g = torch.Generator().manual_seed(1)
    null = torch.stack([reg(torch.randn(512, 4, generator=g, dtype=torch.float64)) for _ in range(100)])
    assert abs(null.mean().item()) < 0.08  # the finite-batch bias: measured 0.04-0.06 at d = 4, sd 0.05 per batch
    # a unit-variance Laplace coordinate (b = 1/√2) has entropy 1 + log(2b): ½ log(2πe) − 1 − log √2 = 0.0724
    # nats from N(0, 1); 4 of them 0.289 (measured 0.316-0.324 at n = 2048-4096: bias as above).
    # (Not a uniform cube: the estimator's boundary bias reads 0.54 for its 0.706.)
    torch.manual_seed(0)
    laplace = torch.distributions.Laplace(0.0, 1 / math.sqrt(2)).sample((10, 2048, 4)).double()
    value = torch.stack([reg(batch) for batch in laplace]).mean().item()
    assert value == pytest.approx(4 * (0.5 * math.log(2 * math.pi * math.e) - 1 - math.log(math.sqrt(2))), abs=0.06)


def test_blocks_do_not_change_the_value_and_the_gradient_checks():
    z = torch.randn(40, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(NearestNeighborKL(3, block_size=7, k=2)(z), NearestNeighborKL(3, k=2)(z))
    assert torch.autograd.gradcheck(NearestNeighborKL(3, k=2), (z,))


def test_coincident_points_stay_finite_and_bad_parameters_are_rejected():
    z = torch.zeros(10, 2, requires_grad=True)
    value = NearestNeighborKL(2)(z)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(z.grad).all()
    for kwargs in ({"k": 0}, {"k": 1.5}, {"eps": 0.0}, {"block_size": True}):
        with pytest.raises(ValueError):
            NearestNeighborKL(2, **kwargs)
    with pytest.raises(ValueError, match="at least 4 rows"):
        NearestNeighborKL(2, k=3)(torch.randn(3, 2))


def test_combination_is_the_weighted_sum_of_its_parts():
    z = torch.randn(200, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    combo = make_regularizer("swd + 0.25*knn", 3, random_state=5, knn={"k": 2}).double()
    assert isinstance(combo, Combination) and combo.min_batch == 3
    swd = make_regularizer("swd", 3, random_state=5).double()  # part j is seeded seed + j
    knn = make_regularizer("knn", 3, k=2).double()
    torch.testing.assert_close(combo(z), swd(z) + 0.25 * knn(z))
    assert str(combo).count("1*swd + 0.25*knn") == 1


@pytest.mark.parametrize("spec, match", [("swd+vae", "unknown regularizer 'vae'"), ("0*swd", "positive"),
                                         ("swd+knn+swd", "once"), ("kl+swd", "cannot be combined"),
                                         ("swd++knn", "unknown regularizer ''")])
def test_bad_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        make_regularizer(spec, 2)


def test_spec_parsing_and_part_options():
    assert parse_spec("swd+0.01*knn", REGISTRY) == [(1.0, "swd"), (0.01, "knn")]
    assert parse_spec("2e-3*cramer-wold", REGISTRY) == [(0.002, "cramer-wold")]
    assert isinstance(make_regularizer("swd", 2), REGISTRY["swd"])  # one plain name: the regularizer itself
    with pytest.raises(ValueError, match="keyed by its parts"):
        make_regularizer("swd+knn", 2, k=2)
