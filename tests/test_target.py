import math

import pytest
import torch

from gaussify import Gaussian
from gaussify.target import as_target


def random_spd(d: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    return a @ a.T + 0.5 * torch.eye(d, dtype=torch.float64)


def test_log_prob_matches_torch_distributions():
    cov = random_spd(4)
    mean = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    g = Gaussian(mean, cov)
    z = torch.randn(50, 4, dtype=torch.float64)
    ref = torch.distributions.MultivariateNormal(mean, covariance_matrix=cov).log_prob(z)
    torch.testing.assert_close(g.log_prob(z), ref)


def test_whiten_maps_samples_to_standard_normal():
    cov = random_spd(3, seed=1)
    g = Gaussian(torch.tensor([2.0, 0.0, -1.0], dtype=torch.float64), cov)
    w = g.whiten(g.sample(200_000, generator=torch.Generator().manual_seed(0)))
    # mean has sd 1/sqrt(n) ~ 0.0022 per coordinate; covariance entries sd ~ sqrt(2/n) ~ 0.0032
    assert w.mean(0).abs().max() < 5 * 0.0023
    assert (torch.cov(w.T) - torch.eye(3, dtype=torch.float64)).abs().max() < 5 * 0.0032


def test_sample_is_reproducible_with_generator():
    g = Gaussian.standard(5)
    a = g.sample(10, generator=torch.Generator().manual_seed(3))
    b = g.sample(10, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_standard_and_as_target():
    g = as_target(3)
    assert g.is_standard and g.dim == 3
    assert repr(g) == "Gaussian.standard(3)"
    assert not Gaussian([1.0, 0.0], torch.eye(2)).is_standard
    # log N(0; 0, I_d) = -d/2 log(2 pi)
    torch.testing.assert_close(g.log_prob(torch.zeros(1, 3)), torch.tensor([-1.5 * math.log(2 * math.pi)]))


def test_to_changes_dtype():
    g = Gaussian.standard(2).to(torch.float64)
    assert g.mean.dtype == g.cov.dtype == g.chol.dtype == torch.float64


@pytest.mark.parametrize(
    "mean,cov,exc,match",
    [
        ([0.0, 0.0], [[1.0, 0.5], [0.0, 1.0]], ValueError, "symmetric"),
        ([0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]], ValueError, "positive definite"),
        ([0.0, 0.0], [[1.0, 0.0, 0.0]] * 3, ValueError, "shape"),
        ([[0.0]], [[1.0]], ValueError, "1-D"),
        ([float("nan"), 0.0], [[1.0, 0.0], [0.0, 1.0]], ValueError, "finite"),
        (["a", "b"], [[1.0, 0.0], [0.0, 1.0]], TypeError, "array-like"),
    ],
)
def test_bad_targets(mean, cov, exc, match):
    with pytest.raises(exc, match=match):
        Gaussian(mean, cov)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_bad_standard_dims(bad):
    with pytest.raises((ValueError, TypeError)):
        as_target(bad) if not isinstance(bad, (int, float)) or isinstance(bad, bool) else Gaussian.standard(bad)


def test_whiten_checks_dimension():
    with pytest.raises(ValueError, match="dimension 3"):
        Gaussian.standard(3).whiten(torch.zeros(4, 2))
