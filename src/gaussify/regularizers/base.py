"""Shared machinery of every regularizer: input checks, finiteness checks that need not stall the host,
the target, float32 statistics, the global batch under ``torch.distributed`` and the module's own random
generator."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .._validation import RandomState, as_seed, renamed_parameters
from ..distributed import broadcast_seed, gather_with_grad
from ..target import Gaussian, TargetLike, as_target, whiten

__all__ = ["Regularizer", "check_batch", "compute_dtype", "FINITE_CHECKS", "TAKES"]

FINITE_CHECKS = ("auto", "now", "deferred", "off")
"""Values of :attr:`Regularizer.check_finite`."""
TAKES = ("points", "posterior")
"""Values of :attr:`Regularizer.takes`: an (n, d) batch of points, or a :class:`~gaussify.Posterior`."""


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Batch statistics run in float32, or float64 when the input already is."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def check_batch(z: Tensor, dim: int, name: str = "z") -> Tensor:
    """Validate the type and shape of an (n, d) batch of embeddings and upcast half precision to float32
    (finiteness is checked by :meth:`Regularizer.require_finite`, which need not read the device)."""
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
    return z.to(compute_dtype(z.dtype))


def reads_are_free(t: Tensor) -> bool:
    """True when reading a value of ``t`` on the host (``bool``, ``item``, a boolean mask's size) costs no
    device synchronisation: ``t`` is on the CPU."""
    return t.device.type == "cpu"


def to_device(t: Tensor, like: Tensor) -> Tensor:
    """``t`` (drawn on the CPU) on ``like``'s device. The copy is non-blocking: a blocking host-to-device
    copy synchronises the stream, and from pageable memory the driver has staged the source by the time
    the call returns, so the CPU tensor may be freed at once."""
    return t.to(like.device, non_blocking=True)


class _Float32Backward(torch.autograd.Function):
    """``fn(z)`` whose backward runs with autocast disabled, wherever ``.backward()`` is called.

    Autocast also applies to the operations a backward dispatches, so ``loss.backward()`` inside an autocast
    block would run the statistic's matmuls in bf16/fp16 even though its forward ran in float32. This node
    keeps ``fn``'s float32 graph (on a detached ``z``) and differentiates it with autocast off when reached;
    ``params`` (the regularizer's parameters that require grad) get their gradients through it too. It is
    once differentiable: a double backward through it raises.
    """

    @staticmethod
    def forward(ctx, fn, z: Tensor, *params: Tensor) -> Tensor:
        with torch.enable_grad():
            leaf = z.detach().requires_grad_(z.requires_grad)
            out = fn(leaf)
        ctx.save_for_backward(out, leaf, *params)  # freed with the outer graph, as any saved tensor
        return out.detach()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        out, *inputs = ctx.saved_tensors
        wanted = [t for t in inputs if t.requires_grad]
        with torch.autocast(device_type=grad.device.type, enabled=False):
            grads = iter(torch.autograd.grad(out, wanted, grad, retain_graph=True, allow_unused=True))
        return None, *(next(grads) if t.requires_grad else None for t in inputs)


class Regularizer(nn.Module):
    """Base class: ``forward(z)`` checks the batch, gathers the global batch under DDP,
    disables autocast, and returns the 0-dim penalty computed by :meth:`penalty`. Under autocast its
    backward runs in float32 too, even when ``.backward()`` is called inside the autocast block (so a double
    backward through a regularizer is not supported under autocast).

    Subclasses implement ``penalty(z)`` on the (global) batch in float32/float64 (float32 for half
    precision input and under autocast). The target lives in buffers, so ``module.to(device)`` moves it along.

    A NaN or Inf in the batch or the value raises ``ValueError`` naming the cause; reading a flag computed on
    an accelerator stalls the host until the device catches up, so :attr:`check_finite` says when:
    ``"auto"`` (default) at once for CPU tensors, where it costs nothing, deferred otherwise; ``"now"`` at
    once (a host sync per call on an accelerator); ``"deferred"``: a device-side flag collects the checks and
    :meth:`raise_if_nonfinite` (one sync; e.g. once per epoch) raises the first error seen since its last
    call; ``"off"``: no check (the caller checks its loss, as :func:`gaussify.training.train` does).

    Under ``torch.distributed`` the gather of the global batch reads the ranks' batch sizes on the host (one
    sync per call, needed when they may differ); set :attr:`equal_rank_batches` to ``True`` when every rank
    always passes the same number of rows (a ``DistributedSampler`` and equal batch sizes) to skip it.

    Parameters
    ----------
    target : Gaussian, int or (mean, cov)
        The target: a :class:`~gaussify.Gaussian`, an int d for N(0, I_d) or any target form of the metrics.
    random_state : None, int or numpy.random.Generator, default None
        Seed of the module's generator (:attr:`seed`, :attr:`generator`).

    Examples
    --------
    A new regularizer implements :meth:`penalty` (here the squared distance of the whitened batch mean from 0):

    >>> import torch
    >>> from gaussify.regularizers import Regularizer
    >>> class MeanPenalty(Regularizer):
    ...     name = "mean"
    ...     def penalty(self, z):
    ...         return self.whiten(z).mean(0).square().sum()
    >>> reg = MeanPenalty(([1.0, 1.0], [[1.0, 0.0], [0.0, 1.0]]))
    >>> reg(torch.ones(64, 2))  # centred on the target's mean
    tensor(0.)
    >>> reg(torch.full((64, 2), float("nan")))
    Traceback (most recent call last):
    ...
    ValueError: z contains NaN or Inf: the encoder produced non-finite embeddings
    """

    name: ClassVar[str] = ""
    takes: ClassVar[str] = "points"
    """What ``forward`` takes (one of :data:`TAKES`): ``"points"``, z of shape (n, d), or ``"posterior"``, a
    :class:`~gaussify.Posterior` (the encoder must then be stochastic, e.g. end in a
    :class:`~gaussify.GaussianHead`); training, the estimator, Lightning and the benchmarks dispatch on it."""
    min_batch: int = 2
    _check_finite: str = "auto"
    equal_rank_batches: bool = False
    """Every rank passes as many rows (see the class docstring); unequal sizes then fail or hang the gather."""
    # buffers (registered in __init__; declared here so that they read as tensors, not Tensor | Module)
    target_mean: Tensor
    target_chol: Tensor

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every regularizer's constructor takes ``random_state`` and, for one release, its old name ``seed``
        (with a ``FutureWarning``)."""
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = renamed_parameters(seed="random_state")(cls.__init__)  # type: ignore[method-assign]

    def __init__(self, target: TargetLike, *, random_state: RandomState = None) -> None:
        super().__init__()
        gauss: Gaussian = as_target(target)
        self.dim = gauss.dim
        self.standard_target = gauss.is_standard
        self.register_buffer("target_mean", gauss.mean.double().clone())
        self.register_buffer("target_chol", gauss.chol.double().clone())
        self.seed = as_seed(random_state)
        """The seed of :attr:`generator`, from ``random_state`` (None: fresh entropy, an int, a NumPy Generator)."""
        self._generator: torch.Generator | None = None
        self._nonfinite: dict[str, Tensor] = {}  # deferred checks: message -> device-side "seen" flag

    @property
    def check_finite(self) -> str:
        """When NaN/Inf checks run: one of :data:`FINITE_CHECKS` (see the class docstring)."""
        return self._check_finite

    @check_finite.setter
    def check_finite(self, value: str) -> None:
        if value not in FINITE_CHECKS:
            raise ValueError(f"check_finite must be one of {FINITE_CHECKS}, got {value!r}")
        self._check_finite = value

    def require_finite(self, value: Tensor, message: str) -> None:
        """ValueError(message) if ``value`` holds a NaN or Inf: at once or deferred, by :attr:`check_finite`."""
        mode = self._check_finite
        if mode == "off":
            return
        bad = ~torch.isfinite(value).all()
        if mode == "now" or (mode == "auto" and reads_are_free(value)):
            if bool(bad):
                raise ValueError(message)
        else:
            seen = self._nonfinite.get(message)
            self._nonfinite[message] = bad if seen is None else seen | bad

    def raise_if_nonfinite(self) -> None:
        """Raise the first deferred non-finite error since the last call, if any (one host sync), and reset."""
        pending, self._nonfinite = self._nonfinite, {}
        if pending:
            flags = torch.stack(list(pending.values())).tolist()
            for message, bad in zip(pending, flags):
                if bad:
                    raise ValueError(message)

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
        return z if self.standard_target else whiten(z, self.target_mean, self.target_chol)

    def random_directions(self, num: int, like: Tensor) -> Tensor:
        """``num`` unit vectors, uniform on the sphere, as a (d, num) matrix on ``like``'s device, in
        float32 (float64 for float64 ``like``) whatever ``like``'s precision."""
        theta = torch.randn(self.dim, num, generator=self.generator, dtype=torch.float32)
        theta = theta / theta.norm(dim=0, keepdim=True)
        return to_device(theta.to(compute_dtype(like.dtype)), like)

    def check_input(self, z: Tensor, name: str = "z") -> Tensor:
        """:func:`check_batch`, then :meth:`require_finite` on the upcast batch."""
        z = check_batch(z, self.dim, name)
        self.require_finite(z, f"{name} contains NaN or Inf: the encoder produced non-finite embeddings")
        return z

    def forward(self, z: Tensor) -> Tensor:
        z = self.check_input(z)
        if torch.is_grad_enabled() and torch.is_autocast_enabled(z.device.type):
            params = [p for p in self.parameters() if p.requires_grad]
            loss = _Float32Backward.apply(self._global_penalty, z, *params)
        else:
            loss = self._global_penalty(z)
        self.require_finite(loss, f"{type(self).__name__} produced a non-finite value")
        return loss

    def _global_penalty(self, z: Tensor) -> Tensor:
        """:meth:`penalty` on the global batch, with autocast disabled."""
        with torch.autocast(device_type=z.device.type, enabled=False):
            z = gather_with_grad(z, self.equal_rank_batches)
            if z.shape[0] < self.min_batch:
                raise ValueError(f"{type(self).__name__} needs at least {self.min_batch} rows in the "
                                 f"(global) batch, got {z.shape[0]}")
            return self.penalty(z)

    def penalty(self, z: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"dim={self.dim}, standard_target={self.standard_target}"
