"""Torch plumbing shared by the estimators: thread count, device and a private RNG scope."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import torch

__all__ = ["torch_threads", "torch_device", "seeded"]


@contextmanager
def torch_threads(n_jobs: int) -> Iterator[None]:
    """Run the block with ``n_jobs`` torch CPU threads (-1: every core), then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads((os.cpu_count() or 1) if n_jobs == -1 else int(n_jobs))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def torch_device(device: str) -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; anything else as ``torch.device`` reads it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@contextmanager
def seeded(seed: int, device: torch.device, n_jobs: int) -> Iterator[None]:
    """``n_jobs`` threads and torch's global RNG seeded with ``seed`` inside the block (module initialisation
    draws from it); the caller's RNG state is restored afterwards (``torch.random.fork_rng``)."""
    with torch_threads(n_jobs), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield
