"""Parameter checks and sample/target coercion for the whole package (NumPy only; torch is never imported).

One message format, as in scikit-learn's ``_param_validation``: ``"<name> must be <what is expected>, got <value>"``,
raised as :class:`InvalidParameterError`, which is both a ``ValueError`` and a ``TypeError`` (scikit-learn's
convention: a caller may catch either, whichever the mistake was).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping
from typing import Any, Callable, TypeVar, Union

import numpy as np

__all__ = ["InvalidParameterError", "RandomState", "to_numpy", "check_int", "check_real", "check_bool", "check_ints",
           "check_options", "check_parameters", "is_real_number", "check_n_jobs",
           "check_random_state", "as_seed", "renamed_parameters", "as_sample", "sample_shape", "target_parts",
           "target_moments", "TargetFrame", "standardize_to_target"]

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


def is_real_number(value: Any) -> bool:
    """True for a Python or NumPy int or float that is not a bool (NaN and Inf included)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def check_int(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as an int; :class:`InvalidParameterError` unless it is an integer (not a bool, not a float)
    >= ``minimum``."""
    if not _is_int(value) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise InvalidParameterError(f"{name} must be {kind}, got {value!r}")
    return int(value)


def check_real(value: Any, name: str, *, strict: bool = False, high: float | None = None, low: float = 0.0,
               high_closed: bool = False) -> float:
    """``value`` as a float; :class:`InvalidParameterError` unless it is a finite real number (not a bool, not NaN)
    >= ``low`` (> ``low`` when ``strict``; ``low=-inf``: any finite number) and < ``high`` when given (<= ``high``
    when ``high_closed``)."""
    ok = (is_real_number(value) and bool(np.isfinite(value)) and (value > low if strict else value >= low)
          and (high is None or (value <= high if high_closed else value < high)))
    if not ok:
        bounds = [f"{'>' if strict else '>='} {low:g}"] if low > -np.inf else []
        bounds += [f"{'<=' if high_closed else '<'} {high:g}"] if high is not None else []
        raise InvalidParameterError(f"{name} must be a finite number{' ' if bounds else ''}{' and '.join(bounds)}, "
                                    f"got {value!r}")
    return float(value)


def check_ints(values: Any, name: str) -> tuple[int, ...]:
    """``values`` as a tuple of ints; :class:`InvalidParameterError` unless it is a tuple or list of positive
    integers (layer widths)."""
    if not isinstance(values, (tuple, list)) or not all(_is_int(v) and v >= 1 for v in values):
        raise InvalidParameterError(f"{name} must be a tuple of positive integers, got {values!r}")
    return tuple(int(v) for v in values)


def check_options(value: Any, name: str, options: tuple) -> Any:
    """``value`` itself; :class:`InvalidParameterError` unless it is one of ``options`` (strings, or None)."""
    if not any(value is option or (isinstance(value, str) and value == option) for option in options):
        raise InvalidParameterError(f"{name} must be one of {options}, got {value!r}")
    return value


def check_parameters(owner: Any, checks: Mapping[str, Callable[[Any, str], Any]]) -> None:
    """``checks[name](getattr(owner, name), name)`` for every entry (``owner[name]`` when ``owner`` is a mapping of
    the values by name, a function's arguments): an estimator's table of parameter checks, in the role of
    scikit-learn's ``_parameter_constraints`` (whose validator is private in scikit-learn), giving the messages of
    this module."""
    for name, check in checks.items():
        check(owner[name] if isinstance(owner, Mapping) else getattr(owner, name), name)


def check_bool(value: Any, name: str) -> bool:
    """``value`` as a bool; :class:`InvalidParameterError` unless it is True or False (a NumPy bool included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidParameterError(f"{name} must be True or False, got {value!r}")
    return bool(value)


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


def as_seed(random_state: Any, name: str = "random_state") -> int:
    """One int seed (for torch) from a ``random_state``: a seed >= 0 as it is, else an integer in [0, 2³¹ − 1) drawn
    from the Generator (fresh entropy for None); :class:`InvalidParameterError` as :func:`check_random_state`."""
    rng = check_random_state(random_state, name)
    return int(random_state) if _is_int(random_state) else int(rng.integers(2**31 - 1))


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


def target_parts(target: Any) -> int | tuple[Any, Any] | None:
    """The target forms every gaussify function takes: ``None`` (N(0, I)) and an int d (N(0, I_d)) as they are, an
    object with ``.mean`` and ``.cov`` (e.g. :class:`gaussify.Gaussian`) or a ``(mean, cov)`` pair as that pair
    (unchecked); ``TypeError`` for anything else."""
    if target is None or _is_int(target):
        return None if target is None else int(target)
    mean_attr, cov_attr = getattr(target, "mean", None), getattr(target, "cov", None)
    # a Gaussian-like object; arrays and DataFrames have .mean()/.cov() *methods*, which are not a target
    if mean_attr is not None and cov_attr is not None and not (callable(mean_attr) or callable(cov_attr)):
        return mean_attr, cov_attr
    if isinstance(target, (tuple, list)) and len(target) == 2:
        return target[0], target[1]
    raise TypeError("target must be None, an int dimension, a gaussify.Gaussian or a (mean, cov) pair, "
                    f"got {type(target).__name__}")


def target_moments(target: Any, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the target (any form of :func:`target_parts`) as float64 arrays, checked against the
    sample's dimension ``dim``."""
    parts = target_parts(target)
    if not isinstance(parts, tuple):
        if parts is not None and parts != dim:
            raise ValueError(f"target dimension {parts} does not match the sample's {dim}")
        return np.zeros(dim), np.eye(dim)
    mean, cov = parts
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


class TargetFrame:
    """The target N(μ, LLᵀ) (any form of :func:`target_parts`) in ``dim`` dimensions and the map to its standard
    coordinates. The NumPy whitening of the package; :func:`gaussify.target.whiten` is the same map in torch (the
    metrics never import torch, and the regularizers need it differentiable on the device)."""

    def __init__(self, target: Any, dim: int) -> None:
        from scipy.linalg import solve_triangular

        self.mean, cov = target_moments(target, dim)
        self.chol = np.linalg.cholesky(cov)
        self.inverse = solve_triangular(self.chol, np.eye(dim), lower=True)
        """L⁻¹, for maps of moments (L⁻¹ Σ L⁻ᵀ)."""
        self.standard = not self.mean.any() and np.array_equal(cov, np.eye(dim))

    def standardize(self, X: np.ndarray) -> np.ndarray:
        """L⁻¹(x − μ) row by row (one triangular solve; ``X`` itself for N(0, I))."""
        from scipy.linalg import solve_triangular

        return X if self.standard else solve_triangular(self.chol, (X - self.mean).T, lower=True).T


def standardize_to_target(Z: np.ndarray, target: Any) -> np.ndarray:
    """Map the sample into the target's standard coordinates, L⁻¹(z − μ) with cov = L Lᵀ (:class:`TargetFrame`)."""
    return TargetFrame(target, Z.shape[1]).standardize(Z)
