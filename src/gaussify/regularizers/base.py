"""Shared machinery of every regularizer: input checks, the target, float32 statistics,
the global batch under ``torch.distributed`` and the module's own random generator."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from ..distributed import broadcast_seed, gather_with_grad
from ..target import Gaussian, TargetLike, as_target

__all__ = ["Regularizer", "check_batch", "compute_dtype"]


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Batch statistics run in float32, or float64 when the input already is."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def check_batch(z: Tensor, dim: int, name: str = "z") -> Tensor:
    """Validate an (n, d) batch of embeddings and upcast half precision to float32."""
    if not isinstance(z, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (n, {dim}), got {type(z).__name__}")
    if not z.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {z.dtype}")
    if z.ndim != 2:
        raise ValueError(f"{name} must have shape (n, {dim}), got {tuple(z.shape)}")
    if z.shape[1] != dim:
        raise ValueError(f"{name} has dimension {z.shape[1]} but the target has dimension {dim}")
    if z.shape[0] < 1:
        raise ValueError(f"{name} is empty")
    if not bool(torch.isfinite(z).all()):
        raise ValueError(f"{name} contains NaN or Inf: the encoder produced non-finite embeddings")
    return z.to(compute_dtype(z.dtype))


class Regularizer(nn.Module):
    """Base class: ``forward(z)`` checks the batch, gathers the global batch under DDP,
    disables autocast, and returns the 0-dim penalty computed by :meth:`penalty`.

    Subclasses implement ``penalty(z)`` on the (global) batch in float32/float64.
    The target lives in buffers, so ``module.to(device)`` moves it along.
    """

    name: ClassVar[str] = ""
    min_batch: ClassVar[int] = 2

    def __init__(self, target: TargetLike, *, seed: int | None = None) -> None:
        super().__init__()
        gauss: Gaussian = as_target(target)
        self.dim = gauss.dim
        self.standard_target = gauss.is_standard
        self.register_buffer("target_mean", gauss.mean.double().clone())
        self.register_buffer("target_chol", gauss.chol.double().clone())
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        self.seed = int(seed)
        self._generator: torch.Generator | None = None

    @property
    def target(self) -> Gaussian:
        """The target as a :class:`~gaussify.Gaussian` (on the module's device)."""
        chol = self.target_chol
        return Gaussian(self.target_mean, chol @ chol.T)

    @property
    def generator(self) -> torch.Generator:
        """CPU generator owned by the module; seeded identically on every rank at first use."""
        if self._generator is None:
            self._generator = torch.Generator().manual_seed(broadcast_seed(self.seed))
        return self._generator

    def whiten(self, z: Tensor) -> Tensor:
        """L⁻¹(z − μ): the batch in the target's standard coordinates."""
        if self.standard_target:
            return z
        chol = self.target_chol.to(z.dtype)
        return torch.linalg.solve_triangular(chol, (z - self.target_mean.to(z.dtype)).T, upper=False).T

    def random_directions(self, num: int, like: Tensor) -> Tensor:
        """``num`` unit vectors, uniform on the sphere, as a (d, num) matrix on ``like``'s device."""
        theta = torch.randn(self.dim, num, generator=self.generator, dtype=torch.float32)
        theta = theta / theta.norm(dim=0, keepdim=True)
        return theta.to(device=like.device, dtype=like.dtype)

    def forward(self, z: Tensor) -> Tensor:
        z = check_batch(z, self.dim)
        with torch.autocast(device_type=z.device.type, enabled=False):
            z = gather_with_grad(z)
            if z.shape[0] < self.min_batch:
                raise ValueError(f"{type(self).__name__} needs at least {self.min_batch} rows in the "
                                 f"(global) batch, got {z.shape[0]}")
            loss = self.penalty(z)
        if not bool(torch.isfinite(loss)):
            raise ValueError(f"{type(self).__name__} produced a non-finite value")
        return loss

    def penalty(self, z: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"dim={self.dim}, standard_target={self.standard_target}"
