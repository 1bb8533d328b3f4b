r"""The interface of a shape estimator, and the self-whitening every one of them starts from.

A shape estimator estimates the negentropy :math:`J(P) = H(N(\mu_P, \Sigma_P)) - H(P) \ge 0`, the part of
:math:`KL(P \| N(\mu, \Sigma))` beyond placement (:mod:`gaussify.metrics.divergence`), from the self-whitened rows
:math:`W = \hat L^{-1}(X - \bar x)` (:func:`whiten_sample`): J is affine invariant, so
:math:`J(P) = KL(P_W \| N(0, I))` up to the estimation of the whitening.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import numpy as np

__all__ = ["ShapeEstimator", "ShapeParts", "Replicate", "whiten_sample", "log_std_normal", "reweighted_moments",
           "rows_used"]

Replicate = Callable[[np.ndarray, np.ndarray], float]
"""One bootstrap replicate of an estimate of J: ``replicate(counts, cov)`` with the multinomial counts of the
placement's rows and their reweighted covariance (:func:`reweighted_moments`), for an estimate that used those
very rows (the estimator may use them or draw its own)."""


class ShapeParts(Protocol):
    """What an estimate of J gives the KL assembly (:func:`~gaussify.metrics.kl_divergence`)."""

    @property
    def raw(self) -> float:
        """The unclipped estimate of J in nats."""

    @property
    def sd(self) -> float:
        """Its sampling sd (the measured interval reaches at least 1.96 of them either side)."""

    def note(self, n: int) -> str:
        """How it was computed, for a sample of n rows (it may have used a subsample of them)."""

    def resampler(self, Y: np.ndarray, shared: bool, rng: np.random.Generator) -> Replicate:
        """Bootstrap replicates of ``raw``: ``Y`` holds the rows the estimate used, standardised to the target;
        ``shared``: they are the placement's rows too, so the replicate takes the placement's counts."""


class ShapeEstimator(ABC):
    """An estimator of J from self-whitened rows; one file of :mod:`gaussify.metrics.estimators` per estimator,
    registered under :attr:`name` in :data:`~gaussify.metrics.estimators.REGISTRY`.

    Its constructor takes the keywords of :func:`~gaussify.metrics.kl_divergence` named in :attr:`options` (checked
    there), with defaults: ``cls()`` is the estimator the accuracy suite measures.
    """

    name: ClassVar[str]
    """Its registry name, the ``method`` of :func:`~gaussify.metrics.kl_divergence`."""
    options: ClassVar[tuple[str, ...]] = ()
    """The keywords of :func:`~gaussify.metrics.kl_divergence` its constructor takes."""

    @property
    @abstractmethod
    def label(self) -> str:
        """Its name in the accuracy suite's tables (``gaussify bench accuracy``)."""

    def check_rows(self, n: int, d: int) -> None:
        """Raise ``ValueError`` before any work when n rows in d dimensions are too few for it (by default none
        are: the estimate checks what it needs)."""
        return None

    @abstractmethod
    def estimate(self, W: np.ndarray, rng: np.random.Generator) -> ShapeParts:
        """Estimate J from the self-whitened rows W (:func:`whiten_sample`), drawing what is random from rng."""

    def unmeasured(self, suite: dict[str, Any]) -> str | None:
        """Why the accuracy suite's measured interval (``kl_error.json``, ``suite``) does not hold for this
        estimator's settings, or None when it does."""
        return None


def whiten_sample(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (W, mean, L): W = L⁻¹(x − mean) with the unbiased covariance S = L Lᵀ, so cov(W) = I exactly.

    Raises ``ValueError`` when the covariance cannot be inverted (n <= d, constant or collinear columns).
    """
    n, d = X.shape
    if n <= d:
        raise ValueError(f"estimating and inverting the covariance needs more rows than columns, got n={n}, d={d}")
    mean = X.mean(axis=0)
    Xc = X - mean
    S = Xc.T @ Xc / (n - 1)
    sd = np.sqrt(np.diag(S))
    constant = np.flatnonzero(sd <= 1e-12 * np.abs(X).max(axis=0))  # no variation beyond rounding
    if constant.size:
        raise ValueError(f"columns {constant.tolist()} are constant; a covariance-based measure needs every column "
                         "to vary (drop them first)")
    R = S / np.outer(sd, sd)
    if np.linalg.eigvalsh(R)[0] < 1e-10:
        raise ValueError("the sample covariance is singular (linearly dependent columns); drop redundant columns "
                         "or reduce the dimension first")
    L = np.linalg.cholesky(S)
    # one d × d inverse, then a matmul: scipy's triangular solve with many right-hand sides is slow, and its tiny
    # solves stall for milliseconds when OpenBLAS threads compete for busy cores
    return Xc @ np.linalg.inv(L).T, mean, L


def log_std_normal(W: np.ndarray) -> np.ndarray:
    """log φ(wᵢ) of N(0, I_d) for each row."""
    return -0.5 * np.einsum("ij,ij->i", W, W) - 0.5 * W.shape[1] * math.log(2.0 * math.pi)


def reweighted_moments(Yc: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean shift and unbiased covariance of the centred rows Yc repeated ``counts`` times (counts sum to n)."""
    n = len(Yc)
    shift = counts @ Yc / n
    Yw = Yc * np.sqrt(counts)[:, None]
    return shift, (Yw.T @ Yw - n * np.outer(shift, shift)) / (n - 1)


def rows_used(m: int, n: int) -> str:
    """"all n rows", or "a random subsample of m of n rows"."""
    return f"all {n} rows" if m == n else f"a random subsample of {m} of {n} rows"
