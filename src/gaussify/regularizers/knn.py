"""Nearest-neighbour (Kozachenko–Leonenko) estimate of KL(batch ‖ target): a full-dimensional penalty."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._validation import RandomState, check_int, check_real
from ..target import TargetLike
from .base import Regularizer

__all__ = ["NearestNeighborKL"]


class NearestNeighborKL(Regularizer):
    r"""KL divergence of the batch to the target, estimated from nearest-neighbour distances.

    With w_i = L⁻¹(z_i − μ) the batch in the target's standard coordinates (KL is invariant under
    this affine map) and ρ_i the distance from w_i to its k-th nearest neighbour in the batch,

    .. math::
        \widehat{\mathrm{KL}} = \frac{1}{n}\sum_i \tfrac12\lVert w_i\rVert^2 + \tfrac d2\log 2\pi
            - \Big[\psi(n) - \psi(k) + \log V_d + \frac{d}{n}\sum_i \log\rho_i\Big],

    the cross-entropy to N(0, I) minus the Kozachenko–Leonenko entropy estimate (V_d = π^{d/2}/Γ(d/2 + 1),
    the volume of the unit ball). Its −log ρ term pushes every point away from its nearest neighbour and
    the quadratic term pulls the batch in; the balance of the two is N(0, I), the maximum-entropy law at
    unit second moment. Unlike projection penalties (sliced Wasserstein, SIGReg, Cramér–Wold), which see
    one direction at a time, it sees clumping in the full space: on 8-D embeddings of labelled data it
    lowers the held-out KL several-fold at a small cost in kNN accuracy. The estimator is consistent
    but biased at finite n: its mean on exact N(0, I) batches (100 batches each) is 0.015 / −0.001 nat at
    d = 2 (n = 256 / 1024), 0.056 / 0.042 at d = 4, 0.016 / 0.041 at d = 8 (standard deviation 0.10 at
    n = 256, 0.05 at n = 1024), but −3.2 / −2.6 at d = 32: in high dimension the value is no longer a KL,
    though its gradient still spreads clumps.

    The neighbours are searched without gradient in blocks of rows (O(n · block) memory); the distances
    to the chosen neighbours are then recomputed with gradient, so the autograd graph is O(n · d).
    Coincident points are kept finite by flooring ρ at ``eps``.

    References: Kozachenko & Leonenko, "Sample estimate of the entropy of a random vector", Problems of
    Information Transmission 23, 1987; Goria, Leonenko, Mergel & Novi Inverardi, J. Nonparametric
    Statistics 17, 2005 (k-th neighbour); Sablayrolles, Douze, Schmid & Jégou, "Spreading vectors for
    similarity search", ICLR 2019 (the −log ρ "KoLeo" spreading term as a regularizer).

    Parameters
    ----------
    target : Gaussian, int or (mean, cov)
        The target: a :class:`~gaussify.Gaussian`, an int d for N(0, I_d) or any target form of the metrics.
    k : int, default 1
        Which neighbour (k ≥ 1; the batch needs at least k + 1 rows).
    eps : float, default 1e-6
        Floor of the neighbour distance.
    block_size : int, default 1024
        Rows per block of the neighbour search.
    random_state : None, int or numpy.random.Generator, default None
        Unused (no randomness); accepted like every regularizer's.

    Examples
    --------
    >>> import torch
    >>> from gaussify import NearestNeighborKL
    >>> reg = NearestNeighborKL(2, k=1)
    >>> z = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), requires_grad=True)
    >>> loss = reg(z)
    >>> loss.shape, bool(reg(3 * z) > loss)  # a batch three times too wide is penalised more
    (torch.Size([]), True)
    >>> loss.backward()
    >>> z.grad.shape
    torch.Size([64, 2])
    """

    name = "knn"

    def __init__(self, target: TargetLike, *, k: int = 1, eps: float = 1e-6, block_size: int = 1024,
                 random_state: RandomState = None) -> None:
        super().__init__(target, random_state=random_state)
        self.k, self.block_size = check_int(k, "k"), check_int(block_size, "block_size")
        self.eps = check_real(eps, "eps", strict=True)
        self.min_batch = k + 1

    def neighbors(self, w: Tensor) -> Tensor:
        """Index of each row's k-th nearest other row (no gradient; blocks of ``block_size`` rows)."""
        with torch.no_grad():
            sq = w.square().sum(1)
            out = []
            for start in range(0, w.shape[0], self.block_size):
                rows = w[start : start + self.block_size]
                dist = sq[start : start + rows.shape[0], None] + sq[None, :] - 2.0 * rows @ w.T
                own = torch.arange(rows.shape[0], device=w.device)
                dist[own, own + start] = math.inf
                out.append(dist.topk(self.k, dim=1, largest=False).indices[:, -1])
            return torch.cat(out)

    def penalty(self, z: Tensor) -> Tensor:
        w = self.whiten(z)
        n, d = w.shape
        rho = (w - w[self.neighbors(w)]).norm(dim=1).clamp_min(self.eps)
        digamma_gap = math.fsum(1.0 / j for j in range(self.k, n))  # ψ(n) − ψ(k) for integers n > k
        log_ball = 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1.0)
        entropy = digamma_gap + log_ball + d * rho.log().mean()
        return 0.5 * w.square().sum(1).mean() + 0.5 * d * math.log(2.0 * math.pi) - entropy

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, k={self.k}"
