"""The training loop shared by :class:`~gaussify.GaussianEmbedder` and the CLI.

loss = task_loss + weight · regularizer(z), minibatch Adam, early stopping on the task loss of a
validation split (best weights restored), a progress bar when verbose, and a clear stop on a non-finite
loss with the last good weights kept. ``weight="auto"`` replaces the fixed weight by a Lagrange
multiplier held by dual ascent on a Gaussianity constraint (GECO, Rezende & Viola 2018).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .regularizers import KLDivergence, Posterior, Regularizer, SlicedWasserstein
from .tasks import Task

__all__ = ["TrainingDiverged", "DualWeight", "TrainResult", "train"]


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or Inf; the model keeps the weights of the last good step."""


class DualWeight:
    """Regularizer weight λ held by dual ascent on the constraint SW₂²(z) ≤ κ.

    The monitor is the sliced Wasserstein statistic of the batch (64 directions) and κ its level
    on exact target batches of the same size (mean + 2 sd over 32 Monte Carlo batches), so
    "auto" asks for batches as Gaussian as true Gaussian batches. With an exponential moving
    average c̄ of the monitor, log λ ← log λ + η · tanh((c̄ − κ)/sd), clipped to [e⁻⁷, e⁹].
    """

    def __init__(self, regularizer: Regularizer, batch_size: int, seed: int, rate: float = 0.05) -> None:
        self.monitor = SlicedWasserstein(regularizer.target, num_projections=64, seed=seed)
        self.monitor.to(regularizer.target_mean.device)
        gen = torch.Generator().manual_seed(seed)
        target = regularizer.target
        with torch.no_grad():
            null = torch.stack([self.monitor(target.sample(batch_size, gen).float()) for _ in range(32)])
        self.level = float(null.mean() + 2 * null.std())
        self.scale = float(null.std().clamp_min(1e-8))
        self.rate = rate
        self.log_weight = 0.0
        self.average: float | None = None

    @property
    def value(self) -> float:
        return math.exp(self.log_weight)

    def update(self, z: Tensor) -> None:
        with torch.no_grad():
            current = float(self.monitor(z.detach()))
        self.average = current if self.average is None else 0.9 * self.average + 0.1 * current
        step = self.rate * math.tanh((self.average - self.level) / self.scale)
        self.log_weight = min(9.0, max(-7.0, self.log_weight + step))


@dataclass
class TrainResult:
    history: dict[str, list[float]] = field(default_factory=dict)
    epochs: int = 0
    stopped_early: bool = False


def _embed(encoder: nn.Module, x: Tensor) -> tuple[Tensor, Tensor | Posterior]:
    out = encoder(x)
    return (out.sample, out) if isinstance(out, Posterior) else (out, out)


def _task_loss(encoder, task, X, idx, generator) -> tuple[Tensor, Tensor, Tensor | Posterior]:
    """Task loss of the minibatch ``idx``, with the embeddings of the rows the task encoded (batch first)."""
    x = X[task.rows(idx, generator)]
    z, out = _embed(encoder, x)
    return task(z, x, idx), z, out


def _batch_loss(encoder, regularizer, task, X, idx, weight, generator):
    task_loss, z, out = _task_loss(encoder, task, X, idx, generator)
    n = idx.shape[0]
    if weight == 0:  # a plain fit: the regularizer is not computed at all
        return task_loss, task_loss, task_loss.new_zeros(()), z[:n]
    reg_input = Posterior(*(t[:n] for t in out)) if isinstance(regularizer, KLDivergence) else z[:n]
    reg_loss = regularizer(reg_input)
    return task_loss + weight * reg_loss, task_loss, reg_loss, z[:n]


def train(encoder: nn.Module, regularizer: Regularizer, task: Task, X: Tensor, train_idx: Tensor,
          val_idx: Tensor | None, *, weight: float | str, max_epochs: int, batch_size: int,
          learning_rate: float, n_iter_no_change: int, seed: int, verbose: bool) -> TrainResult:
    """Train ``encoder`` (and the task's head) in place; returns the per-epoch history."""
    from tqdm.auto import tqdm

    generator = torch.Generator().manual_seed(seed)
    params = list(encoder.parameters()) + list(task.parameters())
    optimizer = torch.optim.Adam(params, lr=learning_rate)
    batch_size = min(batch_size, train_idx.shape[0])
    dual = DualWeight(regularizer, batch_size, seed) if weight == "auto" else None
    history: dict[str, list[float]] = {"loss": [], "task": [], "regularizer": [], "weight": [], "val_loss": [],
                                       "seconds": []}
    # the stopping criterion is the validation *task* loss: the regularizer is a batch statistic
    # that fluctuates around its null level, so its noise would stop training before the task is learned
    best_val, best_state, stale = math.inf, None, 0
    last_good = copy.deepcopy((encoder.state_dict(), task.state_dict()))
    result = TrainResult(history=history)
    bar = tqdm(range(max_epochs), desc="training", unit="epoch", disable=not verbose, leave=False)
    for epoch in bar:
        started = time.perf_counter()
        encoder.train(), task.train(), regularizer.train()
        order = train_idx[torch.randperm(train_idx.shape[0], generator=generator)]
        sums = torch.zeros(3)
        n_batches = 0
        for start in range(0, order.shape[0], batch_size):
            idx = order[start : start + batch_size]
            if idx.shape[0] < 2:
                continue
            w = dual.value if dual else float(weight)
            loss, task_loss, reg_loss, z = _batch_loss(encoder, regularizer, task, X, idx, w, generator)
            if not bool(torch.isfinite(loss)):
                encoder.load_state_dict(last_good[0]), task.load_state_dict(last_good[1])
                raise TrainingDiverged(
                    f"the loss became {loss.item()} at epoch {epoch + 1} (task {task_loss.item():.4g}, "
                    f"regularizer {reg_loss.item():.4g}, weight {w:.4g}); kept the last good weights. "
                    "Try a smaller learning_rate or weight.")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if dual:
                dual.update(z)
            sums += torch.tensor([loss.item(), task_loss.item(), reg_loss.item()])
            n_batches += 1
        last_good = copy.deepcopy((encoder.state_dict(), task.state_dict()))
        means = (sums / max(n_batches, 1)).tolist()
        for key, value in zip(("loss", "task", "regularizer"), means):
            history[key].append(value)
        history["weight"].append(dual.value if dual else float(weight))
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
            loss = _task_loss(encoder, task, X, idx, generator)[0]
            total += loss.item() * idx.shape[0]
            count += idx.shape[0]
    return total / max(count, 1)
