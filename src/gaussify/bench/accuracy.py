r"""Accuracy benchmark: the KL estimates against the exact KL(P ‖ N(0, I)) of laws whose density is known.

Families (``FAMILIES``; each has an exact, vectorised ``log_prob`` and a ``sample(n, rng)``), parametrised by the
dimension d and scaled by one number s, y = x / s with s² = tr Cov(x) / d, so that the mean coordinate variance is
1 (the mean and the anisotropy are kept: the placement part of the KL is not always 0):

- ``mixture_tight`` / ``mixture_loose`` / ``mixture_unequal``: isotropic Gaussian mixtures (12 components of sd
  0.1; 10 of sd 0.6; 10 with weights spanning 30:1 and sds 0.15 … 0.6), means drawn from N(0, I_d) with a fixed
  seed; log p by logsumexp over the components.
- ``student_t5`` / ``student_t3``: multivariate Student t with 5 and 3 degrees of freedom (heavy tails).
- ``sphere``: x = R u + σ ε, u uniform on S^{d−1}, R = 1, σ = 0.1, with
  p(x) = (2πσ²)^{−d/2} e^{−(|x|²+R²)/(2σ²)} Γ(d/2) (2/κ)^{d/2−1} I_{d/2−1}(κ), κ = R|x|/σ².
- ``circle``: the same ring (d = 2 formula) in the first two coordinates, independent N(0, τ²) noise with
  τ² = R²/2 + σ² in the other d − 2 (covariance ∝ I, so the true KL is the ring's negentropy in every d).
- ``skewed``: independent standardised Gamma(a_j) coordinates, a_j geometric from 1.5 to 6, then a fixed random
  rotation Q (|det Q| = 1: log p(x) = Σ_j log f_j((Qᵀx)_j)).
- ``gaussian``: N(0, I) itself (true KL 0).
- ``cube``: uniform on [−1, 1]^d (bounded support: the boundary bias of kNN estimators, of order n^{−1/d}).
- ``flow_digits``, ``flow_mnist1d`` (d = 2, 8 only): a :class:`~gaussify.GaussianizingFlow` (exact
  ``score_samples`` and ``sample``) fitted to 70% of the default ``GaussianEmbedder(d, random_state=0)``
  embedding of scikit-learn's digits (1,797 rows) or of 4,000 generated MNIST-1D rows; its held-out
  log-likelihood on the other 30% beside the log-likelihood of its own samples tells how embedding-like the law
  is. Fitted once and cached under ``--cache``.

True KL: Monte Carlo mean of log p(x) − log φ(x) over ``--mc-draws`` draws, with its standard error; E|x|² in
log φ is exact (known moments) except for the flow, cached under ``--cache`` per (family, d, draws).

Estimators, each on R seeded samples per (family, d, n):

- ``default``: :func:`gaussify.metrics.kl_divergence` (``method="auto"``: weighted Kozachenko–Leonenko, k = 16,
  BSY weights, Gaussian calibration up to d = 8, the held-out Gaussianization above; negentropy clipped at 0,
  placement bias-corrected); ``default, unclipped``: its ``raw_negentropy + placement``;
- ``<label> (method='name')``, e.g. ``kNN k=16 (method='knn')``: ``kl_divergence(Z, method=name)`` for every
  estimator of :data:`gaussify.metrics.estimators.REGISTRY` other than the default's at that (n, d);
- ``kNN k=j``: plain Kozachenko–Leonenko with the j-th neighbour only, Ĥ = mean[d log ρ_j − ψ(j)] + ψ(n) + log V_d
  on the self-whitened sample, calibrated the same way (J = ½ d log 2πe + E[Ĥ(Ŵ_G) + log φ(G)] − Ĥ(W) on exact
  self-whitened N(0, I) samples of the same n, clipped at 0: the kNN estimator's
  :func:`~gaussify.metrics.estimators.knn.plain_negentropy`) plus the same placement;
- ``flow cross-fit``: :func:`gaussify.flows.cross_fitted_flow_kl` (a lower bound up to fit error), on the cells
  and repetitions of ``FLOW_ESTIMATOR``.

Errors per cell: bias = mean − true, sd over repetitions, RMSE = √mean (estimate − true)², relative error =
RMSE / true. Acceptance bar: RMSE ≤ 0.05 nats for d ≤ 4, RMSE ≤ max(15% of the true KL, 0.1 nats) above.
Output in ``--out``: ``accuracy.md``, ``accuracy.json`` (every cell, every repetition) and ``accuracy.png``.

    gaussify bench accuracy --quick
    python benchmarks/bench_accuracy.py --out benchmarks/results

References: Kozachenko & Leonenko (1987), Probl. Inf. Transm. 23; Berrett, Samworth & Yuan (2019), Ann. Statist.
47(1); Mardia, Kent & Bibby (1979), Multivariate Analysis (Student t, von Mises–Fisher / Bessel densities).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import gammaln, ive, logsumexp

from . import machine_lines, timed

__all__ = ["Family", "GaussianMixture", "StudentT", "NoisySphere", "NoisyCircle", "SkewedMarginals",
           "StandardGaussian", "FlowFamily", "FAMILIES", "FLOW_FAMILIES", "FLOW_DIMS", "make_family", "true_kl",
           "plain_knn_kl", "summarize", "error_envelopes", "all_envelopes", "main"]

_LOG_2PI = math.log(2.0 * math.pi)
_CHUNK = 65_536  # rows per log_prob block: bounded memory for any number of rows
KS = (1, 2, 4, 8, 16, 32)
"""The neighbour ranks of the plain Kozachenko–Leonenko estimators."""


# --------------------------------------------------------------------------------------------- families
class Family:
    """A law on R^d with an exact log-density, scaled by 1/s, s² = tr Cov / d (mean coordinate variance 1).

    Subclasses give the unscaled law: ``_sample(n, rng)``, ``_log_prob(X)`` and ``_moments()`` (mean vector and
    tr Cov); for y = x / s, log p_Y(y) = log p_X(s y) + d log s.
    """

    min_dim = 1

    def __init__(self, d: int) -> None:
        from .._validation import check_int

        self.d = check_int(d, "d", minimum=self.min_dim)
        self.name = type(self).__name__
        mean, trace = self._moments()
        self.scale = math.sqrt(trace / self.d)
        self.exact_moments = True
        self.second_moment = (trace + float(mean @ mean)) / self.scale**2  # E|y|²
        self.info: dict[str, Any] = {}

    def _moments(self) -> tuple[np.ndarray, float]:
        raise NotImplementedError

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def _log_prob(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n rows of the scaled law, shape (n, d)."""
        from .._validation import check_int

        return self._sample(check_int(n, "n"), rng) / self.scale

    def log_prob(self, X: Any) -> np.ndarray:
        """Exact log-density of each row of X (n, d) under the scaled law, in blocks of rows."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.d:
            raise ValueError(f"{self.name} is a law on R^{self.d}: X must have shape (n, {self.d}), got {X.shape}")
        shift = self.d * math.log(self.scale)
        return np.concatenate([self._log_prob(X[i:i + _CHUNK] * self.scale) + shift
                               for i in range(0, len(X), _CHUNK)] or [np.empty(0)])

    def describe(self) -> str:
        return self.name


def _rotation(d: int, rng: np.random.Generator) -> np.ndarray:
    """A random d×d rotation (Haar: QR of a Gaussian matrix with the signs of R's diagonal)."""
    Q, R = np.linalg.qr(rng.standard_normal((d, d)))
    return Q * np.sign(np.diag(R))


class GaussianMixture(Family):
    r"""Σ_k w_k N(μ_k, s_k² I): weights geometric over ``weight_ratio`` (first / last), sds geometric from
    ``within_sd`` to ``within_sd · sd_ratio``, means drawn from N(0, I_d) with ``seed``; log p by logsumexp."""

    def __init__(self, d: int, n_components: int, within_sd: float, *, weight_ratio: float = 1.0,
                 sd_ratio: float = 1.0, seed: int = 0) -> None:
        if n_components < 1 or within_sd <= 0 or weight_ratio <= 0 or sd_ratio <= 0:
            raise ValueError("n_components must be >= 1 and within_sd, weight_ratio, sd_ratio > 0")
        weights = np.geomspace(1.0, 1.0 / weight_ratio, n_components)
        self.weights = weights / weights.sum()
        self.sds = np.geomspace(within_sd, within_sd * sd_ratio, n_components)
        self.means = np.random.default_rng([seed, d]).standard_normal((n_components, d))
        super().__init__(d)

    def _moments(self) -> tuple[np.ndarray, float]:
        mean = self.weights @ self.means
        second = self.weights @ (self.d * self.sds**2 + np.einsum("kj,kj->k", self.means, self.means))
        return mean, float(second - mean @ mean)

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        comp = rng.choice(len(self.weights), size=n, p=self.weights)
        return self.means[comp] + self.sds[comp, None] * rng.standard_normal((n, self.d))

    def _log_prob(self, X: np.ndarray) -> np.ndarray:
        sq = np.maximum(np.einsum("ij,ij->i", X, X)[:, None] - 2.0 * X @ self.means.T
                        + np.einsum("kj,kj->k", self.means, self.means), 0.0)
        log_comp = -0.5 * sq / self.sds**2 - self.d * np.log(self.sds) - 0.5 * self.d * _LOG_2PI
        return logsumexp(log_comp + np.log(self.weights), axis=1)

    def describe(self) -> str:
        return (f"{len(self.weights)} components, weights {self.weights.max() / self.weights.min():.0f}:1, "
                f"sd {self.sds.min():g}–{self.sds.max():g}")


class StudentT(Family):
    r"""Multivariate Student t, x = g / √(χ²_ν / ν), g ~ N(0, I):
    log p = log Γ((ν+d)/2) − log Γ(ν/2) − (d/2) log(νπ) − ((ν+d)/2) log(1 + |x|²/ν); Cov = ν/(ν−2) I."""

    def __init__(self, d: int, df: float) -> None:
        if not df > 2:
            raise ValueError(f"df must be > 2 (finite covariance), got {df}")
        self.df = float(df)
        super().__init__(d)

    def _moments(self) -> tuple[np.ndarray, float]:
        return np.zeros(self.d), self.d * self.df / (self.df - 2.0)

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((n, self.d)) / np.sqrt(rng.chisquare(self.df, size=(n, 1)) / self.df)

    def _log_prob(self, X: np.ndarray) -> np.ndarray:
        nu, d = self.df, self.d
        return (gammaln(0.5 * (nu + d)) - gammaln(0.5 * nu) - 0.5 * d * math.log(nu * math.pi)
                - 0.5 * (nu + d) * np.log1p(np.einsum("ij,ij->i", X, X) / nu))

    def describe(self) -> str:
        return f"df {self.df:g}"


def _log_bessel_ratio(nu: float, kappa: np.ndarray) -> np.ndarray:
    """log[Γ(ν+1) (2/κ)^ν I_ν(κ)], stable for large κ (``ive``) and at κ → 0 (series 1 + κ²/(4(ν+1)))."""
    small = kappa < 1e-6
    safe = np.where(small, 1.0, kappa)
    large = gammaln(nu + 1.0) + nu * np.log(2.0 / safe) + np.log(ive(nu, safe)) + safe
    return np.where(small, kappa**2 / (4.0 * (nu + 1.0)), large)


class NoisySphere(Family):
    r"""x = R u + σ ε, u uniform on S^{d−1}, ε ~ N(0, I): averaging N(x; R u, σ² I) over u gives
    p(x) = (2πσ²)^{−d/2} exp(−(|x|²+R²)/(2σ²)) Γ(d/2)(2/κ)^{d/2−1} I_{d/2−1}(κ), κ = R|x|/σ²."""

    def __init__(self, d: int, radius: float = 1.0, noise: float = 0.1) -> None:
        if not (radius > 0 and noise > 0):
            raise ValueError(f"radius and noise must be > 0, got {radius}, {noise}")
        self.radius, self.noise = float(radius), float(noise)
        super().__init__(d)

    def _moments(self) -> tuple[np.ndarray, float]:
        return np.zeros(self.d), self.radius**2 + self.d * self.noise**2

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        u = rng.standard_normal((n, self.d))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        return self.radius * u + self.noise * rng.standard_normal((n, self.d))

    def _log_prob(self, X: np.ndarray) -> np.ndarray:
        R, s2, d = self.radius, self.noise**2, self.d
        sq = np.einsum("ij,ij->i", X, X)
        return (-0.5 * d * math.log(2.0 * math.pi * s2) - 0.5 * (sq + R**2) / s2
                + _log_bessel_ratio(0.5 * d - 1.0, R * np.sqrt(sq) / s2))

    def describe(self) -> str:
        return f"R {self.radius:g}, noise sd {self.noise:g}"


class NoisyCircle(Family):
    """A noisy circle (:class:`NoisySphere` in 2-D) in the first two coordinates, independent N(0, τ²) in the other
    d − 2, τ² = R²/2 + σ²: the covariance is τ² I, so the KL is the ring's negentropy in every dimension."""

    min_dim = 2

    def __init__(self, d: int, radius: float = 1.0, noise: float = 0.1) -> None:
        self.ring = NoisySphere(2, radius, noise)
        self.tau = math.sqrt(0.5 * radius**2 + noise**2)
        super().__init__(d)

    def _moments(self) -> tuple[np.ndarray, float]:
        return np.zeros(self.d), self.d * self.tau**2

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.hstack([self.ring._sample(n, rng), self.tau * rng.standard_normal((n, self.d - 2))])

    def _log_prob(self, X: np.ndarray) -> np.ndarray:
        rest = X[:, 2:]
        return (self.ring._log_prob(X[:, :2]) - 0.5 * np.einsum("ij,ij->i", rest, rest) / self.tau**2
                - (self.d - 2) * (math.log(self.tau) + 0.5 * _LOG_2PI))

    def describe(self) -> str:
        return f"ring {self.ring.describe()} in a 2-plane, N(0, {self.tau**2:g}) in the other d − 2"


class SkewedMarginals(Family):
    r"""x = Q g, g_j = (γ_j − a_j)/√a_j, γ_j ~ Gamma(a_j) independent (mean 0, variance 1), a_j geometric from
    1.5 to 6, Q a fixed random rotation: log p(x) = Σ_j [log f_{a_j}(√a_j y_j + a_j) + ½ log a_j], y = Qᵀx."""

    def __init__(self, d: int, seed: int = 0) -> None:
        self.shapes = np.geomspace(1.5, 6.0, d) if d > 1 else np.array([1.5])
        self.rotation = _rotation(d, np.random.default_rng([seed, d]))
        super().__init__(d)

    def _moments(self) -> tuple[np.ndarray, float]:
        return np.zeros(self.d), float(self.d)

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        a = self.shapes
        return ((rng.gamma(a, size=(n, self.d)) - a) / np.sqrt(a)) @ self.rotation.T

    def _log_prob(self, X: np.ndarray) -> np.ndarray:
        from scipy.stats import gamma

        a = self.shapes
        return (gamma.logpdf(np.sqrt(a) * (X @ self.rotation) + a, a) + 0.5 * np.log(a)).sum(axis=1)

    def describe(self) -> str:
        return f"Gamma shapes {self.shapes.min():g}–{self.shapes.max():g}, rotated"


class UniformCube(Family):
    r"""x uniform on the cube [−1, 1]^d (bounded support, where kNN estimators carry a boundary bias of order
    n^{−1/d}): log p(x) = −d log 2 inside, −∞ outside; exact KL to N(0, I) after scaling: d (½ log(2πe) − log 2√3)."""

    def _moments(self) -> tuple[np.ndarray, float]:
        return np.zeros(self.d), self.d / 3.0

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(-1.0, 1.0, (n, self.d))

    def _log_prob(self, X: np.ndarray) -> np.ndarray:
        return np.where(np.abs(X).max(axis=1) <= 1.0, -self.d * math.log(2.0), -np.inf)

    def describe(self) -> str:
        return "uniform on a cube"


_BIMODAL_MEAN, _BIMODAL_VAR = 0.9, 0.19  # ½ N(±0.9, 0.19): mean 0, variance 1


def _marginal_log_pdf(kind: str, x: np.ndarray) -> np.ndarray:
    """log density of the unit-variance 1-D laws of :class:`RotatedProduct`."""
    if kind == "bimodal":
        sq = [(x - m) ** 2 for m in (-_BIMODAL_MEAN, _BIMODAL_MEAN)]
        return (np.logaddexp(-0.5 * sq[0] / _BIMODAL_VAR, -0.5 * sq[1] / _BIMODAL_VAR)
                - 0.5 * math.log(2.0 * math.pi * _BIMODAL_VAR) - math.log(2.0))
    if kind == "uniform":
        return np.where(np.abs(x) <= math.sqrt(3.0), -math.log(2.0 * math.sqrt(3.0)), -np.inf)
    if kind == "laplace":
        return -math.log(math.sqrt(2.0)) - math.sqrt(2.0) * np.abs(x)
    from scipy.stats import gamma  # "skewed": standardised Gamma(2)

    return gamma.logpdf(math.sqrt(2.0) * x + 2.0, 2.0) + 0.5 * math.log(2.0)


def _marginal_sample(kind: str, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    if kind == "bimodal":
        return rng.choice([-_BIMODAL_MEAN, _BIMODAL_MEAN], size) + math.sqrt(_BIMODAL_VAR) * rng.standard_normal(size)
    if kind == "uniform":
        return rng.uniform(-math.sqrt(3.0), math.sqrt(3.0), size)
    if kind == "laplace":
        return rng.laplace(0.0, 1.0 / math.sqrt(2.0), size)
    return (rng.gamma(2.0, size=size) - 2.0) / math.sqrt(2.0)


def _count(spec: int | str, d: int) -> int:
    """A number of coordinates: an int, or "d/m" for max(1, d // m)."""
    return spec if isinstance(spec, int) else max(1, d // int(spec.split("/")[1]))


class RotatedProduct(Family):
    r"""x = Q s with independent coordinates s: ``count`` of one unit-variance non-Gaussian ``kind`` ("bimodal":
    ½ N(±0.9, 0.19); "uniform" on ±√3; "laplace" of scale 1/√2; "skewed": standardised Gamma(2)), ``collapsed``
    ones N(0, 0.01), the rest N(0, 1); Q a fixed random rotation. log p(x) = Σ_j log f_j((Qᵀx)_j), so the true KL
    is the sum of the coordinates' 1-D KLs: the non-Gaussianity sits in a few directions, as clusters and classes
    do in an embedding. ``count`` and ``collapsed``: an int or "d/m" (max(1, d // m))."""

    def __init__(self, d: int, kind: str, count: int | str, collapsed: int | str = 0, seed: int = 0) -> None:
        self.kind, self.count, self.collapsed = kind, _count(count, d), _count(collapsed, d) if collapsed else 0
        if kind not in ("bimodal", "uniform", "laplace", "skewed") or self.count + self.collapsed > d:
            raise ValueError(f"bad product: kind={kind!r}, {self.count} + {self.collapsed} coordinates in d={d}")
        self.variances = np.ones(d)
        self.variances[self.count:self.count + self.collapsed] = 0.01
        self.rotation = _rotation(d, np.random.default_rng([seed, d, 7]))
        super().__init__(d)

    def _moments(self) -> tuple[np.ndarray, float]:
        return np.zeros(self.d), float(self.variances.sum())

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        S = rng.standard_normal((n, self.d)) * np.sqrt(self.variances)
        S[:, :self.count] = _marginal_sample(self.kind, (n, self.count), rng)
        return S @ self.rotation.T

    def _log_prob(self, X: np.ndarray) -> np.ndarray:
        S = X @ self.rotation
        gauss = S[:, self.count:]
        var = self.variances[self.count:]
        return (_marginal_log_pdf(self.kind, S[:, :self.count]).sum(axis=1)
                - 0.5 * (gauss**2 / var + np.log(2.0 * math.pi * var)).sum(axis=1))

    def describe(self) -> str:
        extra = f", {self.collapsed} collapsed (variance 0.01)" if self.collapsed else ""
        return f"{self.count} {self.kind} of {self.d} coordinates{extra}, rotated"


class RotatedGaussian(Family):
    r"""N(Q m, Q diag(λ) Qᵀ): d/4 directions collapsed (λ = 0.01), d/8 inflated (λ = 4), d/8 others shifted by 1,
    Q a fixed random rotation: the whole KL is placement, ½ Σ (λ_j − 1 − log λ_j + m_j²) before scaling."""

    def __init__(self, d: int, seed: int = 0) -> None:
        quarter, eighth = _count("d/4", d), _count("d/8", d)
        self.variances = np.ones(d)
        self.variances[:quarter] = 0.01
        self.variances[quarter:quarter + eighth] = 4.0
        self.shift = np.zeros(d)
        self.shift[d - eighth:] = 1.0
        self.rotation = _rotation(d, np.random.default_rng([seed, d, 11]))
        super().__init__(d)

    def _moments(self) -> tuple[np.ndarray, float]:
        return self.rotation @ self.shift, float(self.variances.sum())

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return (self.shift + rng.standard_normal((n, self.d)) * np.sqrt(self.variances)) @ self.rotation.T

    def _log_prob(self, X: np.ndarray) -> np.ndarray:
        S = X @ self.rotation - self.shift
        return -0.5 * (S**2 / self.variances + np.log(2.0 * math.pi * self.variances)).sum(axis=1)

    def describe(self) -> str:
        return "Gaussian: d/4 directions at variance 0.01, d/8 at 4, d/8 shifted by 1, rotated"


class StandardGaussian(Family):
    """x ~ N(0, I), the target itself (KL = 0 exactly): the estimator's noise where its value is clipped at 0."""

    def __init__(self, d: int) -> None:
        super().__init__(d)
        self.exact_moments = False  # log p − log φ is then 0 at every draw: the Monte Carlo KL is exactly 0

    def _moments(self) -> tuple[np.ndarray, float]:
        return np.zeros(self.d), float(self.d)

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((n, self.d))

    def _log_prob(self, X: np.ndarray) -> np.ndarray:
        return -0.5 * (self.d * _LOG_2PI + np.einsum("ij,ij->i", X, X))

    def describe(self) -> str:
        return "N(0, I), the target"


class FlowFamily(Family):
    """The law of a fitted :class:`~gaussify.GaussianizingFlow`: ``sample`` and the exact ``score_samples``.
    Its moments (for the scale only) are those of ``moment_draws`` of its own samples."""

    def __init__(self, flow: Any, moment_draws: int = 100_000) -> None:
        self.flow = flow
        self._moment_draws = moment_draws
        super().__init__(flow.n_features_in_)
        self.exact_moments = False

    def _moments(self) -> tuple[np.ndarray, float]:
        X = self.flow.sample(self._moment_draws, random_state=0)
        return X.mean(axis=0), float(np.trace(np.atleast_2d(np.cov(X, rowvar=False))))

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.flow.sample(n, random_state=int(rng.integers(2**31 - 1)))

    def _log_prob(self, X: np.ndarray) -> np.ndarray:
        return self.flow.score_samples(X)

    def describe(self) -> str:
        return "GaussianizingFlow on an embedding"


FAMILIES: dict[str, Callable[[int], Family]] = {
    "gaussian": StandardGaussian,
    "mixture_tight": partial(GaussianMixture, n_components=12, within_sd=0.1),
    "mixture_loose": partial(GaussianMixture, n_components=10, within_sd=0.6),
    "mixture_unequal": partial(GaussianMixture, n_components=10, within_sd=0.15, weight_ratio=30.0, sd_ratio=4.0),
    "student_t5": partial(StudentT, df=5.0),
    "student_t3": partial(StudentT, df=3.0),
    "sphere": NoisySphere,
    "circle": NoisyCircle,
    "skewed": SkewedMarginals,
    "cube": UniformCube,
}
"""Families with a closed-form density, by name: ``FAMILIES[name](d)``."""
HIGH_DIM_FAMILIES: dict[str, Callable[[int], Family]] = {
    **{f"product_{kind}_{label}": partial(RotatedProduct, kind=kind, count=count)
       for kind, counts in (("bimodal", (1, 4, "d/4")), ("uniform", (4, "d/4")), ("laplace", (4, "d/4")),
                            ("skewed", ("d/8",)))
       for count in counts for label in [str(count).replace("/", "")]},
    "collapsed_bimodal": partial(RotatedProduct, kind="bimodal", count=4, collapsed="d/4"),
    "gaussian_placement": RotatedGaussian,
    "student_t10": partial(StudentT, df=10.0),
    "mixture_50": partial(GaussianMixture, n_components=50, within_sd=0.5),
}
"""Families for d ≥ 16 (``--grid high``), with an exact density in any d: the non-Gaussianity in 1, 4, d/8 or d/4
rotated directions, placement only, collapsed directions beside bimodal ones, t with 10 degrees of freedom and a
50-component mixture."""
_CLOSED_FORM = {**FAMILIES, **HIGH_DIM_FAMILIES}  # every family with a closed-form density, by name
FLOW_FAMILIES: dict[str, tuple[str, dict[str, Any]]] = {"flow_digits": ("digits", {}),
                                                         "flow_mnist1d": ("mnist1d", {"n_samples": 4000})}
"""Semi-synthetic families (a flow fitted to an embedding): the data set and its loader options."""
FLOW_DIMS = (2, 8)
"""The embedding dimensions the flow families are built at."""


def _embedding_flow(name: str, d: int, cache: Path) -> FlowFamily:
    """The flow fitted to 70% of the default ``GaussianEmbedder(d, random_state=0)`` embedding of the family's
    data set (cached in ``cache``), with its held-out, training and own-sample mean log-likelihoods and the
    default KL estimate of the held-out embedding and of as many own samples in ``info``."""
    from ..datasets import load
    from ..embedder import GaussianEmbedder
    from ..flows import GaussianizingFlow
    from ..io import write_text_atomic
    from ..metrics import kl_divergence

    folder, info_file = cache / f"{name}_d{d}", cache / f"{name}_d{d}.json"
    if info_file.exists():
        flow, info = GaussianizingFlow.load(folder), json.loads(info_file.read_text())
    else:
        dataset, options = FLOW_FAMILIES[name]
        X, y = load(dataset, **options)
        Z = GaussianEmbedder(d, random_state=0).fit(X, y).transform(X)
        perm = np.random.default_rng(0).permutation(len(Z))
        test, train = perm[: int(0.3 * len(Z))], perm[int(0.3 * len(Z)):]
        flow = GaussianizingFlow(random_state=0).fit(Z[train])
        own = flow.sample(len(test), random_state=1)
        info = {"rows": [len(train), len(test)], "held_out_loglik": flow.score(Z[test]),
                "train_loglik": flow.score(Z[train]), "own_sample_loglik": flow.score(own),
                "held_out_kl": kl_divergence(Z[test]).value, "own_sample_kl": kl_divergence(own).value}
        flow.save(folder, overwrite=True)
        write_text_atomic(info_file, json.dumps(info, indent=1) + "\n")
    family = FlowFamily(flow)
    family.info = info
    return family


def make_family(name: str, d: int, cache: Path | None = None) -> Family:
    """The family ``name`` in dimension d (a flow family needs ``cache``, where its fitted flow is kept)."""
    if name in _CLOSED_FORM:
        family = _CLOSED_FORM[name](d)
    elif name in FLOW_FAMILIES:
        if d not in FLOW_DIMS or cache is None:
            raise ValueError(f"{name} is built at d in {FLOW_DIMS} with a cache folder, got d={d}")
        family = _embedding_flow(name, d, cache)
    else:
        raise ValueError(f"unknown family {name!r}; choose from "
                         f"{sorted(_CLOSED_FORM) + sorted(FLOW_FAMILIES)}")
    family.name = name
    return family


# --------------------------------------------------------------------------------------------- ground truth
def true_kl(family: Family, draws: int, seed: int = 0) -> tuple[float, float]:
    r"""KL(P ‖ N(0, I)) = E_P[log p(x) − log φ(x)] by Monte Carlo over ``draws`` draws, and its standard error.

    With known moments −E log φ = ½ E|x|² + (d/2) log 2π is exact and only log p is averaged (its variance is
    finite even where that of |x|² is not, e.g. Student t with 3 degrees of freedom)."""
    X = family.sample(draws, np.random.default_rng([seed, zlib.crc32(family.name.encode()), family.d]))
    f = family.log_prob(X)
    if family.exact_moments:
        f = f + 0.5 * family.second_moment + 0.5 * family.d * _LOG_2PI
    else:
        f = f + 0.5 * np.einsum("ij,ij->i", X, X) + 0.5 * family.d * _LOG_2PI
    return float(f.mean()), float(f.std(ddof=1) / math.sqrt(draws))


def _cached_true_kl(family: Family, draws: int, cache: Path) -> tuple[float, float]:
    """:func:`true_kl`, kept in ``cache/true_kl.json`` per (family, d, draws)."""
    from ..io import write_text_atomic

    path = cache / "true_kl.json"
    table = json.loads(path.read_text()) if path.exists() else {}
    key = f"{family.name}/d={family.d}/draws={draws}"
    if key not in table:
        table[key] = true_kl(family, draws)
        write_text_atomic(path, json.dumps(table, indent=1) + "\n")
    value, se = table[key]
    return value, se


# --------------------------------------------------------------------------------------------- estimators
def plain_knn_kl(Z: Any, *, seed: int = 0) -> dict[int, float]:
    r"""KL̂_k = max(Ĵ_k, 0) + placement for each k of ``KS``: Ĵ_k the plain Kozachenko–Leonenko estimate of the
    self-whitened sample (k-th neighbour only, calibrated on Gaussian samples of the same size:
    :func:`gaussify.metrics.estimators.knn.plain_negentropy`), placement = :func:`gaussify.metrics.placement_kl`."""
    from ..metrics import placement_kl
    from .._validation import as_sample
    from ..metrics.estimators.base import whiten_sample
    from ..metrics.estimators.knn import plain_negentropy

    X = as_sample(Z, min_rows=max(KS) + 2)
    neg = plain_negentropy(whiten_sample(X)[0], KS, seed=seed)
    place = placement_kl(X)
    return {k: max(float(j), 0.0) + place for k, j in zip(KS, neg)}


DEFAULT, UNCLIPPED, FLOW = "default", "default, unclipped", "flow cross-fit"


def method_label(name: str) -> str:
    """The suite's name of ``kl_divergence(Z, method=name)``, run where the default uses another method: the
    estimator's label and its method, e.g. ``"kNN k=16 (method='knn')"``."""
    from ..metrics.estimators import REGISTRY

    return f"{REGISTRY[name]().label} (method={name!r})"


def estimator_names() -> tuple[str, ...]:
    """Every estimator the suite compares, in its order: the default and its unclipped variant, each method of
    :data:`gaussify.metrics.estimators.REGISTRY` (:func:`method_label`), the plain kNN at each rank of ``KS``
    (``"kNN k=j"``) and the cross-fitted flow."""
    from ..metrics.estimators import REGISTRY

    return (DEFAULT, UNCLIPPED, *map(method_label, REGISTRY), *(f"kNN k={k}" for k in KS), FLOW)


@dataclass(frozen=True)
class FlowEstimator:
    """Where and how the cross-fitted flow estimate runs (it fits two flows per estimate)."""

    sizes: tuple[int, ...] = (5000,)
    max_dim: int = 16
    repetitions: int = 1
    params: dict[str, Any] = field(default_factory=lambda: {"max_epochs": 30, "n_iter_no_change": 10})

    def runs(self, d: int, n: int, rep: int) -> bool:
        return n in self.sizes and d <= self.max_dim and rep < self.repetitions


def _estimates(Z: np.ndarray, with_flow: bool, flow: FlowEstimator | None, with_others: bool,
               bootstrap: bool) -> tuple[dict[str, tuple[float, float]], tuple[float, float] | None]:
    """(estimate, seconds) of every estimator of :func:`estimator_names` on Z (the methods other than the default's
    and the plain kNN only ``with_others``), and the default's 95% bootstrap interval (``ci=0.95``) when
    ``bootstrap``."""
    from ..flows import cross_fitted_flow_kl
    from ..metrics import kl_divergence, kl_method
    from ..metrics.estimators import REGISTRY

    out = {}
    kl, seconds = timed(lambda: kl_divergence(Z, ci=0.95 if bootstrap else None))
    out[DEFAULT], out[UNCLIPPED] = (kl.value, seconds), (kl.raw_negentropy + kl.placement, seconds)
    if with_others:
        for name in REGISTRY:
            if name != kl_method(*Z.shape):
                estimate, seconds = timed(partial(kl_divergence, Z, method=name))
                out[method_label(name)] = (estimate.value, seconds)
        plain, seconds = timed(lambda: plain_knn_kl(Z))
        out.update({f"kNN k={k}": (value, seconds) for k, value in plain.items()})
    if with_flow:
        assert flow is not None  # with_flow needs a flow estimator
        out[FLOW] = timed(lambda: cross_fitted_flow_kl(Z, random_state=0, **flow.params))
    return out, kl.ci


# --------------------------------------------------------------------------------------------- the grid
@dataclass
class Config:
    """What to run (built from the command line)."""

    families: Sequence[str]
    dims: Sequence[int]
    sizes: Sequence[int]
    mc_draws: int
    cache: Path
    flow: FlowEstimator | None
    max_size: dict[int, int] = field(default_factory=dict)  # d -> largest n run there
    repetitions: tuple[int, int] = (5, 3)  # samples per cell at n <= 1000 and above
    others_max: tuple[int, int] = (10**9, 10**9)  # the estimators but the default run where d <= [0], n <= [1]
    bootstrap: bool = True  # the default's ci=0.95 bootstrap (costly at large d: a d × d covariance per replicate)

    def reps(self, n: int) -> int:
        return self.repetitions[0] if n <= 1000 else self.repetitions[1]

    def cells(self) -> list[tuple[str, int, int]]:
        return [(name, d, n) for name in self.families for d in self.dims
                if name in _CLOSED_FORM or d in FLOW_DIMS
                for n in self.sizes if n <= self.max_size.get(d, n) and n > d + max(KS) + 1]


FULL: dict[str, Any] = {"families": (*FAMILIES, *FLOW_FAMILIES), "dims": (2, 4, 8),
                        "sizes": (200, 500, 1000, 5000, 20000), "mc_draws": 200_000}
"""The full grid, where the default is kNN (d ≤ 8; about 20 min on one shared core with nothing cached; the
committed run also holds d = 16, 32, measured before the default there became the held-out Gaussianization)."""
QUICK: dict[str, Any] = {"families": tuple(FAMILIES), "dims": (2, 4), "sizes": (500,), "mc_draws": 20_000,
                         "repetitions": (2, 2),
                         "flow": FlowEstimator(sizes=(500,), max_dim=4, repetitions=1, params={"max_epochs": 3})}
"""``--quick``: the closed-form families at d = 2 and 4, n = 500, 2 repetitions, a 3-epoch flow estimate once."""
HIGH: dict[str, Any] = {"families": ("gaussian", *HIGH_DIM_FAMILIES, "student_t5", "student_t3", "mixture_tight",
                                     "mixture_loose", "mixture_unequal", "skewed", "circle", "sphere", "cube"),
                        "dims": (16, 32, 64, 128), "sizes": (2000, 10000), "mc_draws": 100_000, "flow": None,
                        "repetitions": (3, 3), "others_max": (32, 2000), "bootstrap": False, "name": "accuracy_high"}
"""``--grid high``: where embeddings live, d = 16 … 128 at n = 2,000 and 10,000, 3 samples per cell, the kNN
estimators only up to d = 32 and n = 2,000 (beyond, each takes minutes and reads ~0 on structure), no bootstrap."""


_ZERO_KL = 1e-9  # a true KL below this is 0 (the Gaussian family's Monte Carlo mean is rounding error only)


def _cell_stats(true: float, values: Sequence[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=float)
    rmse = float(np.sqrt(np.mean((v - true) ** 2)))
    return {"mean": float(v.mean()), "bias": float(v.mean() - true),
            "sd": float(v.std(ddof=1)) if len(v) > 1 else math.nan, "rmse": rmse,
            "rel_error": rmse / true if true > _ZERO_KL else math.nan}


def acceptance_bar(d: int, true: float) -> float:
    """The RMSE the issue accepts: 0.05 nats for d ≤ 4, else max(15% of the true KL, 0.1 nats)."""
    return 0.05 if d <= 4 else max(0.15 * true, 0.1)


def run(config: Config, progress: bool = True) -> tuple[list[dict], dict]:
    """Every estimator on every cell; returns one row per (family, d, n, estimator) and the families' notes."""
    from tqdm.auto import tqdm

    cells = config.cells()
    rows, notes = [], {}
    total = sum(config.reps(n) for _, _, n in cells)
    with tqdm(total=total, desc="accuracy", unit="sample", disable=not progress) as bar:
        for name, d in dict.fromkeys((name, d) for name, d, _ in cells):
            bar.set_postfix_str(f"{name} {d}-D: fitting / true KL")
            family = make_family(name, d, config.cache)
            true, se = _cached_true_kl(family, config.mc_draws, config.cache)
            notes[f"{name}/{d}"] = {"family": name, "d": d, "law": family.describe(), "scale": family.scale,
                                    "true_kl": true, "true_kl_se": se, **family.info}
            for n in [size for cell_name, cell_d, size in cells if (cell_name, cell_d) == (name, d)]:
                runs: dict[str, list[tuple[float, float]]] = {}
                covered = []
                for rep in range(config.reps(n)):
                    bar.set_postfix_str(f"{name} {d}-D n={n}")
                    Z = family.sample(n, np.random.default_rng([zlib.crc32(name.encode()), d, n, rep]))
                    with_flow = config.flow is not None and config.flow.runs(d, n, rep)
                    with_others = d <= config.others_max[0] and n <= config.others_max[1]
                    estimates, ci = _estimates(Z, with_flow, config.flow, with_others, config.bootstrap)
                    for est, result in estimates.items():
                        runs.setdefault(est, []).append(result)
                    if ci is not None:
                        covered.append(bool(ci[0] <= true <= ci[1]))
                    bar.update()
                for est, results in runs.items():
                    values = [value for value, _ in results]
                    rows.append({"family": name, "d": d, "n": n, "estimator": est, "true_kl": true,
                                 "true_kl_se": se, "reps": len(values), **_cell_stats(true, values),
                                 "bar": acceptance_bar(d, true), "seconds": float(np.mean([s for _, s in results])),
                                 "estimates": values, **({"covered": covered} if est == DEFAULT else {})})
    return rows, notes


# --------------------------------------------------------------------------------------------- summaries
def all_envelopes(rows: Sequence[dict]) -> dict[str, dict[str, Any]]:
    """:func:`error_envelopes` of every estimator in ``rows`` but the flow estimate (run on a few cells only), fitted
    once for the summary, the report's table and ``--write-envelopes``."""
    return {est: error_envelopes(rows, est) for est in dict.fromkeys(r["estimator"] for r in rows) if est != FLOW}


def summarize(rows: Sequence[dict], envelopes: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per estimator: worst |bias| and RMSE over d ≤ 4, worst relative error at d = 8, 16, the cells within the
    acceptance bar, the median RMSE / bar and the mean width of its measured 95% interval at d ≤ 8
    (:func:`mean_interval_width`); sorted best first by that width among the candidates for the default (then the
    unclipped variant, the same estimator before its clip at 0, and the flow estimate, run on a few cells only)."""
    out = []
    for est in dict.fromkeys(r["estimator"] for r in rows):
        mine = [r for r in rows if r["estimator"] == est]
        low = [r for r in mine if r["d"] <= 4]
        mid = [r for r in mine if r["d"] in (8, 16) and not math.isnan(r["rel_error"])]
        within = sum(r["rmse"] <= r["bar"] for r in mine)
        out.append({"estimator": est, "cells": len(mine),
                    "worst |bias|, d ≤ 4": max((abs(r["bias"]) for r in low), default=math.nan),
                    "worst RMSE, d ≤ 4": max((r["rmse"] for r in low), default=math.nan),
                    "worst rel. error, d = 8, 16": max((r["rel_error"] for r in mid), default=math.nan),
                    "within bar": f"{within}/{len(mine)}",
                    "median RMSE / bar": float(np.median([r["rmse"] / r["bar"] for r in mine]))})
        width = mean_interval_width(rows, est, envelopes[est]) if est in envelopes else math.nan
        out[-1]["interval width, d ≤ 8"] = width
        candidate = est not in (UNCLIPPED, FLOW)
        out[-1]["_rank"] = (not candidate, width, -within / len(mine))
    out.sort(key=lambda r: r["_rank"])
    for r in out:
        del r["_rank"]
    return out


def _best_per_cell(rows: Sequence[dict]) -> list[dict[str, Any]]:
    """Per (family, d): for each n, the estimator with the lowest RMSE (and that RMSE)."""
    table: dict[tuple[str, int], dict[str, Any]] = {}
    for key in dict.fromkeys((r["family"], r["d"], r["n"]) for r in rows):
        best = min((r for r in rows if (r["family"], r["d"], r["n"]) == key), key=lambda r: r["rmse"])
        entry = table.setdefault(key[:2], {"family": key[0], "d": key[1], "true KL": best["true_kl"]})
        entry[f"n={key[2]}"] = f"{best['estimator']} ({best['rmse']:.3f})"
    return list(table.values())


def _default_table(rows: Sequence[dict], sizes: Sequence[int]) -> list[dict[str, Any]]:
    """The default estimator per (family, d): bias / RMSE / relative error at each n of ``sizes``."""
    table: dict[tuple[str, int], dict[str, Any]] = {}
    for r in rows:
        if r["estimator"] == DEFAULT and r["n"] in sizes:
            entry = table.setdefault((r["family"], r["d"]), {"family": r["family"], "d": r["d"],
                                                             "true KL": r["true_kl"]})
            flag = "" if r["rmse"] <= r["bar"] else " ✗"
            rel = "—" if math.isnan(r["rel_error"]) else f"{r['rel_error']:.0%}"
            entry[f"n={r['n']} bias / RMSE / rel"] = f"{r['bias']:+.3f} / {r['rmse']:.3f} / {rel}{flag}"
    return list(table.values())


TOLERANCE = (0.05, 0.20)
"""The high-dimensional acceptance: the default's mean over the samples of a cell within 0.05 nats + 20% of the
exact KL."""


def tolerance_table(rows: Sequence[dict], n: int) -> list[dict[str, Any]]:
    """Per family (and overall): the (d ≥ 16) cells at ``n`` where the default's mean is within :data:`TOLERANCE`
    of the exact KL, and the d at which it is not."""
    mine = [r for r in rows if r["estimator"] == DEFAULT and r["n"] == n and r["d"] > 8]
    ok = {id(r): abs(r["mean"] - r["true_kl"]) <= TOLERANCE[0] + TOLERANCE[1] * r["true_kl"] for r in mine}
    table = []
    for family in dict.fromkeys(r["family"] for r in mine):
        cells = [r for r in mine if r["family"] == family]
        table.append({"family": family, "within": f"{sum(ok[id(r)] for r in cells)}/{len(cells)}",
                      "missed at d (mean / exact)": ", ".join(f"{r['d']} ({r['mean']:.2f} / {r['true_kl']:.2f})"
                                                             for r in cells if not ok[id(r)]) or "—"})
    if mine:
        table.append({"family": "all", "within": f"{sum(ok.values())}/{len(mine)} ({np.mean(list(ok.values())):.0%})",
                      "missed at d (mean / exact)": ""})
    return table


def _family_coverage_table(envelopes: dict[str, Any]) -> list[dict[str, Any]]:
    """Per d above 8: the held-out coverage of the measured interval per family (the envelope fitted without it)."""
    return [{"d": int(d), **{family: f"{c:.0%}" for family, c in entry.get("family_coverage", {}).items()}}
            for d, entry in envelopes["dims"].items() if int(d) > 8]


def _coverage_table(rows: Sequence[dict]) -> list[dict[str, Any]]:
    """Per d: how often the default's 95% interval holds the true KL, over the samples of cells within the
    acceptance bar and of the others."""
    table = []
    for d in sorted({r["d"] for r in rows if r["estimator"] == DEFAULT}):
        entry: dict[str, Any] = {"d": d}
        for label, within in (("cells within the bar", True), ("other cells", False)):
            hits = [c for r in rows if r["estimator"] == DEFAULT and r["d"] == d and (r["rmse"] <= r["bar"]) == within
                    for c in r["covered"]]
            entry[label] = f"{np.mean(hits):.0%} of {len(hits)}" if hits else "—"
        table.append(entry)
    return table


# --------------------------------------------------------------------------------------------- measured interval
ENVELOPE_LEVEL = 0.95
"""Share of samples of a left-out family that the fitted error envelopes must hold (see :func:`error_envelopes`)."""
_ENVELOPE_FACTORS = tuple(round(1.0 + 0.05 * i, 2) for i in range(61))  # 1.00, 1.05, ..., 4.00


def _envelope_line(estimate: np.ndarray, excess: np.ndarray) -> tuple[float, float]:
    """The line a + b·estimate (a, b ≥ 0) of least mean height over the samples that lies on or above every
    ``excess`` (a linear programme in (a, b))."""
    from scipy.optimize import linprog

    result = linprog([len(estimate), float(estimate.sum())], A_ub=-np.column_stack([np.ones_like(estimate), estimate]),
                     b_ub=-excess, bounds=[(0.0, None), (0.0, None)], method="highs")
    if not result.success:
        raise RuntimeError(f"error envelope fit failed: {result.message}")
    return float(result.x[0]), float(result.x[1])


def _envelope_samples(rows: Sequence[dict], estimator: str, d: int,
                      n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(estimate, true KL, family) of every sample of ``estimator`` at (d, n)."""
    mine = [r for r in rows if r["estimator"] == estimator and r["d"] == d and r["n"] == n]
    return (np.array([v for r in mine for v in r["estimates"]], dtype=float),
            np.array([r["true_kl"] for r in mine for _ in r["estimates"]], dtype=float),
            np.array([r["family"] for r in mine for _ in r["estimates"]]))


def _envelope_lines(estimate: np.ndarray, true: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """(lower, upper) envelope lines: the estimate exceeds the truth by at most a + b·estimate, and falls short of
    it by at most a' + b'·estimate, on every sample given."""
    return _envelope_line(estimate, estimate - true), _envelope_line(estimate, true - estimate)


def _held(estimate: np.ndarray, true: np.ndarray, lower: tuple[float, float], upper: tuple[float, float],
          factor: float) -> np.ndarray:
    low = estimate - factor * (lower[0] + lower[1] * estimate)
    high = estimate + factor * (upper[0] + upper[1] * estimate)
    return (low <= true) & (true <= high)


def error_envelopes(rows: Sequence[dict], estimator: str = DEFAULT, level: float = ENVELOPE_LEVEL) -> dict[str, Any]:
    r"""The measured interval of ``estimator`` (the default: :func:`gaussify.metrics.kl_divergence`, k = 16), fitted
    on this suite's samples.

    Per (d, n): envelope lines with KL̂ − a − b·KL̂ ≤ KL ≤ KL̂ + a' + b'·KL̂ on every sample of every family
    (:func:`_envelope_line`). Per d, the lines are widened by the smallest factor (1 … 4 in steps of 0.05) with
    which the lines fitted without a family hold for at least ``level`` of that family's samples, pooled over the
    families and n (leave-one-family-out: how well the envelope transfers to a law it has not seen); ``factor``
    None when none does (the interval's upper end is then +∞). The lines stored are the widened ones, with the
    shape estimator (``method``) the default uses at that d.
    """
    from ..metrics import kl_method
    from ..metrics.estimators import REGISTRY

    methods = {method_label(name): name for name in REGISTRY}  # the estimator behind each method's samples
    table: dict[str, Any] = {"estimator": "kl_divergence" if estimator == DEFAULT else estimator, "k": 16,
                             "level": level, "about": f"gaussify bench accuracy: error envelopes of {estimator}",
                             "dims": {}}
    for d in sorted({r["d"] for r in rows if r["estimator"] == estimator}):
        sizes = sorted({r["n"] for r in rows if r["estimator"] == estimator and r["d"] == d})
        fits, held_out, held_family = {}, [], []
        for n in sizes:
            estimate, true, family = _envelope_samples(rows, estimator, d, n)
            fits[n] = (_envelope_lines(estimate, true), len(estimate))
            for name in dict.fromkeys(family):
                out = family == name
                held_out.append((estimate[out], true[out], *_envelope_lines(estimate[~out], true[~out])))
                held_family.append(name)
        coverage = {f: float(np.mean(np.concatenate([_held(*h, f) for h in held_out]))) for f in _ENVELOPE_FACTORS}
        factor = next((f for f in _ENVELOPE_FACTORS if coverage[f] >= level), None)
        scale = 1.0 if factor is None else factor
        chosen = _ENVELOPE_FACTORS[-1] if factor is None else factor
        family_coverage = {name: float(np.mean(np.concatenate([_held(*h, chosen)
                                                               for h, f in zip(held_out, held_family) if f == name])))
                           for name in dict.fromkeys(held_family)}
        table["dims"][str(d)] = {
            "method": kl_method(sizes[0], d) if estimator in (DEFAULT, UNCLIPPED) else methods.get(estimator),
            "factor": factor,
            "held_out_coverage": coverage[_ENVELOPE_FACTORS[-1] if factor is None else factor],
            "unwidened_coverage": coverage[1.0], "families": len({r["family"] for r in rows if r["d"] == d}),
            "family_coverage": family_coverage,
            "sizes": {str(n): {"lower": [scale * c for c in lines[0]],
                               "upper": [scale * c for c in lines[1]] if factor is not None else None,
                               "samples": count}
                      for n, (lines, count) in fits.items()}}
    return table


def mean_interval_width(rows: Sequence[dict], estimator: str, envelopes: dict[str, Any], max_dim: int = 8) -> float:
    """Mean width of ``estimator``'s measured interval (``envelopes``, its :func:`error_envelopes`) over its own
    samples at d ≤ ``max_dim`` (above, every kNN estimate's interval is many nats wide): the error a user of it is
    told."""
    widths = []
    for d, entry in envelopes["dims"].items():
        for n, env in entry["sizes"].items():
            if int(d) <= max_dim and env["upper"] is not None:
                v = _envelope_samples(rows, estimator, int(d), int(n))[0]
                widths.append(env["lower"][0] + env["upper"][0] + (env["lower"][1] + env["upper"][1]) * v)
    return float(np.mean(np.concatenate(widths))) if widths else math.nan


def _envelope_table(envelopes: dict[str, Any]) -> list[dict[str, Any]]:
    """The envelopes as rows: interval at d, n as KL̂ − (a + b KL̂), KL̂ + (a' + b' KL̂)."""
    out = []
    for d, entry in envelopes["dims"].items():
        for n, env in entry["sizes"].items():
            upper = env["upper"]
            out.append({"d": int(d), "n": int(n), "samples": env["samples"],
                        "lower end": f"KL̂ − ({env['lower'][0]:.3f} + {env['lower'][1]:.3f} KL̂)",
                        "upper end": "∞" if upper is None else f"KL̂ + ({upper[0]:.3f} + {upper[1]:.3f} KL̂)",
                        "widened by": entry["factor"] or "—",
                        "held-out coverage": f"{entry['held_out_coverage']:.0%} (unwidened "
                                             f"{entry['unwidened_coverage']:.0%})"})
    return out


def _header(config: Config, argv: Sequence[str], quick: bool, seconds: float) -> list[str]:
    from ..metrics.estimators import REGISTRY

    flow = config.flow
    return [
        "# Accuracy benchmark: KL estimates against the exact KL(P ‖ N(0, I))", "",
        *machine_lines(None, ("gaussify", "numpy", "scipy", "torch", "zuko", "scikit-learn")),
        f"- Command: `gaussify bench accuracy {' '.join(argv)}`".rstrip() + ("  (quick mode)" if quick else ""),
        f"- Total run time: {seconds:.0f} s (one thread; true KLs and fitted flows cached in `--cache`)",
        f"- Grid: families {list(config.families)}; d {list(config.dims)}; n {list(config.sizes)}"
        + "".join(f"; n ≤ {m} at d = {d}" for d, m in config.max_size.items())
        + f"; repetitions {config.repetitions[0]} at n ≤ 1000, {config.repetitions[1]} above",
        f"- True KL: Monte Carlo over {config.mc_draws:,} draws (± its standard error); every law scaled so that "
        "tr Cov = d (mean kept).",
        "- Estimators: `default` = `kl_divergence(Z).value` (k = 16, BSY weights); `default, unclipped` = "
        "`raw_negentropy + placement`; "
        + "; ".join(f"`{method_label(name)}` = `kl_divergence(Z, method={name!r}).value`" for name in REGISTRY)
        + " where the default uses another method; `kNN k=j` = plain Kozachenko–Leonenko with the j-th neighbour, "
        "same Gaussian calibration and placement; `flow cross-fit` = `cross_fitted_flow_kl(Z, **params)` "
        + ("not run" if flow is None else
           f"with {flow.params} at n in {list(flow.sizes)}, d ≤ {flow.max_dim}, {flow.repetitions} repetition(s) "
           "per cell (the first)"),
        "- Errors in nats: bias = mean − true, sd over repetitions, RMSE, rel = RMSE / true KL. Acceptance bar: "
        "RMSE ≤ 0.05 for d ≤ 4, ≤ max(15% of the true KL, 0.1) above (✗: outside it). seconds: per estimate, "
        "the first at each (n, d) including its Gaussian reference.", "",
    ]


def markdown(rows: Sequence[dict], notes: dict, header: list[str], envelopes: dict[str, dict[str, Any]],
             name: str = "accuracy") -> str:
    """The report: header, summary, default estimator, best estimator per cell, the families, every cell
    (``envelopes``: :func:`all_envelopes` of ``rows``)."""
    from ..compare import format_table

    sizes = sorted({r["n"] for r in rows})
    shown = [n for n in (1000, 5000) if n in sizes] or sizes
    high_n = max((r["n"] for r in rows if r["d"] > 8), default=0)
    summary = summarize(rows, envelopes)
    lines = [*header, "## Summary per estimator (best first)", "", format_table(summary), "",
             f"Lowest error overall: **{summary[0]['estimator']}** (the narrowest measured 95% interval at d ≤ 8: "
             "the mean width, over the estimator's own samples, of the interval fitted to its errors on every law "
             "as below; the unclipped variant, negative at times, is not a candidate).", "",
             f"## Default estimator at n = {', '.join(map(str, shown))}", "", format_table(_default_table(rows, shown)),
             "",
             *([f"## Within {TOLERANCE[0]:g} nats + {TOLERANCE[1]:.0%} of the exact KL, d ≥ 16, n = {high_n}", "",
                "The default's mean over a cell's samples.", "", format_table(tolerance_table(rows, high_n)), ""]
               if high_n else []),
             "## Coverage of the default's 95% interval (`ci=0.95`, bootstrap over rows)", "",
             format_table(_coverage_table(rows)), "",
             "## The measured interval of `kl_divergence` (`KLEstimate.interval`)", "",
             "Lines a + b·KL̂ that hold on every sample of every family at that (d, n), widened per d by the "
             f"smallest factor with which lines fitted without a family hold for {ENVELOPE_LEVEL:.0%} of its "
             "samples (held-out coverage, pooled over families and n). `--write-envelopes` stores them in the "
             "package; `kl_divergence` uses the next larger d and the next smaller n.", "",
             format_table(_envelope_table(envelopes[DEFAULT])), "",
             *(["Held-out coverage per family (the envelope fitted without that family, at the chosen widening):", "",
                format_table(_family_coverage_table(envelopes[DEFAULT])), ""]
               if _family_coverage_table(envelopes[DEFAULT]) else []),
             "## Lowest RMSE per cell", "", format_table(_best_per_cell(rows)), "",
             "## Families", "", format_table(list(notes.values())), "", f"![estimate vs true KL]({name}.png)", ""]
    for family in dict.fromkeys(r["family"] for r in rows):
        table = [{"d": r["d"], "n": r["n"], "estimator": r["estimator"], "true KL": r["true_kl"],
                  "mean": r["mean"], "bias": r["bias"], "sd": r["sd"], "RMSE": r["rmse"], "rel": r["rel_error"],
                  "bar": "" if r["rmse"] <= r["bar"] else "✗", "reps": r["reps"], "seconds": r["seconds"]}
                 for r in rows if r["family"] == family]
        lines += [f"## {family}", "", format_table(table), ""]
    return "\n".join(lines)


def plot(rows: Sequence[dict], path: Path) -> None:
    """Mean estimate against true KL (symlog axes), one panel per d, at the largest n ≤ 5000 of each cell: the
    default, the methods and the plain kNN (the unclipped variant and the flow, run on a few cells, left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..metrics.estimators import REGISTRY

    dims = sorted({r["d"] for r in rows})
    fig, axes = plt.subplots(1, len(dims), figsize=(4.2 * len(dims), 4.4), squeeze=False)
    markers = {DEFAULT: "*", **dict(zip(map(method_label, REGISTRY), "oh<>p")),
               **dict(zip((f"kNN k={k}" for k in KS), "v^sDPX"))}
    for ax, d in zip(axes[0], dims):
        mine = [r for r in rows if r["d"] == d]
        n = max((r["n"] for r in mine if r["n"] <= 5000), default=min(r["n"] for r in mine))
        lo = min(r["true_kl"] for r in mine)
        hi = max(max(r["true_kl"], r["mean"]) for r in mine)
        ax.plot([0, hi], [0, hi], color="gray", lw=1, zorder=1)
        for est, marker in markers.items():
            pts = [(r["true_kl"], r["mean"]) for r in mine if r["estimator"] == est and r["n"] == n]
            if pts:
                ax.scatter(*zip(*pts), marker=marker, s=70 if est == DEFAULT else 28, alpha=0.75, label=est,
                           zorder=5 if est == DEFAULT else 3)
        ax.set_xscale("symlog", linthresh=max(min(lo, 0.1), 0.01))
        ax.set_yscale("symlog", linthresh=max(min(lo, 0.1), 0.01))
        ax.set(xlabel="true KL (nats)", ylabel="mean estimate (nats)", title=f"d = {d}, n = {n}")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------------------------- command line
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gaussify bench accuracy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", choices=("full", "high"), default="full",
                        help="full: d = 2 … 32 (accuracy.md); high: d = 16 … 128, n = 2,000 and 10,000, the "
                             "high-dimensional families (accuracy_high.md)")
    parser.add_argument("--quick", action="store_true",
                        help="closed-form families at d = 2, 4, n = 500, 2 repetitions, a 3-epoch flow estimate")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"),
                        help="directory for <name>.md, .json and .png, name accuracy or accuracy_high (default: "
                             "benchmarks/results)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "gaussify-accuracy",
                        help="directory for the true KLs and the fitted flows (default: %(default)s)")
    parser.add_argument("--families", nargs="+", choices=[*_CLOSED_FORM, *FLOW_FAMILIES],
                        help=f"default: {list(FULL['families'])}")
    parser.add_argument("--dims", nargs="+", type=int, help=f"dimensions (default: {list(FULL['dims'])})")
    parser.add_argument("--sizes", nargs="+", type=int, help=f"sample sizes n (default: {list(FULL['sizes'])})")
    parser.add_argument("--mc-draws", type=int, help=f"Monte Carlo draws of the true KL (default: {FULL['mc_draws']})")
    parser.add_argument("--no-flow", action="store_true", help="skip the cross-fitted flow estimator")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--render", type=Path, metavar="RUN.json",
                        help="re-render RUN.md and RUN.png (and, with --write-envelopes, the interval) from a "
                             "committed run's JSON instead of running; the header of RUN.md is kept")
    parser.add_argument("--write-envelopes", action="store_true",
                        help="refit the measured interval of kl_divergence from this run into the installed package "
                             "(gaussify/metrics/kl_error.json; run it on the full grid)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, write ``accuracy.md``, ``accuracy.json`` and ``accuracy.png`` to ``--out``."""
    from ..io import write_text_atomic
    from .quality import _json_safe

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(argv)
    if args.render is not None:  # a committed run, re-rendered: its rows, and its header (machine, command, time)
        data = json.loads(args.render.read_text(encoding="utf-8"))
        rows = [{key: math.nan if value is None else value for key, value in r.items()} for r in data["cells"]]
        notes = {f"{f['family']}/{f['d']}": f for f in data["families"]}  # JSON wrote NaN as null
        name = args.render.stem
        previous = args.render.with_suffix(".md").read_text(encoding="utf-8").split("## Summary per estimator")[0]
        header = [*previous.rstrip("\n").split("\n"),
                  f"- Re-rendered from `{args.render.name}` by `gaussify bench accuracy {' '.join(argv)}`", ""]
        args.out = args.render.parent
    else:
        base = QUICK if args.quick else HIGH if args.grid == "high" else {**FULL, "flow": FlowEstimator()}
        name = base.get("name", "accuracy")
        dims, sizes = args.dims or base["dims"], args.sizes or base["sizes"]
        mc_draws = args.mc_draws or base["mc_draws"]
        if min(dims) < 1 or min(sizes) < 1 or mc_draws < 2:
            parser.error("--dims, --sizes and --mc-draws must be positive (and --mc-draws >= 2)")
        config = Config(families=args.families or base["families"], dims=dims, sizes=sizes, mc_draws=mc_draws,
                        cache=args.cache, flow=None if args.no_flow else base["flow"],
                        max_size={} if args.sizes else base.get("max_size", {}),
                        repetitions=base.get("repetitions", (5, 3)), others_max=base.get("others_max", (10**9, 10**9)),
                        bootstrap=base.get("bootstrap", True))
        if not config.cells():
            parser.error(f"no cell to run: n must exceed d + {max(KS) + 1}, and flow families exist at d in "
                         f"{FLOW_DIMS} only")
        args.cache.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        rows, notes = run(config, progress=not args.no_progress)
        header = _header(config, argv, args.quick, time.perf_counter() - start)
    envelopes = all_envelopes(rows)
    report = markdown(rows, notes, header, envelopes, name)
    paths = [args.out / f"{name}.{ext}" for ext in ("md", "json", "png")]
    write_text_atomic(paths[0], report)
    if args.render is None:
        write_text_atomic(paths[1], json.dumps(_json_safe({"families": list(notes.values()), "cells": rows}),
                                               indent=1) + "\n")
    plot(rows, paths[2])
    if args.write_envelopes:
        from ..metrics import divergence

        merged = json.loads(divergence._ERROR_ENVELOPES.read_text(encoding="utf-8"))
        merged["dims"].update(envelopes[DEFAULT]["dims"])  # this run's dimensions replace the packaged ones
        merged["dims"] = {d: merged["dims"][d] for d in sorted(merged["dims"], key=int)}
        write_text_atomic(divergence._ERROR_ENVELOPES, json.dumps(merged, indent=1) + "\n")
        print(f"wrote {divergence._ERROR_ENVELOPES} (d = {', '.join(envelopes[DEFAULT]['dims'])} from this run)")
    print(report)
    print(f"wrote {paths[0]}, {paths[1]} (every cell) and {paths[2]}")
    return 0
