"""No host-device synchronisation per step: a regularizer's forward and backward and a training step never
read a value back from the device, so on an accelerator the host can queue steps ahead of the device.

With CUDA, ``torch.cuda.set_sync_debug_mode("error")`` is the check. Without it, a CPU proxy counts the calls
that would synchronise on an accelerator: every read of a value on the host (``item``, ``bool``, ``float``,
``int``: all go through ``aten._local_scalar_dense``), ``tolist`` and ``numpy``, and the operations whose output
size depends on the data (``nonzero``, boolean-mask indexing, ...); and ``reads_are_free`` is patched so that
the CPU takes the accelerator's code paths (deferred finiteness checks, the sync-free Cramér–Wold branch).
Adam's step counters are host tensors on every device, so its own reads are not counted.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import gaussify.distributed as distributed
import gaussify.regularizers.base as base
import gaussify.regularizers.cramer_wold as cramer_wold
from gaussify import Posterior, make_regularizer
from gaussify.regularizers import REGISTRY
from gaussify.tasks import ClassificationTask, NeighborsTask
from gaussify.training import train

CUDA = torch.cuda.is_available()
DEVICE = torch.device("cuda" if CUDA else "cpu")
aten = torch.ops.aten
DATA_DEPENDENT = {aten.nonzero.default, aten.masked_select.default, aten._unique2.default, aten.unique_dim.default,
                  aten.unique_consecutive.default}
INDEXING = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default, aten._index_put_impl_.default}


def _in_optimizer() -> bool:
    frame = sys._getframe()
    while frame is not None:
        if "torch/optim/" in frame.f_code.co_filename.replace("\\", "/"):
            return True
        frame = frame.f_back
    return False


def _syncs(func, args) -> bool:
    if func is aten._local_scalar_dense.default or func in DATA_DEPENDENT:
        return True
    return func in INDEXING and any(
        isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8)
        for i in (args[1] if len(args) > 1 and isinstance(args[1], (list, tuple)) else ()))


class _SyncCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if _syncs(func, args) and not _in_optimizer():
            self.calls.append(str(func))
        return func(*args, **(kwargs or {}))


@contextmanager
def host_syncs(monkeypatch):
    """Yields the list of synchronising calls made inside the block (empty with CUDA: it raises instead)."""
    if CUDA:
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            yield []
        finally:
            torch.cuda.set_sync_debug_mode("default")
        return
    counter = _SyncCounter()
    with monkeypatch.context() as patch:
        for module in (base, cramer_wold):
            patch.setattr(module, "reads_are_free", lambda t: False)
        for method in ("tolist", "numpy"):
            original = getattr(torch.Tensor, method)

            def counted(self, *args, _original=original, _name=method, **kwargs):
                counter.calls.append(_name)
                return _original(self, *args, **kwargs)

            patch.setattr(torch.Tensor, method, counted)
        with counter:
            yield counter.calls


def _step(reg, x: torch.Tensor, weight: torch.Tensor) -> None:
    z = x @ weight
    (reg(Posterior(z, z, 0.1 * z)) if reg.takes == "posterior" else reg(z)).backward()


@pytest.mark.parametrize("name", list(REGISTRY) + ["swd+0.1*knn"])
def test_regularizer_step_does_not_synchronise(name, monkeypatch):
    """Default settings (``check_finite="auto"``: deferred on an accelerator); the first call, which fills
    caches (quantiles, quadrature grids) and seeds the generator, is not counted."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 5, generator=g).to(DEVICE)
    weight = torch.randn(5, 4, generator=g).to(DEVICE).requires_grad_(True)
    reg = make_regularizer(name, 4, random_state=0).to(DEVICE)
    _step(reg, x, weight)
    with host_syncs(monkeypatch) as calls:
        for _ in range(3):
            _step(reg, x, weight)
    assert calls == []
    reg.raise_if_nonfinite()  # the one read, once per epoch: nothing was non-finite


