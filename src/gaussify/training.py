"""The training loop shared by :class:`~gaussify.GaussianEmbedder` and the CLI.

loss = task_loss + weight · regularizer(z), minibatch Adam, early stopping on the task loss of a
validation split (best weights restored), a progress bar when verbose, and a clear stop on a non-finite
loss with the last good weights kept. ``weight="auto"`` replaces the fixed weight by a Lagrange
multiplier held by dual ascent on a Gaussianity constraint (GECO, Rezende & Viola 2018).

No step reads a value back from the device (on an accelerator each read stalls the host until the device
is done): the step losses are summed and a non-finite loss is flagged on the device, read once per epoch.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ._validation import (InvalidParameterError, RandomState, as_seed, check_bool, check_int, check_parameters,
                          check_random_state, check_real, renamed_parameters)
from .regularizers import NearestNeighborKL, Posterior, Regularizer
from .tasks import Task

__all__ = ["TrainingDiverged", "DualWeight", "TrainResult", "train"]


def check_weight(value: Any, name: str) -> None:
    """``InvalidParameterError`` unless ``value`` is a finite number >= 0 or ``"auto"`` (a :class:`DualWeight`)."""
    if isinstance(value, str) and value == "auto":
        return
    try:
        check_real(value, name)
    except InvalidParameterError:
        raise InvalidParameterError(f"{name} must be a finite number >= 0 or 'auto', got {value!r}") from None


def _check_input_noise(value: Any, name: str) -> Any:
    """``value`` itself; :class:`InvalidParameterError` unless it is a finite number >= 0 or a 0-D/1-D tensor of
    them (one standard deviation per feature)."""
    if not torch.is_tensor(value):
        return check_real(value, name)
    if value.ndim > 1 or not bool(torch.isfinite(value).all() and (value >= 0).all()):
        raise InvalidParameterError(f"{name} must be a finite number >= 0 or a 1-D tensor of them (one per "
                                    f"feature), got a tensor of shape {tuple(value.shape)}")
    return value


TRAIN_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "weight": check_weight,
    "gaussianity_level": lambda value, name: value is None or check_real(value, name, strict=True),
    "max_epochs": check_int, "batch_size": check_int, "n_iter_no_change": check_int,
    "learning_rate": lambda value, name: check_real(value, name, strict=True),
    "random_state": check_random_state, "verbose": check_bool,
    "input_noise": _check_input_noise,
}
"""The checks of :func:`train`'s options, by name (the estimator's table includes them)."""


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or Inf; the model keeps the weights of the last good step.

    Examples
    --------
    >>> from gaussify import TrainingDiverged
    >>> issubclass(TrainingDiverged, FloatingPointError)
    True
    """


