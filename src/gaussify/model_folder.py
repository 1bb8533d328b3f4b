"""Model folders: what a saved gaussify model is on disk, and the one way to check, write and read one.

A model folder holds ``config.json`` (hyperparameters, shapes, history, and a ``format`` tag naming the class and
its version) and the weights as safetensors (never pickle), plus any named parts (the estimator's post-hoc map in
``post/``). The file names and format tags of every saved model live here, so code that only has to recognise a
model folder (the CLI's ``--target``) reads them without importing torch or the model's class.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ._validation import check_bool, check_int, target_moments
from .io import atomic_directory

__all__ = ["CONFIG_FILE", "EMBEDDER_FORMAT", "EMBEDDER_WEIGHTS", "POST_FOLDER", "FLOW_FORMAT", "FLOW_WEIGHTS",
           "RBIG_FORMAT", "RBIG_WEIGHTS", "check_model_folder", "write_model_folder", "read_model_config",
           "embedder_target"]

CONFIG_FILE = "config.json"
"""The config file of every model folder."""
EMBEDDER_FORMAT, EMBEDDER_WEIGHTS = "gaussify.GaussianEmbedder/1", "encoder.safetensors"
"""The ``format`` tag and weights file of a :class:`~gaussify.GaussianEmbedder`."""
POST_FOLDER = "post"
"""The subfolder of an estimator's model folder that holds its post-hoc map."""
FLOW_FORMAT, FLOW_WEIGHTS = "gaussify.GaussianizingFlow/1", "flow.safetensors"
"""The ``format`` tag and weights file of a :class:`~gaussify.GaussianizingFlow`."""
RBIG_FORMAT, RBIG_WEIGHTS = "gaussify.RBIG/1", "rbig.safetensors"
"""The ``format`` tag and weights file of an :class:`~gaussify.RBIG`."""


def check_model_folder(directory: str | os.PathLike, *, files: tuple[str, ...], config: str, model_format: str,
                       overwrite: bool = False) -> Path:
    r"""Check that saving a model to ``directory`` destroys nothing the user owns; returns the resolved path.

    Allowed: a new path, an empty folder, or (with ``overwrite``) an earlier model of ``model_format``, i.e. a
    folder whose ``config`` file declares that format and which holds nothing but the model's ``files``. Refused
    always (``ValueError``): a file, a folder with anything else in it, and the current folder or one that contains
    it.

    Parameters
    ----------
    directory : str or os.PathLike
        The model folder.
    files : tuple of str
        The names of the files a model folder holds.
    config : str
        The name of its config file.
    model_format : str
        The format its config must declare.
    overwrite : bool, default False
        Allow replacing an earlier model.

    Returns
    -------
    pathlib.Path
        The resolved folder.

    Examples
    --------
    >>> from pathlib import Path
    >>> from gaussify.model_folder import check_model_folder
    >>> check_model_folder("model", files=("config.json",), config="config.json", model_format="demo/1").name
    'model'
    >>> _ = Path("notes").mkdir(), Path("notes/todo.txt").write_text("keep me")
    >>> check_model_folder("notes", files=("config.json",), config="config.json", model_format="demo/1")
    Traceback (most recent call last):
        ...
    ValueError: notes: is not empty and not a gaussify model folder (it holds todo.txt); choose a new or empty folder
    """
    check_bool(overwrite, "overwrite")
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
    if foreign or not _declares_format(path, config, model_format):
        shown = ", ".join(foreign[:5] or entries[:5]) + (" …" if len(foreign or entries) > 5 else "")
        raise ValueError(f"{directory}: is not empty and not a gaussify model folder (it holds {shown}); "
                         "choose a new or empty folder")
    if not overwrite:
        raise ValueError(f"{directory}: holds an earlier gaussify model; pass --overwrite (overwrite=True) to "
                         "replace it")
    return path


