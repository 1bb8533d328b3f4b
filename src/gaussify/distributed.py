"""Global-batch statistics under ``torch.distributed``.

Every rank computes the regularizer on the *global* batch, so its value is the same on
every rank and equals the single-process value on the concatenated batch. Gradients flow
back through the gather: the backward pass SUM-reduces the gradient of the global batch
across ranks and hands each rank its own slice. Each rank's loss already carries the full
gradient, so after SUM the local slice is ``world_size`` times it, and DDP's gradient
*averaging* brings it back to exactly the single-process gradient. SUM is used, never AVG
(AVG is unsupported on the gloo backend).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from ._validation import check_bool, check_int

__all__ = ["is_distributed", "world_size", "rank", "gather_with_grad", "all_reduce_sum_with_grad",
           "broadcast_seed"]


def is_distributed() -> bool:
    """True when a process group with more than one rank is initialised.

    Examples
    --------
    >>> from gaussify.distributed import is_distributed
    >>> is_distributed()  # no process group here
    False
    """
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """The number of ranks of the process group, 1 without one.

    Examples
    --------
    >>> from gaussify.distributed import world_size
    >>> world_size()
    1
    """
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's rank in the process group, 0 without one.

    Examples
    --------
    >>> from gaussify.distributed import rank
    >>> rank()
    0
    """
    return dist.get_rank() if is_distributed() else 0


class _GatherRows(torch.autograd.Function):
    """Concatenate every rank's rows; backward: SUM-reduce, keep own slice.

    The receive buffers' sizes must be known to the host, so when the ranks' sizes may differ they are
    all-gathered and read back: one host–device sync per call on an accelerator, inherent to a gather of
    variable size. ``equal_sizes=True`` (every rank passes as many rows as this one, as under a
    ``DistributedSampler``) skips that exchange; unequal sizes then make the collective fail or hang.
    """

    @staticmethod
    def forward(ctx, z: Tensor, equal_sizes: bool) -> Tensor:
        world = dist.get_world_size()
        if equal_sizes:
            sizes = [z.shape[0]] * world
        else:
            n_local = torch.tensor([z.shape[0]], device=z.device, dtype=torch.long)
            gathered = [torch.zeros_like(n_local) for _ in range(world)]
            dist.all_gather(gathered, n_local)
            sizes = torch.cat(gathered).tolist()  # the one read
        n_max = max(sizes)
        padded = z if z.shape[0] == n_max else torch.cat([z, z.new_zeros((n_max - z.shape[0],) + z.shape[1:])])
        chunks = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(chunks, padded.contiguous())
        ctx.sizes = sizes
        ctx.rank = dist.get_rank()
        return torch.cat([c[:s] for c, s in zip(chunks, sizes)], dim=0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]], None


class _AllReduceSum(torch.autograd.Function):
    """SUM all-reduce whose backward is a SUM all-reduce too (the same convention as the gather)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        out = x.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def gather_with_grad(z: Tensor, equal_sizes: bool = False) -> Tensor:
    """The global batch (rows of every rank, in rank order); identity without a process group.
    ``equal_sizes``: every rank passes as many rows, so the sizes need not be exchanged (no host sync).

    Examples
    --------
    Without a process group (a single process):

    >>> import torch
    >>> from gaussify.distributed import gather_with_grad
    >>> z = torch.randn(4, 2, requires_grad=True)
    >>> gather_with_grad(z) is z
    True
    """
    check_bool(equal_sizes, "equal_sizes")
    return _GatherRows.apply(z, equal_sizes) if is_distributed() else z


def all_reduce_sum_with_grad(x: Tensor) -> Tensor:
    """Σ over ranks of ``x`` with gradients; identity without a process group.

    Examples
    --------
    Without a process group (a single process):

    >>> import torch
    >>> from gaussify.distributed import all_reduce_sum_with_grad
    >>> all_reduce_sum_with_grad(torch.tensor(3.0))
    tensor(3.)
    """
    return _AllReduceSum.apply(x) if is_distributed() else x


def broadcast_seed(seed: int) -> int:
    """Rank 0's seed on every rank, so random directions are identical everywhere.

    Examples
    --------
    >>> from gaussify.distributed import broadcast_seed
    >>> broadcast_seed(42)  # a single process keeps its own
    42
    """
    seed = check_int(seed, "seed", minimum=0)
    if not is_distributed():
        return seed
    backend = dist.get_backend()
    device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
    t = torch.tensor([seed], dtype=torch.long, device=device)
    dist.broadcast(t, src=0)
    return int(t.item())
