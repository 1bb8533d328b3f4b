"""Unit-variance 1-D alternatives to N(0, 1), drawn as (rows, n) float64 tensors, shared by the
tests of the slice-wise statistics (sliced Wasserstein, Epps–Pulley)."""

import math

import torch

A = 0.9  # bimodal: ±A + sqrt(1 − A²) N(0, 1), unit variance


def draw(kind: str, rows: int, n: int, g: torch.Generator) -> torch.Tensor:
    x = torch.randn(rows, n, generator=g, dtype=torch.float64)
    if kind == "shifted":
        return x + 1.0
    if kind == "scaled":
        return 2.0 * x
    if kind == "uniform":
        return (torch.rand(rows, n, generator=g, dtype=torch.float64) - 0.5) * math.sqrt(12)
    if kind == "bimodal":
        sign = torch.where(torch.rand(rows, n, generator=g) < 0.5, -1.0, 1.0).double()
        return A * sign + math.sqrt(1 - A * A) * x
    return x  # "target": N(0, 1) itself