class DualWeight:
    """Regularizer weight λ held by dual ascent on the constraint KL̂(batch ‖ target) ≤ κ (GECO, Rezende & Viola
    2018), so that the user states how Gaussian, not how much weight.

    The monitor is the Kozachenko–Leonenko estimate of the batch's KL to the target in nats
    (:class:`~gaussify.regularizers.NearestNeighborKL`, k = 1), minus its mean b on exact target batches of the
    same size (its bias), so κ is a KL in nats. ``level=None`` holds batches as Gaussian as exact ones: κ is the
    95% quantile of the corrected monitor over 32 exact target batches. Once per epoch, with m̄ the epoch mean
    of the corrected monitor, s its standard error on exact batches and e = tanh((m̄ − κ) / max(s, κ/10)), a
    bounded PI controller: I ← clip(I + η e, −7, 7) and log λ = I + g e (η = 0.1, g = 0.5). Bounded steps on a
    smoothed signal, one per epoch, so λ cannot wind up faster than the embedding answers (per-step updates
    on a sliced Wasserstein monitor drove it to its cap and back to its floor, destroying the task); the
    proportional term answers at once, the integral removes the steady offset. Measured on digits and
    mnist1d in 2-D: the last 10 epochs' batch KL within 2-11% of levels 0.25-0.3 nats.

    Parameters
    ----------
    regularizer : Regularizer
        The regularizer whose weight is held; its target is the monitor's.
    batch_size : int
        Rows per training batch (the exact target batches are drawn at this size).
    batches_per_epoch : int
        Batches per epoch (s is the standard error of an epoch's mean).
    random_state : None, int or numpy.random.Generator
        Seed of the exact target batches.
    level : float, optional
        κ in nats; None: the 95% quantile of the corrected monitor on exact batches.
    rate : float, default 0.1
        η, the integral step.
    gain : float, default 0.5
        g, the proportional gain.

    Examples
    --------
    >>> import torch
    >>> from gaussify import SlicedWasserstein
    >>> from gaussify.training import DualWeight
    >>> dual = DualWeight(SlicedWasserstein(2), batch_size=64, batches_per_epoch=1, random_state=0)
    >>> dual.value
    1.0
    >>> dual.update(3 * torch.randn(64, 2))  # a batch far from N(0, I) ...
    >>> dual.end_epoch() > dual.level, dual.value > 1.0  # ... raises the weight
    (True, True)
    """

    LOG_WEIGHT_BOUND = 7.0

    @renamed_parameters(seed="random_state")
    def __init__(self, regularizer: Regularizer, batch_size: int, batches_per_epoch: int, random_state: RandomState,
                 level: float | None = None, rate: float = 0.1, gain: float = 0.5) -> None:
        check_int(batch_size, "batch_size")
        check_int(batches_per_epoch, "batches_per_epoch")
        if level is not None:
            check_real(level, "level", strict=True)
        check_real(rate, "rate", strict=True)
        check_real(gain, "gain")
        seed = as_seed(random_state)
        self.monitor = NearestNeighborKL(regularizer.target, k=1, random_state=seed)
        self.monitor.check_finite = "off"  # a non-finite batch makes the training loss non-finite: train sees it
        self.monitor.to(regularizer.target_mean.device)
        gen = torch.Generator().manual_seed(seed)
        target = regularizer.target
        with torch.no_grad():
            null = torch.stack([self.monitor(target.sample(batch_size, gen).float().to(regularizer.target_mean.device))
                                for _ in range(32)]).cpu()
        self.bias = float(null.mean())
        self.level = float(torch.quantile(null - self.bias, 0.95)) if level is None else float(level)
        self.noise = float(null.std()) / math.sqrt(max(batches_per_epoch, 1))
        self.rate, self.gain = rate, gain
        self.log_weight = self.proportional = 0.0
        self._sum = torch.zeros((), device=regularizer.target_mean.device)
        self._count = 0
        self.last: float = math.nan

    @property
    def value(self) -> float:
        return math.exp(self.log_weight + self.proportional)

    def update(self, z: Tensor) -> None:
        """Add the batch's monitor value (kept on the device: no host sync per step)."""
        with torch.no_grad():
            self._sum += self.monitor(z.detach())
        self._count += 1

    def end_epoch(self) -> float:
        """One dual step from the epoch's mean monitor; returns that mean (bias-corrected, nats)."""
        if self._count:
            self.last = float(self._sum) / self._count - self.bias
            error = (self.last - self.level) / max(self.noise, 0.1 * abs(self.level), 1e-8)
            bound = self.LOG_WEIGHT_BOUND
            self.log_weight = min(bound, max(-bound, self.log_weight + self.rate * math.tanh(error)))
            self.proportional = self.gain * math.tanh(error)
        self._sum.zero_()
        self._count = 0
        return self.last


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    history : dict of str to list of float
        Per-epoch lists: loss, task, regularizer, weight, val_loss, seconds (and gaussianity with
        ``weight="auto"``).
    epochs : int
        The number of epochs trained.
    stopped_early : bool
        Whether early stopping ended the training.

    Examples
    --------
    >>> from gaussify.training import TrainResult
    >>> TrainResult()
    TrainResult(history={}, epochs=0, stopped_early=False)
    """
    history: dict[str, list[float]] = field(default_factory=dict)
    epochs: int = 0
    stopped_early: bool = False


def _embed(encoder: nn.Module, x: Tensor) -> tuple[Tensor, Tensor | Posterior]:
    out = encoder(x)
    return (out.sample, out) if isinstance(out, Posterior) else (out, out)


def _task_loss(encoder, task, X, idx, generator, input_noise=None) -> tuple[Tensor, Tensor, Tensor | Posterior]:
    """Task loss of the minibatch ``idx``, with the embeddings of the rows the task encoded (batch first).

    ``input_noise`` (per-feature sd, or None): the loss is the mean of the task's loss on the rows and on noisy
    copies x + noise (whose target is still x); the embeddings returned are the clean rows'."""
    x = X[task.rows(idx, generator)]
    z, out = _embed(encoder, x)
    loss = task(z, x, idx)
    if input_noise is not None:  # drawn on x's device by torch's generator there: no copy from the host
        loss = 0.5 * (loss + task(_embed(encoder, x + input_noise * torch.randn_like(x))[0], x, idx))
    return loss, z, out


