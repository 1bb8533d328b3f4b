"""Input checks and target handling shared by the metrics (NumPy only; torch is never imported)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["as_sample", "sample_shape", "target_moments", "standardize_to_target", "check_int", "check_real",
           "check_n_jobs", "format_number", "format_pvalue"]


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def check_int(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as an int, or ``ValueError`` unless it is an integer (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return int(value)


def check_real(value: Any, name: str, *, strict: bool = False, high: float | None = None) -> None:
    """``ValueError`` unless ``value`` is a real number (not a bool) ≥ 0 (> 0 when ``strict``) and < ``high`` when
    given."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.number)) and bool(np.isfinite(value)) \
        and (value > 0 if strict else value >= 0) and (high is None or value < high)
    if not ok:
        bounds = ("> 0" if strict else ">= 0") + (f" and < {high}" if high is not None else "")
        raise ValueError(f"{name} must be a finite number {bounds}, got {value!r}")


def check_n_jobs(n_jobs: Any) -> None:
    """``ValueError`` unless ``n_jobs`` is -1 (every core) or a positive integer."""
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or not (n_jobs == -1 or n_jobs >= 1):
        raise ValueError(f"n_jobs must be -1 (all cores) or a positive integer, got {n_jobs!r}")


def as_sample(Z: Any, *, min_rows: int = 2, name: str = "Z") -> np.ndarray:
    """Validate an (n, d) sample and return it as a C-contiguous float64 array.

    Raises ``TypeError`` for non-numeric input and ``ValueError`` for a wrong shape,
    NaN/Inf, or fewer than ``min_rows`` rows.
    """
    arr = _to_numpy(Z)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real-valued")
    arr = np.ascontiguousarray(arr.reshape(sample_shape(arr.shape, min_rows=min_rows, name=name)), dtype=np.float64)
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{name} contains NaN or Inf (first at row {bad[0]}, column {bad[1]})")
    return arr


def sample_shape(shape: tuple[int, ...], *, min_rows: int = 2, name: str = "Z") -> tuple[int, int]:
    """The (n, d) of a sample of this shape (a 1-D shape (n,) is n rows of one column); ``ValueError`` for any
    other number of dimensions, no columns, or fewer than ``min_rows`` rows."""
    shape = tuple(shape)
    if len(shape) == 1:
        shape = (shape[0], 1)
    if len(shape) != 2:
        raise ValueError(f"{name} must have shape (n, d), got {shape}")
    if shape[1] < 1:
        raise ValueError(f"{name} has no columns")
    if shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {shape[0]}")
    return shape


def target_moments(target: Any, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the target as float64 arrays.

    ``target`` may be ``None`` (N(0, I)), an int (its dimension, N(0, I)), an object with
    ``.mean`` and ``.cov`` (e.g. :class:`gaussify.Gaussian`), or a ``(mean, cov)`` pair.
    """
    if target is None or (isinstance(target, (int, np.integer)) and not isinstance(target, bool)):
        if target is not None and int(target) != dim:
            raise ValueError(f"target dimension {int(target)} does not match the sample's {dim}")
        return np.zeros(dim), np.eye(dim)
    mean_attr, cov_attr = getattr(target, "mean", None), getattr(target, "cov", None)
    # a Gaussian-like object; arrays and DataFrames have .mean()/.cov() *methods*, which are not a target
    if mean_attr is not None and cov_attr is not None and not (callable(mean_attr) or callable(cov_attr)):
        mean, cov = mean_attr, cov_attr
    elif isinstance(target, (tuple, list)) and len(target) == 2:
        mean, cov = target
    else:
        raise TypeError("target must be None, an int dimension, a gaussify.Gaussian or a (mean, cov) pair, "
                        f"got {type(target).__name__}")
    mean = _to_numpy(mean).astype(np.float64).reshape(-1)
    cov = _to_numpy(cov).astype(np.float64)
    if mean.shape != (dim,) or cov.shape != (dim, dim):
        raise ValueError(f"target has mean {mean.shape} and cov {cov.shape}; the sample has dimension {dim}")
    if not (np.isfinite(mean).all() and np.isfinite(cov).all()):
        raise ValueError("target mean and cov must be finite")
    if not np.allclose(cov, cov.T, rtol=1e-6, atol=1e-9 * max(1.0, np.abs(cov).max())):
        raise ValueError("target cov must be symmetric")
    try:
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError as err:
        raise ValueError("target cov must be positive definite") from err
    return mean, cov


def standardize_to_target(Z: np.ndarray, target: Any) -> np.ndarray:
    """Map the sample into the target's standard coordinates, L⁻¹(z − μ) with cov = L Lᵀ."""
    mean, cov = target_moments(target, Z.shape[1])
    chol = np.linalg.cholesky(cov)
    from scipy.linalg import solve_triangular

    return solve_triangular(chol, (Z - mean).T, lower=True).T


def format_number(value: float, digits: int = 4) -> str:
    """``value`` with ``digits`` decimals, in scientific notation when it is that large (|x| ≥ 10⁵) or that small
    (0 < |x| < 10^-digits), so that nothing prints as a 17-digit integer or as a misleading 0.0000."""
    if np.isfinite(value) and value != 0 and not 10.0 ** -digits <= abs(value) < 1e5:
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}f}"


def format_pvalue(p: float) -> str:
    """A p-value with 3 significant digits; one that underflowed double precision prints as ``<1e-300``,
    never as 0."""
    return "<1e-300" if p < 1e-300 else f"{p:.3g}"
