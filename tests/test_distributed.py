"""Global-batch equivalence under DistributedDataParallel (2 processes, gloo, via torchrun)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import ddp_worker  # noqa: E402

WORKER = Path(__file__).with_name("ddp_worker.py")


def run_ddp(tmp_path: Path, sizes: str, task: bool) -> list[dict]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(WORKER), "--out", str(tmp_path), "--sizes", sizes] + (["--task"] if task else [])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]


@pytest.mark.parametrize("sizes,task", [("6,6", True), ("4,7", False)])
def test_ddp_matches_single_process(tmp_path, sizes, task):
    """Every rank sees the regularizer of the global batch, and after DDP's gradient averaging
    the parameters get the single-process gradient on the concatenated batch (within 1e-6).
    With a task loss (a per-rank mean) the local batches must be equal for the averaging to be
    exact; the regularizer alone is exact for unequal batches too. Equal batches (6, 6) take the gather without
    the exchange of sizes (``equal_rank_batches``), unequal ones (4, 7) the exchange."""
    ranks = run_ddp(tmp_path, sizes, task)
    reference = ddp_worker.run([int(s) for s in sizes.split(",")], task)
    for name, (value, grad) in reference.items():
        for r, res in enumerate(ranks):
            v, g = res[name]
            torch.testing.assert_close(v, value, atol=1e-6, rtol=1e-6, msg=f"{name}: value on rank {r}")
            torch.testing.assert_close(g, grad, atol=1e-6, rtol=1e-6, msg=f"{name}: gradient on rank {r}")
