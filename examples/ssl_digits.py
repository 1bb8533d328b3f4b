"""Self-supervised digits: a JEPA-style encoder that SIGReg keeps from collapsing.

    python examples/ssl_digits.py                                  # default size
    python examples/ssl_digits.py --out benchmarks/results/ssl.md  # and write the results table
    python examples/ssl_digits.py --quick                          # a few seconds (the test suite)

scikit-learn's 8×8 digits, split 70/30 (stratified); the encoder trains on the training images without their
labels. Each step draws two views of every image of a batch (a random shift by up to one pixel in each
direction, Gaussian noise, a random mask of pixels), embeds both with an MLP encoder into R^d, and minimises
the prediction loss of a small predictor between them, in both directions and without stop-gradient (LeJEPA's
choice: nothing but the regularizer stands against collapse),

    loss = ½ (‖g(f(v₁)) − f(v₂)‖² + ‖g(f(v₂)) − f(v₁)‖²) / d + weight · reg(f(v₁), f(v₂)),

with the regularizer one of: none (the prediction loss alone, which a constant embedding minimises), VICReg's
variance and covariance terms, or gaussify's SIGReg (``scale="mean"``) on both views' embeddings. lightly's
SIGReg (``lightly.loss.SIGReg``, lightly 1.6.0) is not compared: ``lightly.loss`` imports torchvision, and the
torchvision on PyPI for torch 2.13 is a CUDA build that does not load against a CPU torch (the table's notes give
the error). Each trained encoder is then measured on clean images: the accuracy of
a linear probe (logistic regression on the frozen embedding, as it is and standardised, fit on the training
rows, scored on the held-out rows), RankMe, and how Gaussian the held-out embedding is (KL to N(0, I) with its measured
95% interval, the fast normality tests, the batch p-value of 256 held-out rows).
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import Tensor, nn

import gaussify
from gaussify.bench import machine_lines
from gaussify.datasets import digits
from gaussify.io import write_text_atomic
from gaussify.metrics import batch_pvalue, rankme

PACKAGES = ("gaussify", "torch", "numpy", "scikit-learn")
SIDE = 8  # digits are 8 × 8 images
PROBE_BATCH = 256  # held-out rows given to batch_pvalue
SLICES = 64  # SIGReg's random directions per step


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dim", type=int, default=16, help="embedding dimension d")
    parser.add_argument("--hidden", type=int, default=256, help="width of the encoder's hidden layers")
    parser.add_argument("--steps", type=int, default=1500, help="optimisation steps per method")
    parser.add_argument("--batch-size", type=int, default=256, help="images per step (two views each)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--sigreg-weight", type=float, default=30.0,
                        help="weight of SIGReg (scale='mean'; 30 ≈ LeJEPA's λ = 0.05 at the statistic's n scale)")
    parser.add_argument("--noise", type=float, default=0.1, help="sd of the pixel noise (pixels in [0, 1])")
    parser.add_argument("--mask", type=float, default=0.2, help="probability that a pixel is zeroed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 does not slow down under load)")
    parser.add_argument("--quick", action="store_true", help="a small run for the test suite (a few seconds)")
    parser.add_argument("--out", type=Path, help="write the results table (markdown) to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.hidden = 150, 128
    for name in ("dim", "hidden", "steps", "batch_size", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def augment(x: Tensor, args: argparse.Namespace, generator: torch.Generator) -> Tensor:
    """A random view of each image of x (B, 64): shifted by (dy, dx) ∈ {−1, 0, 1}² with zero fill, plus
    N(0, noise²) per pixel, then each pixel zeroed with probability ``mask``."""
    b = x.shape[0]
    padded = F.pad(x.view(b, SIDE, SIDE), (1, 1, 1, 1))
    dy, dx = torch.randint(0, 3, (2, b), generator=generator)
    rows = (dy[:, None] + torch.arange(SIDE))[:, :, None]
    cols = (dx[:, None] + torch.arange(SIDE))[:, None, :]
    shifted = padded[torch.arange(b)[:, None, None], rows, cols].reshape(b, -1)
    noisy = shifted + args.noise * torch.randn(shifted.shape, generator=generator)
    return noisy * (torch.rand(noisy.shape, generator=generator) >= args.mask)


def vicreg_terms(z: Tensor) -> Tensor:
    """VICReg's variance and covariance terms of one view, with its weights relative to the invariance term
    (25 : 25 : 1): mean_j max(0, 1 − √(Var z_j + 10⁻⁴)) + (1/25) Σ_{i≠j} Cov(z)_ij² / d.
    Bardes, Ponce & LeCun, "VICReg: Variance-Invariance-Covariance Regularization for Self-Supervised
    Learning", ICLR 2022."""
    n, d = z.shape
    centred = z - z.mean(dim=0)
    variance = F.relu(1.0 - torch.sqrt(centred.var(dim=0) + 1e-4)).mean()
    cov = centred.T @ centred / (n - 1)
    return variance + (cov.square().sum() - cov.diagonal().square().sum()) / (25.0 * d)


