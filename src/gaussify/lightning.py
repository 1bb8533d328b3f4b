"""Lightning integration: :class:`GaussianRegularization` adds a Gaussian regularizer to any LightningModule.

The module's ``training_step`` returns ``{"loss": task_loss, "z": embeddings, ...}`` (a
:class:`~gaussify.Posterior` for a regularizer that takes one, such as ``kl``); the callback makes the loss
``task_loss + weight · regularizer(z)`` and logs the penalty, a running Gaussianity estimate and the RankMe of the
epoch's last batch. Under Lightning's DDP strategies the regularizer and RankMe see the global batch
(:mod:`gaussify.distributed`) and the running estimate is merged across ranks, so every rank logs the
single-process values.

Needs ``pip install gaussify[lightning]``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import torch

try:
    from lightning.pytorch import Callback, LightningModule, Trainer
except ImportError as err:  # pragma: no cover - exercised with lightning hidden from sys.modules
    raise ImportError("gaussify.lightning needs Lightning; install it with `pip install gaussify[lightning]`") from err

from ._validation import RandomState, as_seed, check_bool, check_int, check_real, renamed_parameters
from .distributed import gather_with_grad
from .metrics.ssl import rankme as effective_rank
from .metrics.streaming import MeanCov, SlicedEppsPulley, all_reduce
from .regularizers import Regularizer

__all__ = ["GaussianRegularization"]


class GaussianRegularization(Callback):
    r"""Callback: loss ← loss + ``weight`` · regularizer(z), with z = ``training_step(...)[key]``.

    Logged with ``sync_dist=True`` (``prefix`` = ``"gaussian"`` by default):

    * ``{prefix}/{regularizer.name}`` -- the penalty of each step (already a global-batch value under DDP);
    * ``{prefix}/sliced_ep`` and ``{prefix}/placement_kl`` at each epoch end -- a running Gaussianity estimate
      of all embeddings of the epoch: the mean Epps–Pulley statistic of ``num_slices`` fixed slices in the
      target's coordinates (expectation :attr:`SlicedEppsPulley.null_mean` ≈ 1.05 under the target, any n)
      and KL(N(mean, cov) ‖ target), accumulated by :mod:`gaussify.metrics.streaming` and merged across ranks.
      ``monitor=False`` turns this off (it copies z to the CPU each step);
    * ``{prefix}/rankme`` at each epoch end -- :func:`~gaussify.metrics.rankme` of the epoch's last (global)
      batch, a label-free effective rank of the embedding that falls towards 1 as it collapses: one SVD of a
      batch per epoch, without gradients. ``rankme=False`` turns it off.

    The weight multiplies a global-batch statistic, so it transfers unchanged across numbers of devices at a
    fixed global batch size; the task loss must be a mean over the batch, with equal per-rank batches, for DDP's
    gradient averaging to reproduce the single-process step exactly (see docs/scaling.md).

    ``training_step`` is wrapped on the module instance at ``on_fit_start`` and restored at ``teardown``.

    Parameters
    ----------
    regularizer : Regularizer
        The penalty, e.g. from :func:`~gaussify.make_regularizer`; it receives ``training_step(...)[key]``.
    weight : float, default 1.0
        Its weight in the loss.
    key : str, default "z"
        The entry of ``training_step``'s output that holds the embeddings (or the posterior).
    prefix : str, default "gaussian"
        The prefix of the logged names.
    monitor : bool, default True
        Log the running Gaussianity estimate at each epoch end.
    rankme : bool, default True
        Log the RankMe of the epoch's last batch.
    num_slices : int, default 64
        Slices of the running Epps–Pulley estimate.
    random_state : None, int or numpy.random.Generator, default 0
        Seed of those slices.

    Examples
    --------
    >>> import torch
    >>> import lightning.pytorch as pl
    >>> from gaussify import SlicedWasserstein
    >>> from gaussify.lightning import GaussianRegularization
    >>> class Model(pl.LightningModule):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.net = torch.nn.Linear(4, 2)
    ...     def training_step(self, batch, batch_idx):
    ...         z = self.net(batch[0])
    ...         return {"loss": z.square().mean(), "z": z}
    ...     def configure_optimizers(self):
    ...         return torch.optim.SGD(self.parameters(), lr=0.1)
    >>> data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(128, 4)), batch_size=64)
    >>> callback = GaussianRegularization(SlicedWasserstein(2, random_state=0), weight=1.0)
    >>> trainer = pl.Trainer(max_epochs=1, callbacks=[callback], accelerator="cpu", logger=False,
    ...                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    >>> trainer.fit(Model(), data)
    >>> sorted(name for name in trainer.callback_metrics if not name.startswith("gaussian/swd_"))
    ['gaussian/placement_kl', 'gaussian/rankme', 'gaussian/sliced_ep', 'gaussian/swd']
    """

    @renamed_parameters(seed="random_state")
    def __init__(self, regularizer: Regularizer, weight: float = 1.0, *, key: str = "z", prefix: str = "gaussian",
                 monitor: bool = True, rankme: bool = True, num_slices: int = 64,
                 random_state: RandomState = 0) -> None:
        if not isinstance(regularizer, Regularizer):
            raise TypeError("regularizer must be a gaussify Regularizer, e.g. gaussify.make_regularizer('sigreg', 8); "
                            f"got {type(regularizer).__name__}")
        self.regularizer = regularizer
        self.weight = check_real(weight, "weight")
        self.key = key
        self.prefix = prefix
        self.monitor = check_bool(monitor, "monitor")
        self.rankme = check_bool(rankme, "rankme")
        self.num_slices = check_int(num_slices, "num_slices")
        self.seed = as_seed(random_state)
        self._moments: MeanCov | None = None
        self._slices: SlicedEppsPulley | None = None
        self._last_batch: torch.Tensor | None = None

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.regularizer.to(pl_module.device)
        step = pl_module.training_step

        @functools.wraps(step)
        def training_step(*args: Any, **kwargs: Any) -> Any:
            return self._regularize(pl_module, step(*args, **kwargs))

        # the instance attribute shadows the class method (deliberately: mypy forbids assigning to a method)
        pl_module.training_step = training_step  # type: ignore[method-assign]

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        pl_module.__dict__.pop("training_step", None)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.monitor:
            dim, target = self.regularizer.dim, self.regularizer.target
            self._moments = MeanCov(dim)
            self._slices = SlicedEppsPulley(dim, target, num_slices=self.num_slices, random_state=self.seed)

    def _regularize(self, pl_module: LightningModule, output: Any) -> dict[str, Any]:
        if not (isinstance(output, Mapping) and "loss" in output and self.key in output):
            raise TypeError(f"GaussianRegularization needs training_step to return a dict with 'loss' and "
                            f"{self.key!r} (the embeddings), got {type(output).__name__}"
                            + (f" with keys {sorted(output)}" if isinstance(output, Mapping) else ""))
        z = output[self.key]
        penalty = self.regularizer(z)
        pl_module.log(f"{self.prefix}/{self.regularizer.name or type(self.regularizer).__name__}",
                      penalty.detach(), on_step=True, on_epoch=True, sync_dist=True)
        sample = (z.sample if self.regularizer.takes == "posterior" else z).detach()
        if self.rankme:
            self._last_batch = sample
        if self._moments is not None:
            rows = sample.to(device="cpu", dtype=torch.float64).numpy()
            assert self._slices is not None  # set and cleared with _moments
            self._moments.update(rows)
            self._slices.update(rows)
        return {**output, "loss": output["loss"] + self.weight * penalty}

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        values = {}
        if self._last_batch is not None:
            values["rankme"] = effective_rank(gather_with_grad(self._last_batch).to(device="cpu", dtype=torch.float64))
            self._last_batch = None
        if self._moments is not None:
            assert self._slices is not None  # set and cleared with _moments
            moments, slices = all_reduce(self._moments), all_reduce(self._slices)
            self._moments = self._slices = None
            values["sliced_ep"] = float(slices.compute().mean())
            if moments.n > moments.dim:
                values["placement_kl"] = moments.placement_kl(self.regularizer.target)
        for name, value in values.items():
            pl_module.log(f"{self.prefix}/{name}", torch.tensor(value, dtype=torch.float64, device=pl_module.device),
                          sync_dist=True)
