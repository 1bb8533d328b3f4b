"""Multivariate normality tests with calibrated p-values, in linear memory (NumPy/SciPy only).

Every test takes an ``(n, d)`` sample and returns a :class:`TestResult`. The pairwise (O(n²))
statistics -- Henze–Zirkler, BHEP/Epps–Pulley, energy, and Mardia's skewness when the Gram route is
cheaper -- are summed over square tiles of ``block_size`` rows: O(block_size² + n d) memory, float64
throughout, only the upper-triangular tiles are formed.

Affine-invariant statistics (Mardia, Henze–Zirkler, BHEP, energy, the fitted radius test) have a null
law that depends on ``(n, d)`` only, so their exact Monte Carlo p-value is simulated once from
N(0, I) samples per (statistic, n, d, parameters, n_sim, random_state) and, for an int ``random_state``,
cached in memory and on disk (None or a ``numpy.random.Generator`` draws a fresh null for each call), so that
later processes (every ``gaussify evaluate`` call) skip the simulation: in
``$GAUSSIFY_CACHE_DIR/monte-carlo/``, by default ``platformdirs.user_cache_dir("gaussify")``
(``~/.cache/gaussify`` on Linux), one small ``.npy`` file per null, keyed by the gaussify and NumPy
versions too. Delete the folder to clear the cache; ``GAUSSIFY_CACHE_DIR=""`` disables it (see
:mod:`gaussify.metrics._cache`). The Monte Carlo p-value is ``(1 + #{T_sim >= T}) / (n_sim + 1)``.
Above ``mc_max_n`` rows the null is simulated at ``mc_max_n`` rows (each statistic is scaled to have
a non-degenerate limit law as n → ∞) and the result's ``note`` says so.
"""

from __future__ import annotations

import inspect
import math
import warnings
import zlib
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Callable, Iterator, Literal, NamedTuple, Sequence

import numpy as np
from scipy import special, stats

from .._validation import (RandomState, as_sample, check_bool, check_int, check_random_state, check_real,
                           standardize_to_target)
from ._cache import cached_array

__all__ = [
    "TestResult",
    "mardia_skewness",
    "mardia_kurtosis",
    "henze_zirkler",
    "energy_test",
    "epps_pulley",
    "doornik_hansen",
    "coordinate_tests",
    "mahalanobis_radius_test",
    "normality_tests",
    "TEST_NAMES",
    "BLOCK_SIZE",
    "MAX_EXACT",
    "MC_MAX_N",
    "N_SIM",
]

BLOCK_SIZE = 256
"""Rows per side of a pairwise tile: a tile holds BLOCK_SIZE² float64 values (512 KiB, cache-resident)."""
MAX_EXACT = 20_000
"""`normality_tests` computes the O(n²) statistics on all rows up to this size, on a random subsample beyond."""
MC_MAX_N = 2_000
"""Largest sample size at which a Monte Carlo null is simulated; larger samples reuse the null at this size."""
N_SIM = 500
"""Default number of Monte Carlo null samples."""
SHAPIRO_MAX_N = 5_000
"""Royston's approximation behind scipy's Shapiro–Wilk p-value is validated up to this sample size."""
_MAX_CONDITION = 1e12
_HYP1F1_MAX_D = 64  # SciPy's hyp1f1(-1/2, d/2, -x) is accurate for all x up to here (overflows from d ≈ 82)
_LOG_TINY = math.log(np.finfo(np.float64).tiny)

@dataclass(frozen=True)
class TestResult:
    r"""Outcome of one normality test; unpacks like SciPy's results: ``statistic, pvalue = henze_zirkler(Z)``.

    Attributes
    ----------
    name : str
        The test.
    statistic : float
        Its value on the sample.
    pvalue : float
        Its p-value, in [0, 1].
    pvalue_source : str
        Where the p-value comes from: ``"asymptotic"`` (limit law), ``"lognormal"`` (Henze–Zirkler's moment-matched
        lognormal), ``"monte-carlo"`` (simulated null) or ``"exact"``.
    n : int
        The number of rows the statistic was computed on.
    d : int
        The dimension.
    details : dict
        Intermediate quantities of the test (degrees of freedom, smoothing parameter, per-column values …).
    note : str
        Announces anything that changed the computation (subsampling, a capped Monte Carlo null).

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.metrics import henze_zirkler
    >>> result = henze_zirkler(np.random.default_rng(0).standard_normal((200, 2)))
    >>> statistic, pvalue = result
    >>> (statistic, pvalue) == (result.statistic, result.pvalue), result.pvalue_source
    (True, 'lognormal')
    >>> result.to_dict()["name"]
    'henze_zirkler'
    """

    __test__ = False  # not a pytest test class

    name: str
    statistic: float
    pvalue: float
    pvalue_source: str
    n: int
    d: int
    details: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def __iter__(self) -> Iterator[float]:
        return iter((self.statistic, self.pvalue))

    def __getitem__(self, index: int | slice) -> Any:
        return (self.statistic, self.pvalue)[index]

    def __len__(self) -> int:
        return 2

    @property
    def method(self) -> str:
        """Deprecated name of :attr:`pvalue_source`."""
        warnings.warn("TestResult.method is deprecated and will be removed in the next release; use "
                      "TestResult.pvalue_source", FutureWarning, stacklevel=2)
        return self.pvalue_source

    def __post_init__(self) -> None:
        if not (math.isfinite(self.statistic) and math.isfinite(self.pvalue)):
            raise ValueError(f"{self.name}: non-finite statistic ({self.statistic}) or p-value ({self.pvalue}); "
                             "the sample is numerically degenerate")
        if not 0.0 <= self.pvalue <= 1.0:
            raise ValueError(f"{self.name}: p-value {self.pvalue} outside [0, 1]")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (NumPy scalars and arrays become Python floats and lists)."""
        return {"name": self.name, "statistic": float(self.statistic), "pvalue": float(self.pvalue),
                "pvalue_source": self.pvalue_source, "n": int(self.n), "d": int(self.d),
                "details": _jsonable(self.details), "note": self.note}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


# ----------------------------------------------------------------------------------------------
# shared numerics


def _check_not_constant(constant: np.ndarray, test: str) -> None:
    """Raise naming the columns flagged in the boolean mask ``constant``, e.g. ``(X == X[0]).all(axis=0)``
    (3x cheaper than ``np.ptp(X, axis=0) == 0`` for few columns)."""
    constant = np.flatnonzero(constant)
    if constant.size:
        raise ValueError(f"{test}: column(s) {constant.tolist()[:10]} are constant; a normality test needs "
                         "every column to vary (drop constant columns first)")


def _scaled_correlation(X: np.ndarray, test: str, min_excess_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centred, unit-variance columns W (a new array) and the eigendecomposition of their correlation.

    Raises when n < d + ``min_excess_rows``, when a column is constant, or when the correlation matrix is
    numerically singular; scaling first makes that check scale invariant.
    """
    n, d = X.shape
    if n < d + min_excess_rows:
        raise ValueError(f"{test} needs n >= d + {min_excess_rows} rows to invert the covariance; "
                         f"got n={n}, d={d}")
    _check_not_constant((X == X[0]).all(axis=0), test)
    W = X - X.mean(axis=0)
    W /= np.sqrt(np.einsum("ij,ij->j", W, W) / n)
    evals, evecs = np.linalg.eigh(W.T @ W / n)
    _check_condition(evals, test)
    return W, evals, evecs


def _check_condition(evals: np.ndarray, test: str) -> None:
    """Raise unless the ascending eigenvalues of a correlation matrix have condition number below _MAX_CONDITION."""
    if evals[0] <= evals[-1] / _MAX_CONDITION:
        raise ValueError(f"{test}: the covariance is singular or nearly so (condition number "
                         f"{evals[-1] / max(evals[0], 1e-300):.3g} > {_MAX_CONDITION:.0e}); some columns are "
                         "(close to) linear combinations of others -- drop or combine them")


