"""gaussify.lightning: the GaussianRegularization callback, single process and under Lightning's DDP strategy.

Run as a script under ``torchrun --nproc_per_node 2`` this file is the DDP worker: each rank fits the same
module with half the global batch and saves its final parameters and logged metrics.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

L = pytest.importorskip("lightning.pytorch")

from gaussify import make_regularizer  # noqa: E402
from gaussify.lightning import GaussianRegularization  # noqa: E402
from gaussify.metrics import rankme  # noqa: E402

N, GLOBAL_BATCH, IN_DIM, DIM = 64, 16, 6, 3


class TinyModule(L.LightningModule):
    """Encoder to R³ and a linear regression head on z; the task loss is the batch mean squared error."""

    def __init__(self, output: str = "dict") -> None:
        super().__init__()
        torch.manual_seed(0)
        self.encoder = torch.nn.Sequential(torch.nn.Linear(IN_DIM, 8), torch.nn.Tanh(), torch.nn.Linear(8, DIM))
        self.head = torch.nn.Linear(DIM, 1)
        self.output = output

    def training_step(self, batch, batch_idx):
        x, y = batch
        z = self.encoder(x)
        loss = ((self.head(z) - y) ** 2).mean()
        self.last_z = z.detach()
        return {"loss": loss, "z": z} if self.output == "dict" else loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.05)


def fit(devices: int, output: str = "dict", max_epochs: int = 2, rankme: bool = True) -> tuple[dict, dict, TinyModule]:
    """Fit on the fixed data with global batch GLOBAL_BATCH; returns (final parameters, logged metrics, module)."""
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(N, IN_DIM, generator=g), torch.randn(N, 1, generator=g)
    dataset = torch.utils.data.TensorDataset(x, y)
    # one permutation per epoch for any world size: rank r takes positions r, r + W, ... (Lightning calls set_epoch)
    sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=devices, rank=int(os.environ.get("RANK", 0)),
                                                  shuffle=True, seed=0)
    loader = torch.utils.data.DataLoader(dataset, batch_size=GLOBAL_BATCH // devices, sampler=sampler)
    module = TinyModule(output)
    callback = GaussianRegularization(make_regularizer("sigreg", DIM, num_slices=32, random_state=3), weight=0.5,
                                      rankme=rankme)
    trainer = L.Trainer(accelerator="cpu", devices=devices, strategy="ddp" if devices > 1 else "auto",
                        precision="64-true", max_epochs=max_epochs, use_distributed_sampler=False, callbacks=[callback],
                        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, loader)
    params = {k: v.detach().clone() for k, v in module.state_dict().items()}
    return params, {k: v.detach().clone().double() for k, v in trainer.callback_metrics.items()}, module


def test_ddp_matches_single_process(tmp_path):
    """Two ranks with 8 rows each take the single-process steps on 16 rows: the final parameters and every
    logged value (the regularizer per step and per epoch, the running sliced EP and placement KL, the RankMe of the
    last global batch) agree to 1e-6."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", __file__,
           "--out", str(tmp_path)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    params, metrics, _ = fit(devices=1)
    logged = {"gaussian/sigreg_step", "gaussian/sigreg_epoch", "gaussian/sliced_ep", "gaussian/placement_kl",
              "gaussian/rankme"}
    assert logged <= set(metrics)
    assert metrics["gaussian/sliced_ep"].dtype == torch.float64
    for r in range(2):
        ddp_params, ddp_metrics = torch.load(tmp_path / f"rank{r}.pt")
        assert set(ddp_metrics) == set(metrics)
        for name, value in params.items():
            torch.testing.assert_close(ddp_params[name], value, atol=1e-6, rtol=1e-6, msg=f"{name} on rank {r}")
        for name, value in metrics.items():
            torch.testing.assert_close(ddp_metrics[name], value, atol=1e-6, rtol=1e-6, msg=f"{name} on rank {r}")


def test_logs_rankme_of_the_last_batch_unless_switched_off():
    """The logged RankMe is that of the embeddings of the epoch's last training step; ``rankme=False`` leaves it
    out."""
    _, metrics, module = fit(devices=1, max_epochs=1)
    assert float(metrics["gaussian/rankme"]) == pytest.approx(rankme(module.last_z), rel=1e-12)
    assert 1.0 < float(metrics["gaussian/rankme"]) <= DIM
    _, metrics, _ = fit(devices=1, max_epochs=1, rankme=False)
    assert "gaussian/rankme" not in metrics and "gaussian/sliced_ep" in metrics


def test_needs_dict_output_with_embeddings():
    with pytest.raises(TypeError, match="return a dict with 'loss' and 'z'"):
        fit(devices=1, output="tensor", max_epochs=1)


def test_rejects_bad_arguments():
    with pytest.raises(TypeError, match="gaussify Regularizer"):
        GaussianRegularization(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="weight must be a finite number >= 0"):
        GaussianRegularization(make_regularizer("moments", 2), weight=-1.0)


def test_import_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "lightning", None)
    monkeypatch.setitem(sys.modules, "lightning.pytorch", None)
    monkeypatch.delitem(sys.modules, "gaussify.lightning")
    with pytest.raises(ImportError, match=r"pip install gaussify\[lightning\]"):
        importlib.import_module("gaussify.lightning")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    out = parser.parse_args().out
    params, metrics, _ = fit(devices=2)
    torch.save((params, metrics), out / f"rank{int(os.environ['RANK'])}.pt")