def regularizers(args: argparse.Namespace) -> dict[str, Callable[[Tensor, Tensor], Tensor] | None]:
    """The anti-collapse term of each method, a function of the two views' embeddings (None: none)."""
    sigreg = gaussify.make_regularizer("sigreg", args.dim, scale="mean", num_slices=SLICES, random_state=args.seed)
    return {
        "prediction only": None,
        "VICReg var + cov": lambda z1, z2: vicreg_terms(z1) + vicreg_terms(z2),
        f"gaussify SIGReg × {args.sigreg_weight:g}": lambda z1, z2: args.sigreg_weight * sigreg(torch.cat([z1, z2])),
    }


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers of the given sizes with SiLU between them."""
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.SiLU()]
    return nn.Sequential(*layers[:-1])


def train(penalty: Callable[[Tensor, Tensor], Tensor] | None, X: Tensor, args: argparse.Namespace
          ) -> tuple[nn.Module, float]:
    """An encoder trained on the rows of X with the prediction loss + ``penalty``; (encoder, seconds per step)."""
    torch.manual_seed(args.seed)  # the same initial weights and batches for every method
    encoder = mlp([X.shape[1], args.hidden, args.hidden, args.dim])
    predictor = mlp([args.dim, 64, args.dim])
    optimizer = torch.optim.Adam([*encoder.parameters(), *predictor.parameters()], lr=args.lr)
    generator = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    for _ in range(args.steps):
        x = X[torch.randint(0, X.shape[0], (args.batch_size,), generator=generator)]
        z1, z2 = encoder(augment(x, args, generator)), encoder(augment(x, args, generator))
        loss = 0.5 * (F.mse_loss(predictor(z1), z2) + F.mse_loss(predictor(z2), z1))
        if penalty is not None:
            loss = loss + penalty(z1, z2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return encoder.eval(), (time.perf_counter() - start) / args.steps


def measure(encoder: nn.Module, split: tuple[np.ndarray, ...], seed: int) -> dict:
    """Linear probe accuracy, RankMe and Gaussianity of the held-out embedding of clean images."""
    X_train, X_test, y_train, y_test = split
    with torch.no_grad():
        Z_train, Z_test = (encoder(torch.from_numpy(X)).double().numpy() for X in (X_train, X_test))
    probe, scaled_probe = (make_pipeline(*scaler, LogisticRegression(max_iter=2000)).fit(Z_train, y_train)
                           for scaler in ([], [StandardScaler()]))
    report = gaussify.evaluate(Z_test, tests="fast", random_state=seed)
    pvalues = [result.pvalue for result in report.tests.values()]
    rng = np.random.default_rng(seed)
    held_out_batch = Z_test[rng.choice(len(Z_test), PROBE_BATCH, replace=False)]
    return {"probe accuracy": probe.score(Z_test, y_test), "probe, standardised": scaled_probe.score(Z_test, y_test),
            "RankMe": rankme(Z_test),
            "KL": report.kl, "KL interval": report.kl_estimate.interval, "KL reliable": report.kl_estimate.reliable,
            "KL lower bound": report.kl_lower_bound,
            "smallest Holm p": min(1.0, len(pvalues) * min(pvalues)),  # Holm's smallest adjusted p-value
            "tests rejecting": f"{len(report.rejected(0.05))}/{len(pvalues)}",
            "batch p": batch_pvalue(held_out_batch, random_state=rng)}


def markdown(results: dict[str, dict], args: argparse.Namespace, seconds: float) -> str:
    """The results as a markdown table under the machine/versions header."""
    columns = ("method", "probe accuracy", "probe, standardised", "RankMe", "held-out KL [95% CI]", "KL lower bound",
               "smallest Holm p", "tests rejecting", "batch p", "ms / step")
    lines = [f"# Self-supervised digits ({'quick' if args.quick else 'default'} size)", "",
             *machine_lines(None, PACKAGES),
             f"- Run: `python examples/ssl_digits.py{' --quick' if args.quick else ''}` (d = {args.dim}, "
             f"hidden {args.hidden}, {args.steps} steps of {args.batch_size} images × 2 views, seed {args.seed}); "
             f"{seconds:.1f} s in all", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for name, r in results.items():
        low, high = r["KL interval"]
        kl = f"{r['KL']:.3f} [{low:.3f}, {high:.3f}]" + ("" if r["KL reliable"] else " (unreliable)")
        lines.append(f"| {name} | {r['probe accuracy']:.3f} | {r['probe, standardised']:.3f} | {r['RankMe']:.2f} "
                     f"| {kl} | {r['KL lower bound']:.3f} | {r['smallest Holm p']:.3g} | {r['tests rejecting']} "
                     f"| {r['batch p']:.3g} | {1e3 * r['seconds per step']:.2f} |")
    lines += ["", "Linear probe: logistic regression (scikit-learn's defaults, C = 1) on the frozen embedding of the "
              "70% training rows, scored on the 30% held-out rows (stratified); \"standardised\" rescales each "
              "coordinate first, which reads what a collapsed embedding keeps at a tiny scale. RankMe, KL "
              "(kl_divergence: kNN up to d = 8, the held-out Gaussianization above; to N(0, I), with its 95% "
              "interval from the measured error and the largest lower bound beside it), the fast normality tests "
              "(Holm across them) and the batch p-value (256 held-out rows) are computed on the held-out embedding."]
    lines += ["", "lightly's SIGReg is not compared. lightly 1.6.0 ships it as `lightly.loss.SIGReg(*, knots=17, "
              "t_max=3.0, num_vectors=1024, gather_distributed=False)` (the Epps–Pulley statistic × n, averaged over "
              "random slices), but `import lightly.loss` imports torchvision "
              "(`lightly/loss/dense_relational_utils.py`: `from torchvision.ops import roi_align`), and the "
              "torchvision on PyPI for torch 2.13.0 (0.28.0, which pins `torch==2.13.0`) is a CUDA build: with "
              "torch 2.13.0+cpu its `_C.so` does not load (`libc10_cuda.so: cannot open shared object file`), "
              "so `import torchvision` raises `RuntimeError: "
              "operator torchvision::nms does not exist`. CPU builds of torchvision are not on PyPI. "
              f"lightly is {'' if importlib.util.find_spec('lightly') else 'not '}importable where this table was "
              "made."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, dict]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    began = time.perf_counter()
    X, y = digits()
    split = train_test_split(X / 16.0, y, test_size=0.3, stratify=y, random_state=args.seed)
    X_train = torch.from_numpy(split[0])
    results = {}
    for name, penalty in regularizers(args).items():
        encoder, seconds = train(penalty, X_train, args)
        results[name] = {**measure(encoder, split, args.seed), "seconds per step": seconds}
        print(f"{name}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                      for k, v in results[name].items() if k != "KL interval"), flush=True)
    text = markdown(results, args, time.perf_counter() - began)
    print(text)
    if args.out:
        write_text_atomic(args.out, text)
    return results


if __name__ == "__main__":
    main()
