"""Pursued sliced Wasserstein: random slices plus directions that chase the non-Gaussianity, found on earlier
batches."""

from __future__ import annotations

import torch
from torch import Tensor

from .._validation import RandomState, check_int
from ..target import TargetLike
from .base import to_device
from .sliced import SlicedWasserstein

__all__ = ["PursuedSlicedWasserstein", "orthonormalize"]

_POLAR_STEPS = 12  # Newton–Schulz steps from singular values in (0, 1]: each multiplies a small one by 1.5, then
# converges quadratically (1e-6 after 12 steps from 0.05)


def orthonormalize(theta: Tensor, steps: int = _POLAR_STEPS) -> Tensor:
    """The orthonormal factor of ``theta`` (d, K) near orthonormal columns, Θ(ΘᵀΘ)^{-1/2}, by Newton–Schulz steps
    X ← X(3I − XᵀX)/2 (matrix products only: no host sync on an accelerator). It converges when every singular
    value of ``theta`` lies in (0, √3); the symmetric form treats the columns alike (as FastICA's symmetric
    decorrelation, Hyvärinen 1999)."""
    eye = torch.eye(theta.shape[1], dtype=theta.dtype, device=theta.device)
    for _ in range(steps):
        theta = theta @ (1.5 * eye - 0.5 * theta.T @ theta)
    return theta


