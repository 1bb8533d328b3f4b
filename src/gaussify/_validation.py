"""Parameter checks and sample/target coercion for the whole package (NumPy only; torch is never imported).

One message format, as in scikit-learn's ``_param_validation``: ``"<name> must be <what is expected>, got <value>"``,
raised as :class:`InvalidParameterError`, which is both a ``ValueError`` and a ``TypeError`` (scikit-learn's
convention: a caller may catch either, whichever the mistake was).
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, Callable, TypeVar, Union

import numpy as np

__all__ = ["InvalidParameterError", "RandomState", "to_numpy", "check_int", "check_real", "check_n_jobs",
           "check_random_state", "renamed_parameters", "as_sample", "sample_shape", "target_moments",
           "standardize_to_target"]

RandomState = Union[None, int, np.random.Generator]
"""What a ``random_state`` parameter takes: None (fresh entropy), a seed >= 0, or a ``numpy.random.Generator``."""

_Function = TypeVar("_Function", bound=Callable[..., Any])


class InvalidParameterError(ValueError, TypeError):
    """A parameter has the wrong type or value; the message names it and says what it must be."""


def to_numpy(x: Any) -> np.ndarray:
    """``x`` as a NumPy array; a torch tensor is detached and moved to the CPU (torch is not imported)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_int(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as an int; :class:`InvalidParameterError` unless it is an integer (not a bool, not a float)
    >= ``minimum``."""
    if not _is_int(value) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise InvalidParameterError(f"{name} must be {kind}, got {value!r}")
    return int(value)


def check_real(value: Any, name: str, *, strict: bool = False, high: float | None = None) -> float:
    """``value`` as a float; :class:`InvalidParameterError` unless it is a finite real number (not a bool, not NaN)
    >= 0 (> 0 when ``strict``) and < ``high`` when given."""
    ok = (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
          and bool(np.isfinite(value)) and (value > 0 if strict else value >= 0) and (high is None or value < high))
    if not ok:
        bounds = ("> 0" if strict else ">= 0") + (f" and < {high}" if high is not None else "")
        raise InvalidParameterError(f"{name} must be a finite number {bounds}, got {value!r}")
    return float(value)


def check_n_jobs(n_jobs: Any) -> int:
    """``n_jobs`` as an int; :class:`InvalidParameterError` unless it is -1 (every core) or a positive integer."""
    if not _is_int(n_jobs) or not (n_jobs == -1 or n_jobs >= 1):
        raise InvalidParameterError(f"n_jobs must be -1 (all cores) or a positive integer, got {n_jobs!r}")
    return int(n_jobs)


def check_random_state(random_state: Any, name: str = "random_state") -> np.random.Generator:
    """A ``numpy.random.Generator`` from None (fresh entropy), a seed >= 0 (``default_rng(seed)``) or a Generator
    (returned as it is, so that successive calls draw new numbers); :class:`InvalidParameterError` otherwise."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or (_is_int(random_state) and random_state >= 0):
        return np.random.default_rng(random_state)
    raise InvalidParameterError(f"{name} must be None, an integer >= 0 or a numpy.random.Generator, "
                                f"got {random_state!r}")


def renamed_parameters(**renamed: str) -> Callable[[_Function], _Function]:
    """Decorator keeping old keyword names working for one release: ``@renamed_parameters(seed="random_state")``
    maps ``seed=`` to ``random_state=`` with a ``FutureWarning`` that names the new name (a ``TypeError`` when
    both are given). The wrapped function's signature shows the new names only."""
    def decorate(function: _Function) -> _Function:
        name = function.__qualname__.removesuffix(".__init__")

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in renamed.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{name}() got both {old!r} and its new name {new!r}")
                    warnings.warn(f"{name}(): the parameter {old!r} is deprecated and will be removed in the next "
                                  f"release; use {new!r}", FutureWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def as_sample(Z: Any, *, min_rows: int = 2, name: str = "Z") -> np.ndarray:
    """Validate an (n, d) sample and return it as a C-contiguous float64 array.

    Raises ``TypeError`` for non-numeric input and ``ValueError`` for a wrong shape,
    NaN/Inf, or fewer than ``min_rows`` rows.
    """
    arr = to_numpy(Z)
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
    if target is None or _is_int(target):
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
    mean = to_numpy(mean).astype(np.float64).reshape(-1)
    cov = to_numpy(cov).astype(np.float64)
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
