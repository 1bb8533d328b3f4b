r"""J by k-nearest-neighbour entropy, calibrated on Gaussian samples: the default up to d = 8.

.. math::
    \hat J = \tfrac12 d \log(2\pi e) + E[\hat H(\hat W_G) + \log\varphi(G)] - \hat H(W), \qquad
    \hat H(W) = \tfrac1n \sum_i \Big(\sum_{j \le k} w_j [d \log\rho_{(j),i} - \psi(j)]\Big) + \psi(n) + \log V_d,

with :math:`\rho_{(j),i}` the distance from row i to its j-th nearest neighbour, :math:`V_d` the volume of the unit
d-ball and w the Berrett–Samworth–Yuan weights (:func:`knn_weights`; :math:`w = e_k`, the k-th neighbour only,
is the plain Kozachenko–Leonenko estimator of :func:`plain_negentropy`). The expectation is taken over exact,
equally self-whitened N(0, I) samples of the same size, so the estimator's finite-sample bias cancels for Gaussian
data, and :math:`\log\varphi` serves as control variate.

References: Kozachenko & Leonenko (1987), Probl. Inf. Transm. 23; Berrett, Samworth & Yuan (2019), Ann. Statist.
47(1) "Efficient multivariate entropy estimation via k-nearest neighbour distances".
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import digamma, gammaln

from .._cache import cached_array
from .base import Replicate, ShapeEstimator, log_std_normal, reweighted_moments, rows_used, whiten_sample

__all__ = ["RELIABLE_MAX_DIM", "KNNNegentropy", "KNNParts", "knn_weights", "neighbour_distances",
           "plain_negentropy"]

RELIABLE_MAX_DIM = 8
"""Above this dimension the kNN weights drop their bias constraints, the Gaussian reference uses fewer draws and
:func:`~gaussify.metrics.evaluate` subsamples the kNN rows (whether an estimate is ``reliable`` comes from its
measured interval, :func:`~gaussify.metrics.kl_divergence`)."""

_LOG_2PI_E = math.log(2.0 * math.pi * math.e)
_MIN_REFERENCE_POINTS = 100_000  # reference queries pooled over draws: its sd stays well below the data's
_MAX_REFERENCE_DRAWS = 200  # tiny samples: at most 200 reference draws (their sd is then far below the data's)
_HIGH_DIM_REFERENCE_DRAWS = 4
# The kNN reference's draws are fixed, the same for every random_state (as the 1-D references), so the memory and
# disk caches hold one reference per (n, d, k, queries): a seed drawn from random_state=None wrote a new file at
# every call. It is the seed random_state=0 drew before, so estimates at the default random_state are unchanged.
_KNN_REFERENCE_SEED = int(np.random.default_rng(0).integers(2**63 - 1))
_PLAIN_REFERENCE_SEED = 0


def knn_weights(d: int, k: int) -> np.ndarray:
    r"""Weights w over the 1st..k-th neighbour estimators (minimum norm), Berrett–Samworth–Yuan (2019).

    Constraints: Σ w_j = 1 and Σ_j w_j Γ(j + s)/Γ(j) = 0 for each exponent s, which removes the bias terms of
    order (j/n)^s. d ≤ 4: s = 1/d, the leading term, (boundary effects are of order n^{-1/d}); d ≥ 5: the
    smooth-density terms s = 2l/d < 1/2 of BSY (adding 1/d there makes the weights explode); above
    :data:`RELIABLE_MAX_DIM` none (the Gaussian reference still removes the bias at the target). With no constraint
    the minimum-norm w is the plain average over j = 1..k. ``k = 1``: the nearest neighbour alone, w = (1,), the
    plain Kozachenko–Leonenko estimator: on ``gaussify bench accuracy``'s laws with full support the most accurate
    at d = 3, 4 and above 8, but in 4-D it under-reads a uniform cube's negentropy by a quarter (the boundary bias
    that s = 1/d removes).
    """
    if k == 1:
        return np.ones(1)
    if d <= 4:
        exps = [1.0 / d] if d >= 2 else []
    elif d <= RELIABLE_MAX_DIM:
        exps = [2.0 * j / d for j in range(1, d) if 2.0 * j / d < 0.5]
    else:  # more constraints make the weights explode (sd of hundreds of nats measured at d = 24, n = 2000)
        exps = []
    if k < 2 * (len(exps) + 1):
        raise ValueError(f"k={k} is too small for the bias-removing weights in d={d}; use k >= {2 * (len(exps) + 1)}")
    j = np.arange(1, k + 1, dtype=np.float64)
    A = np.vstack([np.ones(k)] + [np.exp(gammaln(j + s) - gammaln(j)) for s in exps])
    b = np.zeros(A.shape[0])
    b[0] = 1.0
    return np.linalg.lstsq(A, b, rcond=None)[0]


def neighbour_distances(X: np.ndarray, k: int, query: np.ndarray, n_jobs: int) -> np.ndarray:
    """Distances from rows ``X[query]`` to their 1st..k-th nearest *distinct* neighbours among all rows of X.

    Rows identical to the query point (distance 0) are skipped; the other rows count with their multiplicity.
    Queries run in the tree's leaf order (neighbouring queries touch the same nodes: ~1.6x faster at n = 1e6).
    """
    tree = cKDTree(X, leafsize=32, balanced_tree=False)
    rank = np.empty(len(X), dtype=np.intp)
    rank[tree.indices] = np.arange(len(X))
    order = np.argsort(rank[query])
    dist = np.empty((len(query), k + 1))
    dist[order] = tree.query(X[query[order]], k=k + 1, workers=n_jobs)[0]
    if dist[:, 1].min() > 0.0:
        return dist[:, 1:]
    uniq, inverse, counts = np.unique(X, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    warnings.warn(f"the sample has {len(X) - len(uniq)} duplicate rows (a distribution with atoms has infinite KL "
                  "to any Gaussian); using distances to the nearest distinct points", UserWarning, stacklevel=6)
    if len(uniq) <= k:
        raise ValueError(f"the sample has only {len(uniq)} distinct rows; the kNN estimate needs more than k={k}")
    dist, idx = cKDTree(uniq, leafsize=32, balanced_tree=False).query(uniq[inverse[query]], k=k + 1, workers=n_jobs)
    dist, cum = dist[:, 1:], np.cumsum(counts[idx[:, 1:]], axis=1)
    pos = np.stack([(cum < j).sum(axis=1) for j in range(1, k + 1)], axis=1)  # each distinct neighbour counts c times
    return np.take_along_axis(dist, pos, axis=1)


def _entropy_terms(X: np.ndarray, weights: np.ndarray, query: np.ndarray, n_jobs: int) -> np.ndarray:
    r"""Per-point terms tᵢ whose mean is the weighted KL entropy estimate of the rows of X.

    tᵢ = Σ_j w_j [d log ρ_{(j),i} − ψ(j)] + ψ(n) + log V_d, with V_d the volume of the unit d-ball; ``weights`` of
    shape (k,), or (k, e) for e estimates from one neighbour search (one column of terms each).
    """
    n, d = X.shape
    k = len(weights)
    dist = neighbour_distances(X, k, query, n_jobs)
    log_vd = 0.5 * d * math.log(math.pi) - gammaln(0.5 * d + 1.0)
    return (d * np.log(dist) - digamma(np.arange(1, k + 1))) @ weights + digamma(n) + log_vd


def _reference_terms(n: int, d: int, weights: np.ndarray, m: int, seed: int, draws: int,
                     n_jobs: int) -> list[np.ndarray]:
    """Control-variate terms tᵢ(Ŵ_G) + log φ(gᵢ) of the first m rows of ``draws`` seeded N(0, I_d) samples of n
    rows, self-whitened like the data (the rows are exchangeable: the first m are a random subset), one array per
    draw."""
    out = []
    for child in np.random.SeedSequence(seed).spawn(draws):
        G = np.random.default_rng(child).standard_normal((n, d))
        query = np.arange(m)
        log_phi = log_std_normal(G[query])
        terms = _entropy_terms(whiten_sample(G)[0], weights, query, n_jobs)
        out.append(terms + (log_phi if terms.ndim == 1 else log_phi[:, None]))
    return out


@lru_cache(maxsize=64)
def _gaussian_knn_reference(n: int, d: int, k: int, m: int, seed: int, n_jobs: int) -> np.ndarray:
    r"""Control-variate terms uᵢ = tᵢ(Ŵ) + log φ(gᵢ) on exact N(0, I) samples of n rows, self-whitened like the data.

    E[ū] = E[Ĥ(Ŵ_G)] − H(N(0, I)) exactly (since E[−log φ(g)] = H), so ½ d log(2πe) + ū − Ĥ(W) has mean 0 when the
    data are Gaussian; log φ(gᵢ) removes the Var log p part of the variance of tᵢ. m queried rows per draw, pooled
    over enough draws to reach ``_MIN_REFERENCE_POINTS`` (at most ``_MAX_REFERENCE_DRAWS``); above
    :data:`RELIABLE_MAX_DIM`, where the kNN queries are slow and the estimate is flagged anyway, over
    ``_HIGH_DIM_REFERENCE_DRAWS`` draws (the reference then adds a quarter of the data's variance). Cached in memory
    and on disk (:mod:`gaussify.metrics._cache`), so a new process at the same (n, d) does not simulate it again.
    """
    draws = (min(_MAX_REFERENCE_DRAWS, max(1, math.ceil(_MIN_REFERENCE_POINTS / m))) if d <= RELIABLE_MAX_DIM
             else _HIGH_DIM_REFERENCE_DRAWS)
    u = cached_array(f"knn-reference-n{n}-d{d}", ("knn-reference", n, d, k, m, seed, draws), (draws * m,),
                     lambda: _simulate_knn_reference(n, d, k, m, seed, draws, n_jobs), definition="knn-reference")
    u.setflags(write=False)
    return u


def _simulate_knn_reference(n: int, d: int, k: int, m: int, seed: int, draws: int, n_jobs: int) -> np.ndarray:
    """The terms of :func:`_gaussian_knn_reference` over ``draws`` seeded Gaussian samples (its cache fills)."""
    return np.concatenate(_reference_terms(n, d, knn_weights(d, k), m, seed, draws, n_jobs))


@dataclass(frozen=True)
class KNNParts:
    """The kNN estimate of J (:class:`KNNNegentropy`) with the per-row terms its bootstrap resamples."""

    raw: float              # unclipped estimate ½ d log(2πe) + mean(u) − Ĥ(W)
    k: int                  # neighbours
    terms: np.ndarray       # control-variate terms tᵢ + log φ(wᵢ) of the queried rows of the whitened data
    log_phi: np.ndarray     # log φ(wᵢ) of every row the estimate used
    query: np.ndarray       # which of those rows were queried
    reference: np.ndarray   # uᵢ of the Gaussian reference

    @property
    def sd(self) -> float:
        """Approximate sd of ``raw``: √(Var(terms)/#terms + Var(u)/#u) (kNN terms treated as independent)."""
        return math.sqrt(self.terms.var() / len(self.terms) + self.reference.var() / len(self.reference))

    def note(self, n: int) -> str:
        m = len(self.log_phi)
        if m == n:
            return (f"kNN negentropy with k={self.k} over {len(self.query)} of {n} query rows, calibrated on Gaussian "
                    "samples of the same size")
        return (f"kNN negentropy with k={self.k} on {rows_used(m, n)} (sd ≈ {self.sd:.3f} from its per-point terms "
                f"and the reference), calibrated on Gaussian samples of {m} rows: unbiased for Gaussian data, but for "
                f"other data its bias is that of {m} rows, not {n}")

    def resampler(self, Y: np.ndarray, shared: bool, rng: np.random.Generator) -> Replicate:
        """Reweight the rows (their counts, or the placement's when ``shared``): the Gaussian fit's entropy moves
        with log det of the reweighted covariance exactly, the kNN entropy with the resampled per-point terms (the
        distances are not recomputed: resampled rows would be duplicates), and the reference terms are resampled."""
        m, d = Y.shape
        Yc = Y - Y.mean(axis=0)
        logdet0 = np.linalg.slogdet(np.cov(Y, rowvar=False).reshape(d, d))[1]
        all_rows = len(self.query) == m
        t, u, log_phi = self.terms, self.reference, self.log_phi
        entropy0 = float(t.mean()) - float(log_phi.mean())

        def replicate(counts: np.ndarray, cov: np.ndarray) -> float:
            cs = counts if shared else np.bincount(rng.integers(0, m, m), minlength=m).astype(np.float64)
            cov_s = cov if shared else reweighted_moments(Yc, cs)[1]
            t_b = cs @ t / m if all_rows else t[rng.integers(0, len(t), len(t))].mean()
            entropy_b = t_b - cs @ log_phi / m
            u_b = u[rng.integers(0, len(u), len(u))].mean()
            return float(self.raw + 0.5 * (np.linalg.slogdet(cov_s)[1] - logdet0) - (entropy_b - entropy0)
                         + (u_b - u.mean()))

        return replicate


class KNNNegentropy(ShapeEstimator):
    r"""J by the weighted Kozachenko–Leonenko entropy of the whitened rows, calibrated on Gaussian samples.

    Ĵ = ½ d log(2πe) + ū − Ĥ(W) with Ĥ(W) = mean_q(tᵢ + log φ(wᵢ)) − mean_all log φ(wᵢ) (module docstring): unbiased
    over the random query subset, and with the Gaussian log-density as control variate its subsampling variance is
    Var(t + log φ)/m instead of Var(t)/m; ū is the mean of the same terms on exact self-whitened N(0, I) samples of
    the same (n, d, k, queries) (seeded, cached), so E Ĵ = 0 for Gaussian data.

    Parameters
    ----------
    k : int, default 16
        Neighbours (:func:`knn_weights`).
    max_query : int, default 100_000
        For n above it, the entropy is averaged over that many random query rows.
    n_jobs : int, default 1
        Threads of the kNN queries (-1: every core).
    """

    name = "knn"
    options = ("k", "max_query", "n_jobs")

    def __init__(self, k: int = 16, max_query: int = 100_000, n_jobs: int = 1) -> None:
        self.k, self.max_query, self.n_jobs = k, max_query, n_jobs

    @property
    def label(self) -> str:
        return f"kNN k={self.k}"

    def estimate(self, W: np.ndarray, rng: np.random.Generator) -> KNNParts:
        n, d = W.shape
        if n <= self.k + 1:
            raise ValueError(f"the kNN estimate with k={self.k} needs more than k + 1 rows, got n={n}; lower k or add "
                             "rows")
        query = np.arange(n) if n <= self.max_query else np.sort(rng.choice(n, size=self.max_query, replace=False))
        log_phi = log_std_normal(W)
        terms = _entropy_terms(W, knn_weights(d, self.k), query, self.n_jobs) + log_phi[query]
        reference = _gaussian_knn_reference(n, d, self.k, len(query), _KNN_REFERENCE_SEED, self.n_jobs)
        entropy = float(terms.mean()) - float(log_phi.mean())
        return KNNParts(0.5 * d * _LOG_2PI_E + float(reference.mean()) - entropy, self.k, terms, log_phi, query,
                        reference)

    def unmeasured(self, suite: dict[str, Any]) -> str | None:
        return None if self.k == suite["k"] else f"the accuracy suite measures k={suite['k']}, not k={self.k}"


@lru_cache(maxsize=32)
def _plain_reference(n: int, d: int, ranks: tuple[int, ...], seed: int) -> np.ndarray:
    """E[Ĥ_k(Ŵ_G) + log φ(G)] per rank k on exact, self-whitened N(0, I) samples of n rows (about
    ``_MIN_REFERENCE_POINTS`` points, at most ``_MAX_REFERENCE_DRAWS`` draws), every row queried."""
    draws = min(_MAX_REFERENCE_DRAWS, math.ceil(_MIN_REFERENCE_POINTS / n))
    total = np.zeros(len(ranks))
    for terms in _reference_terms(n, d, _rank_weights(ranks), n, seed, draws, 1):
        total += _column_means(terms)
    return total / draws


def _rank_weights(ranks: Sequence[int]) -> np.ndarray:
    """Weights (max rank, len ranks) that keep the k-th neighbour alone, one column per rank."""
    weights = np.zeros((max(ranks), len(ranks)))
    weights[np.asarray(ranks) - 1, np.arange(len(ranks))] = 1.0
    return weights


def _column_means(terms: np.ndarray) -> np.ndarray:
    """The mean of each column, each summed on its own (pairwise, as a 1-D array)."""
    return np.array([column.mean() for column in terms.T])


def plain_negentropy(W: np.ndarray, ranks: Sequence[int], *, seed: int = _PLAIN_REFERENCE_SEED) -> np.ndarray:
    r"""Unclipped Ĵ_k of the self-whitened rows W by the plain Kozachenko–Leonenko estimator at each rank k of
    ``ranks`` (the k-th neighbour only: weights w = e_k), all from one neighbour search, every row queried:
    Ĵ_k = ½ d log(2πe) + E[Ĥ_k(Ŵ_G) + log φ(G)] − Ĥ_k(W), the expectation over seeded exact N(0, I) samples of the
    same size (no control variate in Ĥ_k(W)). The accuracy suite's ``kNN k=j`` estimators."""
    n, d = W.shape
    ranks = tuple(ranks)
    entropy = _column_means(_entropy_terms(W, _rank_weights(ranks), np.arange(n), 1))
    return 0.5 * d * _LOG_2PI_E + _plain_reference(n, d, ranks, seed) - entropy
