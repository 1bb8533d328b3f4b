r"""J by held-out Gaussianization, the default above d = 8: for any invertible map f with a log-density,

.. math::
    J(P) = KL(P_W \| N(0, I)) \ge E_{P_W}[\log q_f(w) - \log \varphi(w)], \qquad q_f(w) = \varphi(f(w))|\det J_f(w)|,

f fitted on one random half of the whitened rows and the mean taken on the other, both ways (the map and its
layers: :mod:`gaussify.metrics.gaussianization`, whose pursuit, radial layer and FastICA serve the lower bounds and
the report's directions too, so they stay there; this file is the estimator's contract with the KL assembly).

References: Laparra, Camps-Valls & Malo (2011), IEEE TNN 22(4) "Iterative Gaussianization: from ICA to random
rotations"; Lyu & Simoncelli (2009), NeurIPS "Reducing statistical dependencies in natural signals using radial
Gaussianization".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..gaussianization import GaussianizationParts, gaussianization_parts
from .base import Replicate, ShapeEstimator, rows_used

__all__ = ["GaussianizationNegentropy", "HeldOutParts", "MIN_ROWS_PER_DIM"]

MIN_ROWS_PER_DIM = 2
"""The estimate needs at least this many × (d + 1) rows: each half fits a basis, so it needs more rows than d."""


@dataclass(frozen=True)
class HeldOutParts:
    """The held-out Gaussianization's estimate of J (``gaussianization_parts`` of
    :mod:`gaussify.metrics.gaussianization`) on ``rows`` rows."""

    parts: GaussianizationParts
    rows: int

    @property
    def raw(self) -> float:
        return self.parts.raw

    @property
    def sd(self) -> float:
        return self.parts.sd

    def note(self, n: int) -> str:
        stacks = " and ".join("[" + ", ".join(kinds or ("none",)) + "]" for kinds in self.parts.layers)
        return (f"held-out Gaussianization negentropy on {rows_used(self.rows, n)} (a map fitted on one half, its mean "
                f"log-likelihood ratio to N(0, I) on the other, both ways; layers {stacks}; sd ≈ {self.sd:.3f}): below "
                "the true negentropy in expectation, it reads short what its layers cannot map")

    def resampler(self, Y: np.ndarray, shared: bool, rng: np.random.Generator) -> Replicate:
        """The estimate is a mean of per-row terms: its normal approximation raw + sd · N(0, 1)."""
        return lambda counts, cov: self.raw + self.sd * rng.standard_normal()


class GaussianizationNegentropy(ShapeEstimator):
    """J by held-out Gaussianization (module docstring): below J in expectation, up to a small optimism from
    choosing its layers on the scored half."""

    name = "gaussianization"

    @property
    def label(self) -> str:
        return "held-out Gaussianization"

    def check_rows(self, n: int, d: int) -> None:
        if n < MIN_ROWS_PER_DIM * (d + 1):
            raise ValueError(f"the held-out Gaussianization needs at least {MIN_ROWS_PER_DIM} × (d + 1) "
                             f"= {MIN_ROWS_PER_DIM * (d + 1)} rows (each half fits a basis), got n={n}")

    def estimate(self, W: np.ndarray, rng: np.random.Generator) -> HeldOutParts:
        return HeldOutParts(gaussianization_parts(W, rng), len(W))
