"""The Gaussian target N(mean, cov) that embeddings are pushed towards and measured against."""

from __future__ import annotations

import math
from typing import Any, Union

import torch
from torch import Tensor

from ._validation import check_int, target_parts

__all__ = ["Gaussian", "TargetLike", "as_target", "whiten"]


def _as_float_tensor(x, name: str) -> Tensor:
    if isinstance(x, Tensor):
        t = x.detach()
    else:
        try:
            t = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"{name} must be array-like of numbers, got {type(x).__name__}") from err
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"{name} must be real-valued, got dtype {t.dtype}")
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    return t


class Gaussian:
    """A multivariate normal target N(mean, cov) in d dimensions.

    ``cov`` must be symmetric positive definite; its Cholesky factor ``L``
    (cov = L Lᵀ) is computed once and used for sampling, log-densities and whitening.

    Parameters
    ----------
    mean : array-like of shape (d,)
        The mean μ, a non-empty finite vector (a tensor, array or list).
    cov : array-like of shape (d, d)
        The covariance, symmetric positive definite; both are cast to their common floating dtype.

    Attributes
    ----------
    mean : Tensor of shape (d,)
    cov : Tensor of shape (d, d)
    chol : Tensor of shape (d, d)
        The lower Cholesky factor L, cov = L Lᵀ.

    Examples
    --------
    >>> import torch
    >>> from gaussify import Gaussian
    >>> g = Gaussian.standard(3)
    >>> g.sample(5).shape
    torch.Size([5, 3])
    >>> g = Gaussian([1.0, -1.0], [[4.0, 0.0], [0.0, 1.0]])
    >>> g.whiten(torch.tensor([[3.0, 0.0]]))
    tensor([[1., 1.]])
    >>> round(g.log_prob(g.mean[None]).item(), 4)  # log N(μ; μ, cov) = -log(2π · 2)
    -2.531
    """

    def __init__(self, mean, cov) -> None:
        mean = _as_float_tensor(mean, "mean")
        cov = _as_float_tensor(cov, "cov")
        if mean.ndim != 1 or mean.numel() == 0:
            raise ValueError(f"mean must be a non-empty 1-D vector, got shape {tuple(mean.shape)}")
        d = mean.shape[0]
        if cov.shape != (d, d):
            raise ValueError(f"cov must have shape ({d}, {d}) to match mean, got {tuple(cov.shape)}")
        dtype = torch.promote_types(mean.dtype, cov.dtype)
        mean, cov = mean.to(dtype), cov.to(device=mean.device, dtype=dtype)
        if not (torch.isfinite(mean).all() and torch.isfinite(cov).all()):
            raise ValueError("mean and cov must be finite (found NaN or Inf)")
        scale = cov.abs().max().clamp_min(torch.finfo(dtype).tiny)
        if (cov - cov.T).abs().max() > 1e-6 * scale:
            raise ValueError("cov must be symmetric")
        chol, info = torch.linalg.cholesky_ex(cov.double())
        if info.item() != 0:
            raise ValueError("cov must be positive definite (its Cholesky factorisation failed)")
        self.mean = mean
        self.cov = cov
        self.chol = chol.to(dtype)

    @classmethod
    def standard(cls, dim: int, *, dtype: torch.dtype | None = None) -> "Gaussian":
        """N(0, I) in ``dim`` dimensions."""
        dim = check_int(dim, "dim")
        dtype = dtype or torch.get_default_dtype()
        return cls(torch.zeros(dim, dtype=dtype), torch.eye(dim, dtype=dtype))

    @property
    def dim(self) -> int:
        return self.mean.shape[0]

    @property
    def is_standard(self) -> bool:
        """True when the target is exactly N(0, I)."""
        eye = torch.eye(self.dim, dtype=self.cov.dtype, device=self.cov.device)
        return bool((self.mean == 0).all() and (self.cov == eye).all())

    def to(self, *args, **kwargs) -> "Gaussian":
        """A copy on another device and/or dtype (same arguments as ``Tensor.to``)."""
        out = object.__new__(Gaussian)
        out.mean = self.mean.to(*args, **kwargs)
        out.cov = self.cov.to(*args, **kwargs)
        out.chol = self.chol.to(*args, **kwargs)
        return out

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws, mean + L ε with ε ~ N(0, I); shape (n, d)."""
        eps = torch.randn(n, self.dim, generator=generator, dtype=self.mean.dtype,
                          device=generator.device if generator is not None else self.mean.device)
        return self.mean + eps.to(self.mean.device) @ self.chol.T

    def whiten(self, z: Tensor) -> Tensor:
        """L⁻¹ (z − mean) row by row: maps N(mean, cov) to N(0, I) (:func:`whiten`)."""
        self._check_dim(z)
        return whiten(z, self.mean, self.chol)

    def log_prob(self, z: Tensor) -> Tensor:
        """log N(z; mean, cov) = −½‖L⁻¹(z − mean)‖² − Σ log L_ii − (d/2) log 2π."""
        w = self.whiten(z)
        half_logdet = torch.log(torch.diagonal(self.chol)).sum().to(w.dtype)
        return -0.5 * w.pow(2).sum(-1) - half_logdet - 0.5 * self.dim * math.log(2 * math.pi)

    def _check_dim(self, z: Tensor) -> None:
        if z.shape[-1] != self.dim:
            raise ValueError(f"expected points of dimension {self.dim} (the target's), got {z.shape[-1]}")

    def __repr__(self) -> str:
        if self.is_standard:
            return f"Gaussian.standard({self.dim})"
        return f"Gaussian(dim={self.dim}, mean={self.mean.tolist()}, cov=<{self.dim}x{self.dim}>)"


def whiten(z: Tensor, mean: Tensor, chol: Tensor) -> Tensor:
    """L⁻¹(z − μ) row by row, by one triangular solve (cov = L Lᵀ), in z's dtype and on its device: the torch
    whitening of the package (:class:`gaussify._validation.TargetFrame` is the NumPy one, for the torch-free
    metrics).

    Parameters
    ----------
    z : Tensor of shape (n, d)
        The points.
    mean : Tensor of shape (d,)
        μ.
    chol : Tensor of shape (d, d)
        The lower Cholesky factor L of the covariance.

    Returns
    -------
    Tensor of shape (n, d)
        The whitened points, N(0, I) when z ~ N(μ, L Lᵀ).

    Examples
    --------
    >>> import torch
    >>> from gaussify.target import whiten
    >>> whiten(torch.tensor([[3.0, 2.0]]), torch.tensor([1.0, 0.0]), torch.diag(torch.tensor([2.0, 2.0])))
    tensor([[1., 1.]])
    """
    chol = chol.to(device=z.device, dtype=z.dtype)
    centred = (z - mean.to(device=z.device, dtype=z.dtype)).T
    return torch.linalg.solve_triangular(chol, centred, upper=False).T


TargetLike = Union[Gaussian, int, tuple, Any]
"""What a target parameter takes: a :class:`Gaussian`, an int d for N(0, I_d), a ``(mean, cov)`` pair or an object
with ``.mean`` and ``.cov``, as in the metrics."""


def as_target(target: TargetLike) -> Gaussian:
    """A :class:`Gaussian` from any target form of the metrics (:func:`gaussify._validation.target_parts`) except
    ``None``, whose dimension a regularizer cannot know: an int d means ``Gaussian.standard(d)``.

    Parameters
    ----------
    target : Gaussian, int, (mean, cov) pair or object with ``.mean`` and ``.cov``
        The target; a :class:`Gaussian` is returned as it is.

    Returns
    -------
    Gaussian

    Raises
    ------
    TypeError
        For ``None`` or an object that is no target form.

    Examples
    --------
    >>> from gaussify.target import as_target
    >>> as_target(2)
    Gaussian.standard(2)
    >>> as_target(([1.0, 0.0], [[1.0, 0.0], [0.0, 1.0]]))
    Gaussian(dim=2, mean=[1.0, 0.0], cov=<2x2>)
    """
    if isinstance(target, Gaussian):
        return target
    parts = target_parts(target) if target is not None else None
    if parts is None:
        raise TypeError("target must be a gaussify.Gaussian, an int dimension or a (mean, cov) pair, got None")
    return Gaussian.standard(parts) if isinstance(parts, int) else Gaussian(*parts)
