"""Reading and writing numeric tables by extension: ``.npy``, ``.csv`` (header row), ``.parquet``."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

__all__ = ["read_table", "write_table", "write_text_atomic", "atomic_path", "atomic_directory", "check_output",
           "check_model_folder", "align_columns", "FORMATS"]

FORMATS = (".npy", ".csv", ".parquet")


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: unsupported file type {suffix or '(none)'}; use one of {', '.join(FORMATS)}")
    return suffix


def read_table(path: str | os.PathLike, labels: str | None = None, *,
               mmap: bool = False) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """Read a numeric table; returns ``(X, y, column_names)``, the names ``None`` when the file has none.

    ``labels`` names a column (csv/parquet) kept apart as ``y`` (any dtype, no empty cells); every
    other column must be numeric and finite. A CSV whose first row is all numbers has no header: it
    is read as data (its columns have no names). ``.npy`` files hold a 2-D array (no column
    names, so no label column); ``mmap=True`` memory-maps them instead of loading. Every error is a
    ``ValueError`` (or ``FileNotFoundError``) naming the file and, where it applies, row and column.
    """
    path = Path(path)
    suffix = _suffix(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not a {suffix[1:]} file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if suffix == ".npy":
        if labels is not None:
            raise ValueError(f"{path}: .npy files have no column names, so --labels cannot be used")
        with open(path, "rb") as handle:
            if handle.read(6) != b"\x93NUMPY":
                raise ValueError(f"{path}: not a NumPy .npy file (it lacks the .npy header); save arrays with "
                                 "numpy.save, or use .csv/.parquet")
        try:
            X = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            objects = "pickle" in str(err) or "objects" in str(err)
            reason = "it holds Python objects, which are never unpickled" if objects else _first_line(err)
            raise ValueError(f"{path}: cannot read this .npy file: {reason}") from None
        if X.ndim != 2:
            raise ValueError(f"{path}: expected a 2-D array, got shape {X.shape}")
        if not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X):
            raise ValueError(f"{path}: expected real numbers, got dtype {X.dtype}")
        _check_finite(path, X, None, first_line=None)
        return X, None, None
    import pandas as pd

    try:
        frame = _read_frame(path, suffix)
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise ValueError(f"{path}: cannot read it as {suffix[1:]}: {_first_line(err)}") from None
    # the CSV line holding row 0 (lines counted from 1), for messages; None for parquet
    first_line = (1 if frame.attrs.get("headerless") else 2) if suffix == ".csv" else None
    if frame.shape[0] == 0:
        raise ValueError(f"{path}: no data rows (only a header)")
    y = None
    if labels is not None:
        if labels not in frame.columns:
            note = " (the file has no header row)" if frame.attrs.get("headerless") else ""
            raise ValueError(f"{path}: no column named {labels!r}{note} "
                             f"(columns: {', '.join(map(str, frame.columns))})")
        column = frame.pop(labels)
        missing = np.flatnonzero(column.isna().to_numpy())
        if missing.size:
            raise ValueError(f"{path}: label column {labels!r} is empty in {_where(missing[0], missing.size, first_line)}; "
                             "fill those cells or drop the rows")
        y = column.to_numpy()
    bad = [str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise ValueError(f"{path}: column(s) {', '.join(bad)} are not numeric; pass a label column with --labels "
                         "or remove them")
    if frame.shape[1] == 0:
        raise ValueError(f"{path}: no numeric feature columns")
    X, columns = frame.to_numpy(dtype=np.float64), [str(c) for c in frame.columns]
    _check_finite(path, X, columns, first_line)
    return X, y, None if frame.attrs.get("headerless") else columns


def _read_frame(path: Path, suffix: str):
    """The file as a DataFrame; a CSV whose header cells all parse as numbers is re-read without a header
    (``frame.attrs["headerless"]``), so its first row is data, not lost as column names."""
    import pandas as pd

    if suffix == ".parquet":
        return pd.read_parquet(path)
    frame = pd.read_csv(path)
    if len(frame.columns) and all(_is_number(c) for c in frame.columns):
        frame = pd.read_csv(path, header=None)
        frame.columns = [f"x{i}" for i in range(frame.shape[1])]
        frame.attrs["headerless"] = True
    return frame


def _is_number(text) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def _first_line(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _where(row: int, count: int, first_line: int | None) -> str:
    """Where the first of ``count`` offending rows is: 'line 7' in a CSV (lines counted from 1, header included),
    'row index 5' (from 0, as NumPy and pandas count) otherwise."""
    where = f"row index {row}" if first_line is None else f"line {row + first_line}"
    return where + (f" and {count - 1} more row(s)" if count > 1 else "")


def _check_finite(path: Path, X: np.ndarray, columns: list[str] | None, first_line: int | None,
                  block: int = 1 << 16) -> None:
    """``ValueError`` naming the first NaN/Inf cell's row and column; memory-mapped arrays are checked in row
    blocks, so nothing is loaded whole."""
    starts = range(0, X.shape[0], block)
    for start in starts:
        bad = ~np.isfinite(X[start:start + block])
        if bad.any():
            row, col = np.argwhere(bad)[0]
            count = sum(int((~np.isfinite(X[s:s + block])).any(axis=1).sum()) for s in starts if s > start)
            count += int(bad.any(axis=1).sum())
            kind = "NaN" if np.isnan(X[start + row, col]) else "an infinite value"
            where = _where(start + row, count, first_line)
            name = repr(columns[col]) if columns else f"index {col}"
            raise ValueError(f"{path}: {kind} in column {name}, {where}; gaussify needs finite numbers "
                             "(drop or impute those rows)")


def align_columns(X: np.ndarray, columns: list[str] | None, expected: list[str] | None, path: str | os.PathLike
                  ) -> np.ndarray:
    """``X``'s columns in the order ``expected`` (the names a model was fitted on), matched by name; by position
    when either side has no names. ``ValueError`` naming the missing and the extra columns."""
    if columns is None or expected is None:
        return X  # by position; the model checks the number of columns
    missing = [name for name in expected if name not in columns]
    extra = [name for name in columns if name not in expected]
    if missing or extra:
        parts = ([f"lacks column(s) {', '.join(missing)}"] if missing else []) + \
                ([f"has column(s) {', '.join(extra)} the model was not fitted on (set a label column aside with "
                  "--labels)"] if extra else [])
        raise ValueError(f"{path}: " + "; ".join(parts))
    return X[:, [columns.index(name) for name in expected]]


def check_output(path: str | os.PathLike, *, inputs: tuple = (), overwrite: bool = False,
                 formats: tuple[str, ...] | None = FORMATS, option: str = "output") -> Path:
    """Check an output file before any work is done: a known format (``formats``; ``None`` for any), not a
    folder, not one of ``inputs`` (even with ``overwrite``: the input would be destroyed while being read)
    and, unless ``overwrite``, not an existing file. Returns the path; raises ``ValueError``."""
    path = Path(path)
    if formats is not None and path.suffix.lower() not in formats:
        raise ValueError(f"{option} {path}: unsupported file type {path.suffix or '(none)'}; "
                         f"use one of {', '.join(formats)}")
    if path.is_dir():
        raise ValueError(f"{option} {path}: is a folder; give a file name")
    for source in inputs:
        if _same_path(path, Path(source)):
            raise ValueError(f"{option} {path}: is also an input; write to another file")
    if path.exists() and not overwrite:
        raise ValueError(f"{option} {path}: already exists; pass --overwrite to replace it")
    if path.parent.exists() and not path.parent.is_dir():
        raise ValueError(f"{option} {path}: {path.parent} is a file, not a folder")
    return path


def check_model_folder(directory: str | os.PathLike, *, files: tuple[str, ...], config: str, model_format: str,
                       overwrite: bool = False) -> Path:
    """Check that saving a model to ``directory`` destroys nothing the user owns.

    Allowed: a new path, an empty folder, or (with ``overwrite``) an earlier model of ``model_format``, i.e. a
    folder whose ``config`` file declares that format and which holds nothing but the model's ``files``. Refused
    always: a file, a folder with anything else in it, and the current folder or one that contains it. Returns
    the resolved path; raises ``ValueError``."""
    path = Path(directory).resolve()
    if path == Path.cwd().resolve() or path in Path.cwd().resolve().parents:
        raise ValueError(f"{directory}: is the current folder or contains it; save the model to a new folder")
    if not path.exists():
        if path.parent.exists() and not path.parent.is_dir():
            raise ValueError(f"{directory}: {path.parent} is a file, not a folder")
        return path
    if not path.is_dir():
        raise ValueError(f"{directory}: is a file, not a model folder; choose a new folder name")
    entries = sorted(entry.name for entry in path.iterdir())
    if not entries:
        return path
    foreign = [name for name in entries if name not in files]
    if foreign or not _declares_format(path / config, model_format):
        shown = ", ".join(foreign[:5] or entries[:5]) + (" …" if len(foreign or entries) > 5 else "")
        raise ValueError(f"{directory}: is not empty and not a gaussify model folder (it holds {shown}); "
                         "choose a new or empty folder")
    if not overwrite:
        raise ValueError(f"{directory}: holds an earlier gaussify model; pass --overwrite (overwrite=True) to "
                         "replace it")
    return path


def _declares_format(config: Path, model_format: str) -> bool:
    import json

    try:
        return json.loads(config.read_text()).get("format") == model_format
    except (OSError, ValueError, AttributeError):
        return False


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file beside ``path``; when the block succeeds it is renamed over ``path`` (atomic on
    POSIX), otherwise deleted, so a crash never leaves half a file. Parent folders are created. The file gets
    the permissions a plain ``open`` would give it (0666 minus the umask), not mkstemp's private 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".gaussify-", suffix=path.suffix, dir=path.parent)
    os.fchmod(fd, _plain_mode(0o666))
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextmanager
def atomic_directory(directory: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty staging folder beside ``directory``; when the block succeeds it replaces ``directory``
    (two renames: the old folder is moved aside first, then removed), otherwise it is deleted, so the folder
    is complete or absent. Like :func:`atomic_path`, it gets a plain ``mkdir``'s permissions (0777 minus
    the umask), not mkdtemp's private 0700."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".gaussify-", dir=directory.parent))
    os.chmod(staging, _plain_mode(0o777))
    try:
        yield staging
        if directory.exists():
            old = Path(tempfile.mkdtemp(prefix=".gaussify-old-", dir=directory.parent))
            try:
                os.replace(directory, old / directory.name)
                try:
                    os.replace(staging, directory)
                except OSError:
                    os.replace(old / directory.name, directory)  # put the old folder back
                    raise
            finally:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _plain_mode(bits: int) -> int:
    """``bits`` minus the process umask: the mode ``open``/``mkdir`` would give a new file or folder."""
    umask = os.umask(0)
    os.umask(umask)
    return bits & ~umask


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_table(path: str | os.PathLike, Z: np.ndarray, columns: list[str] | None = None) -> Path:
    """Write an (n, k) array atomically (:func:`atomic_path`); csv/parquet columns are ``columns``
    (default ``z0..z{k-1}``)."""
    path = Path(path)
    suffix = _suffix(path)
    with atomic_path(path) as tmp:
        if suffix == ".npy":
            np.save(tmp, Z)
        else:
            import pandas as pd

            frame = pd.DataFrame(Z, columns=columns or [f"z{i}" for i in range(Z.shape[1])])
            frame.to_csv(tmp, index=False) if suffix == ".csv" else frame.to_parquet(tmp, index=False)
    return path
