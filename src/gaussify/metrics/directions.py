r"""Where the non-Gaussianity is: placement by direction, the most non-Gaussian directions, and the radial part.

The KL to the target splits exactly into shape and placement (:mod:`gaussify.metrics.divergence`); this module says
*where* each lives, so that a user knows what to fix.

- **Placement by direction** (:func:`placement_directions`). In the target's standard coordinates
  y = L⁻¹(z − μ) (target N(μ, LLᵀ)) the fitted Gaussian is N(m, Σ̂), Σ̂ = Σᵢ λᵢ vᵢvᵢᵀ, and its KL to N(0, I)
  splits exactly over the eigen-directions vᵢ:

  .. math::
      KL(N(m, \hat\Sigma) \| N(0, I)) = \tfrac12 \sum_i (\lambda_i - 1 - \log\lambda_i)
      + \tfrac12 \|m\|^2 = \sum_i \Big[\tfrac12(\lambda_i - 1 - \log\lambda_i) + \tfrac12 (v_i^\top m)^2\Big].

  A collapsed direction (λ ≪ 1) shows by name and size.
- **The most non-Gaussian directions** (:func:`non_gaussian_directions`): symmetric FastICA (Hyvärinen 1999) on the
  self-whitened sample, fitted on one half of the rows; each direction's 1-D negentropy J(bᵀw) is measured on the
  other half with the m-spacing estimator (van Es 1992), so a direction chosen by the fit is measured as a fixed one.
  For whitened w and an orthonormal basis, J(w) = Σᵢ J(bᵢᵀw) + I(b₁ᵀw, …, b_dᵀw) ≥ Σᵢ J(bᵢᵀw) (Comon 1994).
- **The radial part** (:func:`radial_part`): KL of the law of the squared radius r² = ‖w‖² of the *self-whitened*
  rows to its law under a Gaussian (χ²_d as n → ∞). r² is a function of w, so it is at most the negentropy; it is
  all of it for an elliptical law such as Student's t. (The radial lower bound of :func:`~gaussify.metrics.radial_kl`
  uses target-standardised rows instead, which carry part of the placement.)

:func:`where_non_gaussian` gathers the three; :func:`~gaussify.metrics.evaluate` puts them in its report.
NumPy/SciPy only.

References: Comon (1994), Signal Processing 36, "Independent component analysis, a new concept?"; Hyvärinen (1999),
IEEE TNN 10, "Fast and robust fixed-point algorithms for independent component analysis"; van Es (1992), Scand. J.
Statist. 19 (m-spacing entropy); Gnanadesikan & Kettenring (1972), Biometrics 28 (law of fitted Mahalanobis
distances).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.special import ndtri

from .._validation import TargetFrame, as_sample, check_int, check_random_state
from ._common import format_number
from .divergence import _halves, _negentropy_1d, _radial_kl_columns
from .estimators.base import whiten_sample
from .gaussianization import log_squared_radius, symmetric_fastica
from .normality import _blas_controller

__all__ = ["PlacementDirections", "PursuitDirections", "RadialPart", "WhereNonGaussian", "placement_directions",
           "non_gaussian_directions", "radial_part", "where_non_gaussian"]

COLLAPSED_VARIANCE = 0.25
"""Below this variance (sd below half the target's) a placement direction is labelled "collapsed", between it and 1
"shrunk" (see :class:`PlacementDirections`)."""

MAX_FIT = 10_000
"""Rows the pursuit's FastICA basis is fitted on at most (its cost is linear in them and quadratic in d)."""

_NOISE_SEED = 17  # the noise levels are fixed draws per size, independent of random_state
_NOISE_COLUMNS = 200_000  # normal values behind a noise level (at least 16 columns of n rows)
_FAMILY_LEVEL = 0.05  # a pursued direction is "above noise" when it exceeds the Bonferroni level over d directions


def _loadings_text(vector: np.ndarray, terms: int = 3) -> str:
    """The largest coordinates of a unit vector as "+0.71 z3 −0.70 z7 …" (a name a user can look up)."""
    order = np.argsort(-np.abs(vector))[:terms]
    text = " ".join(f"{'−' if vector[j] < 0 else '+'}{abs(vector[j]):.2f} z{j}" for j in order)
    return text + (" …" if len(vector) > terms else "")


def _largest_positive(A: np.ndarray) -> np.ndarray:
    """±1 per column of A: the sign that makes the column's largest coordinate positive (a fixed orientation)."""
    signs = np.sign(A[np.abs(A).argmax(axis=0), np.arange(A.shape[1])])
    return np.where(signs == 0, 1.0, signs)


# --------------------------------------------------------------------------------------------- placement
@dataclass(frozen=True)
class PlacementDirections:
    r"""The placement KL split over the eigen-directions of the target-standardised covariance; built by
    :func:`placement_directions`.

    Entry i (sorted by ``kl``, largest first) is the direction vᵢ with variance λᵢ = vᵢᵀΣ̂vᵢ and mean shift
    mᵢ = vᵢᵀm in the target's standard coordinates, and its share ½(λᵢ − 1 − log λᵢ) + ½mᵢ² of the placement.
    The shares add up to ``total``, the plug-in KL(N(m, Σ̂) ‖ N(0, I)) (no bias correction). Where eigenvalues
    are nearly equal (all near 1 when only the mean is off) the eigenbasis among them is arbitrary, and a shift
    spreads over those directions: its total ½‖m‖² is still exact.

    Attributes
    ----------
    variance : numpy.ndarray of shape (d,)
        λᵢ (1 under the target).
    mean_shift : numpy.ndarray of shape (d,)
        mᵢ (0 under the target).
    kl : numpy.ndarray of shape (d,)
        The share of each direction, nats.
    labels : tuple of str
        "near target" (a share an N(0, I) sample reaches by chance: λ within the Marchenko–Pastur edges
        (1 ± √(d/n))² widened by 3√(2/n), and |mᵢ| < 3/√n), else "shifted" (the mean shift carries more of the
        share than the variance), "collapsed" (λ < :data:`COLLAPSED_VARIANCE`), "shrunk" (λ < 1) or "inflated" (λ > 1).
    directions : numpy.ndarray of shape (d, d)
        Row i: the unit vector L vᵢ / ‖L vᵢ‖ in the sample's own coordinates, along which z = μ + L y moves when y
        moves along vᵢ (vᵢ itself for an N(0, I) target).
    projections : numpy.ndarray of shape (d, d)
        Row i: aᵢ = L⁻ᵀvᵢ, so that tᵢ = aᵢᵀ(z − μ) is the coordinate along vᵢ (N(0, 1) under the target; mean mᵢ,
        variance λᵢ in the sample).
    total : float
        Σ ``kl``.
    n : int
        Rows of the sample.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.metrics import placement_directions
    >>> Z = np.random.default_rng(0).standard_normal((2000, 3)) * [1.0, 0.1, 1.0]
    >>> split = placement_directions(Z)
    >>> split.labels[0], round(float(split.variance[0]), 2), np.abs(split.directions[0]).round(2).tolist()
    ('collapsed', 0.01, [0.0, 1.0, 0.0])
    """

    variance: np.ndarray
    mean_shift: np.ndarray
    kl: np.ndarray
    labels: tuple[str, ...]
    directions: np.ndarray = field(repr=False)
    projections: np.ndarray = field(repr=False)
    total: float
    n: int

    def scores(self, Z: Any, target: Any = None) -> np.ndarray:
        """The coordinates tᵢ = aᵢᵀ(z − μ) of each row of ``Z`` along every direction, shape (n, d): what a
        histogram of direction i should show against N(0, 1)."""
        X = as_sample(Z)
        mean = TargetFrame(target, X.shape[1]).mean
        return (X - mean) @ self.projections.T

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        """JSON-ready: ``total`` and the first ``top`` directions (all by default), each with its vector."""
        k = len(self.kl) if top is None else min(check_int(top, "top"), len(self.kl))
        return {"total": self.total, "n": self.n, "d": len(self.kl), "directions": [
            {"rank": i + 1, "label": self.labels[i], "variance": float(self.variance[i]),
             "mean_shift": float(self.mean_shift[i]), "kl": float(self.kl[i]),
             "direction": self.directions[i].tolist()} for i in range(k)]}


def _noise_share(n: int, d: int) -> float:
    """The share a direction of an N(0, I) sample reaches by chance: variance at an edge (1 ± √(d/n))² of the
    Marchenko–Pastur law moved out by 3 sd √(2/n) of one sample variance, or a mean shift of 3/√n (3 standard
    errors), whichever is larger."""
    edges = np.array([(1.0 + math.sqrt(d / n)) ** 2 + 3.0 * math.sqrt(2.0 / n),
                      max((1.0 - math.sqrt(d / n)) ** 2 - 3.0 * math.sqrt(2.0 / n), 1e-3)])
    return float(max((0.5 * (edges - 1.0 - np.log(edges))).max(), 4.5 / n))


def _label(variance: float, variance_part: float, mean_part: float, noise: float) -> str:
    if variance_part + mean_part <= noise:
        return "near target"
    if mean_part > variance_part:
        return "shifted"
    if variance < COLLAPSED_VARIANCE:
        return "collapsed"
    return "shrunk" if variance < 1.0 else "inflated"


def _placement_split(mean_x: np.ndarray, cov_x: np.ndarray, n: int, target: Any) -> PlacementDirections:
    d = len(mean_x)
    frame = TargetFrame(target, d)
    m = frame.inverse @ (mean_x - frame.mean)
    cov_y = frame.inverse @ cov_x @ frame.inverse.T
    lam, V = np.linalg.eigh(0.5 * (cov_y + cov_y.T))
    if lam[0] <= 0:
        raise ValueError("the sample covariance is singular in the target's coordinates (a collapsed direction of "
                         "variance 0): drop redundant columns or reduce the dimension first")
    shift = V.T @ m
    variance_part = 0.5 * (lam - 1.0 - np.log(lam))
    mean_part = 0.5 * shift**2
    kl = variance_part + mean_part
    order = np.argsort(-kl, kind="stable")
    signs = _largest_positive(frame.chol @ V)  # the largest coordinate of each L vᵢ positive
    V, shift = V * signs, shift * signs
    projections = (frame.inverse.T @ V).T[order]  # aᵢ = L⁻ᵀvᵢ
    directions = (frame.chol @ V).T[order]
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    noise = _noise_share(n, d)
    labels = tuple(_label(float(lam[i]), float(variance_part[i]), float(mean_part[i]), noise) for i in order)
    return PlacementDirections(variance=lam[order], mean_shift=shift[order], kl=kl[order], labels=labels,
                               directions=directions, projections=projections, total=float(kl.sum()), n=n)


def placement_directions(Z: Any, target: Any = None) -> PlacementDirections:
    r"""Split the placement KL(N(μ̂, Σ̂) ‖ target) over the eigen-directions of the covariance against the target.

    In the target's standard coordinates y = L⁻¹(z − μ) (target N(μ, LLᵀ)) the sample has mean m and unbiased
    covariance Σ̂ = Σᵢ λᵢ vᵢvᵢᵀ, and

    .. math::
        KL(N(m, \hat\Sigma) \| N(0, I)) = \sum_i \Big[\tfrac12(\lambda_i - 1 - \log\lambda_i)
        + \tfrac12 (v_i^\top m)^2\Big]

    exactly (the trace, log-determinant and ‖m‖² all split over an orthonormal eigenbasis). The λᵢ are the
    eigenvalues of Σ⁻¹Σ̂, whatever square root L of Σ is used. The shares add up to
    :func:`~gaussify.metrics.placement_kl` with ``bias_correct=False``; the bias-corrected value subtracts
    about d(d+3)/(4n) in all.

    Parameters
    ----------
    Z : array-like of shape (n, d)
        The sample, one row per point (at least 2; a covariance that is not singular).
    target : None | int | Gaussian | tuple, optional
        The Gaussian target: None for N(0, I), an int d for N(0, I_d), a :class:`gaussify.Gaussian` or a
        ``(mean, cov)`` pair.

    Returns
    -------
    PlacementDirections
        The directions sorted by their share of the KL, with variance, mean shift, share and label.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.metrics import placement_directions, placement_kl
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.standard_normal((1000, 4)) @ np.diag([1.0, 1.0, 0.2, 1.0]) + [0.0, 0.0, 0.0, 1.5]
    >>> split = placement_directions(Z)
    >>> split.labels[:2], bool(np.isclose(split.total, placement_kl(Z, bias_correct=False)))
    (('shifted', 'collapsed'), True)
    """
    X = as_sample(Z)
    n, d = X.shape
    mean = X.mean(axis=0)
    Xc = X - mean
    return _placement_split(mean, Xc.T @ Xc / (n - 1), n, target)


# --------------------------------------------------------------------------------------------- pursuit
@dataclass(frozen=True)
class PursuitDirections:
    r"""The most non-Gaussian directions of a sample, by held-out 1-D negentropy; built by
    :func:`non_gaussian_directions`.

    Attributes
    ----------
    negentropy : numpy.ndarray of shape (k,)
        J(bᵢᵀw) of each direction, measured on the held-out rows (nats, largest first).
    directions : numpy.ndarray of shape (k, d)
        Row i: the unit vector L̂bᵢ / ‖L̂bᵢ‖ in the sample's own coordinates (Ŝ = L̂L̂ᵀ the sample covariance), along
        which z moves when the whitened w moves along bᵢ.
    projections : numpy.ndarray of shape (k, d)
        Row i: aᵢ = L̂⁻ᵀbᵢ, so that aᵢᵀ(z − z̄) is the whitened coordinate along bᵢ (unit variance).
    held_out : numpy.ndarray of shape (n_eval, k)
        The held-out rows' coordinates along each direction (for histograms and QQ plots).
    noise_sd : float
        Standard deviation of one 1-D negentropy estimate on n_eval Gaussian values: the values' noise level.
    threshold : float
        The largest of d such estimates on a Gaussian sample exceeds this with probability about 5%
        (Bonferroni, normal approximation): directions above it are non-Gaussian beyond the noise.
    total : float
        Σ over all d directions of the held-out negentropies (≤ the negentropy, Comon 1994, up to noise).
    n_fit : int
        Rows the basis was fitted on.
    d : int
        The dimension.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.metrics import non_gaussian_directions
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.standard_normal((2000, 4))
    >>> Z[:, 2] = rng.choice([-1.0, 1.0], 2000) + 0.3 * rng.standard_normal(2000)  # bimodal
    >>> found = non_gaussian_directions(Z, top=2)
    >>> int(np.abs(found.directions[0]).argmax()), bool(found.negentropy[0] > found.threshold > found.negentropy[1])
    (2, True)
    """

    negentropy: np.ndarray
    directions: np.ndarray = field(repr=False)
    projections: np.ndarray = field(repr=False)
    held_out: np.ndarray = field(repr=False)
    noise_sd: float
    threshold: float
    total: float
    n_fit: int
    d: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the noise levels and each direction with its held-out negentropy and vector."""
        return {"d": self.d, "n_fit": self.n_fit, "n_held_out": int(self.held_out.shape[0]),
                "total": self.total, "noise_sd": self.noise_sd, "threshold": self.threshold,
                "directions": [{"rank": i + 1, "negentropy": float(j), "above_noise": bool(j > self.threshold),
                                "direction": self.directions[i].tolist()} for i, j in enumerate(self.negentropy)]}


def _fastica_gauss(W: np.ndarray, rng: np.random.Generator, steps: int) -> np.ndarray:
    """Orthonormal d×d basis (columns) from symmetric FastICA on whitened rows W with the Gaussian contrast
    G(y) = −exp(−y²)/2 (Hyvärinen 1999), from a random basis.

    Chosen over log-cosh by measurement: with 2,000 fit rows of 4 planted directions among 32 (n = 4,000, seeds
    0–2), the top 4 held-out directions' principal cosines to the planted span were at least 0.97 (bimodal), 0.94
    (Laplace) and 0.95 (uniform) with this contrast, and as low as 0.002, 0.16 and 0.02 with log-cosh, whose
    symmetric iteration wandered among the 28 Gaussian directions."""
    d = W.shape[1]
    return symmetric_fastica(W, np.linalg.qr(rng.standard_normal((d, d)))[0], steps, "gauss", 1e-8)


@lru_cache(maxsize=64)
def _negentropy_noise(n: int) -> float:
    """sd of :func:`_negentropy_1d` on n standard normal values (fixed draws, cached per n)."""
    cols = max(16, min(400, _NOISE_COLUMNS // n))
    G = np.random.default_rng([_NOISE_SEED, n]).standard_normal((n, cols))
    return float(_negentropy_1d(G).std(ddof=1))


def non_gaussian_directions(Z: Any, *, top: int = 8, max_fit: int = MAX_FIT, max_iter: int = 100,
                            random_state: Any = 0) -> PursuitDirections:
    r"""The most non-Gaussian directions of the sample, by 1-D negentropy measured on held-out rows.

    The rows are whitened with their own mean and covariance, w = L̂⁻¹(z − z̄), and split at random in halves.
    Symmetric FastICA (Gaussian contrast −exp(−y²)/2; Hyvärinen 1999) fits an orthonormal basis b₁, …, b_d on one
    half (at most ``max_fit`` rows); on the other half each bᵢᵀw is scored by its 1-D negentropy
    J(bᵢᵀw) = H(N(0, 1)) − H(bᵢᵀw / sd) with the m-spacing entropy estimator, centred on Gaussian samples of the same
    size. A direction chosen on some rows and measured on others is as unbiased as a fixed one, so only the
    ranking (the largest of d values) carries a selection bias, of the order of ``noise_sd`` times
    Φ⁻¹(1 − 1/d); ``threshold`` says what a Gaussian sample's largest value stays below. For whitened w,
    Σᵢ J(bᵢᵀw) ≤ J(w), the negentropy (Comon 1994): the sum over all d directions is ``total``.

    Parameters
    ----------
    Z : array-like of shape (n, d)
        The sample, one row per point (n ≥ 2(d + 1) and at least 10, so that each half has more rows than columns).
    top : int, default 8
        Directions kept (at most d), largest held-out negentropy first.
    max_fit : int, default MAX_FIT
        Rows the basis is fitted on at most: at 10,000 rows and d = 256 the fit takes seconds.
    max_iter : int, default 100
        FastICA fixed-point iterations at most.
    random_state : None | int | Generator, default 0
        Seeds the split and FastICA's starting basis.

    Returns
    -------
    PursuitDirections
        The ``top`` directions with their held-out negentropies, vectors and held-out coordinates.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.metrics import non_gaussian_directions
    >>> rng = np.random.default_rng(1)
    >>> Z = rng.standard_normal((4000, 3))
    >>> Z[:, 0] = rng.uniform(-1.7, 1.7, 4000)  # a uniform coordinate: J = ½ log(πe/6) ≈ 0.18
    >>> found = non_gaussian_directions(Z, top=3)
    >>> found.negentropy.round(2).tolist()[0], int(np.abs(found.directions[0]).argmax())
    (0.17, 0)
    """
    X = as_sample(Z)
    top = check_int(top, "top")
    max_fit = check_int(max_fit, "max_fit", minimum=2)
    max_iter = check_int(max_iter, "max_iter")
    rng = check_random_state(random_state)
    n, d = X.shape
    if n < max(10, 2 * (d + 1)):
        raise ValueError(f"the pursuit fits on one half of the rows and measures on the other: it needs "
                         f"n >= max(10, 2(d + 1)) rows, got n={n}, d={d}")
    W, _, L = whiten_sample(X)
    return _pursuit(W, L, top, max_fit, max_iter, rng)


def _pursuit(W: np.ndarray, L: np.ndarray, top: int, max_fit: int, max_iter: int,
             rng: np.random.Generator) -> PursuitDirections:
    """:func:`non_gaussian_directions` of the self-whitened rows W = L⁻¹(x − x̄)."""
    n, d = W.shape
    fit, held = _halves(n, max_fit, rng)[0]
    with _blas_controller().limit(limits=1, user_api="blas"):  # small products: extra threads only spin
        B = _fastica_gauss(W[fit], rng, max_iter)
        P = W[held] @ B
    J = _negentropy_1d(P)
    order = np.argsort(-J, kind="stable")[:min(top, d)]
    D = L @ B[:, order]
    signs = _largest_positive(D)
    directions = (D * signs).T / np.linalg.norm(D, axis=0)[:, None]
    projections = np.linalg.solve(L.T, B[:, order] * signs).T
    noise = _negentropy_noise(len(held))
    return PursuitDirections(negentropy=J[order], directions=directions, projections=projections,
                             held_out=P[:, order] * signs, noise_sd=noise,
                             threshold=float(noise * ndtri(1.0 - _FAMILY_LEVEL / d)), total=float(J.sum()),
                             n_fit=len(fit), d=d)


# --------------------------------------------------------------------------------------------- radial
@dataclass(frozen=True)
class RadialPart:
    r"""KL of the squared radius of the self-whitened rows to its law under a Gaussian; built by
    :func:`radial_part`.

    Attributes
    ----------
    kl : float
        The estimate in nats, centred so that its mean on Gaussian samples of the same n and d is 0 (it can be
        slightly negative).
    noise_sd : float
        Its standard deviation on Gaussian samples of the same n and d.
    n : int
        Rows of the sample.
    d : int
        The dimension.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.metrics import radial_part
    >>> part = radial_part(np.random.default_rng(0).standard_normal((1000, 4)))
    >>> abs(part.kl) < 4 * part.noise_sd
    True
    """

    kl: float
    noise_sd: float
    n: int
    d: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {"kl": self.kl, "noise_sd": self.noise_sd, "n": self.n, "d": self.d}


_RADIAL_NULL_POINTS = 2_000_000  # Beta draws behind the radial part's centring (at least 32 samples of n rows)


@lru_cache(maxsize=64)
def _radial_null(n: int, d: int) -> tuple[float, float]:
    """(mean, sd) of the uncentred radial estimate on Gaussian samples of n rows, d columns. Their self-whitened
    squared radii are exactly (n − 1)²/n · Beta(d/2, (n − d − 1)/2) each (Gnanadesikan & Kettenring 1972); drawn
    independently here (their weak dependence, Σ r² = (n − 1)d, is ignored). Fixed draws, cached per (n, d)."""
    draws = max(32, min(400, _RADIAL_NULL_POINTS // n))
    rng = np.random.default_rng([_NOISE_SEED, n, d])
    r2 = (n - 1) ** 2 / n * rng.beta(d / 2.0, (n - d - 1) / 2.0, size=(n, draws))
    values = _radial_kl_columns(np.log(r2), d)
    return float(values.mean()), float(values.std(ddof=1))


def radial_part(Z: Any) -> RadialPart:
    r"""KL of the radius of the self-whitened rows to its Gaussian law: the elliptical part of the negentropy.

    With w = L̂⁻¹(z − z̄) (the sample's own mean and unbiased covariance Ŝ = L̂L̂ᵀ) and T = log ‖w‖²,
    KL̂ = −Ĥ(T) − mean log q(Tᵢ) + b − c, with Ĥ the m-spacing entropy estimator, q the density of log χ²_d,
    b the estimator's bias on exact log χ²_d samples, and c the mean of the result on Gaussian samples of the same
    n and d, whose self-whitened ‖w‖² follow (n − 1)²/n · Beta(d/2, (n − d − 1)/2) rather than χ²_d
    (Gnanadesikan & Kettenring 1972). The radius is a function of w, so its KL is at most the negentropy
    J (data processing); it is the whole negentropy for an elliptical law (Student's t) and about 0 for a law
    whose non-Gaussianity keeps the radius law (a few bimodal directions among many). Unlike
    :func:`~gaussify.metrics.radial_kl` it carries no placement: adding it to the placement counts nothing twice.

    Parameters
    ----------
    Z : array-like of shape (n, d)
        The sample, one row per point (n > d + 1, at least 8; a covariance that is not singular).

    Returns
    -------
    RadialPart
        The estimate and its noise level on Gaussian samples.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.metrics import radial_part
    >>> rng = np.random.default_rng(0)
    >>> t = rng.standard_normal((4000, 8)) / np.sqrt(rng.chisquare(5, (4000, 1)) / 5)  # Student t, ν = 5
    >>> part = radial_part(t)
    >>> bool(part.kl > 10 * part.noise_sd)
    True
    """
    X = as_sample(Z, min_rows=8)
    n, d = X.shape
    if n <= d + 1:
        raise ValueError(f"the radial part needs n > d + 1 rows, got n={n}, d={d}")
    return _radial(whiten_sample(X)[0])


def _radial(W: np.ndarray) -> RadialPart:
    """:func:`radial_part` of the self-whitened rows W."""
    n, d = W.shape
    T = log_squared_radius(W)
    mean, sd = _radial_null(n, d)
    return RadialPart(kl=float(_radial_kl_columns(T[:, None], d)[0]) - mean, noise_sd=sd, n=n, d=d)


# --------------------------------------------------------------------------------------------- all three
@dataclass(frozen=True)
class WhereNonGaussian:
    r"""Where a sample's non-Gaussianity is: placement by direction, the pursued directions, the radial part;
    built by :func:`where_non_gaussian`.

    Attributes
    ----------
    placement : PlacementDirections
        The placement KL split over eigen-directions of the covariance against the target.
    pursuit : PursuitDirections or None
        The most non-Gaussian directions (None when the sample has too few rows for a held-out half).
    radial : RadialPart or None
        The radial part of the negentropy (None when n ≤ d + 1).
    notes : tuple of str
        Why a part is missing, or how it was subsampled.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.metrics import where_non_gaussian
    >>> where = where_non_gaussian(np.random.default_rng(0).standard_normal((500, 3)))
    >>> sorted(where.to_dict())
    ['notes', 'placement', 'pursuit', 'radial']
    """

    placement: PlacementDirections
    pursuit: PursuitDirections | None
    radial: RadialPart | None
    notes: tuple[str, ...] = ()

    def to_dict(self, top: int = 5) -> dict[str, Any]:
        """JSON-ready: the first ``top`` placement directions, the pursued directions, the radial part."""
        return {"placement": self.placement.to_dict(top),
                "pursuit": None if self.pursuit is None else self.pursuit.to_dict(),
                "radial": None if self.radial is None else self.radial.to_dict(), "notes": list(self.notes)}

    def rows(self, top: int = 5) -> list[tuple[str, str, str]]:
        """(what, size, meaning) rows for a report: the ``top`` placement directions, the ``top`` pursued
        directions, the radial part."""
        top = check_int(top, "top")
        p = self.placement
        rows = []
        for i in range(min(top, len(p.kl))):
            rows.append((f"placement direction {i + 1}: {p.labels[i]}", format_number(float(p.kl[i])),
                         f"variance {format_number(float(p.variance[i]), 3)}, mean shift "
                         f"{format_number(float(p.mean_shift[i]), 3)}; along {_loadings_text(p.directions[i])}"))
        if self.pursuit is not None:
            q = self.pursuit
            for i in range(min(top, len(q.negentropy))):
                status = "above" if q.negentropy[i] > q.threshold else "within"
                rows.append((f"pursued direction {i + 1}", format_number(float(q.negentropy[i])),
                             f"held-out 1-D negentropy ({status} noise: Gaussian max ≈ "
                             f"{format_number(q.threshold, 3)}); along {_loadings_text(q.directions[i])}"))
        if self.radial is not None:
            rows.append(("radial part", format_number(self.radial.kl),
                         f"KL of the self-whitened radius to its Gaussian law (≤ negentropy; noise sd "
                         f"{format_number(self.radial.noise_sd, 3)})"))
        return rows


def where_non_gaussian(Z: Any, target: Any = None, *, top: int = 8, max_fit: int = MAX_FIT, max_iter: int = 100,
                       random_state: Any = 0) -> WhereNonGaussian:
    r"""Where the sample departs from the target: :func:`placement_directions`, :func:`non_gaussian_directions`
    and :func:`radial_part` in one call.

    The placement directions split KL(N(μ̂, Σ̂) ‖ target) exactly; the pursued directions and the radial part are
    parts of the negentropy J (each ≤ J): Σᵢ J(bᵢᵀw) + I = J for the pursued basis, and the radius's KL is the part
    an elliptical law carries. A part that needs more rows than the sample has is None, with a note.

    Parameters
    ----------
    Z : array-like of shape (n, d)
        The sample, one row per point (more rows than columns; a covariance that is not singular).
    target : None | int | Gaussian | tuple, optional
        The Gaussian target: None for N(0, I), an int d for N(0, I_d), a :class:`gaussify.Gaussian` or a
        ``(mean, cov)`` pair.
    top : int, default 8
        Pursued directions kept.
    max_fit : int, default MAX_FIT
        Rows the pursuit's basis is fitted on at most.
    max_iter : int, default 100
        FastICA iterations at most.
    random_state : None | int | Generator, default 0
        Seeds the pursuit.

    Returns
    -------
    WhereNonGaussian
        The three parts.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.metrics import where_non_gaussian
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.standard_normal((2000, 6)) * [1, 1, 1, 1, 1, 0.05]
    >>> Z[:, 0] = np.sign(Z[:, 0]) + 0.3 * Z[:, 0]  # bimodal
    >>> where = where_non_gaussian(Z)
    >>> where.placement.labels[0], int(np.abs(where.placement.directions[0]).argmax())
    ('collapsed', 5)
    >>> int(np.abs(where.pursuit.directions[0]).argmax())
    0
    """
    X = as_sample(Z)
    top = check_int(top, "top")
    max_fit = check_int(max_fit, "max_fit", minimum=2)
    max_iter = check_int(max_iter, "max_iter")
    rng = check_random_state(random_state)
    n, d = X.shape
    notes = []
    W, mean, L = whiten_sample(X)  # validates the covariance (n > d, no constant or collinear columns)
    placement = _placement_split(mean, L @ L.T, n, target)
    pursuit = radial = None
    if n >= max(10, 2 * (d + 1)):
        pursuit = _pursuit(W, L, top, max_fit, max_iter, rng)
        if n // 2 > max_fit:
            notes.append(f"the pursued directions were fitted on {max_fit} of the {n // 2} rows of one half; their "
                         f"negentropies are measured on the other {n - n // 2} rows")
    else:
        notes.append(f"no pursued directions: fitting on one half and measuring on the other needs n >= "
                     f"{max(10, 2 * (d + 1))} rows, got {n}")
    if n > d + 1 and n >= 8:
        radial = _radial(W)
    else:
        notes.append(f"no radial part: it needs n > d + 1 rows, got {n}")
    return WhereNonGaussian(placement=placement, pursuit=pursuit, radial=radial, notes=tuple(notes))
