"""Benchmarks shipped with gaussify (``gaussify bench ...``): :mod:`gaussify.bench.speed`,
:mod:`gaussify.bench.quality` and :mod:`gaussify.bench.accuracy`, with the timing and machine description they
share."""

from __future__ import annotations

import datetime
import os
import platform
import time
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

__all__ = ["timed", "machine_lines"]


def _sync(device: Any) -> None:
    if getattr(device, "type", "cpu") == "cuda":
        import torch

        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: Any = None) -> tuple[Any, float]:
    """``(fn(), wall seconds)``; on a CUDA ``device`` the queued kernels are waited for on both sides.

    Examples
    --------
    >>> from gaussify.bench import timed
    >>> out, seconds = timed(lambda: sum(range(1000)))
    >>> out, seconds >= 0
    (499500, True)
    """
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - start


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def machine_lines(device: Any, packages: Sequence[str]) -> list[str]:
    """Date, machine, load and the versions of Python and ``packages``, as markdown bullet lines.

    Examples
    --------
    >>> from gaussify.bench import machine_lines
    >>> lines = machine_lines(None, ["numpy"])
    >>> [line.split(":")[0] for line in lines]
    ['- Date', '- Machine', '- Versions']
    """
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    gpu = ""
    if device is not None and getattr(device, "type", "") == "cuda":
        gpu = f"; GPU {torch.cuda.get_device_name(device)}"
    return [f"- Date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
            f"- Machine: {platform.platform()}; {cpu}; {cores} usable of {os.cpu_count()} CPUs; "
            f"torch threads {torch.get_num_threads()}; load average {load}{gpu}",
            f"- Versions: Python {platform.python_version()}; "
            + ", ".join(f"{p} {_version(p)}" for p in packages)]
