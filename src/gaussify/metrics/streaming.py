r"""Gaussianity of data larger than memory: statistics that are sums over chunks, merged across processes.

Every accumulator has ``update(chunk)`` (add an (m, d) chunk), ``merge(other)`` (add another accumulator's
state, e.g. another file shard or rank) and ``compute()``; :func:`all_reduce` merges one across the ranks of a
``torch.distributed`` group. :func:`evaluate_streaming` drives them over an array, a memory-mapped ``.npy``, a
``.parquet`` file (one row group batch at a time), a ``.csv`` file or a re-iterable source of chunks, in
O(chunk · d + d³) memory.

Design: **two passes.** Mardia's statistics are moments of the sample *whitened with its own mean and covariance*,
y = L̂⁻¹(z − z̄), which are only known after a full pass. Expanding them in raw moments instead would need the
d⁴ fourth-moment tensor (kurtosis) and loses precision to cancellation when the mean is far from 0; the second
pass needs only the d²(d+1)/2 packed third-moment tensor, is exact for any d, and costs one more read.

* pass 1 -- :class:`MeanCov` (count, mean, co-moments; exact merge of Chan, Golub & LeVeque 1983),
  :class:`SlicedEppsPulley` (characteristic-function sums of fixed random slices) and :class:`RadiusHistogram`
  (squared radii binned on χ²_d quantiles), the last two in the *target's* coordinates, so they need no pass 1;
* pass 2 -- :class:`MardiaMoments` (Σ y⊗y⊗y and Σ ‖y‖⁴ with the pass-1 mean and covariance).

The continuity check of :func:`~gaussify.metrics.atoms` (ties: repeated rows, or a column value held by many rows)
runs alongside: :class:`Ties` in pass 1, :class:`TieCounts` in pass 2.

NumPy/SciPy only; torch is imported by :func:`all_reduce` alone.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from scipy import special, stats
from scipy.linalg import solve_triangular

from .._validation import (RandomState, TargetFrame, as_sample, check_bool, check_int, check_random_state, check_real,
                           renamed_parameters)
from ._common import format_pvalue
from .divergence import _atom_reason, _placement_from_moments
from .normality import (TestResult, _check_condition, _jsonable, mardia_kurtosis_statistic,
                        mardia_skewness_statistic)

__all__ = ["CHUNK_SIZE", "MeanCov", "MardiaMoments", "SlicedEppsPulley", "RadiusHistogram", "Ties", "TieCounts",
           "all_reduce", "read_chunks", "StreamingResult", "evaluate_streaming"]

CHUNK_SIZE = 65_536
"""Default rows per chunk read from the source."""
_BLOCK_ELEMENTS = 1 << 20
"""Elements of the largest temporary an update forms (8 MiB in float64): updates run in row blocks."""


def _row_blocks(n: int, width: int) -> Iterator[slice]:
    """Row slices of at most ``_BLOCK_ELEMENTS / width`` rows covering range(n)."""
    step = max(1, _BLOCK_ELEMENTS // max(width, 1))
    return (slice(s, s + step) for s in range(0, n, step))


class _Accumulator:
    """Shared ``update``/``merge`` plumbing. Subclasses list their summed state in ``_sums`` and the settings
    two accumulators must share to be merged in ``_config``."""

    _sums: tuple[str, ...] = ()
    dim: int
    n: int

    def _config(self) -> tuple:
        return (self.dim,)

    def _chunk(self, chunk: Any) -> np.ndarray:
        X = as_sample(chunk, min_rows=0, name="chunk")
        if X.shape[1] != self.dim:
            raise ValueError(f"chunk has {X.shape[1]} columns, expected {self.dim}")
        return X

    def _check_mergeable(self, other: "_Accumulator") -> None:
        if type(other) is not type(self):
            raise TypeError(f"cannot merge {type(other).__name__} into {type(self).__name__}")
        if not _same(other._config(), self._config()):
            raise ValueError(f"cannot merge {type(self).__name__}s with different settings")

    def update(self: _A, chunk: Any) -> _A:
        """Add the rows of an (m, d) chunk; returns self."""
        X = self._chunk(chunk)
        if len(X):
            self._add(X)
        return self

    def merge(self: _A, other: _A) -> _A:
        """Add the state of ``other`` (same type and settings); returns self."""
        self._check_mergeable(other)
        self.n += other.n
        for name in self._sums:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    def _add(self, X: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _require_rows(self, minimum: int) -> None:
        if self.n < minimum:
            raise ValueError(f"{type(self).__name__} needs at least {minimum} rows, got {self.n}")


_A = TypeVar("_A", bound=_Accumulator)  # merge, update and all_reduce return the accumulator's own type


def _same(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


class MeanCov(_Accumulator):
    r"""Count n, mean x̄ and co-moment matrix C = Σᵢ (xᵢ − x̄)(xᵢ − x̄)ᵀ.

    Each chunk's own (n, x̄, C) is merged exactly (Chan, Golub & LeVeque 1983, Am. Stat. 37):
    n = n_a + n_b, δ = x̄_b − x̄_a, x̄ = x̄_a + δ n_b/n, C = C_a + C_b + δδᵀ n_a n_b/n -- no raw second
    moments, so no cancellation when the mean is large.
    """

    def __init__(self, dim: int) -> None:
        self.dim = check_int(dim, "dim")
        self.n = 0
        self.mean = np.zeros(self.dim)
        self.comoment = np.zeros((self.dim, self.dim))

    def _add(self, X: np.ndarray) -> None:
        part = MeanCov(self.dim)
        part.n, part.mean = len(X), X.mean(axis=0)
        centred = X - part.mean
        part.comoment = centred.T @ centred
        self.merge(part)

    def merge(self, other: "MeanCov") -> "MeanCov":
        self._check_mergeable(other)
        if other.n:
            n = self.n + other.n
            delta = other.mean - self.mean
            self.mean = self.mean + delta * (other.n / n)
            self.comoment = self.comoment + other.comoment + np.outer(delta, delta) * (self.n * other.n / n)
            self.n = n
        return self

    def compute(self, ddof: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(mean, covariance C/(n − ddof)): ddof=1 the unbiased, ddof=0 the maximum-likelihood covariance."""
        self._require_rows(ddof + 1)
        return self.mean.copy(), self.comoment / (self.n - ddof)

    def placement_kl(self, target: Any = None, *, bias_correct: bool = True) -> float:
        r"""KL(N(x̄, S) ‖ N(μ, LLᵀ)) in nats, S unbiased, from the moments mapped to L⁻¹(z − μ);
        bias-corrected and clipped at 0 as :func:`~gaussify.metrics.placement_kl`."""
        self._require_rows(self.dim + 1)
        mean, cov = self.compute()
        frame = TargetFrame(target, self.dim)
        inv = frame.inverse
        return max(_placement_from_moments(inv @ (mean - frame.mean), inv @ cov @ inv.T, self.n, bias_correct), 0.0)


