"""Differentiable penalties that push a batch of embeddings towards a Gaussian target.

``loss = task_loss + weight * reg(z)``. Every regularizer is an ``nn.Module`` whose
``forward`` takes z of shape (n, d) (a :class:`~gaussify.Posterior` for ``KLDivergence``)
and returns a 0-dim tensor computed on the global batch under ``torch.distributed``.
"""

from __future__ import annotations

from ..target import TargetLike
from .adversarial import Adversarial
from .base import Regularizer
from .cramer_wold import CramerWold
from .kl import GaussianHead, KLDivergence, Posterior
from .mmd import MMD
from .moments import MomentMatching
from .sigreg import SIGReg
from .sliced import SlicedWasserstein

REGISTRY: dict[str, type[Regularizer]] = {
    "kl": KLDivergence,
    "moments": MomentMatching,
    "adversarial": Adversarial,
    "mmd": MMD,
    "swd": SlicedWasserstein,
    "sigreg": SIGReg,
    "cramer-wold": CramerWold,
}


def make_regularizer(name: str, target: TargetLike, **kwargs) -> Regularizer:
    """Build a regularizer by registry name (``"kl"``, ``"moments"``, ``"adversarial"``, ``"mmd"``,
    ``"swd"``, ``"sigreg"``, ``"cramer-wold"``); ``target`` is a Gaussian or an int d for N(0, I_d)."""
    try:
        cls = REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown regularizer {name!r}; choose one of {sorted(REGISTRY)}") from None
    return cls(target, **kwargs)


__all__ = ["REGISTRY", "make_regularizer", "Regularizer", "KLDivergence", "GaussianHead", "Posterior",
           "MomentMatching", "Adversarial", "MMD", "SlicedWasserstein", "SIGReg", "CramerWold"]