class PursuedSlicedWasserstein(SlicedWasserstein):
    r"""Sliced Wasserstein distance on random directions and on pursued ones, found on earlier batches.

    Random slices of a law that is non-Gaussian in a few directions are nearly normal once d ≥ 8 (a projection
    mixes the few with many Gaussian ones), so ``"swd"`` and ``"sigreg"`` see less of what is wrong as d grows.
    This penalty keeps K = min(``num_pursued``, d) orthonormal directions Θ that chase the most non-Gaussian
    directions, in the spirit of max-sliced (Deshpande et al. 2019) and distributional sliced Wasserstein (Nguyen
    et al. 2021), and scores the batch, whitened by the target, on them and on ``num_slices`` random directions:

    .. math::
        \frac{1}{K + K_r} \sum_{\theta \in \Theta \cup \Theta_r} W_p^p\big(\theta^\top w, \mathcal N(0, 1)\big)

    (each term as in :class:`SlicedWasserstein`, with its ``split`` option). **Directions come from other rows than
    those they score**: Θ is fitted on a memory of the last ``memory`` rows of earlier batches (detached), by
    ``pursuit_steps`` symmetric FastICA fixed-point steps per training call (log-cosh contrast, the most
    non-Gaussian directions, sub- or super-Gaussian; Hyvärinen 1999), warm-started from the last Θ and made
    orthonormal after each (:func:`orthonormalize`). The batch is added to the memory after it is scored. So at
    the target every projection of the batch on Θ is exactly N(0, 1) and the penalty's expectation equals the
    random slices' null level (:class:`SlicedWasserstein`), whereas directions pursued on the scored rows
    themselves would find their noise and read above it. Pursuit starts once the memory holds ``memory`` rows or
    4d rows, whichever is fewer; until then only the random slices score.

    With few rows per dimension any pursuit finds noise (the largest spurious non-Gaussianity of m rows in d
    dimensions grows with d/m): the memory of many batches is what lets it see structure that one batch of B ≲ d²
    rows cannot. Training mode pursues and remembers; eval mode scores with the current Θ and leaves the state
    alone. Under ``torch.distributed`` every rank pursues on the same global batches, so Θ stays equal across
    ranks.

    Parameters
    ----------
    target : Gaussian, int or (mean, cov)
        The target: a :class:`~gaussify.Gaussian`, an int d for N(0, I_d) or any target form of the metrics.
    num_slices : int, default 128
        Random directions per call (redrawn each call), beside the pursued ones.
    num_pursued : int, default 16
        Pursued directions (at most d are used).
    memory : int, default 8192
        Rows of earlier batches the directions are pursued on.
    pursuit_steps : int, default 1
        FastICA steps on the memory per training call.
    p : float, default 2.0
        Exponent of the ground cost, p ≥ 1.
    split : bool, default False
        Score shape, centre and scale of each projection separately (:class:`SlicedWasserstein`).
    random_state : None, int or numpy.random.Generator, default None
        Seed of the module's direction generator.

    Examples
    --------
    >>> import torch
    >>> from gaussify import PursuedSlicedWasserstein
    >>> reg = PursuedSlicedWasserstein(8, memory=512, random_state=0)
    >>> g = torch.Generator().manual_seed(0)
    >>> values = [reg(torch.randn(128, 8, generator=g)) for _ in range(10)]  # pursues from the 2nd call on
    >>> reg.pursued.shape, bool(torch.allclose(reg.pursued.T @ reg.pursued, torch.eye(8), atol=1e-4))
    (torch.Size([8, 8]), True)
    """

    name = "pursued-swd"
    memory_rows: Tensor  # buffers
    pursued: Tensor

    def __init__(self, target: TargetLike, *, num_slices: int = 128, num_pursued: int = 16, memory: int = 8192,
                 pursuit_steps: int = 1, p: float = 2.0, split: bool = False,
                 random_state: RandomState = None) -> None:
        super().__init__(target, num_slices=num_slices, p=p, split=split, random_state=random_state)
        self.num_pursued = check_int(num_pursued, "num_pursued")
        self.memory = check_int(memory, "memory")
        self.pursuit_steps = check_int(pursuit_steps, "pursuit_steps", minimum=0)
        count = min(self.num_pursued, self.dim)
        self.register_buffer("memory_rows", torch.zeros(self.memory, self.dim), persistent=False)
        self.register_buffer("pursued", torch.zeros(self.dim, count), persistent=False)
        self._filled = 0  # rows of memory_rows written (host counters: no device read)
        self._next = 0
        self._started = False

    @property
    def pursuing(self) -> bool:
        """Whether the memory holds enough rows for the pursued directions to score."""
        return self._filled >= min(self.memory, 4 * self.dim)

    def penalty(self, z: Tensor) -> Tensor:
        w = self.whiten(z)
        theta = self.random_directions(self.num_slices, like=w)
        if self.training and self.pursuing:
            self._pursue()
        if self._started:
            theta = torch.cat([self.pursued.to(w.dtype), theta], dim=1)
        value = self.sliced_cost(w, theta)
        if self.training:
            self._remember(w.detach())
        return value

    def _pursue(self) -> None:
        """``pursuit_steps`` symmetric FastICA fixed-point steps on the centred memory M (log-cosh contrast,
        Hyvärinen 1999): θ_k ← mean(M tanh(Mθ_k)) − mean(1 − tanh²(Mθ_k)) θ_k, then Θ made orthonormal."""
        rows = self.memory_rows[: self._filled]
        rows = rows - rows.mean(0)
        theta = self.pursued
        if not self._started:  # a random orthonormal start, drawn from the module's generator
            start = torch.linalg.qr(torch.randn(self.dim, theta.shape[1], generator=self.generator)).Q
            theta, self._started = to_device(start.to(rows.dtype), rows), True
        for _ in range(self.pursuit_steps):
            squashed = torch.tanh(rows @ theta)
            theta = rows.T @ squashed / rows.shape[0] - theta * (1.0 - squashed.square()).mean(0)
            # every singular value in (0, 1] before the Newton–Schulz steps: ‖ΘᵀΘ‖_F bounds the largest squared
            theta = orthonormalize(theta / (theta.T @ theta).norm().sqrt().clamp_min(torch.finfo(theta.dtype).tiny))
        self.pursued.copy_(theta)

    def _remember(self, w: Tensor) -> None:
        """Write the latest rows of ``w`` into the ring buffer of earlier batches."""
        w = w[-self.memory:].to(self.memory_rows.dtype)
        count = w.shape[0]
        first = min(count, self.memory - self._next)
        self.memory_rows[self._next:self._next + first] = w[:first]
        self.memory_rows[: count - first] = w[first:]
        self._next = (self._next + count) % self.memory
        self._filled = min(self.memory, self._filled + count)

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, num_pursued={self.num_pursued}, memory={self.memory}, "
                f"pursuit_steps={self.pursuit_steps}")