def _check_covariance(cov: np.ndarray, test: str) -> None:
    """Raise unless the covariance has no constant column and is well conditioned (scale invariant check)."""
    sd = np.sqrt(np.diag(cov))
    constant = np.flatnonzero(sd == 0)
    if constant.size:
        raise ValueError(f"{test}: column(s) {constant.tolist()[:10]} are constant; drop constant columns first")
    _check_condition(np.linalg.eigvalsh(cov / np.outer(sd, sd)), test)


class MardiaMoments(_Accumulator):
    r"""Second pass for Mardia's statistics: n, T = Σᵢ yᵢ⊗yᵢ⊗yᵢ and Σᵢ ‖yᵢ‖⁴ with yᵢ = L̂⁻¹(zᵢ − z̄).

    ``mean`` and ``cov`` are the full sample's mean and *maximum-likelihood* covariance S = L̂L̂ᵀ (from
    :class:`MeanCov` ``compute(ddof=0)``). Then b_{1,p} = ‖T‖²_F / n² and b_{2,p} = Σ‖yᵢ‖⁴ / n (Mardia 1970,
    Biometrika 57); both are invariant to the choice of the root of S. T is stored packed, slices T[a, b, :]
    for a ≤ b: d²(d+1)/2 floats and O(d³/2) work per row (``skewness=False`` skips it).
    """

    _sums = ("third", "fourth")

    def __init__(self, mean: Any, cov: Any, *, skewness: bool = True) -> None:
        self.mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        cov = np.asarray(cov, dtype=np.float64)
        self.dim = check_int(self.mean.size, "dim")
        if cov.shape != (self.dim, self.dim):
            raise ValueError(f"cov has shape {cov.shape}, expected ({self.dim}, {self.dim})")
        _check_covariance(cov, "MardiaMoments")
        self.cov = cov
        self._root = solve_triangular(np.linalg.cholesky(cov), np.eye(self.dim), lower=True).T  # y = (z − z̄) R
        self.skewness = bool(skewness)
        self._pairs = np.triu_indices(self.dim) if skewness else (np.zeros(0, int), np.zeros(0, int))
        self.n = 0
        self.third = np.zeros((self._pairs[0].size, self.dim))
        self.fourth = 0.0

    def _config(self) -> tuple:
        return (self.mean, self.cov, self.skewness)

    def _add(self, X: np.ndarray) -> None:
        Y = (X - self.mean) @ self._root
        self.n += len(Y)
        self.fourth += float(np.sum(np.einsum("ij,ij->i", Y, Y) ** 2))
        ia, ib = self._pairs
        if ia.size:
            for rows in _row_blocks(len(Y), ia.size):
                block = Y[rows]
                self.third += (block[:, ia] * block[:, ib]).T @ block

    def compute(self) -> tuple[float, float]:
        """(b_{1,p}, b_{2,p}); b_{1,p} is NaN when ``skewness=False``."""
        self._require_rows(1)
        b2 = self.fourth / self.n
        if not self.skewness:
            return math.nan, b2
        ia, ib = self._pairs
        weights = np.where(ia == ib, 1.0, 2.0)  # T[a, b, :] = T[b, a, :]
        return float(weights @ np.einsum("ij,ij->i", self.third, self.third)) / self.n**2, b2

    def skewness_test(self) -> TestResult:
        r"""Mardia's skewness test: n k b_{1,p}/6 ~ χ² with p(p+1)(p+2)/6 df, k = 1 for n ≥ 20 and
        k = (p+1)(n+1)(n+3)/(n((n+1)(p+1) − 6)) below (Mardia 1974, Sankhyā B 36); as
        :func:`~gaussify.metrics.mardia_skewness`."""
        if not self.skewness:
            raise ValueError("this MardiaMoments was built with skewness=False")
        self._require_rows(3)
        n, d = self.n, self.dim
        stat, details = mardia_skewness_statistic(self.compute()[0], n, d)
        return TestResult("mardia_skewness", stat, float(stats.chi2.sf(stat, details["df"])), "asymptotic", n, d,
                          details)

    def kurtosis_test(self) -> TestResult:
        r"""Mardia's kurtosis test with the exact finite-sample moments under normality,
        E b_{2,p} = p(p+2)(n−1)/(n+1), Var b_{2,p} = 8p(p+2)(n−3)(n−p−1)(n−p+1)/((n+1)²(n+3)(n+5))
        (Mardia 1974); z = (b_{2,p} − E)/√Var, two-sided normal p-value; as
        :func:`~gaussify.metrics.mardia_kurtosis`."""
        n, d = self.n, self.dim
        self._require_rows(max(4, d + 2))
        stat, details = mardia_kurtosis_statistic(self.compute()[1], n, d)
        return TestResult("mardia_kurtosis", stat, float(2.0 * special.ndtr(-abs(stat))), "asymptotic", n, d,
                          details)


