"""Throughput and peak memory of :func:`gaussify.metrics.streaming.evaluate_streaming` on a file larger than RAM.

Writes a float32 ``.npy`` of standard-normal rows (``--size-gb`` gigabytes, default 10 GB: that needs the disk
space and takes several minutes per pass), then evaluates it in a fresh child process, so that process's
peak resident memory (``ru_maxrss``) measures the evaluation alone. Reported: rows/s and MB/s (file bytes per
second, both passes counted), the tracemalloc peak (NumPy buffers) and the peak resident set (VmHWM), next to
the file size. Memory should stay O(chunk_size · d + d³) whatever the file size.

    python benchmarks/bench_streaming.py --size-gb 0.5                 # a quick run
    python benchmarks/bench_streaming.py --size-gb 10 --dir /scratch   # the default size; needs 10 GB free
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np


def write_file(path: Path, size_gb: float, dim: int, seed: int) -> int:
    """A float32 (n, dim) standard-normal .npy of about ``size_gb`` GB, written 2**18 rows at a time."""
    rows = int(size_gb * 1e9 / (4 * dim))
    if rows < dim + 2:
        raise SystemExit(f"--size-gb {size_gb} gives {rows} rows; need at least dim + 2 = {dim + 2}")
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, dim))
    rng = np.random.default_rng(seed)
    for start in range(0, rows, 1 << 18):
        block = out[start:start + (1 << 18)]
        block[:] = rng.standard_normal(block.shape, dtype=np.float32)
    out.flush()
    del out
    return rows


def memory_status() -> dict[str, float]:
    """Peak and current resident memory of this process in MiB (Linux /proc; ru_maxrss elsewhere).

    VmHWM is reset by exec, unlike ru_maxrss, which Linux carries over from the forked parent.
    RssFile counts the pages of the mapped file currently resident (reclaimable page cache).
    """
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return {"VmHWM": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    return {k: int(fields[k].split()[0]) / 1024 for k in ("VmHWM", "VmRSS", "RssAnon", "RssFile") if k in fields}


def evaluate(path: Path, chunk_size: int, skewness: bool) -> dict:
    """Run in the child process: time one evaluation and record its memory peaks."""
    from gaussify.metrics.streaming import evaluate_streaming

    before = memory_status()
    tracemalloc.start()
    began = time.perf_counter()
    result = evaluate_streaming(path, chunk_size=chunk_size, skewness=skewness)
    seconds = time.perf_counter() - began
    traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {"n": result.n, "d": result.d, "seconds": seconds, "tracemalloc_peak_mib": traced_peak,
            "before": before, "after": memory_status(), "epps_pulley": result.epps_pulley["statistic"],
            "mardia_kurtosis_z": result.mardia_kurtosis.statistic}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=10.0, help="file size in GB (default 10)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--chunk-size", type=int, default=65_536)
    parser.add_argument("--no-skewness", action="store_true", help="skip Mardia skewness (O(d³) per row)")
    parser.add_argument("--dir", type=Path, default=None, help="where to write the file (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the data file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--evaluate", type=Path, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.evaluate:
        print(json.dumps(evaluate(args.evaluate, args.chunk_size, not args.no_skewness)))
        return

    folder = Path(tempfile.mkdtemp(dir=args.dir, prefix="bench_streaming_"))
    path = folder / "data.npy"
    try:
        began = time.perf_counter()
        rows = write_file(path, args.size_gb, args.dim, args.seed)
        write_s = time.perf_counter() - began
        size_mb = path.stat().st_size / 1e6
        cmd = [sys.executable, __file__, "--evaluate", str(path), "--chunk-size", str(args.chunk_size)]
        cmd += ["--no-skewness"] if args.no_skewness else []
        child = subprocess.run(cmd, capture_output=True, text=True, check=True)
        stats = json.loads(child.stdout.strip().splitlines()[-1])
    finally:
        if not args.keep:
            path.unlink(missing_ok=True)
            folder.rmdir()
    print(f"file            {size_mb:,.0f} MB, {rows:,} rows x {args.dim} float32 (written in {write_s:.1f} s)")
    print(f"evaluation      {stats['seconds']:.1f} s, two passes: {rows / stats['seconds']:,.0f} rows/s, "
          f"{2 * size_mb / stats['seconds']:,.0f} MB/s read")
    before, after = stats["before"], stats["after"]
    print(f"memory          tracemalloc peak {stats['tracemalloc_peak_mib']:.1f} MiB; "
          f"peak RSS {after['VmHWM']:.0f} MiB "
          f"(after imports {before['VmHWM']:.0f} MiB); at the end RSS {after.get('VmRSS', math.nan):.0f} MiB, "
          f"of which file pages {after.get('RssFile', math.nan):.0f} MiB; chunk_size {args.chunk_size}, "
          f"skewness {'off' if args.no_skewness else 'on'}")
    print(f"result          n={stats['n']:,}, sliced EP {stats['epps_pulley']:.3f}, "
          f"Mardia kurtosis z {stats['mardia_kurtosis_z']:.2f}; {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
