"""Train an encoder with a Gaussian regularizer on N processes:

    torchrun --nproc_per_node 2 examples/train_ddp.py --regularizer sigreg --dim 8 --out runs/ddp
    python examples/train_ddp.py --regularizer sigreg --dim 8 --out runs/single    # the same run, one process

loss = task + weight · regularizer(z), the task a linear classifier on z (cross-entropy), the data offline
(scikit-learn's digits or a Gaussian mixture). ``--batch-size`` is the *global* batch B: each of the W ranks
takes B/W rows, so one process with B and W processes with B/W take identical steps:

* the rows: ``DistributedSampler`` (same seed and epoch everywhere, ``drop_last``) hands rank r the positions
  r, r + W, ... of one permutation, so step s covers the same B rows whatever W is;
* the task loss: rank r returns W · Σ_local ℓᵢ / B; DDP *averages* gradients over ranks, giving ∇ Σ_all ℓᵢ / B,
  the single-process mean (a per-rank mean would only be right for equal local batches);
* the regularizer already sees the global batch (``gaussify.distributed``) and seeds its random directions
  identically on every rank, so its value and, after DDP's averaging, its gradient are the single-process ones.

With ``--dtype float64`` the two runs agree to rounding (tests/test_train_ddp_example.py); the exception is
``kl``, whose reparametrisation noise is drawn per rank.

Rank 0 writes ``metrics.jsonl`` (one line per epoch), ``checkpoint.pt`` (model, optimizer, regularizer state
and direction generator; written to a temporary file, then renamed, so a crash never leaves a torn file) and
``evaluation.json`` (:func:`gaussify.metrics.streaming.evaluate_streaming` of the final embeddings, each rank
embedding its shard and the statistics merged across ranks).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from gaussify import GaussianHead, Posterior, make_regularizer
from gaussify.datasets import digits, gaussian_mixture
from gaussify.distributed import rank, world_size
from gaussify.io import atomic_path
from gaussify.metrics.streaming import evaluate_streaming
from gaussify.regularizers import REGISTRY


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regularizer", default="sigreg", choices=sorted(REGISTRY))
    parser.add_argument("--weight", type=float, default=1.0, help="regularizer weight")
    parser.add_argument("--dim", type=int, default=8, help="embedding dimension")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--data", default="digits", choices=["digits", "mixture"])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256, help="global batch size (all ranks together)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--backend", default=None, help="torch.distributed backend (default: nccl on GPU, else gloo)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt if it exists")
    args = parser.parse_args(argv)
    for name in ("dim", "hidden", "epochs", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def load_data(name: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Features scaled to unit standard deviation per column (constant pixels left at 0) and labels."""
    X, y = digits() if name == "digits" else gaussian_mixture(random_state=seed)
    X = X - X.mean(axis=0)
    return X / np.maximum(X.std(axis=0), 1e-6), y


class Model(nn.Module):
    """Encoder x → z (a :class:`~gaussify.GaussianHead` posterior for ``kl``) and a linear classifier on z."""

    def __init__(self, in_dim: int, hidden: int, dim: int, classes: int, posterior: bool) -> None:
        super().__init__()
        last = GaussianHead(hidden, dim) if posterior else nn.Linear(hidden, dim)
        self.encoder = nn.Sequential(nn.Linear(in_dim, hidden), nn.SiLU(), last)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: Tensor) -> tuple[Tensor | Posterior, Tensor, Tensor]:
        out = self.encoder(x)
        z = out.sample if isinstance(out, Posterior) else out
        return out, z, self.head(z)