def _whiten(X: np.ndarray, test: str, *, min_excess_rows: int = 1) -> np.ndarray:
    """Whitened sample Y = (X − x̄) S^{-1/2} with S the MLE covariance (divisor n); YᵀY = n I.

    Any square root gives the same Gram matrix Y Yᵀ = W S⁻¹ Wᵀ, so affine-invariant statistics do not
    depend on the choice.
    """
    W, evals, evecs = _scaled_correlation(X, test, min_excess_rows)
    root = evecs / np.sqrt(evals)
    step = max(1, (1 << 22) // X.shape[1])
    for s in range(0, len(W), step):  # Y overwrites W row block by row block: one n x d buffer
        W[s:s + step] = W[s:s + step] @ root
    return W


def _pair_sum(A: np.ndarray, B: np.ndarray, reduce: Callable[[np.ndarray], float], block_size: int,
              diagonal: float | None = None) -> float:
    """Σ_{j,k} f(A_j · B_k) over all ordered pairs, for a symmetric A Bᵀ; ``reduce`` maps a tile to Σ f.

    Only the upper-triangular square tiles of A Bᵀ are formed (off-diagonal tiles count twice);
    ``reduce`` may overwrite its tile. ``diagonal``, when given, is the exact value of A_j · B_j (0 for
    squared distances, which the expanded form only gives up to rounding). The rows are split into equal
    tiles of at most ``block_size`` rows (less of the diagonal tiles is wasted). Peak memory: one tile.
    """
    n = A.shape[0]
    block_size = -(-n // -(-n // block_size))  # ceil(n / number of tiles)
    sums = []
    with _blas_controller().limit(limits=1, user_api="blas"):  # tiles are small: extra BLAS threads only spin
        for i in range(0, n, block_size):
            rows = A[i:i + block_size]
            for j in range(i, n, block_size):
                tile = rows @ B[j:j + block_size].T
                if j == i and diagonal is not None:
                    np.fill_diagonal(tile, diagonal)
                tile_sum = reduce(tile)
                sums.append(tile_sum if j == i else 2.0 * tile_sum)
    return math.fsum(sums)


@lru_cache(maxsize=1)
def _blas_controller() -> Any:
    from threadpoolctl import ThreadpoolController  # a scikit-learn dependency

    return ThreadpoolController()


def _exp_sum(tile: np.ndarray) -> float:
    np.exp(tile, out=tile)
    return float(tile.sum())


def _sqrt_sum(tile: np.ndarray) -> float:
    np.abs(tile, out=tile)  # rounding can leave -1e-15 where the distance is ~0 (abs is 3x cheaper than maximum)
    np.sqrt(tile, out=tile)
    return float(tile.sum())


def _cube_sum(tile: np.ndarray) -> float:
    return float(np.vdot(tile * tile, tile))


def _sq_distance_factors(Y: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Matrices A, B with A_j · B_k = scale · ‖y_j − y_k‖² = scale (r_j + r_k − 2 y_j·y_k): one matmul per tile.

    The expanded form has absolute rounding error ~ 1e-16 (r_j + r_k), negligible in every statistic here
    (a near-duplicate pair's distance is off by ~1e-8 √r, weighted 1/n² in the energy statistic).
    """
    r = np.einsum("ij,ij->i", Y, Y)[:, None]
    ones = np.ones_like(r)
    return np.hstack([-2.0 * scale * Y, scale * r, scale * ones]), np.hstack([Y, ones, r])


def _anderson_darling(log_cdf: np.ndarray, log_sf: np.ndarray) -> np.ndarray:
    """A² = −n − (1/n) Σ_i (2i − 1)[log F(x_(i)) + log(1 − F(x_(n+1−i)))], column-wise on sorted data."""
    n = log_cdf.shape[0]
    weights = (2.0 * np.arange(1, n + 1) - 1.0)[:, None]
    return -n - np.sum(weights * (log_cdf + log_sf[::-1]), axis=0) / n


# ----------------------------------------------------------------------------------------------
# Monte Carlo nulls


@dataclass(frozen=True)
class _Null:
    """A statistic whose null is simulated: ``statistic(X, *params)`` of N(0, I) samples. ``name`` keys the cache
    and seeds the simulation (renaming it changes every Monte Carlo p-value of the statistic); ``two_sided`` for a
    statistic that departs from its null both ways."""

    name: str
    statistic: Callable[..., float]
    two_sided: bool = False


class _MonteCarlo(NamedTuple):
    """Validated Monte Carlo options of a test (see :func:`_monte_carlo`)."""

    n_sim: int
    random_state: RandomState
    mc_max_n: int


def _monte_carlo(n_sim: Any, random_state: Any, mc_max_n: Any) -> _MonteCarlo:
    """The Monte Carlo options, checked before any work (an int random_state as a plain int: it keys the cache)."""
    check_random_state(random_state)
    if not (random_state is None or isinstance(random_state, np.random.Generator)):
        random_state = int(random_state)
    return _MonteCarlo(check_int(n_sim, "n_sim"), random_state, check_int(mc_max_n, "mc_max_n", minimum=20))


@lru_cache(maxsize=256)
def _null_distribution(name: str, n: int, d: int, params: tuple, n_sim: int, seed: int) -> np.ndarray:
    """Sorted statistics of ``n_sim`` N(0, I_d) samples of n rows (read-only), cached in memory and on disk."""
    sims = cached_array(f"{name}-n{n}-d{d}", (name, n, d, params, n_sim, seed), (n_sim,),
                        lambda: _simulate_null(name, n, d, params, n_sim, seed), definition=f"normality-{name}")
    sims.setflags(write=False)
    return sims


def _simulate_null(name: str, n: int, d: int, params: tuple, n_sim: int, seed: int) -> np.ndarray:
    """The statistic ``name`` of ``n_sim`` N(0, I_d) samples of n rows, sorted."""
    statistic = _NULLS[name].statistic
    rng = np.random.default_rng([seed, n, d, zlib.crc32(name.encode())])
    with _blas_controller().limit(limits=1, user_api="blas"):  # many small matrix products
        sims = np.fromiter((statistic(rng.standard_normal((n, d)), *params) for _ in range(n_sim)),
                           dtype=np.float64, count=n_sim)
    sims.sort()
    return sims


def _upper_pvalue(null: np.ndarray, value: float) -> float:
    """Monte Carlo upper-tail p-value (1 + #{T_sim >= T}) / (n_sim + 1) of ``value`` against a sorted null."""
    return float((1 + null.size - np.searchsorted(null, value, side="left")) / (null.size + 1))


def _monte_carlo_pvalue(null: _Null, value: float, n: int, d: int, params: tuple,
                        mc: _MonteCarlo) -> tuple[float, str]:
    """Monte Carlo p-value of ``value`` and a note when the null was simulated at fewer rows. An int
    ``random_state`` seeds a null that is cached (the same for every call); None or a Generator draws a fresh one,
    simulated for this call only."""
    n_null = min(n, max(mc.mc_max_n, d + 2))
    if isinstance(mc.random_state, int):
        sims = _null_distribution(null.name, n_null, d, params, mc.n_sim, mc.random_state)
    else:
        seed = int(check_random_state(mc.random_state).integers(2**63 - 1))
        sims = _simulate_null(null.name, n_null, d, params, mc.n_sim, seed)
    pvalue = upper = _upper_pvalue(sims, value)
    if null.two_sided:
        lower = (1 + np.searchsorted(sims, value, side="right")) / (mc.n_sim + 1)
        pvalue = min(1.0, 2.0 * min(upper, lower))
    note = "" if n_null == n else (f"Monte Carlo null simulated at n={n_null} rows (the scaled statistic's "
                                   f"null law converges as n grows); the statistic uses all {n} rows")
    return float(pvalue), note


def _result(name: str, statistic: float, shape: tuple[int, int], details: dict[str, Any], mc: _MonteCarlo | None,
            *, asymptotic: tuple[float, str] | None = None, params: tuple = ()) -> TestResult:
    """The one ending of every test with a simulated null: the Monte Carlo p-value against its null (``params``
    are the null statistic's) when ``mc`` is given, else the ``asymptotic`` (p-value, source)."""
    n, d = shape
    if mc is None:
        assert asymptotic is not None  # every test without a simulated null passes its asymptotic p-value
        pvalue, source = asymptotic
        return TestResult(name, statistic, pvalue, source, n, d, details)
    null = _SPECS[name].null
    assert null is not None  # a test that takes Monte Carlo options has a null in its spec
    pvalue, note = _monte_carlo_pvalue(null, statistic, n, d, params, mc)
    return TestResult(name, statistic, pvalue, "monte-carlo", n, d, details, note)


def _join(*notes: str) -> str:
    return "; ".join(note for note in notes if note)


# ----------------------------------------------------------------------------------------------
# Mardia


def _mardia_b1(Y: np.ndarray, route: str, block_size: int) -> float:
    """b_{1,p} = (1/n²) Σ_ij (y_iᵀ y_j)³ = ‖T‖²_F with T = (1/n) Σ_i y_i ⊗ y_i ⊗ y_i."""
    n, d = Y.shape
    if route == "auto":
        route = "tensor" if d * d <= n else "gram"
    if route == "gram":
        return _pair_sum(Y, Y, _cube_sum, block_size) / n**2
    # tensor route, O(n d³): slices T[a, b, :] for a <= b (symmetry), weighted 2 off the diagonal
    ia, ib = np.triu_indices(d)
    weights = np.where(ia == ib, 1.0, 2.0)
    third = np.zeros((ia.size, d))
    step = max(1, (1 << 20) // ia.size)
    for s in range(0, n, step):
        rows = Y[s:s + step]
        third += (rows[:, ia] * rows[:, ib]).T @ rows
    third /= n
    return float(weights @ np.einsum("ij,ij->i", third, third))


def _mardia_skewness_parts(X: np.ndarray, route: str, block_size: int) -> tuple[float, dict[str, Any]]:
    return mardia_skewness_statistic(_mardia_b1(_whiten(X, "mardia_skewness"), route, block_size), *X.shape)


def mardia_skewness_statistic(b1: float, n: int, d: int) -> tuple[float, dict[str, Any]]:
    """Mardia's n k b_{1,p}/6 from b_{1,p} (see :func:`mardia_skewness`), with its details (b1, df, factor)."""
    factor = 1.0
    if n < 20:  # Mardia (1974) small-sample correction
        factor = (d + 1) * (n + 1) * (n + 3) / (n * ((n + 1) * (d + 1) - 6))
    df = d * (d + 1) * (d + 2) / 6
    return n * factor * b1 / 6.0, {"b1": b1, "df": df, "small_sample_factor": factor}


def mardia_skewness(Z: Any, *, monte_carlo: bool = False, n_sim: int = N_SIM, random_state: RandomState = 0,
                    mc_max_n: int = MC_MAX_N, route: Literal["auto", "tensor", "gram"] = "auto",
                    block_size: int = BLOCK_SIZE) -> TestResult:
    r"""Mardia's multivariate skewness test.

    b_{1,p} = (1/n²) Σ_ij (w_iᵀ S⁻¹ w_j)³ with w_i = z_i − z̄ and S the MLE covariance; the statistic
    n k b_{1,p}/6 is χ² with p(p+1)(p+2)/6 degrees of freedom, k = 1 for n >= 20 and
    k = (p+1)(n+1)(n+3)/(n((n+1)(p+1) − 6)) below (Mardia 1970, Biometrika 57; Mardia 1974, Sankhyā B 36).

    Parameters
    ----------
    Z : array-like of shape (n, d)
        The sample, one row per point (at least 3).
    monte_carlo : bool, default False
        Replace the χ² p-value by a Monte Carlo one.
    n_sim : int, default N_SIM
        Simulated N(0, I) samples behind a Monte Carlo p-value.
    random_state : None | int | Generator, default 0
        Seeds the simulated null (an int one is cached in memory and on disk).
    mc_max_n : int, default MC_MAX_N
        Largest n the null is simulated at; larger samples reuse the null at this size (the note says so).
    route : {"auto", "tensor", "gram"}, default "auto"
        ``"tensor"`` computes b_{1,p} as the squared norm of the third-moment tensor in O(n p³); ``"gram"`` sums the
        cubed Gram matrix in tiles in O(n² p); ``"auto"`` takes the cheaper one.
    block_size : int, default BLOCK_SIZE
        Rows per side of a tile of the pairwise sum.

    Returns
    -------
    TestResult
        ``statistic, pvalue = result`` unpacks like SciPy's results; the details hold b1, df and the
        small-sample factor k.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.metrics import mardia_skewness
    >>> rng = np.random.default_rng(0)
    >>> statistic, pvalue = mardia_skewness(rng.standard_normal((200, 2)))
    >>> pvalue > 0.05
    True
    >>> mardia_skewness(rng.exponential(size=(200, 2))).pvalue < 0.05
    True
    """
    if route not in ("auto", "tensor", "gram"):
        raise ValueError(f"route must be 'auto', 'tensor' or 'gram', got {route!r}")
    block_size = check_int(block_size, "block_size")
    check_bool(monte_carlo, "monte_carlo")
    mc = _monte_carlo(n_sim, random_state, mc_max_n)
    X = as_sample(Z, min_rows=3)
    stat, details = _mardia_skewness_parts(X, route, block_size)
    return _result("mardia_skewness", stat, X.shape, details, mc if monte_carlo else None,
                   asymptotic=(float(stats.chi2.sf(stat, details["df"])), "asymptotic"))


def _mardia_kurtosis_parts(X: np.ndarray) -> tuple[float, dict[str, Any]]:
    Y = _whiten(X, "mardia_kurtosis", min_excess_rows=2)
    return mardia_kurtosis_statistic(float(np.mean(np.einsum("ij,ij->i", Y, Y) ** 2)), *X.shape)


def mardia_kurtosis_statistic(b2: float, n: int, d: int) -> tuple[float, dict[str, Any]]:
    """Mardia's standardised (b_{2,p} − E)/√Var from b_{2,p} (see :func:`mardia_kurtosis`), with its details."""
    mean = d * (d + 2) * (n - 1) / (n + 1)
    var = 8 * d * (d + 2) * (n - 3) * (n - d - 1) * (n - d + 1) / ((n + 1) ** 2 * (n + 3) * (n + 5))
    return (b2 - mean) / math.sqrt(var), {"b2": b2, "mean": mean, "var": var}


def mardia_kurtosis(Z: Any, *, monte_carlo: bool = False, n_sim: int = N_SIM, random_state: RandomState = 0,
                    mc_max_n: int = MC_MAX_N) -> TestResult:
    r"""Mardia's multivariate kurtosis test, standardised with the exact finite-sample moments.

    b_{2,p} = (1/n) Σ_i ‖S^{-1/2}(z_i − z̄)‖⁴ (MLE S). Under normality E b_{2,p} = p(p+2)(n−1)/(n+1) and
    Var b_{2,p} = 8p(p+2)(n−3)(n−p−1)(n−p+1)/((n+1)²(n+3)(n+5)) exactly (Mardia 1974, Sankhyā B 36);
    the statistic z = (b_{2,p} − E)/√Var gets a two-sided normal p-value (equal-tailed under Monte Carlo).
    The asymptotic moments p(p+2) and 8p(p+2)/n are badly off when p is not small next to n.

    Parameters
    ----------
    Z : array-like of shape (n, d)
        The sample, one row per point (at least 4).
    monte_carlo : bool, default False
        Replace the normal p-value by a Monte Carlo one.
    n_sim : int, default N_SIM
        Simulated N(0, I) samples behind a Monte Carlo p-value.
    random_state : None | int | Generator, default 0
        Seeds the simulated null (an int one is cached in memory and on disk).
    mc_max_n : int, default MC_MAX_N
        Largest n the null is simulated at; larger samples reuse the null at this size (the note says so).

    Returns
    -------
    TestResult
        ``statistic, pvalue = result`` unpacks like SciPy's results; the details hold b2 and its exact null mean
        and variance.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.metrics import mardia_kurtosis
    >>> rng = np.random.default_rng(0)
    >>> mardia_kurtosis(rng.standard_normal((200, 2))).pvalue > 0.05
    True

    A uniform square has light tails, so z < 0:

    >>> result = mardia_kurtosis(rng.uniform(-1.0, 1.0, (200, 2)))
    >>> result.statistic < 0, result.pvalue < 0.05
    (True, True)
    """
    check_bool(monte_carlo, "monte_carlo")
    mc = _monte_carlo(n_sim, random_state, mc_max_n)
    X = as_sample(Z, min_rows=4)
    stat, details = _mardia_kurtosis_parts(X)
    return _result("mardia_kurtosis", stat, X.shape, details, mc if monte_carlo else None,
                   asymptotic=(float(2.0 * special.ndtr(-abs(stat))), "asymptotic"))


# ----------------------------------------------------------------------------------------------
# BHEP family: Henze–Zirkler and Epps–Pulley


def _bhep_statistic(X: np.ndarray, beta: float, block_size: int, test: str = "bhep") -> float:
    """T_β = (1/n) Σ_jk e^{−β²‖y_j−y_k‖²/2} − 2(1+β²)^{−p/2} Σ_j e^{−β²‖y_j‖²/(2(1+β²))} + n(1+2β²)^{−p/2}."""
    n, d = X.shape
    Y = _whiten(X, test)
    b2 = beta * beta
    A, B = _sq_distance_factors(Y, -0.5 * b2)
    pairs = _pair_sum(A, B, _exp_sum, block_size, diagonal=0.0)
    single = float(np.exp(-b2 / (2.0 * (1.0 + b2)) * np.einsum("ij,ij->i", Y, Y)).sum())
    return pairs / n - 2.0 * (1.0 + b2) ** (-d / 2) * single + n * (1.0 + 2.0 * b2) ** (-d / 2)


def _henze_zirkler_beta(n: int, d: int) -> float:
    """Henze–Zirkler smoothing parameter β = (1/√2) ((2p + 1) n / 4)^{1/(p+4)}."""
    return ((2 * d + 1) * n / 4.0) ** (1.0 / (d + 4)) / math.sqrt(2.0)


def _henze_zirkler_lognormal(beta: float, d: int) -> tuple[float, float]:
    """Log-scale mean and sd of the lognormal with HZ's mean and variance of T_β (Henze & Zirkler 1990)."""
    b2 = beta * beta
    a = 1.0 + 2.0 * b2
    w = (1.0 + b2) * (1.0 + 3.0 * b2)
    mean = 1.0 - a ** (-d / 2) * (1.0 + d * b2 / a + d * (d + 2) * b2**2 / (2.0 * a**2))
    var = (2.0 * (1.0 + 4.0 * b2) ** (-d / 2)
           + 2.0 * a ** (-d) * (1.0 + 2.0 * d * b2**2 / a**2 + 3.0 * d * (d + 2) * b2**4 / (4.0 * a**4))
           - 4.0 * w ** (-d / 2) * (1.0 + 3.0 * d * b2**2 / (2.0 * w) + d * (d + 2) * b2**4 / (2.0 * w**2)))
    return math.log(mean**2 / math.sqrt(var + mean**2)), math.sqrt(math.log1p(var / mean**2))


def henze_zirkler(Z: Any, *, monte_carlo: bool = False, n_sim: int = N_SIM, random_state: RandomState = 0,
                  mc_max_n: int = MC_MAX_N, block_size: int = BLOCK_SIZE) -> TestResult:
    r"""Henze–Zirkler test: the BHEP statistic T_β with β = (1/√2)((2p+1)n/4)^{1/(p+4)}.

    T_β = (1/n) Σ_jk exp(−β²‖y_j − y_k‖²/2) − 2(1+β²)^{−p/2} Σ_j exp(−β²‖y_j‖²/(2(1+β²))) + n(1+2β²)^{−p/2},
    y_j = S^{-1/2}(z_j − z̄) with the MLE covariance (divisor n, as in R's MVN and pingouin). The p-value
    is the upper tail of the lognormal with the mean and variance of T_β given by Henze & Zirkler (1990,
    Comm. Statist. Theory Methods 19), or Monte Carlo. The pairwise sum runs in tiles.

    Parameters
    ----------
    Z : array-like of shape (n, d)
        The sample, one row per point (at least 3).
    monte_carlo : bool, default False
        Replace the lognormal p-value by a Monte Carlo one.
    n_sim : int, default N_SIM
        Simulated N(0, I) samples behind a Monte Carlo p-value.
    random_state : None | int | Generator, default 0
        Seeds the simulated null (an int one is cached in memory and on disk).
    mc_max_n : int, default MC_MAX_N
        Largest n the null is simulated at; larger samples reuse the null at this size (the note says so).
    block_size : int, default BLOCK_SIZE
        Rows per side of a tile of the pairwise sum.

    Returns
    -------
    TestResult
        ``statistic, pvalue = result`` unpacks like SciPy's results; the details hold β and the lognormal's
        log-scale mean and sd.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.metrics import henze_zirkler
    >>> rng = np.random.default_rng(0)
    >>> henze_zirkler(rng.standard_normal((200, 2))).pvalue > 0.05
    True
    >>> henze_zirkler(rng.uniform(-1.0, 1.0, (200, 2))).pvalue < 0.05
    True
    """
    block_size = check_int(block_size, "block_size")
    check_bool(monte_carlo, "monte_carlo")
    mc = _monte_carlo(n_sim, random_state, mc_max_n)
    X = as_sample(Z, min_rows=3)
    beta = _henze_zirkler_beta(*X.shape)
    stat = _bhep_statistic(X, beta, block_size, "henze_zirkler")
    log_mean, log_sd = _henze_zirkler_lognormal(beta, X.shape[1])
    details = {"beta": beta, "lognormal_log_mean": log_mean, "lognormal_log_sd": log_sd}
    return _result("henze_zirkler", stat, X.shape, details, mc if monte_carlo else None, params=(beta,),
                   asymptotic=(float(stats.lognorm.sf(stat, log_sd, scale=math.exp(log_mean))), "lognormal"))


def epps_pulley(Z: Any, *, beta: float = 1.0, n_sim: int = N_SIM, random_state: RandomState = 0,
                mc_max_n: int = MC_MAX_N, block_size: int = BLOCK_SIZE) -> TestResult:
    r"""BHEP test (Baringhaus & Henze 1988, Metrika 35; Epps & Pulley 1983, Biometrika 70) at a fixed β.

    The multivariate, affine-invariant Epps–Pulley statistic: the weighted L² distance
    n ∫ |ψ_n(t) − e^{−‖t‖²/2}|² φ_β(t) dt between the empirical characteristic function of the whitened
    sample and the standard normal one, with a N(0, β⁻² I) weight; in closed form it is T_β of
    :func:`henze_zirkler` (which is this test with an n-dependent β). We use the multivariate statistic,
    not per-coordinate Epps–Pulley tests: it is consistent against every alternative, and per-coordinate
    tests live in :func:`coordinate_tests`. With β fixed, T_β has a non-degenerate limit law that has no
    closed form, so the p-value is Monte Carlo.

    Parameters
    ----------
    Z : array-like of shape (n, d)
        The sample, one row per point (at least 3).
    beta : float, default 1.0
        The smoothing parameter β > 0.
    n_sim : int, default N_SIM
        Simulated N(0, I) samples behind the Monte Carlo p-value.
    random_state : None | int | Generator, default 0
        Seeds the simulated null (an int one is cached in memory and on disk).
    mc_max_n : int, default MC_MAX_N
        Largest n the null is simulated at; larger samples reuse the null at this size (the note says so).
    block_size : int, default BLOCK_SIZE
        Rows per side of a tile of the pairwise sum.

    Returns
    -------
    TestResult
        ``statistic, pvalue = result`` unpacks like SciPy's results; the details hold β.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.metrics import epps_pulley
    >>> rng = np.random.default_rng(0)
    >>> result = epps_pulley(rng.standard_normal((200, 2)))
    >>> result.pvalue > 0.05, result.pvalue_source
    (True, 'monte-carlo')
    >>> epps_pulley(rng.uniform(-1.0, 1.0, (200, 2))).pvalue < 0.05
    True
    """
    beta = check_real(beta, "beta", strict=True)
    block_size = check_int(block_size, "block_size")
    mc = _monte_carlo(n_sim, random_state, mc_max_n)
    X = as_sample(Z, min_rows=3)
    stat = _bhep_statistic(X, beta, block_size, "epps_pulley")
    return _result("epps_pulley", stat, X.shape, {"beta": beta}, mc, params=(beta,))


# ----------------------------------------------------------------------------------------------
# energy


def _expected_distance_to_gaussian(sq_norm: np.ndarray, d: int) -> np.ndarray:
    """E‖a − G‖ for G ~ N(0, I_d), as a function of ‖a‖² (the mean of a noncentral chi variable).

    Closed form √2 Γ((d+1)/2)/Γ(d/2) ₁F₁(−1/2; d/2; −‖a‖²/2). Up to d = ``_HYP1F1_MAX_D`` SciPy's (Boost)
    ``hyp1f1`` is used: within 1e-14 of mpmath for every ‖a‖². For larger d it overflows (d >= 100 from
    ‖a‖² ≈ 75), so with x = ‖a‖²/2 and b = d/2 we use two exact representations of the same function:
    the Poisson mixture √2 Σ_k e^{−x} x^k/k! · Γ(b+k+1/2)/Γ(b+k) (Kummer's transformation; positive
    terms, summed over a ±(9√x + 10) window around k = x) for x < 4 max(b, 30), and the large-x
    expansion ‖a‖ Σ_s (−1/2)_s (1/2 − b)_s / (s! x^s) beyond (terms shrink at least 4-fold: 30 terms
    reach machine precision; the neglected part is O(e^{−x})).
    """
    x = 0.5 * np.asarray(sq_norm, dtype=np.float64)
    b = 0.5 * d
    if d <= _HYP1F1_MAX_D:
        scale = math.sqrt(2.0) * math.exp(special.gammaln(b + 0.5) - special.gammaln(b))
        return scale * special.hyp1f1(-0.5, b, -x)
    out = np.empty_like(x)
    far = x >= 4.0 * max(b, 30.0)
    if far.any():
        xf = x[far]
        term = np.ones_like(xf)
        total = np.ones_like(xf)
        for s in range(30):
            term *= (s - 0.5) * (s + 0.5 - b) / ((s + 1.0) * xf)
            total += term
        out[far] = np.sqrt(2.0 * xf) * total
    near = ~far
    if near.any():
        xn = x[near]
        spread = 9.0 * np.sqrt(xn) + 10.0
        k = np.floor(np.maximum(xn - spread, 0.0))
        width = int(np.ceil(2.0 * spread.max())) + 2
        weight = np.exp(special.xlogy(k, xn) - xn - special.gammaln(k + 1.0))
        ratio = np.exp(special.gammaln(b + k + 0.5) - special.gammaln(b + k))
        total = np.zeros_like(xn)
        for _ in range(width):
            total += weight * ratio
            weight *= xn / (k + 1.0)
            ratio *= (b + k + 0.5) / (b + k)
            k += 1.0
        out[near] = math.sqrt(2.0) * total
    return out


def _energy_statistic(X: np.ndarray, block_size: int) -> float:
    """n (2/n Σ_i E‖y_i − G‖ − E‖G − G'‖ − (1/n²) Σ_jk ‖y_j − y_k‖), y standardised with the n−1 covariance."""
    n, d = X.shape
    Y = _whiten(X, "energy")
    Y *= math.sqrt((n - 1) / n)  # the unbiased covariance, as in Székely & Rizzo's energy package
    expected = _expected_distance_to_gaussian(np.einsum("ij,ij->i", Y, Y), d)
    pair_mean = math.exp(special.gammaln((d + 1) / 2) - special.gammaln(d / 2)) * 2.0
    A, B = _sq_distance_factors(Y, 1.0)
    sample_mean = _pair_sum(A, B, _sqrt_sum, block_size, diagonal=0.0) / n**2
    return n * (2.0 * float(expected.sum()) / n - pair_mean - sample_mean)


def energy_test(Z: Any, *, n_sim: int = N_SIM, random_state: RandomState = 0, mc_max_n: int = MC_MAX_N,
                block_size: int = BLOCK_SIZE) -> TestResult:
    r"""Energy test of multivariate normality with estimated parameters (Székely & Rizzo 2005, JMVA 93).

    n E_n = n (2/n Σ_i E‖y_i − G‖ − E‖G − G'‖ − (1/n²) Σ_jk ‖y_j − y_k‖), G, G' ~ N(0, I) independent,
    y_i = S^{-1/2}(z_i − z̄) with the unbiased covariance; E‖a − G‖ = √2 Γ((d+1)/2)/Γ(d/2)
    ₁F₁(−1/2; d/2; −‖a‖²/2) and E‖G − G'‖ = 2Γ((d+1)/2)/Γ(d/2) in closed form. The statistic is affine
    invariant, its null depends on (n, d) only: Monte Carlo p-value. The pairwise sum runs in tiles.

    Parameters
    ----------
    Z : array-like of shape (n, d)
        The sample, one row per point (at least 3).
    n_sim : int, default N_SIM
        Simulated N(0, I) samples behind the Monte Carlo p-value.
    random_state : None | int | Generator, default 0
        Seeds the simulated null (an int one is cached in memory and on disk).
    mc_max_n : int, default MC_MAX_N
        Largest n the null is simulated at; larger samples reuse the null at this size (the note says so).
    block_size : int, default BLOCK_SIZE
        Rows per side of a tile of the pairwise sum.

    Returns
    -------
    TestResult
        ``statistic, pvalue = result`` unpacks like SciPy's results.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.metrics import energy_test
    >>> rng = np.random.default_rng(0)
    >>> energy_test(rng.standard_normal((200, 2))).pvalue > 0.05
    True
    >>> energy_test(rng.uniform(-1.0, 1.0, (200, 2))).pvalue < 0.05
    True
    """
    block_size = check_int(block_size, "block_size")
    mc = _monte_carlo(n_sim, random_state, mc_max_n)
    X = as_sample(Z, min_rows=3)
    return _result("energy", _energy_statistic(X, block_size), X.shape, {}, mc)


# ----------------------------------------------------------------------------------------------
# Doornik–Hansen


def _dagostino_skewness_z(skew: np.ndarray, n: int) -> np.ndarray:
    """D'Agostino's (1970) Johnson-S_U transform of the sample skewness √b₁ to a standard normal."""
    beta2 = 3.0 * (n * n + 27 * n - 70) * (n + 1) * (n + 3) / ((n - 2) * (n + 5) * (n + 7) * (n + 9))
    omega2 = -1.0 + math.sqrt(2.0 * (beta2 - 1.0))
    delta = 1.0 / math.sqrt(math.log(math.sqrt(omega2)))
    y = skew * math.sqrt((omega2 - 1.0) * (n + 1) * (n + 3) / (12.0 * (n - 2)))
    return delta * np.arcsinh(y)


def _anscombe_glynn_kurtosis_z(kurt: np.ndarray, n: int) -> np.ndarray:
    """Anscombe & Glynn's (1983, Biometrika 70) transform of the kurtosis b₂ to a standard normal.

    x = (b₂ − E b₂)/√Var b₂ (exact null moments), A = 6 + (8/√β₁)(2/√β₁ + √(1 + 4/β₁)) with √β₁ the
    skewness of b₂, z = (1 − 2/(9A) − ∛((1 − 2/A)/(1 + x√(2/(A − 4)))))/√(2/(9A)), as scipy's ``kurtosistest``.
    """
    mean = 3.0 * (n - 1) / (n + 1)
    var = 24.0 * n * (n - 2) * (n - 3) / ((n + 1) ** 2 * (n + 3) * (n + 5))
    root_beta1 = (6.0 * (n * n - 5 * n + 2) / ((n + 7) * (n + 9))
                  * math.sqrt(6.0 * (n + 3) * (n + 5) / (n * (n - 2) * (n - 3))))
    a = 6.0 + 8.0 / root_beta1 * (2.0 / root_beta1 + math.sqrt(1.0 + 4.0 / root_beta1**2))
    tail = np.cbrt((1.0 - 2.0 / a) / (1.0 + (kurt - mean) / math.sqrt(var) * math.sqrt(2.0 / (a - 4.0))))
    return (1.0 - 2.0 / (9.0 * a) - tail) / math.sqrt(2.0 / (9.0 * a))


def _doornik_hansen_kurtosis_z(skew: np.ndarray, kurt: np.ndarray, n: int) -> np.ndarray:
    """Doornik & Hansen's gamma / Wilson–Hilferty transform of the kurtosis b₂ given the skewness."""
    delta = (n - 3) * (n + 1) * (n * n + 15 * n - 4)
    a = (n - 2) * (n + 5) * (n + 7) * (n * n + 27 * n - 70) / (6.0 * delta)
    c = (n - 7) * (n + 5) * (n + 7) * (n * n + 2 * n - 5) / (6.0 * delta)
    k = (n + 5) * (n + 7) * (n**3 + 37 * n * n + 11 * n - 313) / (12.0 * delta)
    alpha = a + skew**2 * c
    chi = 2.0 * k * (kurt - 1.0 - skew**2)  # >= 0: b₂ >= 1 + b₁ for any sample
    return (np.cbrt(chi / (2.0 * alpha)) - 1.0 + 1.0 / (9.0 * alpha)) * np.sqrt(9.0 * alpha)


def _doornik_hansen_parts(X: np.ndarray) -> tuple[float, dict[str, Any]]:
    n, d = X.shape
    W, evals, evecs = _scaled_correlation(X, "doornik_hansen", 1)
    root = (evecs / np.sqrt(evals)) @ evecs.T  # C^{-1/2}, the symmetric root Doornik & Hansen prescribe
    m2, m3, m4 = np.zeros(d), np.zeros(d), np.zeros(d)
    step = max(1, (1 << 22) // d)
    for s in range(0, n, step):  # column moments of Y = W C^{-1/2}, one row block at a time
        Y = W[s:s + step] @ root
        Y2 = Y * Y
        m2 += Y2.sum(axis=0)
        m3 += np.einsum("ij,ij->j", Y2, Y)
        m4 += np.einsum("ij,ij->j", Y2, Y2)
    skew, kurt = (m3 / n) / (m2 / n) ** 1.5, (m4 / n) / (m2 / n) ** 2
    z1 = _dagostino_skewness_z(skew, n)
    z2 = _doornik_hansen_kurtosis_z(skew, kurt, n)
    return float(z1 @ z1 + z2 @ z2), {"df": 2 * d, "skewness": skew.tolist(), "kurtosis": kurt.tolist(),
                                      "z_skewness": z1.tolist(), "z_kurtosis": z2.tolist()}


def doornik_hansen(Z: Any, *, monte_carlo: bool = False, n_sim: int = N_SIM, random_state: RandomState = 0,
                   mc_max_n: int = MC_MAX_N) -> TestResult:
    r"""Doornik–Hansen omnibus test (Doornik & Hansen 2008, Oxford Bull. Econ. Stat. 70).

    The data are standardised column-wise and orthogonalised with the symmetric inverse root of the
    correlation matrix, y_i = H Λ^{-1/2} Hᵀ V^{-1/2}(z_i − z̄); each coordinate's skewness √b₁ goes through
    D'Agostino's transform to z₁ and its kurtosis b₂ through a gamma/Wilson–Hilferty transform to z₂;
    E = z₁ᵀz₁ + z₂ᵀz₂ is χ²(2p). The statistic is invariant to location and column scales but not to
    rotations, so its Monte Carlo null (simulated from N(0, I)) is exact for diagonal covariances and a
    close approximation otherwise.

    Parameters
    ----------
    Z : array-like of shape (n, d)
        The sample, one row per point (at least 8).
    monte_carlo : bool, default False
        Replace the χ²(2p) p-value by a Monte Carlo one.
    n_sim : int, default N_SIM
        Simulated N(0, I) samples behind a Monte Carlo p-value.
    random_state : None | int | Generator, default 0
        Seeds the simulated null (an int one is cached in memory and on disk).
    mc_max_n : int, default MC_MAX_N
        Largest n the null is simulated at; larger samples reuse the null at this size (the note says so).

    Returns
    -------
    TestResult
        ``statistic, pvalue = result`` unpacks like SciPy's results; the details hold df and each coordinate's
        skewness, kurtosis, z₁ and z₂.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.metrics import doornik_hansen
    >>> rng = np.random.default_rng(0)
    >>> result = doornik_hansen(rng.standard_normal((200, 2)))
    >>> result.pvalue > 0.05, result.details["df"]
    (True, 4)
    >>> doornik_hansen(rng.uniform(-1.0, 1.0, (200, 2))).pvalue < 0.05
    True
    """
    check_bool(monte_carlo, "monte_carlo")
    mc = _monte_carlo(n_sim, random_state, mc_max_n)
    X = as_sample(Z, min_rows=8)
    stat, details = _doornik_hansen_parts(X)
    return _result("doornik_hansen", stat, X.shape, details, mc if monte_carlo else None,
                   asymptotic=(float(stats.chi2.sf(stat, details["df"])), "asymptotic"))


# ----------------------------------------------------------------------------------------------
# per-coordinate tests


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values: p̃_(i) = max_{j<=i} min(1, (m − j + 1) p_(j))."""
    m = pvalues.size
    order = np.argsort(pvalues)
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * pvalues[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def _anderson_normal_pvalue(a2: np.ndarray, n: int) -> np.ndarray:
    """p-value of A² for normality with estimated mean and variance (D'Agostino & Stephens 1986, Table 4.9).

    A*² = A²(1 + 0.75/n + 2.25/n²) and a piecewise exponential fit; the last piece is used up to its
    minimum at A*² ≈ 153.5 (p ≈ 1e-190) and held constant beyond.
    """
    a = np.minimum(a2 * (1.0 + 0.75 / n + 2.25 / n**2), 5.709 / (2 * 0.0186))
    return np.select(
        [a < 0.2, a < 0.34, a < 0.6],
        [-np.expm1(-13.436 + 101.14 * a - 223.73 * a**2),
         -np.expm1(-8.318 + 42.796 * a - 59.938 * a**2),
         np.exp(0.9177 - 4.279 * a - 1.38 * a**2)],
        np.exp(1.2937 - 5.709 * a + 0.0186 * a**2))


# Royston's polynomials (coefficients in ascending powers), as in AS R94 and scipy's swilk
_SW_A_LAST = (0.0, 0.221157, -0.147981, -2.07119, 4.434685, -2.706056)  # a_n in n^{-1/2}
_SW_A_SECOND = (0.0, 0.042981, -0.293762, -1.752461, 5.682633, -3.582633)  # a_{n-1} in n^{-1/2}
_SW_SMALL_MEAN = (0.544, -0.39978, 0.025054, -6.714e-4)  # 4 <= n <= 11, in n
_SW_SMALL_LOG_SD = (1.3822, -0.77857, 0.062767, -2.0322e-3)
_SW_MEAN = (-1.5861, -0.31082, -0.083751, 3.8915e-3)  # n >= 12, in log n
_SW_LOG_SD = (-0.4803, -0.082676, 3.0302e-3)


def _ppnd_lower(p: np.ndarray) -> np.ndarray:
    """Normal quantile for 0 < p < 1/2 by AS 111 (Beasley & Springer 1977, Appl. Statist. 26), accurate to
    ~1e-7: the approximation Royston's coefficients are computed with (exact quantiles move p-values by 1e-6)."""
    q = p - 0.5
    r = q * q
    central = q * (((-25.44106049637 * r + 41.39119773534) * r - 18.61500062529) * r + 2.50662823884) / (
        (((3.13082909833 * r - 21.06224101826) * r + 23.08336743743) * r - 8.4735109309) * r + 1.0)
    r = np.sqrt(-np.log(p))
    tail = -(((2.32121276858 * r + 4.85014127135) * r - 2.29796479134) * r - 2.78718931138) / (
        (1.63706781897 * r + 3.54388924762) * r + 1.0)
    return np.where(q >= -0.42, central, tail)


@lru_cache(maxsize=64)
def _shapiro_wilk_constants(n: int) -> tuple[np.ndarray, float, float, float]:
    """Royston's (1992, Stat. Comput. 2) coefficients a of W for n ascending values (read-only, antisymmetric,
    unit norm) and the mean and sd of his normal approximation to the transformed 1 − W (n >= 4).

    a_i ∝ the normal scores m_i = Φ⁻¹((i − 3/8)/(n + 1/4)), with the two extreme pairs (one for n <= 5) replaced
    by polynomials in n^{-1/2} and the rest rescaled to unit norm.
    """
    poly = np.polynomial.polynomial.polyval
    if n == 3:
        half = np.array([math.sqrt(0.5)])
    else:
        m = _ppnd_lower((np.arange(1, n // 2 + 1) - 0.375) / (n + 0.25))  # lower half, negative
        norm2 = 2.0 * float(m @ m)
        ends = [poly(n**-0.5, _SW_A_LAST) - m[0] / math.sqrt(norm2)]
        if n > 5:
            ends.append(poly(n**-0.5, _SW_A_SECOND) - m[1] / math.sqrt(norm2))
        k = len(ends)
        scale = math.sqrt((norm2 - 2.0 * float(m[:k] @ m[:k])) / (1.0 - 2.0 * sum(e * e for e in ends)))
        half = np.concatenate([ends, -m[k:] / scale])
    a = np.concatenate([-half, np.zeros(n % 2), half[::-1]])
    a.setflags(write=False)
    if n <= 11:
        mean, log_sd = poly(n, _SW_SMALL_MEAN), poly(n, _SW_SMALL_LOG_SD)
    else:
        mean, log_sd = poly(math.log(n), _SW_MEAN), poly(math.log(n), _SW_LOG_SD)
    return a, float(a @ a), float(mean), math.exp(log_sd)


def _shapiro_wilk(S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shapiro–Wilk W and p-value of every row of S (sorted ascending, not constant; S is overwritten).

    W = c²/(‖a‖² Q) with c = Σ a_i x_(i) and Q = Σ (x_i − x̄)², evaluated as
    1 − W = (√(‖a‖² Q) − c)(√(‖a‖² Q) + c)/(‖a‖² Q) (no cancellation near W = 1). p-value: exact for n = 3
    (Shapiro & Wilk 1965, Biometrika 52), else Royston's (1995, Appl. Statist. 44, AS R94) normal
    approximation to log(1 − W) (n >= 12) or −log(γ − log(1 − W)), γ = 0.459 n − 2.273 (4 <= n <= 11).
    This is scipy's ``shapiro`` for all columns at once: W within 1e-13 (relative), p within 1e-10.
    """
    n = S.shape[1]
    a, norm2, mean, sd = _shapiro_wilk_constants(n)
    S -= S.mean(axis=1, keepdims=True)
    S /= S[:, -1:] - S[:, :1]  # range 1 (as swilk): no overflow or underflow in the squares
    ssx = norm2 * np.einsum("ij,ij->i", S, S)
    root, c = np.sqrt(ssx), S @ a
    one_minus_w = (root - c) * (root + c) / ssx
    w = 1.0 - one_minus_w
    if n == 3:  # W >= 3/4, where p = 0 (rounding can cross both)
        w = np.maximum(w, 0.75)
        return w, np.maximum(1.0 - (6.0 / math.pi) * np.arccos(np.sqrt(w)), 0.0)
    y = np.log(one_minus_w)
    if n <= 11:  # γ − y > 0 for every sample: W >= n a_n²/(n − 1) (Shapiro & Wilk 1965)
        y = -np.log(0.459 * n - 2.273 - y)
    return w, special.ndtr((mean - y) / sd)


def _dagostino_pearson(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """D'Agostino–Pearson K² = Z(√b₁)² + Z(b₂)² and its χ²₂ p-value e^{−K²/2} of every row of T (overwritten).

    One pass of central moments; Z(√b₁) by D'Agostino (1970), Z(b₂) by Anscombe & Glynn (1983)
    (D'Agostino, Belanger & D'Agostino 1990, Amer. Statist. 44): scipy's ``normaltest``, including its
    NaN where the variance is lost to rounding (m₂ <= (ε x̄)²), but Z(√b₁) = 0 where √b₁ = 0 exactly
    (scipy's skewtest substitutes y = 1 there).
    """
    n = T.shape[1]
    mean = T.mean(axis=1)
    T -= mean[:, None]
    T2 = T * T
    m2 = T2.mean(axis=1)
    m3, m4 = np.einsum("ij,ij->i", T2, T) / n, np.einsum("ij,ij->i", T2, T2) / n
    lost = m2 <= (np.finfo(np.float64).eps * mean) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        skew, kurt = np.where(lost, np.nan, m3 / m2**1.5), np.where(lost, np.nan, m4 / m2**2)
    k2 = _dagostino_skewness_z(skew, n) ** 2 + _anscombe_glynn_kurtosis_z(kurt, n) ** 2
    return k2, np.exp(-0.5 * k2)


_COORDINATE_MIN_ROWS = {"shapiro": 3, "anderson": 8, "dagostino": 20}


def coordinate_tests(Z: Any, test: Literal["shapiro", "anderson", "dagostino"] = "shapiro", *,
                     random_state: RandomState = 0) -> TestResult:
    r"""Univariate normality test of every column, Holm-corrected (Holm 1979, Scand. J. Statist. 6).

    The statistic is that of the coordinate with the smallest p-value; the p-value is the smallest Holm-adjusted
    one, so the test rejects when any coordinate does, with family-wise error at most α.

    Parameters
    ----------
    Z : array-like of shape (n, d)
        The sample, one row per point (at least 3; 8 for ``"anderson"``, 20 for ``"dagostino"``).
    test : {"shapiro", "anderson", "dagostino"}, default "shapiro"
        ``"shapiro"``: Shapiro–Wilk with Royston's coefficients and p-value (scipy's ``shapiro``, computed for all
        columns at once; above 5000 rows it runs on an announced random subsample of 5000, the range where that
        approximation is validated); ``"anderson"``: Anderson–Darling with estimated mean and variance and the
        D'Agostino–Stephens p-value; ``"dagostino"``: D'Agostino–Pearson K² (scipy's ``normaltest``, computed
        from one pass of central moments, n >= 20).
    random_state : None | int | Generator, default 0
        Seeds the Shapiro–Wilk subsample.

    Returns
    -------
    TestResult
        The details hold each column's statistic, p-value and Holm-adjusted p-value, and the most significant
        column.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.metrics import coordinate_tests
    >>> rng = np.random.default_rng(0)
    >>> coordinate_tests(rng.standard_normal((200, 2))).pvalue > 0.05
    True
    >>> Z = np.column_stack([rng.standard_normal(200), rng.uniform(-1.0, 1.0, 200)])
    >>> result = coordinate_tests(Z, "anderson")
    >>> result.pvalue < 0.05, result.details["most_significant_column"]
    (True, 1)
    """
    if test not in _COORDINATE_MIN_ROWS:
        raise ValueError(f"test must be one of {sorted(_COORDINATE_MIN_ROWS)}, got {test!r}")
    rng = check_random_state(random_state)
    X = as_sample(Z, min_rows=_COORDINATE_MIN_ROWS[test])
    name = f"coordinate_tests({test})"
    n, d = X.shape
    note = ""
    if test == "shapiro":
        if n > SHAPIRO_MAX_N:
            rows = np.sort(rng.choice(n, SHAPIRO_MAX_N, replace=False))
            X = X[rows]
            note = f"Shapiro–Wilk on a random subsample of {SHAPIRO_MAX_N} of {n} rows (random_state={random_state})"
            name = f"coordinate_tests(shapiro) on its random subsample of {SHAPIRO_MAX_N} rows"
            n = SHAPIRO_MAX_N
        S = X.T.copy()  # one column per row, sorted in place
        S.sort(axis=1)
        _check_not_constant(S[:, -1] == S[:, 0], name)
        statistic, pvalues = _shapiro_wilk(S)
    elif test == "dagostino":
        T = X.T.copy()  # one column per row
        _check_not_constant(T.max(axis=1) == T.min(axis=1), name)
        statistic, pvalues = _dagostino_pearson(T)
    else:
        _check_not_constant((X == X[0]).all(axis=0), name)
        step = max(1, (1 << 22) // n)  # a few columns at a time: O(n) temporaries
        statistic = np.empty(d)
        for j in range(0, d, step):
            cols = X[:, j:j + step]
            z = np.sort((cols - cols.mean(axis=0)) / cols.std(axis=0, ddof=1), axis=0)
            statistic[j:j + step] = _anderson_darling(special.log_ndtr(z), special.log_ndtr(-z))
        pvalues = _anderson_normal_pvalue(statistic, n)
    adjusted = holm(pvalues.astype(np.float64))
    worst = int(np.argmin(pvalues))
    details = {"test": test, "statistics": statistic.tolist(), "pvalues": pvalues.tolist(),
               "adjusted_pvalues": adjusted.tolist(), "most_significant_column": worst}
    return TestResult("coordinates", float(statistic[worst]), float(adjusted.min()), "asymptotic", n, d,
                      details, note)


# ----------------------------------------------------------------------------------------------
# radius test


def _radius_statistic(X: np.ndarray, fitted: bool) -> float:
    """Anderson–Darling A² of the squared radii against their null law (see mahalanobis_radius_test)."""
    n, d = X.shape
    if fitted:
        Y = _whiten(X, "mahalanobis_radius_test", min_excess_rows=2)
        # unbiased-covariance distances d_i² = (n−1)/n ‖y_i‖²; n d_i²/(n−1)² = ‖y_i‖²/(n−1)
        u = np.sort(np.einsum("ij,ij->i", Y, Y) / (n - 1))
        cdf, sf = special.betainc(d / 2, (n - d - 1) / 2, u), special.betaincc(d / 2, (n - d - 1) / 2, u)
    else:
        r2 = 0.5 * np.sort(np.einsum("ij,ij->i", X, X))
        cdf, sf = special.gammainc(d / 2, r2), special.gammaincc(d / 2, r2)
    with np.errstate(divide="ignore"):  # a radius so extreme that F underflows: A² stays finite and huge
        log_cdf, log_sf = (np.maximum(np.log(v), _LOG_TINY)[:, None] for v in (cdf, sf))
    return float(_anderson_darling(log_cdf, log_sf)[0])


def mahalanobis_radius_test(Z: Any, target: Any = None, *, n_sim: int = N_SIM, random_state: RandomState = 0,
                            mc_max_n: int = MC_MAX_N) -> TestResult:
    r"""Squared Mahalanobis radii against their exact null law, Anderson–Darling statistic.

    With ``target`` N(μ, Σ) given: d_i² = (z_i − μ)ᵀ Σ⁻¹ (z_i − μ) are iid χ²_d
    under H0: Z ~ target (this tests the placement as well as the shape). With ``target=None`` the mean and
    covariance are estimated: with the unbiased S, n d_i²/(n − 1)² has the
    exact Beta(d/2, (n − d − 1)/2) law (Gnanadesikan & Kettenring 1972, Biometrics 28). The fitted radii
    are exchangeable but not independent (their sum is fixed), which makes the asymptotic KS/AD p-value
    far too conservative (0.004 rejection at α = 0.05), so both cases use a Monte Carlo p-value; the
    statistic's null depends on (n, d) only.

    Parameters
    ----------
    Z : array-like of shape (n, d)
        The sample, one row per point (at least 3).
    target : None | int | Gaussian | tuple, optional
        The Gaussian target (an int d for N(0, I_d), a :class:`gaussify.Gaussian` or a ``(mean, cov)`` pair);
        None tests against the fitted mean and covariance.
    n_sim : int, default N_SIM
        Simulated N(0, I) samples behind the Monte Carlo p-value.
    random_state : None | int | Generator, default 0
        Seeds the simulated null (an int one is cached in memory and on disk).
    mc_max_n : int, default MC_MAX_N
        Largest n the null is simulated at; larger samples reuse the null at this size (the note says so).

    Returns
    -------
    TestResult
        ``statistic, pvalue = result`` unpacks like SciPy's results; the details hold the null law and whether
        the radii were fitted.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.metrics import mahalanobis_radius_test
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.standard_normal((200, 2))
    >>> mahalanobis_radius_test(Z).pvalue > 0.05
    True

    Against N(0, I₂) a scaled sample fails, though its shape is Gaussian:

    >>> mahalanobis_radius_test(1.5 * Z, target=2).pvalue < 0.05
    True
    """
    mc = _monte_carlo(n_sim, random_state, mc_max_n)
    X = as_sample(Z, min_rows=3)
    n, d = X.shape
    fitted = target is None
    if not fitted:
        X = standardize_to_target(X, target)
    law = f"beta({d / 2:g}, {(n - d - 1) / 2:g}) of n d²/(n-1)²" if fitted else f"chi2({d}) of d²"
    return _result("mahalanobis_radius", _radius_statistic(X, fitted), (n, d),
                   {"law": law, "fitted": fitted, "statistic": "anderson-darling"}, mc, params=(fitted,))


# ----------------------------------------------------------------------------------------------
# all tests


@dataclass(frozen=True)
class _TestSpec:
    """One normality test: the one place it is declared (everything that lists the tests reads :data:`_TESTS`).

    ``name``: its key in :data:`TEST_NAMES`, in :func:`normality_tests` and in its results; ``label``: its name in
    reports; ``function``: the test, ``function(Z, **options) -> TestResult``; ``null``: the statistic whose null
    :func:`_result` simulates (None: the test has none); ``quadratic``: O(n²), so :func:`normality_tests` runs it on
    a subsample beyond ``max_exact`` rows; ``cubic``: O(n d³) (Mardia's third-moment tensor), so it runs on that
    subsample where that costs more than the O(m² d) pairwise route on m = ``max_exact`` rows (n d² > m²); ``fast``:
    one of :func:`~gaussify.metrics.evaluate`'s ``tests="fast"``
    (no simulated null, or a cheap one); ``renamed``: (option of :func:`normality_tests`, parameter of
    ``function``) pairs where the two names differ."""

    __test__ = False  # not a pytest test class

    name: str
    label: str
    function: Callable[..., TestResult]
    null: _Null | None = None
    quadratic: bool = False
    cubic: bool = False
    fast: bool = False
    renamed: tuple[tuple[str, str], ...] = ()

    def run(self, X: Any, options: dict[str, Any]) -> TestResult:
        """The test on ``X`` with those of :func:`normality_tests`' ``options`` that its function takes."""
        parameters = inspect.signature(self.function).parameters
        renamed = dict(self.renamed)
        return self.function(X, **{renamed.get(key, key): value for key, value in options.items()
                                   if renamed.get(key, key) in parameters})


_BHEP = _Null("bhep", lambda X, beta: _bhep_statistic(X, beta, BLOCK_SIZE))
_TESTS = (
    _TestSpec("mardia_skewness", "Mardia skewness", mardia_skewness,
              _Null("mardia_skewness", lambda X: _mardia_skewness_parts(X, "auto", BLOCK_SIZE)[0]), cubic=True,
              fast=True),
    _TestSpec("mardia_kurtosis", "Mardia kurtosis", mardia_kurtosis,
              _Null("mardia_kurtosis", lambda X: _mardia_kurtosis_parts(X)[0], two_sided=True), fast=True),
    _TestSpec("henze_zirkler", "Henze–Zirkler", henze_zirkler, _BHEP, quadratic=True, fast=True),
    _TestSpec("energy", "Energy (Székely–Rizzo)", energy_test,
              _Null("energy", lambda X: _energy_statistic(X, BLOCK_SIZE)), quadratic=True),
    _TestSpec("epps_pulley", "Epps–Pulley (BHEP)", epps_pulley, _BHEP, quadratic=True),
    _TestSpec("doornik_hansen", "Doornik–Hansen", doornik_hansen,
              _Null("doornik_hansen", lambda X: _doornik_hansen_parts(X)[0]), fast=True),
    _TestSpec("coordinates", "Per-coordinate (Holm)", coordinate_tests, fast=True,
              renamed=(("coordinate_test", "test"),)),
    _TestSpec("mahalanobis_radius", "Mahalanobis radius", mahalanobis_radius_test, _Null("radius", _radius_statistic),
              fast=True),
)
"""Every normality test, in the order :func:`normality_tests` runs them."""
_SPECS = {spec.name: spec for spec in _TESTS}
_NULLS = {spec.null.name: spec.null for spec in _TESTS if spec.null is not None}
TEST_NAMES = tuple(_SPECS)
"""The names of the tests of :func:`normality_tests`, in order."""


def normality_tests(Z: Any, *, target: Any = None, tests: str | Sequence[str] | None = None, max_exact: int = MAX_EXACT,
                    random_state: RandomState = 0, monte_carlo: bool = False, n_sim: int = N_SIM,
                    mc_max_n: int = MC_MAX_N, coordinate_test: str = "shapiro",
                    block_size: int = BLOCK_SIZE) -> dict[str, TestResult]:
    r"""Run the normality tests named in ``tests`` (default: all of :data:`TEST_NAMES`).

    Parameters
    ----------
    Z : array-like of shape (n, d)
        The sample, one row per point (at least 3).
    target : None | int | Gaussian | tuple, optional
        Used by the radius test only: given, the radii are taken w.r.t. the target, which tests placement too.
    tests : str or sequence of str, optional
        Names from :data:`TEST_NAMES` (default: all).
    max_exact : int, default MAX_EXACT
        The O(n²) statistics (Henze–Zirkler, energy, Epps–Pulley) use every row up to ``max_exact`` rows and a
        random subsample of ``max_exact`` rows beyond (the result's ``n`` and ``note`` say so); Mardia's skewness
        too where n d² > ``max_exact``² (its O(n d³) tensor would cost more).
    random_state : None | int | Generator, default 0
        Seeds that subsample and the Monte Carlo nulls.
    monte_carlo : bool, default False
        Give the tests that also have an asymptotic p-value (Mardia, Henze–Zirkler, Doornik–Hansen) their Monte
        Carlo p-value; energy, Epps–Pulley and the radius test always use it.
    n_sim : int, default N_SIM
        Simulated N(0, I) samples behind a Monte Carlo p-value.
    mc_max_n : int, default MC_MAX_N
        Largest n a null is simulated at.
    coordinate_test : str, default "shapiro"
        The ``test`` of :func:`coordinate_tests`.
    block_size : int, default BLOCK_SIZE
        Rows per side of a tile of the pairwise sums.

    Returns
    -------
    dict of str to TestResult
        One result per test, in the order of ``tests``.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.metrics import normality_tests
    >>> rng = np.random.default_rng(0)
    >>> results = normality_tests(rng.uniform(-1.0, 1.0, (200, 2)), tests=["henze_zirkler", "mardia_kurtosis"])
    >>> {name: result.pvalue < 0.05 for name, result in results.items()}
    {'henze_zirkler': True, 'mardia_kurtosis': True}
    """
    names = TEST_NAMES if tests is None else tuple([tests] if isinstance(tests, str) else tests)
    unknown = [name for name in names if name not in TEST_NAMES]
    if unknown:
        raise ValueError(f"unknown test(s) {unknown}; choose from {list(TEST_NAMES)}")
    max_exact = check_int(max_exact, "max_exact", minimum=3)
    check_int(block_size, "block_size")
    check_bool(monte_carlo, "monte_carlo")
    _monte_carlo(n_sim, random_state, mc_max_n)
    rng = check_random_state(random_state)
    X = as_sample(Z, min_rows=3)
    n, d = X.shape
    options = {"target": target, "monte_carlo": monte_carlo, "n_sim": n_sim, "random_state": random_state,
               "mc_max_n": mc_max_n, "coordinate_test": coordinate_test, "block_size": block_size}
    specs = [_SPECS[name] for name in names]
    on_subsample = {spec.name for spec in specs
                    if n > max_exact and (spec.quadratic or (spec.cubic and n * d * d > max_exact**2))}
    subsample = X[np.sort(rng.choice(n, max_exact, replace=False))] if on_subsample else None
    results = {}
    for spec in specs:
        if spec.name in on_subsample:
            result = spec.run(subsample, options)
            cost = "O(n²)" if spec.quadratic else f"O(n d³) at d = {d}"
            note = (f"{cost} statistic on a random subsample of {max_exact} of {n} rows "
                    f"(max_exact={max_exact}, random_state={random_state})")
            result = replace(result, note=_join(note, result.note))
        else:
            result = spec.run(X, options)
        results[spec.name] = result
    return results
