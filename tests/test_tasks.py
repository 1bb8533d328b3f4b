"""Task losses."""

from __future__ import annotations

import torch

from gaussify.tasks import NeighborsTask


def test_neighbors_task_is_the_umap_attraction_and_mean_in_batch_repulsion():
    """−mean_i log q_ij − mean_{i, l≠i} log(1 − q_il), q = 1/(1 + d²), written here with a boolean selection of
    the off-diagonal pairs (which the task avoids: its size would be read on the host)."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2 * 24, 3, generator=g, dtype=torch.float64)
    anchor, positive = z[:24], z[24:]
    q = 1.0 / (1.0 + torch.cdist(anchor, anchor).square())
    off_diagonal = ~torch.eye(24, dtype=torch.bool)
    expected = (torch.log1p((anchor - positive).square().sum(1)).mean()
                - torch.log1p(-q[off_diagonal].clamp(max=1 - 1e-6)).mean())
    task = NeighborsTask(torch.zeros(24, 1, dtype=torch.long))
    torch.testing.assert_close(task(z, z, torch.arange(24)), expected, rtol=1e-12, atol=0)