def run(args: argparse.Namespace) -> dict:
    """Train (resuming if asked), checkpoint, evaluate; returns the last epoch's metrics on every rank."""
    W, r = world_size(), rank()
    if args.batch_size % W:
        raise ValueError(f"--batch-size {args.batch_size} must be divisible by the number of processes {W}")
    dtype = getattr(torch, args.dtype)
    device = torch.device("cuda", torch.cuda.current_device()) if dist.is_initialized() and \
        dist.get_backend() == "nccl" else torch.device("cpu")
    X, y = load_data(args.data, args.seed)
    dataset = TensorDataset(torch.as_tensor(X, dtype=dtype), torch.as_tensor(y))
    sampler = DistributedSampler(dataset, num_replicas=W, rank=r, shuffle=True, seed=args.seed, drop_last=True)
    loader = DataLoader(dataset, batch_size=args.batch_size // W, sampler=sampler, drop_last=True)

    torch.manual_seed(args.seed)  # identical initial weights on every rank
    posterior = REGISTRY[args.regularizer].takes == "posterior"
    model = Model(X.shape[1], args.hidden, args.dim, int(y.max()) + 1, posterior).to(device, dtype)
    reg = make_regularizer(args.regularizer, args.dim, random_state=args.seed).to(device, dtype)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    torch.manual_seed(args.seed + r)  # reparametrisation noise (kl) differs between ranks
    checkpoint = args.out / "checkpoint.pt"
    start = 0
    if args.resume and checkpoint.is_file():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        model.load_state_dict(state["model"]), optimizer.load_state_dict(state["optimizer"])
        reg.load_state_dict(state["regularizer"]), reg.generator.set_state(state["generator"])
        if "regularizer_optimizer" in state:
            reg.optimizer.load_state_dict(state["regularizer_optimizer"])
        start = state["epoch"]
    if r == 0:
        args.out.mkdir(parents=True, exist_ok=True)
        if start == 0:  # a fresh run starts a fresh log
            (args.out / "metrics.jsonl").unlink(missing_ok=True)
    ddp = DistributedDataParallel(model) if dist.is_initialized() else model

    metrics: dict = {}
    for epoch in range(start, args.epochs):
        began = time.perf_counter()
        sampler.set_epoch(epoch)
        ddp.train(), reg.train()
        sums = torch.zeros(4, dtype=torch.float64, device=device)  # Σ ℓ, correct, rows, Σ regularizer
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            out, z, logits = ddp(xb)
            ce = F.cross_entropy(logits, yb, reduction="sum")
            task = ce * (W / args.batch_size)
            penalty = reg(out) if posterior else reg(z)
            loss = task + args.weight * penalty
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sums += torch.stack([ce.detach(), (logits.argmax(1) == yb).sum(), torch.tensor(len(yb)),
                                 penalty.detach() / W]).to(sums)
        if dist.is_initialized():
            dist.all_reduce(sums)  # the regularizer is global already: summed /W per rank
        steps = len(loader)
        metrics = {"epoch": epoch + 1, "task_loss": float(sums[0] / sums[2]), "accuracy": float(sums[1] / sums[2]),
                   "regularizer": float(sums[3] / steps), "seconds": time.perf_counter() - began}
        state = {"epoch": epoch + 1, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "regularizer": reg.state_dict(), "generator": reg.generator.get_state(), "args": vars(args)}
        if hasattr(reg, "optimizer"):  # the adversarial critic's own optimizer
            state["regularizer_optimizer"] = reg.optimizer.state_dict()
        if r == 0:
            with atomic_path(checkpoint) as tmp:  # a crash never leaves half a checkpoint
                torch.save(state, tmp)
            with open(args.out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(metrics) + "\n")
            print(json.dumps(metrics), flush=True)

    model.eval()
    with torch.no_grad():  # each rank embeds rows r, r + W, ...; the statistics are merged across ranks
        out = model.encoder(dataset.tensors[0][r::W].to(device))
        z = (out.mean if posterior else out).double().cpu().numpy()
    evaluation = evaluate_streaming(z, distributed=dist.is_initialized()).to_dict()
    if r == 0:
        (args.out / "evaluation.json").write_text(json.dumps(evaluation, indent=1))
    return metrics


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1  # started by torchrun
    if launched:
        dist.init_process_group(args.backend or ("nccl" if torch.cuda.is_available() else "gloo"))
        if dist.get_backend() == "nccl":
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    try:
        metrics = run(args)
        if launched:  # no rank tears the process group down while another still has collectives in flight
            dist.barrier()
        return metrics
    finally:
        if launched:
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
