"""On-disk cache of Monte Carlo nulls: float64 arrays stored as ``.npy`` (read with ``allow_pickle=False``).

The folder is ``$GAUSSIFY_CACHE_DIR`` when that variable is set, else ``platformdirs.user_cache_dir("gaussify")``
(``~/.cache/gaussify`` on Linux, ``~/Library/Caches/gaussify`` on macOS, ``%LOCALAPPDATA%\\gaussify\\Cache`` on
Windows); the files are in its ``monte-carlo/`` subfolder. ``GAUSSIFY_CACHE_DIR=""`` (set but empty) disables the
disk cache; deleting the folder clears it.

A file is named by its label and a SHA-256 digest of its whole key: the caller's key (every argument of the
simulation), the *definition* it names with that definition's stored fingerprint, and the gaussify, NumPy and SciPy
versions (NumPy does not promise the same random stream across versions, nor SciPy the same special functions).
A definition is one simulated statistic (``"normality-energy"``, ``"bound-ica"``, …); its fingerprint, in
``null_fingerprints.json`` beside this file, is :func:`fingerprint` of a small fixed-seed null of it, which
``tests/metrics/test_cache.py`` recomputes from the code. A change to a statistic's code changes its small null,
so that test fails until the stored fingerprint is updated, and the new fingerprint changes the key: the files
the old code wrote are never read again, whatever the version numbers say.

Each file is written to a temporary file in the same folder and renamed onto its name with ``os.replace``
(atomic), so concurrent writers (pytest-xdist workers, parallel CLI calls) and readers never see a partial
file. A file that cannot be read or has the wrong shape, dtype or non-finite values is recomputed and
overwritten; a folder that cannot be created or written is skipped (the value is still computed) with one
warning per folder and process.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["ENV_VAR", "FINGERPRINTS", "cache_dir", "cached_array", "fingerprint", "stored_fingerprints"]

ENV_VAR = "GAUSSIFY_CACHE_DIR"
FINGERPRINTS = Path(__file__).with_name("null_fingerprints.json")
"""Definition name → :func:`fingerprint` of its small fixed-seed null, as the code computed it when stored."""
_WARNED: set[Path] = set()


@lru_cache(maxsize=1)
def stored_fingerprints() -> dict[str, list[float]]:
    """The contents of :data:`FINGERPRINTS`."""
    return json.loads(FINGERPRINTS.read_text(encoding="utf-8"))


def fingerprint(values: np.ndarray) -> list[float]:
    """Nine evenly spaced entries of ``values`` (flattened, ends included) and its mean: what a definition's
    stored fingerprint holds."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    picks = flat[np.linspace(0, flat.size - 1, 9).round().astype(int)]
    return [float(value) for value in picks] + [float(flat.mean())]


def cache_dir() -> Path | None:
    """The folder of the Monte Carlo files, or ``None`` when ``$GAUSSIFY_CACHE_DIR`` is set to ``""``."""
    root = os.environ.get(ENV_VAR)
    if root is None:
        import platformdirs

        root = platformdirs.user_cache_dir("gaussify", appauthor=False)
    return Path(root) / "monte-carlo" if root else None


def _digest(key: tuple, definition: str) -> str:
    import scipy

    from .. import __version__

    stored = stored_fingerprints()
    if definition not in stored:
        raise KeyError(f"no stored fingerprint for the null definition {definition!r} in {FINGERPRINTS.name}")
    whole = (key, definition, stored[definition], __version__, np.__version__, scipy.__version__)
    return hashlib.sha256(repr(whole).encode()).hexdigest()[:24]


def _read(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    try:
        value = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):  # missing, truncated, not a .npy file, an object array
        return None
    if value.shape != shape or value.dtype != np.float64 or not np.isfinite(value).all():
        return None
    return value


def _write(path: Path, value: np.ndarray) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                np.save(file, value, allow_pickle=False)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as err:
        if path.parent not in _WARNED:
            _WARNED.add(path.parent)
            warnings.warn(f"gaussify cannot write its Monte Carlo cache in {path.parent} ({err}); nulls are "
                          f"recomputed in every process. Set {ENV_VAR} to a writable folder, or to '' to "
                          "disable the disk cache", UserWarning, stacklevel=4)


def cached_array(label: str, key: tuple, shape: tuple[int, ...], compute: Callable[[], np.ndarray], *,
                 definition: str) -> np.ndarray:
    """``compute()`` (a float64 array of ``shape``), read from the disk cache when a valid file for ``key`` and
    ``definition`` is there, else computed and stored. ``key`` must determine the value given the code of
    ``definition`` (a name in :data:`FINGERPRINTS`; ``KeyError`` otherwise) and have a stable ``repr``."""
    digest = _digest(key, definition)  # checks the definition even when the disk cache is off
    folder = cache_dir()
    if folder is None:
        return compute()
    path = folder / f"{label}-{digest}.npy"
    value = _read(path, shape)
    if value is None:
        value = compute()
        _write(path, value)
    return value