class SlicedEppsPulley(_Accumulator):
    r"""Empirical characteristic-function sums of K fixed random slices, in the target's coordinates.

    With w = L⁻¹(z − μ) and unit directions θ_k (drawn once from ``random_state``: an int makes them identical on
    every rank, as merging needs; ``seed`` is its deprecated name), the sums
    Σᵢ cos(t_m θ_kᵀwᵢ) and Σᵢ sin(t_m θ_kᵀwᵢ) at the knots t_m = m·t_max/(knots − 1) give each slice's
    Epps–Pulley statistic (Epps & Pulley 1983, Biometrika 70), as in SIGReg (Balestriero & LeCun 2025):

    .. math::
        \mathrm{EP}_k = n \sum_m c_m \big[(\bar c_{km} - e^{-t_m^2/2})^2 + \bar s_{km}^2\big],

    c_m = 2 · trapezoid weight · e^{−t_m²/2}. Under the target every slice is N(0, 1) and E EP_k =
    Σ_m c_m (1 − e^{−t_m²}) for every n (``null_mean``). cos/sin of all knots come from powers of e^{ihx}.
    """

    _sums = ("cos_sum", "sin_sum")

    @renamed_parameters(seed="random_state")
    def __init__(self, dim: int, target: Any = None, *, num_slices: int = 64, knots: int = 17, t_max: float = 3.0,
                 random_state: RandomState = 0) -> None:
        self.dim = check_int(dim, "dim")
        check_int(num_slices, "num_slices")
        check_int(knots, "knots", minimum=2)
        check_real(t_max, "t_max", strict=True)
        self._frame = TargetFrame(target, self.dim)
        theta = check_random_state(random_state).standard_normal((self.dim, int(num_slices)))
        self.directions = theta / np.linalg.norm(theta, axis=0)
        self.step = float(t_max) / (knots - 1)
        t = self.step * np.arange(knots)
        trapezoid = np.full(knots, self.step)
        trapezoid[[0, -1]] *= 0.5
        self.weights = 2.0 * trapezoid * np.exp(-0.5 * t * t)
        self._target_cf = np.exp(-0.5 * t * t)
        self.n = 0
        self.cos_sum = np.zeros((int(num_slices), knots))
        self.sin_sum = np.zeros((int(num_slices), knots))

    def _config(self) -> tuple:
        return (self.directions, self.weights, self._frame.mean, self._frame.chol)

    @property
    def null_mean(self) -> float:
        """E EP_k for exact target data, every n: Σ_m c_m (1 − e^{−t_m²})."""
        return float(self.weights @ (1.0 - self._target_cf**2))

    def _add(self, X: np.ndarray) -> None:
        P = self._frame.standardize(X) @ self.directions
        self.n += len(P)
        for rows in _row_blocks(len(P), P.shape[1]):
            rotation = np.exp(1j * self.step * P[rows])
            power = np.ones_like(rotation)
            for m in range(self.weights.size):
                total = power.sum(axis=0)
                self.cos_sum[:, m] += total.real
                self.sin_sum[:, m] += total.imag
                power *= rotation

    def compute(self) -> np.ndarray:
        """EP_k of each slice, shape (num_slices,)."""
        self._require_rows(1)
        gap = (self.cos_sum / self.n - self._target_cf) ** 2 + (self.sin_sum / self.n) ** 2
        return self.n * (gap @ self.weights)