def _batch_loss(encoder, regularizer, task, X, idx, weight, generator, input_noise=None):
    task_loss, z, out = _task_loss(encoder, task, X, idx, generator, input_noise)
    n = idx.shape[0]
    if weight == 0:  # a plain fit: the regularizer is not computed at all
        return task_loss, task_loss, task_loss.new_zeros(()), z[:n]
    reg_input = Posterior(*(t[:n] for t in out)) if regularizer.takes == "posterior" else z[:n]
    reg_loss = regularizer(reg_input)
    return task_loss + weight * reg_loss, task_loss, reg_loss, z[:n]


@contextmanager
def _finite_checks_off(regularizer: Regularizer) -> Iterator[None]:
    """The regularizer's own NaN/Inf checks off inside the block: :func:`train` checks the loss instead."""
    mode, regularizer.check_finite = regularizer.check_finite, "off"
    try:
        yield
    finally:
        regularizer.check_finite = mode


def _epoch(encoder, regularizer, task, X, order, batch_size, weight, generator, optimizer,
           dual, input_noise) -> tuple[list[float], int]:
    """One pass of minibatch steps over ``order``. Returns the number of steps and, read from the device
    once, [Σ loss, Σ task, Σ regularizer, 1 if a loss was non-finite, and the first such step's loss, task,
    regularizer]."""
    state, steps = None, 0
    for start in range(0, order.shape[0], batch_size):
        idx = order[start : start + batch_size]
        if idx.shape[0] < 2:
            continue
        loss, task_loss, reg_loss, z = _batch_loss(encoder, regularizer, task, X, idx, weight, generator,
                                                   input_noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if dual:
            dual.update(z)
        values = torch.stack([loss, task_loss, reg_loss]).detach()
        state = values.new_zeros(7) if state is None else state
        bad = ~torch.isfinite(values[0])
        state = torch.cat([state[:3] + values, state[3:4].logical_or(bad).to(values.dtype),
                           torch.where(bad & (state[3] == 0), values, state[4:])])
        steps += 1
    return ([0.0] * 7 if state is None else state.tolist()), steps


@renamed_parameters(seed="random_state")
def train(encoder: nn.Module, regularizer: Regularizer, task: Task, X: Tensor, train_idx: Tensor,
          val_idx: Tensor | None, *, weight: float | str, max_epochs: int, batch_size: int,
          learning_rate: float, n_iter_no_change: int, random_state: RandomState, verbose: bool,
          gaussianity_level: float | None = None, input_noise: float | Tensor = 0.0) -> TrainResult:
    """Train ``encoder`` (and the task's head) in place; returns the per-epoch history (with ``weight="auto"``
    also ``"gaussianity"``: the epoch's bias-corrected batch KL that :class:`DualWeight` holds at its level).

    Parameters
    ----------
    encoder : nn.Module
        Maps a batch of inputs to z (or to a :class:`~gaussify.Posterior`, for a regularizer that takes one).
    regularizer : Regularizer
        The Gaussian penalty.
    task : Task
        The task loss (:mod:`gaussify.tasks`); its parameters are trained too.
    X : Tensor of shape (n, n_features)
        The (scaled) inputs.
    train_idx : Tensor of int
        The rows to train on.
    val_idx : Tensor of int or None
        The rows of the early-stopping split (None: no early stopping).
    weight : float or "auto"
        The regularizer's weight, or ``"auto"`` for a :class:`DualWeight`.
    max_epochs, batch_size, learning_rate : int, int, float
        The optimisation (Adam).
    n_iter_no_change : int
        Epochs without improvement of the validation task loss before stopping.
    random_state : None, int or numpy.random.Generator
        Seed of the shuffling (and of the dual weight's target batches).
    verbose : bool
        Show a progress bar.
    gaussianity_level : float, optional
        κ of ``weight="auto"`` (:class:`DualWeight`'s ``level``).
    input_noise : float or Tensor, default 0
        Standard deviation (in X's units; a 1-D tensor gives one per feature) of Gaussian noise: the task's loss
        is the mean of its loss on the batch and on a noisy copy of it (targets: the clean rows; a second forward
        pass), while the regularizer scores the clean rows' embedding, the law ``transform`` gives. A data
        augmentation that keeps the encoder smooth around the training rows; 0 turns it off. The clean half keeps
        the encoder from mapping clean rows apart from noisy ones (with the task on noisy rows only, mnist1d at
        noise 1 lost half its linear probe: 0.40 against 0.72). The noise is drawn on X's device by torch's
        generator there (seed it with ``torch.manual_seed``), so a step copies nothing from the host.

    Returns
    -------
    TrainResult

    Raises
    ------
    TrainingDiverged
        When the loss becomes NaN or Inf (the weights of the last good step are kept).

    Examples
    --------
    >>> import torch
    >>> from gaussify import SlicedWasserstein
    >>> from gaussify.tasks import ReconstructionTask
    >>> from gaussify.training import train
    >>> X = torch.randn(100, 4, generator=torch.Generator().manual_seed(0))
    >>> encoder = torch.nn.Linear(4, 2)
    >>> result = train(encoder, SlicedWasserstein(2, random_state=0), ReconstructionTask(2, 4, (16,)), X,
    ...                torch.arange(100), None, weight=1.0, max_epochs=2, batch_size=50, learning_rate=1e-3,
    ...                n_iter_no_change=10, random_state=0, verbose=False)
    >>> result.epochs, sorted(result.history)
    (2, ['loss', 'regularizer', 'seconds', 'task', 'val_loss', 'weight'])
    """
    check_parameters({"weight": weight, "gaussianity_level": gaussianity_level, "max_epochs": max_epochs,
                      "batch_size": batch_size, "n_iter_no_change": n_iter_no_change, "learning_rate": learning_rate,
                      "random_state": random_state, "verbose": verbose, "input_noise": input_noise}, TRAIN_CHECKS)
    from tqdm.auto import tqdm

    seed = as_seed(random_state)
    generator = torch.Generator().manual_seed(seed)
    params = list(encoder.parameters()) + list(task.parameters())
    optimizer = torch.optim.Adam(params, lr=learning_rate)
    batch_size = min(batch_size, train_idx.shape[0])
    noise = (torch.as_tensor(input_noise, dtype=X.dtype, device=X.device)
             if torch.is_tensor(input_noise) or input_noise > 0 else None)
    dual = (DualWeight(regularizer, batch_size, math.ceil(train_idx.shape[0] / batch_size), seed,
                       level=gaussianity_level) if weight == "auto" else None)
    history: dict[str, list[float]] = {"loss": [], "task": [], "regularizer": [], "weight": [], "val_loss": [],
                                       "seconds": [], **({"gaussianity": []} if dual else {})}
    # the stopping criterion is the validation *task* loss: the regularizer is a batch statistic
    # that fluctuates around its null level, so its noise would stop training before the task is learned
    best_val, best_state, stale = math.inf, None, 0
    last_good = copy.deepcopy((encoder.state_dict(), task.state_dict()))
    result = TrainResult(history=history)
    bar = tqdm(range(max_epochs), desc="training", unit="epoch", disable=not verbose, leave=False)
    for epoch in bar:
        started = time.perf_counter()
        encoder.train(), task.train(), regularizer.train()
        perm = torch.randperm(train_idx.shape[0], generator=generator)
        order = train_idx[perm.to(train_idx.device, non_blocking=True)]
        w = dual.value if dual else float(weight)  # the dual weight moves once per epoch
        with _finite_checks_off(regularizer):
            totals, n_batches = _epoch(encoder, regularizer, task, X, order, batch_size, w, generator, optimizer, dual,
                                       noise)
        *sums, diverged, bad_loss, bad_task, bad_reg = totals
        if diverged:  # the weights are past the bad step: back to the end of the last good epoch
            encoder.load_state_dict(last_good[0]), task.load_state_dict(last_good[1])
            raise TrainingDiverged(
                f"the loss became {bad_loss} at epoch {epoch + 1} (task {bad_task:.4g}, "
                f"regularizer {bad_reg:.4g}, weight {w:.4g}); kept the last good weights. "
                "Try a smaller learning_rate or weight.")
        last_good = copy.deepcopy((encoder.state_dict(), task.state_dict()))
        means = [total / max(n_batches, 1) for total in sums]
        for key, value in zip(("loss", "task", "regularizer"), means):
            history[key].append(value)
        history["weight"].append(dual.value if dual else float(weight))
        if dual:
            history["gaussianity"].append(dual.end_epoch())
        history["seconds"].append(time.perf_counter() - started)
        result.epochs = epoch + 1
        if val_idx is not None and val_idx.shape[0] >= 2:
            val = _validation_loss(encoder, task, X, val_idx, batch_size, seed)
            history["val_loss"].append(val)
            if best_state is None or val < best_val - 1e-4 * abs(best_val):  # (inf - inf is NaN)
                best_val, stale = val, 0
                best_state = copy.deepcopy((encoder.state_dict(), task.state_dict()))
            else:
                stale += 1
        bar.set_postfix(loss=f"{means[0]:.4f}", reg=f"{means[2]:.4f}", weight=f"{history['weight'][-1]:.3g}")
        if stale >= n_iter_no_change:
            result.stopped_early = True
            break
    bar.close()
    if dual and abs(dual.log_weight) >= dual.LOG_WEIGHT_BOUND:
        warnings.warn(f"weight='auto' could not hold the batch KL at {dual.level:.3g} nats: the multiplier ended at "
                      f"its {'cap' if dual.log_weight > 0 else 'floor'} {dual.value:.3g} with the batch KL at "
                      f"{dual.last:.3g}; state a reachable gaussianity_level or use a fixed weight",
                      UserWarning, stacklevel=3)
    if best_state is not None:
        encoder.load_state_dict(best_state[0]), task.load_state_dict(best_state[1])
    return result


def _validation_loss(encoder, task, X, val_idx, batch_size, seed) -> float:
    """Task loss on the validation rows in eval mode (deterministic: fixed generator)."""
    encoder.eval(), task.eval()
    generator = torch.Generator().manual_seed(seed + 1)
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, val_idx.shape[0], batch_size):
            idx = val_idx[start : start + batch_size]
            if idx.shape[0] < 2:
                continue
            total = total + _task_loss(encoder, task, X, idx, generator)[0] * idx.shape[0]  # on the device
            count += idx.shape[0]
    return float(total) / max(count, 1)
