"""Post-hoc Gaussianization baselines as scikit-learn transformers (NumPy only).

Each baseline is fitted on a sample and then maps new points; each is a bijection, so
``inverse_transform`` undoes ``transform`` to floating-point accuracy (everywhere in R^d, except for
PCAWhitening of a rank-deficient sample: on the sample's affine hull, see below).

- :class:`PCAWhitening` matches the first two moments: z = Λ^{-1/2} Vᵀ (x − μ).
- :class:`QuantileGaussianizer` matches every one-dimensional marginal: z_j = Φ⁻¹(F̂_j(x_j)).
- :class:`RBIG` alternates the marginal step with rotations until the joint law is close to
  N(0, I) (Laparra, Camps-Valls & Malo 2011, "Iterative Gaussianization: from ICA to random
  rotations", IEEE Trans. Neural Networks 22(4)).

Only RBIG targets the joint distribution: whitening leaves any non-Gaussian shape untouched
(a whitened uniform square is still a square), and the quantile transform leaves the dependence
between coordinates (the copula) untouched (a ring keeps its hole).

Degenerate inputs (scikit-learn's digits have three constant pixels) are fitted, with a warning.
:class:`QuantileGaussianizer` and :class:`RBIG` pass constant columns through unchanged (the identity map;
their indices are in ``constant_features_``), so they stay bijections of R^d. :class:`PCAWhitening` drops
the directions without variance (numerical rank r < d: constant or collinear columns, or n ≤ d): they are
known only up to rounding, which whitening would blow up to unit variance. Its output has
r = ``n_components_`` columns, a bijection between the training sample's affine hull and R^r.

Output column names (``get_feature_names_out``, so ``set_output(transform="pandas")`` works) follow
scikit-learn: the input's names for the coordinatewise :class:`QuantileGaussianizer` (as its
``QuantileTransformer``), ``pcawhitening0``, … and ``rbig0``, … for the maps that mix coordinates.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import numpy as np
from scipy.special import ndtr, ndtri
from scipy.stats import ortho_group
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ._validation import InvalidParameterError, as_sample, check_int, check_random_state, check_real, is_real_number
from .model_folder import (CONFIG_FILE, RBIG_FORMAT, RBIG_WEIGHTS, check_model_folder, read_model_config,
                           write_model_folder)

__all__ = ["PCAWhitening", "QuantileGaussianizer", "RBIG", "make_baseline", "BASELINES"]


def _piecewise_linear(t: np.ndarray, knots: np.ndarray, values: np.ndarray, tail_slope: float) -> np.ndarray:
    """Linear interpolation through (knots, values), continued beyond both ends with slope ``tail_slope``."""
    out = np.interp(t, knots, values)
    out = np.where(t < knots[0], values[0] + tail_slope * (t - knots[0]), out)
    return np.where(t > knots[-1], values[-1] + tail_slope * (t - knots[-1]), out)


@dataclass(frozen=True)
class _MarginalMap:
    """Monotone map x ↦ Φ⁻¹(F̂(x)) of one coordinate, piecewise linear with linear tails.

    The knots are ``n_knots`` empirical quantiles (the sample minimum and maximum included). With
    ``smoothing == 0`` F̂ at a knot v is the mid-rank empirical CDF (#{x_i < v} + ½ #{x_i = v}) / n,
    strictly inside (0, 1) and tie-aware. With ``smoothing > 0`` F̂ is the CDF of a variance-preserving
    Gaussian kernel density estimate (Jones 1991): kernels of width a·h centred at m + a(x_i − m),
    a = (1 + h²/s²)^{-1/2}, h = smoothing · 0.9 min(s, IQR/1.349) n^{-1/5} (Silverman's rule), so the
    estimate keeps the sample mean m and variance s² and the output keeps unit variance layer after
    layer. Beyond the sample range the map continues with slope 1/s, the slope of the map between
    N(m, s²) and N(0, 1): new points outside the range keep their order and are neither clipped nor
    thrown out (the slope of the outermost segment can be arbitrarily steep). The map is a strictly
    increasing bijection of R; its inverse swaps the roles of x and z.
    """

    x: np.ndarray
    z: np.ndarray
    tail_slope: float

    @classmethod
    def fit(cls, column: np.ndarray, n_knots: int, smoothing: float, index: int) -> _MarginalMap:
        xs = np.sort(column)
        n = xs.size
        scale = xs.std(ddof=1)
        if not xs[0] < xs[-1]:
            raise ValueError(f"column {index} is constant; a marginal Gaussianization needs at least two "
                             "distinct values per column")
        knots = np.unique(np.quantile(xs, np.linspace(0.0, 1.0, min(n, n_knots))))
        if smoothing == 0:
            cdf = (np.searchsorted(xs, knots, "left") + np.searchsorted(xs, knots, "right")) / (2.0 * n)
        else:
            cdf = _kde_cdf(xs, knots, scale, smoothing)
        # at the knots 1/(2n) <~ cdf <~ 1 − 1/(2n), so Φ⁻¹ keeps full relative precision in both tails
        scores = ndtri(cdf)
        keep = np.concatenate(([True], np.diff(scores) > 0))  # float ties between very close knots
        return cls(knots[keep], scores[keep], float(1.0 / scale))

    def forward(self, x: np.ndarray) -> np.ndarray:
        return _piecewise_linear(x, self.x, self.z, self.tail_slope)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return _piecewise_linear(z, self.z, self.x, 1.0 / self.tail_slope)


def _kde_cdf(xs: np.ndarray, knots: np.ndarray, scale: float, smoothing: float, block: int = 4096) -> np.ndarray:
    """CDF of the variance-preserving Gaussian KDE of ``xs`` at ``knots``.

    Summed over row blocks: O(len(knots) · block) memory.
    """
    n = xs.size
    q25, q75 = np.quantile(xs, [0.25, 0.75])
    spread = min(scale, (q75 - q25) / 1.349) if q75 > q25 else scale
    h = smoothing * 0.9 * spread * n ** -0.2
    shrink = 1.0 / np.sqrt(1.0 + (h / scale) ** 2)
    mean = xs.mean()
    centres = mean + shrink * (xs - mean)
    width = shrink * h
    cdf = np.zeros(knots.size)
    for start in range(0, n, block):
        cdf += ndtr((knots[:, None] - centres[None, start:start + block]) / width).sum(axis=1)
    return cdf / n


def _fit_marginals(X: np.ndarray, n_knots: int, smoothing: float) -> list[_MarginalMap]:
    return [_MarginalMap.fit(X[:, j], n_knots, smoothing, j) for j in range(X.shape[1])]


def _apply_marginals(maps: list[_MarginalMap], X: np.ndarray, inverse: bool = False) -> np.ndarray:
    return np.column_stack([m.inverse(X[:, j]) if inverse else m.forward(X[:, j]) for j, m in enumerate(maps)])


def _check_marginal_params(n_knots: Any, smoothing: Any) -> None:
    check_int(n_knots, "n_knots", minimum=2)
    check_real(smoothing, "smoothing")


class Baseline(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared input handling: validation, fitted-state, feature-count and feature-name checks."""

    _n_features_out: int  # the output width, set by _validate(reset=True)

    def _validate(self, X: Any, *, reset: bool = False, inverse: bool = False) -> np.ndarray:
        """X as a float64 array. ``reset`` (in fit) records ``n_features_in_``, ``feature_names_in_`` (a
        DataFrame's columns) and the output width ``_n_features_out``; later calls check the width, and
        ``transform`` the names (not ``inverse_transform``: its columns are the output's)."""
        if not reset:
            check_is_fitted(self, "n_features_in_")
        array = as_sample(X, min_rows=2 if reset else 1, name="X")
        if not reset:
            width = self._n_features_out if inverse else self.n_features_in_
            if array.shape[1] != width:
                raise ValueError(f"X has {array.shape[1]} features, but {type(self).__name__} "
                                 f"{'outputs' if inverse else 'was fitted with'} {width}")
        if not inverse:  # scikit-learn reads the names from X and the width from the 2-D array
            validate_data(self, X if hasattr(X, "columns") else array, reset=reset, skip_check_array=True)
        if reset:
            self._n_features_out = array.shape[1]
        return array

    def _set_constant_aside(self, X: np.ndarray) -> np.ndarray:
        """Record the constant columns of the training sample in ``constant_features_``, with a warning; return
        the others."""
        constant = X.min(axis=0) == X.max(axis=0)
        if constant.all():
            raise ValueError("every column of X is constant; there is nothing to Gaussianize")
        self.constant_features_ = np.flatnonzero(constant)
        if constant.any():
            warnings.warn(f"{type(self).__name__}: columns {self.constant_features_.tolist()} are constant; they "
                          "pass through unchanged", UserWarning, stacklevel=3)
        return X[:, ~constant]

    def _on_varying(self, X: np.ndarray, fitted_map: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """``fitted_map`` applied to the columns that varied in training; the constant ones pass through."""
        varying = np.ones(X.shape[1], dtype=bool)
        varying[self.constant_features_] = False
        out = X.copy()
        out[:, varying] = fitted_map(X[:, varying])
        return out


class PCAWhitening(Baseline):
    """PCA whitening: z = Λ^{-1/2} Vᵀ (x − μ), with Σ̂ = V Λ Vᵀ the unbiased (n − 1) sample covariance.

    Invertible, x = V Λ^{1/2} z + μ. The fitted sample has mean 0 and covariance I, but only
    the first two moments are matched: the shape of the distribution is kept (a whitened uniform
    square is still a uniform square, whose negentropy is unchanged). Components are ordered by
    decreasing variance, each with the sign that makes its largest loading positive.

    Only the r components with variance are kept: singular values s_j > s_1 · max(n, d) · ε (NumPy's
    ``matrix_rank``). When r < d a warning says so; the output has r columns, and ``inverse_transform`` maps
    back onto the training sample's affine hull, so ``inverse_transform(transform(x))`` is the orthogonal
    projection of x onto it (x itself for the training points).

    Fitted attributes: ``mean_`` (d,), ``components_`` (r, d) with rows Vᵀ, ``explained_variance_``
    (r,) = diag Λ, ``n_components_`` = r, ``n_features_in_``.

    Attributes
    ----------
    mean_ : ndarray of shape (d,)
    components_ : ndarray of shape (r, d)
        Rows Vᵀ.
    explained_variance_ : ndarray of shape (r,)
        diag Λ.
    n_components_ : int
        r.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify import PCAWhitening
    >>> X = np.random.default_rng(0).standard_normal((100, 3)) @ np.diag([1.0, 2.0, 3.0])
    >>> W = PCAWhitening().fit_transform(X)
    >>> np.allclose(W.mean(0), 0), np.allclose(np.cov(W.T), np.eye(3))
    (True, True)
    """

    def fit(self, X: Any, y: Any = None) -> PCAWhitening:
        X = self._validate(X, reset=True)
        n, d = X.shape
        self.mean_ = X.mean(axis=0)
        _, s, vt = np.linalg.svd(X - self.mean_, full_matrices=False)
        rank = int(np.sum(s > s[0] * max(n, d) * np.finfo(np.float64).eps))
        if rank == 0:
            raise ValueError("X has no variance: all its rows are equal")
        if rank < d:
            warnings.warn(f"PCAWhitening: the sample covariance has rank {rank} < {d} (constant or collinear columns, "
                          f"or n <= d rows); the output keeps the {rank} directions with variance", UserWarning,
                          stacklevel=2)
        signs = np.sign(vt[np.arange(rank), np.abs(vt[:rank]).argmax(axis=1)])
        self.components_ = vt[:rank] * signs[:, None]
        self.explained_variance_ = s[:rank] ** 2 / (n - 1)
        self.n_components_ = self._n_features_out = rank
        return self

    def transform(self, X: Any) -> np.ndarray:
        X = self._validate(X)
        return (X - self.mean_) @ self.components_.T / np.sqrt(self.explained_variance_)

    def inverse_transform(self, X: Any) -> np.ndarray:
        Z = self._validate(X, inverse=True)
        return (Z * np.sqrt(self.explained_variance_)) @ self.components_ + self.mean_


class QuantileGaussianizer(OneToOneFeatureMixin, Baseline):
    """Per-feature quantile-to-normal transform z_j = Φ⁻¹(F̂_j(x_j)).

    By default F̂_j is the mid-rank empirical CDF at ``n_knots`` = 1000 empirical quantiles (the classic
    transform, as scikit-learn's ``QuantileTransformer(output_distribution="normal")``); ``smoothing > 0``
    uses a kernel estimate instead (smoother on new points). Unlike scikit-learn's, which clips, the map
    continues linearly beyond the sample range (see ``_MarginalMap``), so it is a bijection of R^d and
    new points outside the training range keep their order and can be inverted. This matches every
    one-dimensional marginal to N(0, 1) and nothing else: the dependence between coordinates (the
    copula) is unchanged, so e.g. a ring keeps its hole and stays far from N(0, I) jointly. Constant columns
    pass through unchanged (with a warning).

    Fitted attributes: ``marginals_`` (one map per non-constant feature), ``constant_features_`` (indices),
    ``n_features_in_``.

    Parameters
    ----------
    n_knots : int, default 1000
        The number of empirical quantiles (knots) of each marginal map.
    smoothing : float, default 0.0
        0: the mid-rank empirical CDF; > 0: a kernel estimate (bandwidth relative to the data's scale).

    Attributes
    ----------
    marginals_ : list
        One map per non-constant feature.
    constant_features_ : ndarray of int
        Indices of the constant features.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify import QuantileGaussianizer
    >>> X = np.random.default_rng(0).exponential(size=(100, 2))
    >>> q = QuantileGaussianizer().fit(X)
    >>> Z = q.transform(X)
    >>> Z.shape, np.allclose(q.inverse_transform(Z), X)
    ((100, 2), True)
    """

    def __init__(self, n_knots: int = 1000, smoothing: float = 0.0) -> None:
        self.n_knots = n_knots
        self.smoothing = smoothing

    def fit(self, X: Any, y: Any = None) -> QuantileGaussianizer:
        _check_marginal_params(self.n_knots, self.smoothing)
        X = self._set_constant_aside(self._validate(X, reset=True))
        self.marginals_ = _fit_marginals(X, self.n_knots, self.smoothing)
        return self

    def transform(self, X: Any) -> np.ndarray:
        X = self._validate(X)
        return self._on_varying(X, partial(_apply_marginals, self.marginals_))

    def inverse_transform(self, X: Any) -> np.ndarray:
        X = self._validate(X, inverse=True)
        return self._on_varying(X, partial(_apply_marginals, self.marginals_, inverse=True))


class RBIG(Baseline):
    """Rotation-based iterative Gaussianization (Laparra, Camps-Valls & Malo 2011).

    Each layer ℓ maps x ↦ Ψ_ℓ(x) R_ℓ: Ψ_ℓ Gaussianizes every coordinate with the marginal map of
    :class:`QuantileGaussianizer` (here smoothed by default: each layer refits it, and a rough map
    would pass its noise on), fitted on the current sample, and R_ℓ is an orthogonal matrix:
    a Haar-random rotation (``rotation="random"``) or the principal axes of the marginally
    Gaussianized sample (``rotation="pca"``; in low dimension it can stall, since after the marginal
    step the covariance is close to I and its eigenvectors hardly rotate). Every layer is a bijection
    of R^d, so the whole map is, and the inverse applies R_ℓᵀ and Ψ_ℓ⁻¹ in reverse order.

    The KL divergence to the target splits as KL(p || N(0, I)) = I(x) + Σ_j KL(p_j || N(0, 1))
    (multi-information plus marginal divergences). The marginal step zeroes the sum and leaves I
    unchanged; rotations leave KL(p || N(0, I)) unchanged (the target is rotation invariant). So layer ℓ
    lowers the KL by Δ_ℓ = Σ_j KL(p_j || N(0, 1)) of its input. ``reductions_`` holds these, each
    marginal KL estimated with Vasicek's m-spacing entropy (see ``_marginal_kl``), minus the mean of the
    same statistic over Gaussian samples of the same (n, d) (the estimator's bias), in nats. Early
    stopping (Laparra et al.'s criterion): stop once Δ_ℓ stays below ``tol`` for ``n_iter_no_change``
    layers and drop those layers; ``tol="auto"`` is the 95% quantile of the statistic on Gaussian
    samples (minus its mean), i.e. stop when what each layer removes is indistinguishable from
    sampling noise. This matters on new points: a layer fitted to noise makes them less Gaussian.

    The defaults (smoothing 0.5, patience 10) gave the lowest KL on held-out points among the settings tried
    (smoothing 0.5–1, patience 5–10) for a uniform square, an annulus and two noisy rings at n = 2000.

    Constant columns pass through unchanged (with a warning); the layers act on the others.

    Parameters
    ----------
    n_layers
        maximum number of layers.
    rotation
        ``"random"`` or ``"pca"``.
    n_knots, smoothing
        the marginal map (see :class:`QuantileGaussianizer`).
    tol
        ``"auto"``, a threshold in nats, or ``None`` (always fit ``n_layers`` layers).
    n_iter_no_change
        patience of the early stopping (in 2-D a random rotation close to a multiple of 90°
        exposes nothing new, so a few quiet layers in a row are not yet convergence).
    random_state
        seed for the rotations and the Gaussian reference samples.

    Attributes
    ----------
    layers_
        list of (marginal maps, rotation).
    n_layers_
        the number of layers fitted.
    reductions_
        Δ_ℓ per fitted layer, bias-corrected.
    tol_
        the threshold used (``None`` without early stopping).
    constant_features_
        indices of the constant columns.
    n_features_in_
        the number of input features.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify import RBIG
    >>> X = np.random.default_rng(0).uniform(-1, 1, (200, 2))
    >>> rbig = RBIG(random_state=0).fit(X)
    >>> Z = rbig.transform(X)
    >>> Z.shape, rbig.n_layers_ == len(rbig.reductions_), np.allclose(rbig.inverse_transform(Z), X)
    ((200, 2), True, True)
    """

    _NULL_REPLICATES = 100

    def __init__(self, n_layers: int = 100, rotation: str = "random", n_knots: int = 100, smoothing: float = 0.5,
                 tol: float | str | None = "auto", n_iter_no_change: int = 10,
                 random_state: int | None = None) -> None:
        self.n_layers = n_layers
        self.rotation = rotation
        self.n_knots = n_knots
        self.smoothing = smoothing
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state

    def _check_params(self) -> None:
        for name in ("n_layers", "n_iter_no_change"):
            check_int(getattr(self, name), name)
        if self.rotation not in ("pca", "random"):
            raise ValueError(f"rotation must be 'random' or 'pca', got {self.rotation!r}")
        _check_marginal_params(self.n_knots, self.smoothing)
        if not (self.tol is None or (isinstance(self.tol, str) and self.tol == "auto")
                or (is_real_number(self.tol) and np.isfinite(self.tol) and float(self.tol) >= 0)):
            raise InvalidParameterError(f"tol must be 'auto', a finite number >= 0 or None, got {self.tol!r}")
        check_random_state(self.random_state)

    def _rotation(self, Z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        d = Z.shape[1]
        if d == 1:
            return np.ones((1, 1))
        if self.rotation == "random":
            return ortho_group.rvs(d, random_state=rng)
        _, vectors = np.linalg.eigh(np.cov(Z, rowvar=False))
        return vectors[:, ::-1]

    def _null(self, n: int, d: int, rng: np.random.Generator) -> tuple[float, float]:
        """Mean and 95% quantile of Σ_j KL̂(p_j || N(0, 1)) over N(0, I) samples of shape (n, d)."""
        stats = [_marginal_kl(rng.standard_normal((n, d))).sum() for _ in range(self._NULL_REPLICATES)]
        return float(np.mean(stats)), float(np.quantile(stats, 0.95))

    def fit(self, X: Any, y: Any = None) -> RBIG:
        self._check_params()
        Z = self._set_constant_aside(self._validate(X, reset=True))
        rng = check_random_state(self.random_state)
        n, d = Z.shape
        bias, q95 = self._null(n, d, rng)
        self.tol_ = None if self.tol is None else (q95 - bias if self.tol == "auto" else float(self.tol))
        layers, reductions = [], []
        for _ in range(self.n_layers):
            reductions.append(_marginal_kl(Z).sum() - bias)
            maps = _fit_marginals(Z, self.n_knots, self.smoothing)
            Z = _apply_marginals(maps, Z)
            rotation = self._rotation(Z, rng)
            Z = Z @ rotation
            layers.append((maps, rotation))
            if self.tol_ is not None and len(layers) > self.n_iter_no_change \
                    and max(reductions[-self.n_iter_no_change:]) < self.tol_:
                del layers[-self.n_iter_no_change:], reductions[-self.n_iter_no_change:]
                break
        self.layers_ = layers
        self.reductions_ = np.asarray(reductions)
        self.n_layers_ = len(layers)
        return self

    def transform(self, X: Any) -> np.ndarray:
        return self._on_varying(self._validate(X), self._forward)

    def inverse_transform(self, X: Any) -> np.ndarray:
        return self._on_varying(self._validate(X, inverse=True), self._backward)

    def _forward(self, Z: np.ndarray) -> np.ndarray:
        for maps, rotation in self.layers_:
            Z = _apply_marginals(maps, Z) @ rotation
        return Z

    def _backward(self, Z: np.ndarray) -> np.ndarray:
        for maps, rotation in reversed(self.layers_):
            Z = _apply_marginals(maps, Z @ rotation.T, inverse=True)
        return Z

    # ----------------------------------------------------------------------------- persistence
    def save(self, directory: Any, *, overwrite: bool = False) -> Any:
        """Write the fitted layers (knots, tail slopes, rotations) as ``rbig.safetensors`` and the rest as
        ``config.json`` to ``directory`` atomically; nothing else is ever deleted (no pickle)."""
        check_is_fitted(self, "layers_")
        directory = self.check_save_path(directory, overwrite=overwrite)
        weights = {}
        for index, (maps, rotation) in enumerate(self.layers_):
            weights[f"{index}.rotation"] = rotation
            for column, m in enumerate(maps):
                weights.update({f"{index}.{column}.x": m.x, f"{index}.{column}.z": m.z,
                                f"{index}.{column}.tail_slope": np.array([m.tail_slope])})
        config = {"format": RBIG_FORMAT, "params": self.get_params(), "n_features_in": int(self.n_features_in_),
                  "constant_features": self.constant_features_.tolist(), "reductions": self.reductions_.tolist(),
                  "tol": self.tol_, "n_layers": self.n_layers_, "n_varying": int(self._n_varying())}
        write_model_folder(directory, config, weights, config_file=CONFIG_FILE, weights_file=RBIG_WEIGHTS)
        return directory

    @staticmethod
    def check_save_path(directory: Any, *, overwrite: bool = False) -> Any:
        """The resolved folder :meth:`save` would write, or ``ValueError`` if saving there could destroy data."""
        return check_model_folder(directory, files=(CONFIG_FILE, RBIG_WEIGHTS), config=CONFIG_FILE,
                                  model_format=RBIG_FORMAT, overwrite=overwrite)

    @classmethod
    def load(cls, directory: Any) -> RBIG:
        """Restore a model written by :meth:`save`; ``transform`` gives identical results."""
        from pathlib import Path

        from safetensors.numpy import load_file

        config = read_model_config(directory, config_file=CONFIG_FILE, model_format=RBIG_FORMAT)
        weights = load_file(Path(directory) / RBIG_WEIGHTS)
        model = cls(**config["params"])
        width = config["n_varying"]
        model.layers_ = [([_MarginalMap(weights[f"{i}.{j}.x"], weights[f"{i}.{j}.z"],
                                        float(weights[f"{i}.{j}.tail_slope"][0])) for j in range(width)],
                          weights[f"{i}.rotation"]) for i in range(config["n_layers"])]
        model.n_features_in_ = model._n_features_out = config["n_features_in"]
        model.constant_features_ = np.asarray(config["constant_features"], dtype=np.int64)
        model.reductions_ = np.asarray(config["reductions"])
        model.tol_, model.n_layers_ = config["tol"], config["n_layers"]
        return model

    def _n_varying(self) -> int:
        return self.n_features_in_ - len(self.constant_features_)


def _marginal_kl(Z: np.ndarray) -> np.ndarray:
    """KL(p_j || N(0, 1)) of each column j: its negentropy plus ½(s² − 1 − log s²) + ½ x̄².

    The negentropy is ½ log(2πe s²) − Ĥ with Vasicek's (1976) m-spacing entropy
    Ĥ = (1/n) Σ_i log(n/(2m) (x_(i+m) − x_(i−m))), m = round(√n / 2), order statistics clamped to
    [x_(1), x_(n)]. Biased upwards at finite n (the caller subtracts the Gaussian-sample mean); ties
    give +inf.
    """
    n = Z.shape[0]
    m = max(1, int(round(np.sqrt(n) / 2)))
    xs = np.sort(Z, axis=0)
    i = np.arange(n)
    spacing = xs[np.minimum(i + m, n - 1)] - xs[np.maximum(i - m, 0)]
    with np.errstate(divide="ignore"):
        entropy = np.log(n / (2.0 * m) * spacing).mean(axis=0)
    var = xs.var(axis=0, ddof=1)
    negentropy = 0.5 * np.log(2 * np.pi * np.e * var) - entropy
    return negentropy + 0.5 * (var - 1.0 - np.log(var)) + 0.5 * xs.mean(axis=0) ** 2


BASELINES: dict[str, type[Baseline]] = {"whiten": PCAWhitening, "quantile": QuantileGaussianizer, "rbig": RBIG}


def make_baseline(name: str, **params: Any) -> Baseline:
    """Return an unfitted baseline by name: ``"whiten"``, ``"quantile"`` or ``"rbig"`` (params go to its __init__).

    Parameters
    ----------
    name : {"whiten", "quantile", "rbig"}
        The baseline (:data:`BASELINES`).
    **params
        Keywords of its constructor.

    Returns
    -------
    Baseline
        The unfitted transformer.

    Examples
    --------
    >>> from gaussify.baselines import make_baseline
    >>> make_baseline("rbig", n_layers=5)
    RBIG(n_layers=5)
    """
    if not isinstance(name, str) or name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; expected one of {sorted(BASELINES)}")
    return BASELINES[name](**params)
