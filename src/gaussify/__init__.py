"""gaussify: make a learned embedding Gaussian, and measure how Gaussian it is.

Names are imported lazily (PEP 562), so ``gaussify.metrics`` and ``gaussify.plots`` work without
loading torch, and ``import gaussify`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from .regularizers import REGISTRY as _REGISTRY  # torch-free: its classes are imported on lookup

_EXPORTS = {
    "Gaussian": "target",
    "make_regularizer": "regularizers", "GaussianHead": "regularizers", "Posterior": "regularizers",
    "Combination": "regularizers", **{_REGISTRY.class_name(name): "regularizers" for name in _REGISTRY},
    "evaluate": "metrics", "GaussianityReport": "metrics", "evaluate_streaming": "metrics",
    "GaussianEmbedder": "embedder", "TrainingDiverged": "training", "GaussianizingFlow": "flows",
    "most_gaussian_tsne": "tsne", "GaussianTSNE": "tsne",
    "PCAWhitening": "baselines", "QuantileGaussianizer": "baselines", "RBIG": "baselines",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gaussify' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
