"""Run under ``torchrun --nproc_per_node 2``: each rank trains one step of a small model with
every regularizer on its slice of a fixed global batch and saves its value and DDP gradients.

``tests/test_distributed.py`` compares them with one process on the concatenated batch.
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from gaussify import GaussianHead, make_regularizer
from gaussify.regularizers import REGISTRY

NAMES = [*REGISTRY, "swd+0.5*knn"]
IN_DIM, DIM = 6, 3
WARM_UP = 2  # calls before the measured one: stateful regularizers (placement's running covariance, pursued-swd's
# memory, which pursues from 4d = 12 rows on) are compared in the state training reaches


def make_batch(total: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    x = torch.randn(total, IN_DIM, generator=g, dtype=torch.float64)
    y = torch.randn(total, DIM, generator=g, dtype=torch.float64)
    return x, y


def takes_posterior(name: str) -> bool:
    return name in REGISTRY and REGISTRY[name].takes == "posterior"


def make_model(name: str) -> torch.nn.Module:
    torch.manual_seed(7)
    if takes_posterior(name):
        return GaussianHead(IN_DIM, DIM).double().eval()  # eval: sample = mean, no noise
    return torch.nn.Sequential(torch.nn.Linear(IN_DIM, 8), torch.nn.Tanh(), torch.nn.Linear(8, DIM)).double()


def step(name: str, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, with_task: bool, equal_sizes: bool):
    """One forward/backward; returns (regularizer value, task loss, flat parameter gradient). With equal local
    batches the gather skips the exchange of sizes (``equal_rank_batches``)."""
    reg = make_regularizer(name, DIM, random_state=11).double()
    reg.equal_rank_batches = equal_sizes
    with torch.no_grad():
        for _ in range(WARM_UP):
            reg(model(x))
    out = model(x)
    z = out.mean if takes_posterior(name) else out
    value = reg(out) if takes_posterior(name) else reg(z)
    task = ((z - y) ** 2).mean() if with_task else z.sum() * 0
    (task + 0.5 * value).backward()
    grad = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    return value.detach(), grad


def run(sizes: list[int], with_task: bool) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Values and gradients on this rank (or the single-process reference when not distributed)."""
    x, y = make_batch(sum(sizes))
    if dist.is_initialized():
        r = dist.get_rank()
        start = sum(sizes[:r])
        x, y = x[start : start + sizes[r]], y[start : start + sizes[r]]
    results = {}
    for name in NAMES:
        model = make_model(name)
        if dist.is_initialized():
            model = DistributedDataParallel(model)
        results[name] = step(name, model, x, y, with_task, len(set(sizes)) == 1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--sizes", default="5,5")
    parser.add_argument("--task", action="store_true")
    args = parser.parse_args()
    dist.init_process_group("gloo")
    sizes = [int(s) for s in args.sizes.split(",")]
    results = run(sizes, args.task)
    torch.save(results, os.path.join(args.out, f"rank{dist.get_rank()}.pt"))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