class RadiusHistogram(_Accumulator):
    r"""Squared radii r² = ‖L⁻¹(z − μ)‖² in the target's coordinates, binned on χ²_d quantiles.

    Under the target r² ~ χ²_d, so the ``bins`` equiprobable bins each expect n/bins rows and Pearson's
    X² = Σ (O_j − n/bins)²/(n/bins) is asymptotically χ²_{bins−1}; also Σ r² and Σ r⁴ (mean d, variance 2d).
    Sensitive to placement and scale as well as shape.
    """

    _sums = ("counts", "sum_sq", "sum_quad")

    def __init__(self, dim: int, target: Any = None, *, bins: int = 20) -> None:
        self.dim = check_int(dim, "dim")
        check_int(bins, "bins", minimum=2)
        self._frame = TargetFrame(target, self.dim)
        self.edges = stats.chi2.ppf(np.linspace(0.0, 1.0, int(bins) + 1), self.dim)
        self.n = 0
        self.counts = np.zeros(int(bins), dtype=np.int64)
        self.sum_sq = 0.0
        self.sum_quad = 0.0

    def _config(self) -> tuple:
        return (self.edges, self._frame.mean, self._frame.chol)

    def _add(self, X: np.ndarray) -> None:
        W = self._frame.standardize(X)
        r2 = np.einsum("ij,ij->i", W, W)
        self.n += len(r2)
        inner = self.edges[1:-1]
        self.counts += np.bincount(np.searchsorted(inner, r2, side="right"), minlength=self.counts.size)
        self.sum_sq += float(r2.sum())
        self.sum_quad += float(r2 @ r2)

    def compute(self) -> dict[str, Any]:
        """Counts, Pearson X² and its χ²_{bins−1} p-value, mean and variance of r² with their null values."""
        self._require_rows(2)
        n, expected = self.n, self.n / self.counts.size
        pearson = float(np.sum((self.counts - expected) ** 2) / expected)
        mean = self.sum_sq / n
        return {"counts": self.counts.tolist(), "inner_edges": self.edges[1:-1].tolist(), "pearson": pearson,
                "pvalue": float(stats.chi2.sf(pearson, self.counts.size - 1)), "df": self.counts.size - 1,
                "mean_sq_radius": mean, "var_sq_radius": (self.sum_quad - n * mean * mean) / (n - 1),
                "null_mean": float(self.dim), "null_var": 2.0 * self.dim}


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser (Steele, Lea & Flood 2014), elementwise on uint64 (wrapping arithmetic)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _row_hashes(X: np.ndarray) -> np.ndarray:
    """64-bit hashes of the rows' float64 bit patterns (−0.0 folded into 0.0), mixed in column by column."""
    bits = (X + 0.0).view(np.uint64)
    h = np.zeros(len(X), dtype=np.uint64)
    for column in bits.T:
        h = _splitmix64(h ^ column)
    return h