def write_model_folder(directory: str | os.PathLike, config: dict, weights: dict, *, config_file: str,
                       weights_file: str, parts: dict[str, Any] | None = None) -> None:
    r"""Write ``weights`` as safetensors and ``config`` as JSON into ``directory``, atomically.

    The write goes through :func:`gaussify.io.atomic_directory` (complete or absent; never pickle). Check
    ``directory`` first with :func:`check_model_folder`.

    Parameters
    ----------
    directory : str or os.PathLike
        The model folder.
    config : dict
        JSON-ready configuration.
    weights : dict
        Name → torch tensor, or name → NumPy array.
    config_file : str
        The config's file name.
    weights_file : str
        The weights' file name.
    parts : dict, optional
        Maps a subfolder name to a fitted model whose ``save`` writes it there (e.g. an estimator's post-hoc map),
        inside the same atomic write.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.model_folder import read_model_config, write_model_folder
    >>> write_model_folder("model", {"format": "demo/1"}, {"scale": np.ones(2)}, config_file="config.json",
    ...                    weights_file="weights.safetensors")
    >>> read_model_config("model", config_file="config.json", model_format="demo/1")
    {'format': 'demo/1'}
    """
    with atomic_directory(directory) as staging:
        if all(isinstance(value, np.ndarray) for value in weights.values()):
            from safetensors.numpy import save_file as save_arrays

            save_arrays({name: np.ascontiguousarray(value) for name, value in weights.items()}, staging / weights_file)
        else:
            from safetensors.torch import save_file

            save_file({name: tensor.contiguous() for name, tensor in weights.items()}, staging / weights_file)
        (staging / config_file).write_text(json.dumps(config, indent=2))
        for name, part in (parts or {}).items():
            part.save(staging / name)


def read_model_config(directory: str | os.PathLike, *, config_file: str, model_format: str) -> dict:
    r"""The JSON config of the model saved in ``directory``.

    Parameters
    ----------
    directory : str or os.PathLike
        The model folder.
    config_file : str
        The config's file name.
    model_format : str
        The format the config must declare.

    Returns
    -------
    dict
        The config; ``FileNotFoundError`` without one, ``ValueError`` unless it declares ``model_format``.

    Examples
    --------
    >>> import json
    >>> from pathlib import Path
    >>> from gaussify.model_folder import read_model_config
    >>> Path("model").mkdir()
    >>> _ = Path("model/config.json").write_text(json.dumps({"format": "demo/1", "params": {"n_components": 2}}))
    >>> read_model_config("model", config_file="config.json", model_format="demo/1")["params"]
    {'n_components': 2}
    """
    config_path = Path(directory) / config_file
    if not config_path.is_file():
        raise FileNotFoundError(f"no gaussify model in {directory} (missing {config_file})")
    config = json.loads(config_path.read_text())
    if not isinstance(config, dict) or config.get("format") != model_format:
        raise ValueError(f"{config_path} is not a {model_format.split('/')[0]} model")
    return config


def _declares_format(directory: Path, config_file: str, model_format: str) -> bool:
    try:
        read_model_config(directory, config_file=config_file, model_format=model_format)
    except (OSError, ValueError):
        return False
    return True


def embedder_target(directory: str | os.PathLike, dim: int) -> tuple[np.ndarray, np.ndarray]:
    r"""The target of the :class:`~gaussify.GaussianEmbedder` saved in ``directory``: N(0, I_k), k its
    ``n_components``, read from its config alone (no weights, no torch); the CLI's ``--target`` for a model folder.

    The config records no target because the estimator always trains towards N(0, I_k). The checks against ``dim``
    are those of :func:`gaussify.io.read_target`; a failed one raises a ``ValueError`` naming the folder.

    Parameters
    ----------
    directory : str or os.PathLike
        A model folder written by ``gaussify fit`` (:meth:`gaussify.GaussianEmbedder.save`).
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
    >>> from gaussify.model_folder import embedder_target
    >>> Path("model").mkdir()
    >>> config = {"format": "gaussify.GaussianEmbedder/1", "params": {"n_components": 2}}
    >>> _ = Path("model/config.json").write_text(json.dumps(config))
    >>> mean, cov = embedder_target("model", 2)
    >>> mean.tolist(), cov.tolist()
    ([0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]])
    """
    check_int(dim, "dim")
    path = Path(directory)
    try:
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no such folder")
        if not (path / CONFIG_FILE).is_file():
            raise ValueError(f"no {CONFIG_FILE}, so not a model folder written by 'gaussify fit'")
        k = read_model_config(path, config_file=CONFIG_FILE, model_format=EMBEDDER_FORMAT)["params"]["n_components"]
        return target_moments((np.zeros(k), np.eye(k)), dim)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path}: {err}") from None
