"""Reading and writing numeric tables by extension: ``.npy``, ``.csv`` (header row), ``.parquet``."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

__all__ = ["read_table", "table_header", "read_target", "write_table", "write_text_atomic", "atomic_path", "atomic_directory", "FORMATS"]

FORMATS = (".npy", ".csv", ".parquet")


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: unsupported file type {suffix or '(none)'}; use one of {', '.join(FORMATS)}")
    return suffix


def read_table(path: str | os.PathLike, labels: str | None = None, *,
               mmap: bool = False) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Read a numeric table; returns ``(X, y, column_names)``.

    ``labels`` names a column (csv/parquet) kept apart as ``y`` (any dtype); every other column
    must be numeric. ``.npy`` files hold a 2-D array (no column names, so no label column);
    ``mmap=True`` memory-maps them instead of loading.
    """
    path, suffix = _existing(path)
    if suffix == ".npy":
        X = _load_npy(path, labels, mmap)
        return X, None, [f"x{i}" for i in range(X.shape[1])]
    import pandas as pd

    try:
        frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise ValueError(f"{path}: cannot read it as {suffix[1:]}: {err}") from None
    names = _feature_columns(path, [str(c) for c in frame.columns], labels)
    y = None if labels is None else frame.pop(labels).to_numpy()
    bad = [str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise ValueError(f"{path}: column(s) {', '.join(bad)} are not numeric; pass a label column with --labels "
                         "or remove them")
    return frame.to_numpy(dtype=np.float64), y, names


def table_header(path: str | os.PathLike, labels: str | None = None) -> tuple[int | None, list[str]]:
    """``(rows, feature column names)`` of a table from its header or metadata, without reading the data
    (``.npy``: the memory-mapped shape; ``.parquet``: the file metadata; ``.csv``: the header row). The row
    count is None for ``.csv``: counting its rows means reading it all."""
    path, suffix = _existing(path)
    if suffix == ".npy":
        X = _load_npy(path, labels, mmap=True)
        return X.shape[0], [f"x{i}" for i in range(X.shape[1])]
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            metadata = pq.read_metadata(path)
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: cannot read it as parquet: {err}") from None
        return metadata.num_rows, _feature_columns(path, metadata.schema.to_arrow_schema().names, labels)
    import pandas as pd

    try:
        names = [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise ValueError(f"{path}: cannot read it as csv: {err}") from None
    return None, _feature_columns(path, names, labels)


def read_target(path: str | os.PathLike, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The Gaussian target N(mean, cov) stored at ``path`` for ``dim``-column embeddings, as float64 arrays.

    ``path`` is a ``.json`` file ``{"mean": [...], "cov": [[...]]}``, a ``.npz`` file with arrays ``mean``
    and ``cov``, or a model folder written by ``gaussify fit``: its config records no target because
    :class:`~gaussify.GaussianEmbedder` always trains towards N(0, I_k), k = ``n_components``. The checks
    (shape against ``dim``, finite, symmetric, positive definite) are the metrics' own; a failed one raises a
    ``ValueError`` that names the file and what is wrong.
    """
    from .metrics._common import target_moments

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    try:
        if path.is_dir():
            k = _model_dimension(path)
            mean, cov = np.zeros(k), np.eye(k)
        elif path.suffix.lower() == ".json":
            content = json.loads(path.read_text(encoding="utf-8"))
            mean, cov = _mean_and_cov(content if isinstance(content, dict) else {}, dim)
        elif path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                mean, cov = _mean_and_cov({name: archive[name] for name in archive.files}, dim)
        else:
            raise ValueError("unsupported target file; use .json, .npz or a model folder written by 'gaussify fit'")
        return target_moments((mean, cov), dim)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path}: {err}") from None


def _mean_and_cov(arrays: dict, dim: int) -> tuple:
    missing = [key for key in ("mean", "cov") if key not in arrays]
    if missing:
        raise ValueError(f"no {' and no '.join(missing)}; expected 'mean' (length {dim}) and 'cov' ({dim} x {dim})")
    return arrays["mean"], arrays["cov"]


def _model_dimension(folder: Path) -> int:
    """``n_components`` of the model saved in ``folder``, from its config.json alone (no weights read)."""
    from .embedder import CONFIG_FILE, MODEL_FORMAT

    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise ValueError(f"no {CONFIG_FILE}, so not a model folder written by 'gaussify fit'")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if not isinstance(config, dict) or config.get("format") != MODEL_FORMAT:
        raise ValueError(f"{CONFIG_FILE} is not that of a {MODEL_FORMAT} model")
    return config["params"]["n_components"]


def _existing(path: str | os.PathLike) -> tuple[Path, str]:
    path = Path(path)
    suffix = _suffix(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return path, suffix


def _load_npy(path: Path, labels: str | None, mmap: bool) -> np.ndarray:
    if labels is not None:
        raise ValueError(f"{path}: .npy files have no column names, so --labels cannot be used")
    X = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    if X.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D array, got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.number):
        raise ValueError(f"{path}: expected numbers, got dtype {X.dtype}")
    return X


def _feature_columns(path: Path, names: list[str], labels: str | None) -> list[str]:
    """The column names without the label column, which must exist when given; at least one must remain."""
    if labels is not None and labels not in names:
        raise ValueError(f"{path}: no column named {labels!r} (columns: {', '.join(names)})")
    features = [name for name in names if name != labels]
    if not features:
        raise ValueError(f"{path}: no numeric feature columns")
    return features


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
            os.replace(directory, old / directory.name)
            os.replace(staging, directory)
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


def write_table(path: str | os.PathLike, Z: np.ndarray, prefix: str = "z") -> Path:
    """Write an (n, k) array with columns ``z0..z{k-1}``, atomically (:func:`atomic_path`)."""
    path = Path(path)
    suffix = _suffix(path)
    with atomic_path(path) as tmp:
        if suffix == ".npy":
            np.save(tmp, Z)
        else:
            import pandas as pd

            frame = pd.DataFrame(Z, columns=[f"{prefix}{i}" for i in range(Z.shape[1])])
            frame.to_csv(tmp, index=False) if suffix == ".csv" else frame.to_parquet(tmp, index=False)
    return path