def _add_counts(keys_a: np.ndarray, counts_a: np.ndarray, keys_b: np.ndarray,
                counts_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The union of two (sorted distinct keys, counts) tables, counts of shared keys added; sorted by key."""
    keys, inverse = np.unique(np.concatenate([keys_a, keys_b]), return_inverse=True)
    counts = np.bincount(inverse.reshape(-1), weights=np.concatenate([counts_a, counts_b]), minlength=len(keys))
    return keys, counts.astype(np.int64)


class Ties(_Accumulator):
    r"""Pass 1 of the continuity check (:func:`~gaussify.metrics.atoms`) in bounded memory, mergeable.

    Rows: the ``sketch`` smallest distinct 64-bit row hashes with their multiplicities (a distinct sample, as in the
    KMV sketch of Bar-Yossef et al. 2002): every copy of a sampled row is sampled, so the repeated fraction
    Σ(c − 1)/Σc among them estimates (n − distinct rows)/n -- exactly while there are at most ``sketch`` distinct
    rows. Columns: a Misra–Gries summary of ``summary`` counters each (merged as in Agarwal et al. 2013, ACM TODS 38),
    which keeps every value held by more than n/(summary + 1) rows; :class:`TieCounts` counts them exactly in pass 2.
    """

    def __init__(self, dim: int, *, sketch: int = 65_536, summary: int = 200) -> None:
        self.dim = check_int(dim, "dim")
        self.sketch = check_int(sketch, "sketch")
        self.summary = check_int(summary, "summary")
        self.n = 0
        self.row_keys, self.row_counts = np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
        self.values = [np.zeros(0)] * self.dim
        self.value_counts = [np.zeros(0, dtype=np.int64)] * self.dim

    def _config(self) -> tuple:
        return (self.dim, self.sketch, self.summary)

    def _add(self, X: np.ndarray) -> None:
        part = Ties(self.dim, sketch=self.sketch, summary=self.summary)
        part.n = len(X)
        part.row_keys, part.row_counts = np.unique(_row_hashes(X), return_counts=True)
        tables = [np.unique(column, return_counts=True) for column in (X + 0.0).T]
        part.values, part.value_counts = [t[0] for t in tables], [t[1] for t in tables]
        self.merge(part)

    def merge(self, other: "Ties") -> "Ties":
        self._check_mergeable(other)
        self.n += other.n
        keys, counts = _add_counts(self.row_keys, self.row_counts, other.row_keys, other.row_counts)
        self.row_keys, self.row_counts = keys[:self.sketch], counts[:self.sketch]
        for j in range(self.dim):
            values, counts = _add_counts(self.values[j], self.value_counts[j], other.values[j], other.value_counts[j])
            if len(values) > self.summary:  # Misra–Gries: subtract the (summary + 1)-th largest count, keep the rest
                counts = counts - np.partition(counts, len(counts) - self.summary - 1)[len(counts) - self.summary - 1]
                values, counts = values[counts > 0], counts[counts > 0]
            self.values[j], self.value_counts[j] = values, counts
        return self

    def repeated_rows(self) -> float:
        """n − distinct rows: exact below ``sketch`` distinct rows, else n · Σ(c − 1)/Σc over the sampled rows."""
        self._require_rows(1)
        return self.n * float((self.row_counts - 1).sum()) / float(self.row_counts.sum())


class TieCounts(_Accumulator):
    """Pass 2 of the continuity check: exact counts of the values a :class:`Ties` summary kept, column by column."""

    _sums = ("counts",)

    def __init__(self, ties: Ties) -> None:
        self.dim = ties.dim
        self.candidates = [values.copy() for values in ties.values]  # sorted: np.unique's order
        self.offsets = np.concatenate([[0], np.cumsum([len(values) for values in self.candidates])])
        self.n = 0
        self.counts = np.zeros(int(self.offsets[-1]), dtype=np.int64)

    def _config(self) -> tuple:
        return (self.dim, *self.candidates)

    def _add(self, X: np.ndarray) -> None:
        self.n += len(X)
        for j, values in enumerate(self.candidates):
            if values.size:
                column = X[:, j]
                at = np.minimum(np.searchsorted(values, column), values.size - 1)
                hit = values[at] == column
                self.counts[self.offsets[j]:self.offsets[j + 1]] += np.bincount(at[hit], minlength=values.size)

    def max_counts(self) -> np.ndarray:
        """The largest value count of each column (1 where no kept value repeats: no value there holds more than
        n/(summary + 1) rows)."""
        return np.array([max(1, int(self.counts[a:b].max(initial=0))) for a, b in zip(self.offsets, self.offsets[1:])])


def all_reduce(acc: _A, group: Any = None) -> _A:
    """Merge ``acc`` over the ranks of a ``torch.distributed`` group; returns the merged accumulator.

    States are exchanged with ``all_gather_object`` and merged in rank order, so every rank gets bit-identical
    results. Without an initialised multi-rank process group ``acc`` is returned unchanged.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size(group) == 1:
        return acc
    states: list[Any] = [None] * dist.get_world_size(group)
    dist.all_gather_object(states, acc, group=group)
    merged = states[0]
    for state in states[1:]:
        merged.merge(state)
    return merged


# --------------------------------------------------------------------------------------------- sources
Source = Any
"""An (n, d) array, memmap or tensor; a path to .npy, .parquet or .csv; a re-iterable of chunks; or a callable
returning a fresh iterable of chunks."""


def read_chunks(source: Source, chunk_size: int = CHUNK_SIZE, *,
                columns: Sequence[str] | None = None) -> Callable[[], Iterator[Any]]:
    """A zero-argument function that returns a fresh iterator over the chunks of ``source``.

    ``.npy`` files are read in C order through a fresh ``np.memmap`` per chunk, so pages already processed
    leave the process and resident memory stays O(chunk); ``.parquet`` files are read batch by batch and
    ``.csv`` files (header row) ``chunk_size`` rows at a time (``columns`` selects columns, all of which must
    be numeric). A one-shot iterator (a generator) is refused:
    the statistics need two passes -- pass a list of chunks or a callable returning a new iterator.
    """
    check_int(chunk_size, "chunk_size")
    if columns is not None and not isinstance(source, (str, os.PathLike)):
        raise ValueError("columns selects parquet or csv columns; it only applies to a .parquet or .csv path")
    if isinstance(source, (str, os.PathLike)):
        return _read_path(Path(source), int(chunk_size), columns)
    if isinstance(source, np.ndarray) or hasattr(source, "detach"):
        if source.ndim not in (1, 2):
            raise ValueError(f"source must have shape (n, d), got {tuple(source.shape)}")
        return lambda: (source[s:s + chunk_size] for s in range(0, source.shape[0], chunk_size))
    if callable(source):
        return lambda: iter(source())
    if isinstance(source, Iterable):
        if iter(source) is source:
            raise TypeError("source is a one-shot iterator, but the statistics need two passes over the data; "
                            "pass a list of chunks or a zero-argument callable that returns a fresh iterator")
        return lambda: iter(source)
    raise TypeError(f"source must be an array, a .npy/.parquet/.csv path, an iterable of chunks or a callable, "
                    f"got {type(source).__name__}")


def _read_path(path: Path, chunk_size: int, columns: Sequence[str] | None) -> Callable[[], Iterator[Any]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if columns is not None:
            raise ValueError(f"{path}: .npy files have no column names; columns cannot be used")
        header = np.load(path, mmap_mode="r", allow_pickle=False)
        if header.ndim != 2 or not np.issubdtype(header.dtype, np.number):
            raise ValueError(f"{path}: expected a 2-D numeric array, got shape {header.shape}, dtype {header.dtype}")
        if not header.flags.c_contiguous:  # Fortran order: rows are not contiguous on disk
            return lambda: (header[s:s + chunk_size] for s in range(0, header.shape[0], chunk_size))
        rows, row_bytes = header.shape[0], header.strides[0]
        return lambda: (np.memmap(path, header.dtype, "r", offset=header.offset + s * row_bytes,
                                  shape=(min(chunk_size, rows - s), header.shape[1]))
                        for s in range(0, rows, chunk_size))
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pq.read_schema(path)
        names = list(schema.names if columns is None else columns)
        missing = [c for c in names if c not in schema.names]
        if missing:
            raise ValueError(f"{path}: no column(s) {missing} (columns: {', '.join(schema.names)})")
        _check_numeric(path, [c for c in names if not (pa.types.is_integer(schema.field(c).type)
                                                       or pa.types.is_floating(schema.field(c).type))])

        def batches() -> Iterator[np.ndarray]:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_size, columns=names):
                yield np.column_stack([col.to_numpy(zero_copy_only=False) for col in batch.columns])

        return batches
    if suffix == ".csv":
        import pandas as pd

        from ..io import csv_header

        header = "infer" if csv_header(path) is not None else None  # a first row of numbers is data

        def frames() -> Iterator[np.ndarray]:
            with pd.read_csv(path, chunksize=chunk_size, usecols=columns, header=header) as reader:
                for frame in reader:
                    _check_numeric(path, [str(c) for c in frame.columns
                                          if not pd.api.types.is_numeric_dtype(frame[c])])
                    yield frame.to_numpy(dtype=np.float64)

        return frames
    raise ValueError(f"{path}: unsupported file type {suffix or '(none)'}; use .npy, .parquet or .csv")


def _check_numeric(path: Path, bad: list[str]) -> None:
    if bad:
        raise ValueError(f"{path}: column(s) {bad} are not numeric; select numeric columns with columns=[...]")


# --------------------------------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class StreamingResult:
    r"""What :func:`evaluate_streaming` measured on n rows in d dimensions.

    ``str(result)`` is a text table of it.

    Attributes
    ----------
    n : int
        Rows read.
    d : int
        Their dimension.
    mean : numpy.ndarray
        The sample mean, shape (d,).
    cov : numpy.ndarray
        The unbiased sample covariance, shape (d, d).
    placement_kl : float
        KL(N(mean, cov) ‖ target) in nats (bias-corrected and clipped at 0 as in
        :func:`~gaussify.metrics.placement_kl`).
    mardia_skewness : TestResult or None
        Mardia's skewness test; None when it was skipped.
    mardia_kurtosis : TestResult
        Mardia's kurtosis test.
    epps_pulley : dict
        Summarises :class:`SlicedEppsPulley` (``statistic``: the mean over slices, SIGReg's value; ``null_mean``:
        its expectation under the target).
    radius : dict
        :meth:`RadiusHistogram.compute`.
    atoms : str or None
        Why the sample is not continuous (its KL to any Gaussian is then +∞; the rule of
        :func:`~gaussify.metrics.atoms`, from :class:`Ties` and :class:`TieCounts`), None when it is.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.metrics import evaluate_streaming
    >>> result = evaluate_streaming(np.random.default_rng(0).standard_normal((500, 2)), chunk_size=100)
    >>> result.n, result.atoms, result.mardia_kurtosis.pvalue > 0.05
    (500, None, True)
    >>> print(result)  # doctest: +ELLIPSIS
    Gaussianity of a 500 x 2 sample, streamed in two passes:
      placement KL (fitted Gaussian to target)  ... nats
    ...
    """

    n: int
    d: int
    mean: np.ndarray
    cov: np.ndarray
    placement_kl: float
    mardia_skewness: TestResult | None
    mardia_kurtosis: TestResult
    epps_pulley: dict[str, Any]
    radius: dict[str, Any]
    atoms: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (arrays become lists, tests their ``to_dict()``)."""
        return {"n": self.n, "d": self.d, "mean": _jsonable(self.mean), "cov": _jsonable(self.cov),
                "placement_kl": self.placement_kl,
                "mardia_skewness": None if self.mardia_skewness is None else self.mardia_skewness.to_dict(),
                "mardia_kurtosis": self.mardia_kurtosis.to_dict(), "epps_pulley": _jsonable(self.epps_pulley),
                "radius": _jsonable(self.radius), "atoms": self.atoms}

    def __str__(self) -> str:
        ep, radius = self.epps_pulley, self.radius
        rows = [("placement KL (fitted Gaussian to target)", f"{self.placement_kl:.4g} nats"),
                (f"sliced Epps–Pulley ({ep['num_slices']} slices)",
                 f"mean {ep['statistic']:.4g}, max {ep['max']:.4g} ({ep['null_mean']:.4g} expected at the target)"),
                ("squared radius ‖L⁻¹(z−μ)‖²",
                 f"mean {radius['mean_sq_radius']:.4g}, variance {radius['var_sq_radius']:.4g} "
                 f"({radius['null_mean']:.4g} and {radius['null_var']:.4g} at the target)")]
        tests = [(test.name.replace("_", " ").capitalize(), test.statistic, test.pvalue)
                 for test in (self.mardia_skewness, self.mardia_kurtosis) if test is not None]
        tests.append((f"radius histogram χ² ({radius['df']} df)", radius["pearson"], radius["pvalue"]))
        width = max(len(row[0]) for row in rows + tests)
        lines = [f"Gaussianity of a {self.n} x {self.d} sample, streamed in two passes:"]
        if self.atoms:
            lines.append(f"  not continuous: {self.atoms}, so it has atoms and KL = ∞ to any Gaussian")
        lines += [f"  {label:<{width}}  {value}" for label, value in rows]
        lines.append(f"  {'test':<{width}}  {'statistic':>10}  {'p-value':>9}")
        lines += [f"  {label:<{width}}  {stat:>10.4g}  {format_pvalue(p):>9}" for label, stat, p in tests]
        return "\n".join(lines)


def evaluate_streaming(source: Source, target: Any = None, *, chunk_size: int = CHUNK_SIZE,
                       columns: Sequence[str] | None = None, num_slices: int = 64, knots: int = 17,
                       t_max: float = 3.0, radius_bins: int = 20, skewness: bool = True, bias_correct: bool = True,
                       random_state: RandomState = 0, distributed: bool = False) -> StreamingResult:
    r"""Mean, covariance, placement KL, Mardia tests, sliced Epps–Pulley and radius summary in two chunked passes.

    Memory is O(chunk_size · d + d³) whatever the number of rows. The continuity check (``atoms``) follows
    :func:`~gaussify.metrics.atoms`: the column rule exactly, the repeated-row count exactly up to 65,536 distinct
    rows and estimated from a distinct sample of that size above.

    Parameters
    ----------
    source : array, path or iterable of chunks
        See :func:`read_chunks`: an array, a ``.npy``, ``.parquet`` or ``.csv`` path, or a re-iterable source of
        (m, d) chunks.
    target : None | int | Gaussian | tuple, optional
        The Gaussian target: None for N(0, I), an int d for N(0, I_d), a :class:`gaussify.Gaussian` or a
        ``(mean, cov)`` pair.
    chunk_size : int, default CHUNK_SIZE
        Rows per chunk read from a path.
    columns : sequence of str, optional
        The columns of a ``.parquet`` or ``.csv`` file to read (default: all).
    num_slices : int, default 64
        Random slices of the sliced Epps–Pulley statistic (:class:`SlicedEppsPulley`).
    knots : int, default 17
        Knots of its characteristic-function integral on [0, ``t_max``].
    t_max : float, default 3.0
        Upper end of that integral.
    radius_bins : int, default 20
        Equiprobable χ²_d bins of the radius histogram (:class:`RadiusHistogram`).
    skewness : bool, default True
        ``skewness=False`` drops the d²(d+1)/2 third-moment tensor and its O(d³) work per row.
    bias_correct : bool, default True
        Bias-correct the placement KL (:func:`~gaussify.metrics.placement_kl`).
    random_state : None | int | Generator, default 0
        Seeds the Epps–Pulley directions (keep an int when ``distributed``: every rank must draw the same).
    distributed : bool, default False
        Every rank of the initialised ``torch.distributed`` group passes its own shard (at least one row each); the
        accumulators are merged with :func:`all_reduce` after each pass, and every rank returns the result of the
        concatenated shards.

    Returns
    -------
    StreamingResult
        The statistics of all rows read.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.metrics import evaluate_streaming
    >>> rng = np.random.default_rng(0)
    >>> chunks = [rng.standard_normal((100, 2)) + 0.5 for _ in range(5)]
    >>> result = evaluate_streaming(chunks)
    >>> result.n, bool(abs(result.placement_kl - 0.25) < 0.1)
    (500, True)
    """
    check_int(radius_bins, "radius_bins", minimum=2)  # the other options are checked under their own names below
    for name, flag in (("skewness", skewness), ("bias_correct", bias_correct), ("distributed", distributed)):
        check_bool(flag, name)
    read = read_chunks(source, chunk_size, columns=columns)
    first: tuple[MeanCov, SlicedEppsPulley, RadiusHistogram, Ties] | None = None
    for chunk in read():
        X = as_sample(chunk, min_rows=0, name="chunk")
        if first is None:
            d = X.shape[1]
            first = (MeanCov(d), SlicedEppsPulley(d, target, num_slices=num_slices, knots=knots, t_max=t_max,
                                                   random_state=random_state),
                     RadiusHistogram(d, target, bins=radius_bins), Ties(d))
        for acc in first:
            acc.update(X)
    if first is None or first[0].n == 0:
        raise ValueError("source yielded no rows")
    moments, slices, radius, ties = first
    if distributed:  # in this order on every rank
        moments, slices, radius, ties = all_reduce(moments), all_reduce(slices), all_reduce(radius), all_reduce(ties)
    n, d = moments.n, moments.dim
    if n < d + 2:
        raise ValueError(f"the covariance and Mardia's statistics need n >= d + 2 rows; got n={n}, d={d}")
    mean, cov = moments.compute(ddof=1)
    mardia = MardiaMoments(mean, cov * ((n - 1) / n), skewness=skewness)
    tie_counts = TieCounts(ties)
    for chunk in read():
        X = as_sample(chunk, min_rows=0, name="chunk")
        mardia.update(X)
        tie_counts.update(X)
    if distributed:
        mardia, tie_counts = all_reduce(mardia), all_reduce(tie_counts)
    if mardia.n != n:
        raise ValueError(f"the second pass read {mardia.n} rows, the first {n}: the source must yield the same "
                         "rows every time it is read")
    ep = slices.compute()
    return StreamingResult(
        n=n, d=d, mean=mean, cov=cov, placement_kl=moments.placement_kl(target, bias_correct=bias_correct),
        mardia_skewness=mardia.skewness_test() if skewness else None, mardia_kurtosis=mardia.kurtosis_test(),
        epps_pulley={"statistic": float(ep.mean()), "max": float(ep.max()), "null_mean": slices.null_mean,
                     "num_slices": ep.size, "knots": knots, "t_max": float(t_max)},
        radius=radius.compute(), atoms=_atom_reason(n, ties.repeated_rows(), tie_counts.max_counts()))