@contextmanager
def two_ranks(monkeypatch):
    """``torch.distributed`` faked in-process as rank 0 of 2 whose peer holds the same rows: the collectives
    copy (gather) or keep (reduce, broadcast) this rank's tensors, so the package takes its DDP code paths."""
    def all_gather(outputs, tensor):
        for out in outputs:
            out.copy_(tensor)

    with monkeypatch.context() as patch:
        patch.setattr(distributed, "is_distributed", lambda: True)
        for name, fake in (("get_world_size", lambda: 2), ("get_rank", lambda: 0), ("get_backend", lambda: "gloo"),
                           ("all_gather", all_gather), ("all_reduce", lambda t, op=None: None),
                           ("broadcast", lambda t, src: None)):
            patch.setattr(distributed.dist, name, fake)
        yield


@pytest.mark.parametrize("equal", [False, True])
def test_gather_reads_the_sizes_only_when_they_may_differ(equal, monkeypatch):
    """Under DDP the gather of the global batch reads the ranks' batch sizes once per call (one ``tolist``:
    the receive buffers' sizes must be known to the host when the sizes may differ); with
    ``equal_rank_batches`` it reads nothing."""
    if CUDA and not equal:
        pytest.skip("the exchange of sizes synchronises by design: the sync debug mode would raise")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 5, generator=g).to(DEVICE)
    weight = torch.randn(5, 4, generator=g).to(DEVICE).requires_grad_(True)
    reg = make_regularizer("sigreg", 4, random_state=0).to(DEVICE)
    reg.equal_rank_batches = equal
    with two_ranks(monkeypatch):
        _step(reg, x, weight)
        with host_syncs(monkeypatch) as calls:
            for _ in range(3):
                _step(reg, x, weight)
    assert calls == ([] if equal else ["tolist"] * 3)


def test_neighbors_task_step_does_not_synchronise(monkeypatch):
    """The neighbour task's rows, loss and backward (its in-batch negatives are a masked sum, not a boolean
    selection, whose size the host would read)."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 5, generator=g).to(DEVICE)
    task = NeighborsTask(torch.randint(64, (64, 4), generator=g).to(DEVICE))
    encoder = torch.nn.Linear(5, 2).to(DEVICE)
    idx = torch.arange(32, device=DEVICE)
    with host_syncs(monkeypatch) as calls:
        for _ in range(3):
            x = X[task.rows(idx, g)]
            task(encoder(x), x, idx).backward()
    assert calls == []


def test_deferred_finite_check_raises_once_read(monkeypatch):
    reg = make_regularizer("swd", 3, random_state=0)
    bad = torch.randn(16, 3).to(DEVICE)
    bad[3, 1] = float("nan")
    with host_syncs(monkeypatch) as calls:
        reg.check_finite = "deferred"
        reg(torch.randn(16, 3).to(DEVICE))
        reg(bad)  # no error yet
    assert calls == []
    with pytest.raises(ValueError, match="z contains NaN or Inf"):
        reg.raise_if_nonfinite()
    reg.raise_if_nonfinite()  # reading resets the flags
    reg.check_finite = "now"
    with pytest.raises(ValueError, match="z contains NaN or Inf"):
        reg(bad)
    with pytest.raises(ValueError, match="check_finite must be one of"):
        reg.check_finite = True


def _count_training_syncs(monkeypatch, rows: int, weight) -> list[str]:
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(3, (rows,), generator=g)
    X = (torch.randn(rows, 6, generator=g) + 3.0 * torch.eye(6)[labels]).to(DEVICE)
    torch.manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.SiLU(), torch.nn.Linear(16, 2)).to(DEVICE)
    task = ClassificationTask(labels.to(DEVICE), 2, 3).to(DEVICE)
    reg = make_regularizer("swd+0.1*knn", 2, random_state=0).to(DEVICE)
    with host_syncs(monkeypatch) as calls:
        train(encoder, reg, task, X, torch.arange(rows, device=DEVICE), None, weight=weight, max_epochs=2,
              batch_size=32, learning_rate=1e-3, n_iter_no_change=10, random_state=0, verbose=False)
    assert reg.check_finite == "auto"  # restored after training
    return calls


@pytest.mark.parametrize("weight", [10.0, "auto"])
def test_training_reads_the_device_once_per_epoch(weight, monkeypatch):
    """Twice the steps per epoch, the same reads: none of them is per step."""
    few, many = (_count_training_syncs(monkeypatch, rows, weight) for rows in (4 * 32, 8 * 32))
    assert few == many
    if weight != "auto" and not CUDA:  # (the dual weight also reads its calibration and its epoch mean)
        assert few == ["tolist"] * 2  # the epoch's sums and divergence flag, in one read
