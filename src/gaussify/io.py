"""Reading and writing numeric tables by extension (``.npy``, ``.csv`` with a header row, ``.parquet``), target
files, and atomic files and folders. Model folders are :mod:`gaussify.model_folder`'s.

Nothing of gaussify is imported here but :mod:`gaussify._validation`: every other module may use this one."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ._validation import check_bool, check_int, target_moments

__all__ = ["read_table", "table_header", "csv_header", "read_target", "write_table", "write_text_atomic", "atomic_path",
           "atomic_directory", "check_output", "align_columns", "FORMATS"]

FORMATS = (".npy", ".csv", ".parquet")
_MOVED = ("check_model_folder", "write_model_folder", "read_model_config")
"""Moved to :mod:`gaussify.model_folder` in this release; the old names here go in the next one."""


def __getattr__(name: str):
    """The deprecated names of :data:`_MOVED`, with a ``FutureWarning``; looked up by name on first use, so this
    module imports nothing of gaussify at import or call time of its own functions."""
    if name in _MOVED:
        warnings.warn(f"gaussify.io.{name} is deprecated and will be removed in the next release; use "
                      f"gaussify.model_folder.{name}", FutureWarning, stacklevel=2)
        return getattr(importlib.import_module("gaussify.model_folder"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: unsupported file type {suffix or '(none)'}; use one of {', '.join(FORMATS)}")
    return suffix


def read_table(path: str | os.PathLike, labels: str | None = None, *,
               mmap: bool = False) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    r"""Read a numeric table; returns ``(X, y, column_names)``, the names ``None`` when the file has none.

    A CSV whose first row is all numbers has no header: it is read as data (its columns have no names). ``.npy``
    files hold a 2-D array (no column names, so no label column). Every error is a ``ValueError`` (or
    ``FileNotFoundError``) naming the file and, where it applies, row and column.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npy``, ``.csv`` or ``.parquet`` file.
    labels : str, optional
        A column (csv/parquet) kept apart as ``y`` (any dtype, no empty cells); every other column must be numeric
        and finite.
    mmap : bool, default False
        Memory-map a ``.npy`` file instead of loading it.

    Returns
    -------
    X : numpy.ndarray
        The numeric columns, float64 (as stored for ``.npy``), shape (n, d).
    y : numpy.ndarray or None
        The label column, or None.
    column_names : list of str or None
        The names of the columns of X, or None when the file has none.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.io import read_table, write_table
    >>> _ = write_table("embedding.csv", np.arange(6.0).reshape(3, 2), columns=["a", "b"])
    >>> X, y, names = read_table("embedding.csv", labels="b")
    >>> X.tolist(), y.tolist(), names
    ([[0.0], [2.0], [4.0]], [1.0, 3.0, 5.0], ['a'])
    """
    check_bool(mmap, "mmap")
    path, suffix = _existing(path)
    if suffix == ".npy":
        X = _load_npy(path, labels, mmap)
        _check_finite(path, X, None, first_line=None)
        return X, None, None
    import pandas as pd

    try:
        frame = _read_frame(path, suffix)
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise ValueError(f"{path}: cannot read it as {suffix[1:]}: {_first_line(err)}") from None
    headerless = frame.attrs.get("headerless", False)
    # the CSV line holding row 0 (lines counted from 1), for messages; None for parquet
    first_line = (1 if headerless else 2) if suffix == ".csv" else None
    if frame.shape[0] == 0:
        raise ValueError(f"{path}: no data rows (only a header)")
    names = _feature_columns(path, [str(c) for c in frame.columns], labels, headerless)
    y = None
    if labels is not None:
        column = frame.pop(labels)
        missing = np.flatnonzero(column.isna().to_numpy())
        if missing.size:
            raise ValueError(f"{path}: label column {labels!r} is empty in "
                             f"{_where(missing[0], missing.size, first_line)}; fill those cells or drop the rows")
        y = column.to_numpy()
    bad = [str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise ValueError(f"{path}: column(s) {', '.join(bad)} are not numeric; pass a label column with --labels "
                         "or remove them")
    X = frame.to_numpy(dtype=np.float64)
    _check_finite(path, X, names, first_line)
    return X, y, None if headerless else names


def table_header(path: str | os.PathLike, labels: str | None = None) -> tuple[int | None, list[str]]:
    r"""``(rows, feature column names)`` of a table from its header or metadata, without reading the data.

    ``.npy``: the memory-mapped shape; ``.parquet``: the file metadata; ``.csv``: the header row. The row count is
    None for ``.csv``: counting its rows means reading it all. Columns without names (``.npy``, a CSV without a
    header row) are named ``x0, x1, …``.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npy``, ``.csv`` or ``.parquet`` file.
    labels : str, optional
        A label column to leave out of the names (it must exist).

    Returns
    -------
    rows : int or None
        The number of rows (None for ``.csv``).
    names : list of str
        The feature column names.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.io import table_header
    >>> np.save("embedding.npy", np.zeros((4, 2)))
    >>> table_header("embedding.npy")
    (4, ['x0', 'x1'])
    """
    path, suffix = _existing(path)
    if suffix == ".npy":
        X = _load_npy(path, labels, mmap=True)
        return X.shape[0], [f"x{i}" for i in range(X.shape[1])]
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            metadata = pq.read_metadata(path)
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: cannot read it as parquet: {_first_line(err)}") from None
        return metadata.num_rows, _feature_columns(path, metadata.schema.to_arrow_schema().names, labels)
    names = csv_header(path)
    if names is None:
        import pandas as pd

        width = pd.read_csv(path, header=None, nrows=1).shape[1]
        return None, _feature_columns(path, [f"x{i}" for i in range(width)], labels, headerless=True)
    return None, _feature_columns(path, names, labels)


def csv_header(path: str | os.PathLike) -> list[str] | None:
    r"""The column names in a CSV file's first row, or None when every cell of that row is a number.

    A first row of numbers means the file has no header row: its first row is data.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.csv`` file.

    Returns
    -------
    list of str or None
        The names, or None for a file without a header row.

    Examples
    --------
    >>> from pathlib import Path
    >>> from gaussify.io import csv_header
    >>> _ = Path("named.csv").write_text("a,b\n1,2\n")
    >>> _ = Path("bare.csv").write_text("1,2\n3,4\n")
    >>> csv_header("named.csv"), csv_header("bare.csv")
    (['a', 'b'], None)
    """
    import pandas as pd

    try:
        names = [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise ValueError(f"{path}: cannot read it as csv: {_first_line(err)}") from None
    return None if names and all(_is_number(name) for name in names) else names


def read_target(path: str | os.PathLike, dim: int) -> tuple[np.ndarray, np.ndarray]:
    r"""The Gaussian target N(mean, cov) stored at ``path`` for ``dim``-column embeddings, as float64 arrays.

    The checks (shape against ``dim``, finite, symmetric, positive definite) are the metrics' own; a failed one
    raises a ``ValueError`` that names the file and what is wrong.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.json`` file ``{"mean": [...], "cov": [[...]]}`` or a ``.npz`` file with arrays ``mean`` and ``cov``. (A
        model folder written by ``gaussify fit``, which the CLI's ``--target`` also takes, is read by
        :func:`gaussify.model_folder.embedder_target`.)
    dim : int
        The number of columns of the embeddings.

    Returns
    -------
    mean : numpy.ndarray
        Shape (dim,).
    cov : numpy.ndarray
        Shape (dim, dim).

    Examples
    --------
    >>> import json
    >>> from pathlib import Path
    >>> from gaussify.io import read_target
    >>> _ = Path("target.json").write_text(json.dumps({"mean": [1.0, 0.0], "cov": [[2.0, 0.0], [0.0, 1.0]]}))
    >>> mean, cov = read_target("target.json", 2)
    >>> mean.tolist(), cov.tolist()
    ([1.0, 0.0], [[2.0, 0.0], [0.0, 1.0]])
    """
    check_int(dim, "dim")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    try:
        if path.is_dir():
            raise ValueError("is a folder, not a target file; a model folder written by 'gaussify fit' is read by "
                             "gaussify.model_folder.embedder_target")
        if path.suffix.lower() == ".json":
            content = json.loads(path.read_text(encoding="utf-8"))
            mean, cov = _mean_and_cov(content if isinstance(content, dict) else {}, dim)
        elif path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                mean, cov = _mean_and_cov({name: archive[name] for name in archive.files}, dim)
        else:
            raise ValueError("unsupported target file; use .json or .npz (the command line's --target also takes a "
                             "model folder written by 'gaussify fit')")
        return target_moments((mean, cov), dim)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path}: {err}") from None


def _mean_and_cov(arrays: dict, dim: int) -> tuple:
    missing = [key for key in ("mean", "cov") if key not in arrays]
    if missing:
        raise ValueError(f"no {' and no '.join(missing)}; expected 'mean' (length {dim}) and 'cov' ({dim} x {dim})")
    return arrays["mean"], arrays["cov"]


def _existing(path: str | os.PathLike) -> tuple[Path, str]:
    path = Path(path)
    suffix = _suffix(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not a {suffix[1:]} file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return path, suffix


def _load_npy(path: Path, labels: str | None, mmap: bool) -> np.ndarray:
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
    return X


def _feature_columns(path: Path, names: list[str], labels: str | None, headerless: bool = False) -> list[str]:
    """The column names without the label column, which must exist when given; at least one must remain."""
    if labels is not None and labels not in names:
        note = " (the file has no header row)" if headerless else ""
        raise ValueError(f"{path}: no column named {labels!r}{note} (columns: {', '.join(names)})")
    features = [name for name in names if name != labels]
    if not features:
        raise ValueError(f"{path}: no numeric feature columns")
    return features


def _read_frame(path: Path, suffix: str):
    """The file as a DataFrame; a CSV whose header cells all parse as numbers is re-read without a header
    (``frame.attrs["headerless"]``), so its first row is data, not lost as column names."""
    import pandas as pd

    if suffix == ".parquet":
        return pd.read_parquet(path)
    if csv_header(path) is None:
        frame = pd.read_csv(path, header=None)
        frame.columns = [f"x{i}" for i in range(frame.shape[1])]
        frame.attrs["headerless"] = True
        return frame
    return pd.read_csv(path)


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
    r"""``X``'s columns in the order ``expected`` (the names a model was fitted on), matched by name.

    By position when either side has no names. ``ValueError`` naming the missing and the extra columns.

    Parameters
    ----------
    X : numpy.ndarray
        The table, shape (n, d).
    columns : list of str or None
        Its column names.
    expected : list of str or None
        The names in the order wanted.
    path : str or os.PathLike
        The file X was read from, for the messages.

    Returns
    -------
    numpy.ndarray
        X with its columns reordered.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.io import align_columns
    >>> align_columns(np.array([[1.0, 2.0]]), ["b", "a"], ["a", "b"], "new.csv").tolist()
    [[2.0, 1.0]]
    """
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
    r"""Check an output file before any work is done; returns the path, raises ``ValueError``.

    The file must have a known format, not be a folder, not be one of ``inputs`` (even with ``overwrite``: the input
    would be destroyed while being read) and, unless ``overwrite``, not exist.

    Parameters
    ----------
    path : str or os.PathLike
        The output file.
    inputs : tuple of path-like, default ()
        The files the command reads.
    overwrite : bool, default False
        Allow replacing an existing file.
    formats : tuple of str or None, default FORMATS
        The allowed extensions; ``None`` for any.
    option : str, default "output"
        The option's name in the messages.

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> from pathlib import Path
    >>> from gaussify.io import check_output
    >>> str(check_output("embedding.csv"))
    'embedding.csv'
    >>> _ = Path("embedding.csv").write_text("a\n1\n")
    >>> check_output("embedding.csv")
    Traceback (most recent call last):
        ...
    ValueError: output embedding.csv: already exists; pass --overwrite to replace it
    """
    check_bool(overwrite, "overwrite")
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


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    r"""Yield a temporary file beside ``path``, renamed over ``path`` when the block succeeds (atomic on POSIX).

    Otherwise it is deleted, so a crash never leaves half a file. Parent folders are created. The file gets the
    permissions a plain ``open`` would give it (0666 minus the umask), not mkstemp's private 0600.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.

    Yields
    ------
    pathlib.Path
        The temporary file to write to.

    Examples
    --------
    >>> import os
    >>> import numpy as np
    >>> from gaussify.io import atomic_path
    >>> with atomic_path("embedding.npy") as tmp:
    ...     np.save(tmp, np.zeros((3, 2)))
    >>> os.listdir(".")
    ['embedding.npy']
    """
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
    r"""Yield an empty staging folder beside ``directory`` that replaces it when the block succeeds.

    Two renames: the old folder is moved aside first, then removed; otherwise the staging folder is deleted, so
    the folder is complete or absent. Like :func:`atomic_path`, it gets a plain ``mkdir``'s permissions (0777 minus
    the umask), not mkdtemp's private 0700.

    Parameters
    ----------
    directory : str or os.PathLike
        The folder to write.

    Yields
    ------
    pathlib.Path
        The staging folder to fill.

    Examples
    --------
    >>> import os
    >>> from gaussify.io import atomic_directory
    >>> with atomic_directory("model") as staging:
    ...     _ = (staging / "config.json").write_text("{}")
    >>> os.listdir("."), os.listdir("model")
    (['model'], ['config.json'])
    """
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
    r"""Write ``text`` (UTF-8) to ``path`` through :func:`atomic_path`.

    Parameters
    ----------
    path : str or os.PathLike
        The file (parent folders are created).
    text : str
        Its new content.

    Examples
    --------
    >>> from pathlib import Path
    >>> from gaussify.io import write_text_atomic
    >>> write_text_atomic("reports/summary.md", "KL 0.01 nats\n")
    >>> Path("reports/summary.md").read_text(encoding="utf-8")
    'KL 0.01 nats\n'
    """
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_table(path: str | os.PathLike, Z: np.ndarray, columns: list[str] | None = None) -> Path:
    r"""Write an (n, k) array atomically (:func:`atomic_path`) as ``.npy``, ``.csv`` or ``.parquet``.

    Parameters
    ----------
    path : str or os.PathLike
        The file; its extension picks the format.
    Z : numpy.ndarray
        The array, shape (n, k).
    columns : list of str, optional
        The csv/parquet column names (default ``z0..z{k-1}``).

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.io import table_header, write_table
    >>> str(write_table("embedding.parquet", np.zeros((3, 2))))
    'embedding.parquet'
    >>> table_header("embedding.parquet")
    (3, ['z0', 'z1'])
    """
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
