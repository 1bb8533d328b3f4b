"""Placement: the closed-form KL of a running Gaussian fit of the batches to the target, whose log-determinant
sees a collapsing direction."""

from __future__ import annotations

import torch
from torch import Tensor

from .._validation import RandomState, check_real
from ..target import TargetLike
from .base import Regularizer

__all__ = ["PlacementKL"]


class PlacementKL(Regularizer):
    r"""KL of the batches' fitted Gaussian to the target, in closed form: the placement part of the KL.

    With the batch whitened by the target, w_i = L⁻¹(z_i − μ), its mean m̂ and biased covariance
    S = (1/B) Σ (w_i − m̂)(w_i − m̂)ᵀ, the covariance is a running average over batches, started at the target's,
    R ← (1 − β) R + β S (β = ``momentum``), and

    .. math::
        \mathrm{KL}\big(\mathcal N(\hat m, R)\,\|\,\mathcal N(0, I)\big)
            = \tfrac12\big(\operatorname{tr} R + \|\hat m\|^2 - d - \log\det R\big).

    Per eigenvalue λ of R it adds ½(λ − 1 − log λ): a direction collapsing to variance λ → 0 costs −½ log λ
    without bound, where a Frobenius moment match (``"moments"``) sees it through λ alone and a random slice
    (``"swd"``, ``"sigreg"``) with weight 1/d: in 32-D a spectrum from 0.015 to 1.9 gives every random slice a
    variance near 1. The gradient is that of the KL at R taken with respect to this batch's S in full (a
    straight-through estimate: R's older part carries no gradient), so the weight means the same at any
    ``momentum``; ``momentum=1`` is the plain per-batch statistic.

    **Batches with B ≤ d rows.** S is then singular and a per-batch log det S is −∞; R averages about 1/β batches
    (and starts at the target), so it stays positive definite and sees every direction once B/β > d. Why not a
    Ledoit–Wolf shrinkage of S: it is optimal for the Frobenius error, so on a 256 × 32 batch with that spectrum it
    shrinks by ρ ≈ 0.36 and hides every variance below 0.36 from the log-determinant, the failure this term is for.

    It matches two moments: it does not Gaussianize the shape (a whitened uniform cube scores its sampling
    level), so use it beside a shape penalty, e.g. ``"swd+placement"``. It is not 0 on exact target samples: to
    leading order d/(2B) + β d(d + 1)/(4B(2 − β)) once R has settled (mean noise, and covariance noise averaged
    over about (2 − β)/β batches). Training mode updates R; eval mode scores a batch against R without storing it.
    Under ``torch.distributed`` every rank averages the same global batch, so R stays equal across ranks.

    Reference: the Gaussian KL in closed form (Kullback 1959); the running covariance as in batch normalisation
    (Ioffe & Szegedy 2015). This is the training-batch version of :func:`gaussify.metrics.placement_kl`.

    Parameters
    ----------
    target : Gaussian, int or (mean, cov)
        The target: a :class:`~gaussify.Gaussian`, an int d for N(0, I_d) or any target form of the metrics.
    momentum : float, default 0.1
        Weight β ∈ (0, 1] of each batch in the running covariance.
    random_state : None, int or numpy.random.Generator, default None
        Accepted like every regularizer's; the penalty is deterministic.

    Examples
    --------
    >>> import torch
    >>> from gaussify import PlacementKL
    >>> g = torch.Generator().manual_seed(0)
    >>> collapsed = torch.tensor([1.0, 1.0, 1.0, 0.1])  # one direction at variance 0.01
    >>> reg, bad = PlacementKL(4), PlacementKL(4)
    >>> for _ in range(100):
    ...     z = torch.randn(256, 4, generator=g)
    ...     value, worse = reg(z), bad(z * collapsed)
    >>> round(value.item(), 3), round(worse.item(), 2)  # the latter near ½(0.01 − 1 − log 0.01) = 1.81
    (0.008, 1.8)
    """

    name = "placement"
    running_cov: Tensor  # buffer

    def __init__(self, target: TargetLike, *, momentum: float = 0.1, random_state: RandomState = None) -> None:
        super().__init__(target, random_state=random_state)
        self.momentum = check_real(momentum, "momentum", strict=True, high=1.0, high_closed=True)
        self.register_buffer("running_cov", torch.eye(self.dim, dtype=torch.float64))

    def penalty(self, z: Tensor) -> Tensor:
        w = self.whiten(z)
        n, d = w.shape
        mean = w.mean(0)
        centred = w - mean
        batch_cov = centred.T @ centred / n
        fixed = batch_cov.detach()
        running = (1.0 - self.momentum) * self.running_cov.to(w.dtype) + self.momentum * fixed
        if self.training:
            self.running_cov.copy_(running)
        cov = running + (batch_cov - fixed)  # the value at R, the gradient through this batch's S
        chol, _ = torch.linalg.cholesky_ex(cov)  # the _ex form reads no error flag: no host sync
        log_det = 2.0 * chol.diagonal().log().sum()
        return 0.5 * (cov.diagonal().sum() + mean.square().sum() - d - log_det)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, momentum={self.momentum:g}"
