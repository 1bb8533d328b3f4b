"""Differentiable penalties that push a batch of embeddings towards a Gaussian target.

``loss = task_loss + weight * reg(z)``. Every regularizer is an ``nn.Module`` whose
``forward`` takes z of shape (n, d) (a :class:`~gaussify.Posterior` for ``KLDivergence``)
and returns a 0-dim tensor computed on the global batch under ``torch.distributed``.
"""

from __future__ import annotations

from ..target import TargetLike
from .adversarial import Adversarial
from .base import Regularizer
from .combination import Combination, parse_spec
from .cramer_wold import CramerWold
from .kl import GaussianHead, KLDivergence, Posterior
from .knn import NearestNeighborKL
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
    "knn": NearestNeighborKL,
}


def make_regularizer(name: str, target: TargetLike, *, seed: int | None = None, **kwargs) -> Regularizer:
    """Build a regularizer by registry name (``"kl"``, ``"moments"``, ``"adversarial"``, ``"mmd"``,
    ``"swd"``, ``"sigreg"``, ``"cramer-wold"``, ``"knn"``) or a weighted sum of them such as
    ``"swd+0.01*knn"`` (a :class:`Combination`; then ``kwargs`` maps part names to their keyword
    arguments, e.g. ``{"knn": {"k": 2}}``); ``target`` is a Gaussian or an int d for N(0, I_d)."""
    terms = parse_spec(name, REGISTRY)
    if len(terms) == 1 and terms[0][0] == 1.0:
        return REGISTRY[terms[0][1]](target, seed=seed, **kwargs)
    unknown = sorted(set(kwargs) - {part for _, part in terms})
    if unknown:
        raise ValueError(f"keyword arguments of a combination are keyed by its parts {[p for _, p in terms]}, "
                         f"got {unknown}")
    if any(part == "kl" for _, part in terms):
        raise ValueError("'kl' cannot be combined: it regularizes a posterior, not a batch of points")
    seeds = [None] * len(terms) if seed is None else [seed + j for j in range(len(terms))]
    parts = [(coef, REGISTRY[part](target, seed=s, **kwargs.get(part, {}))) for (coef, part), s in zip(terms, seeds)]
    return Combination(target, parts, seed=seed)


__all__ = ["REGISTRY", "make_regularizer", "Regularizer", "KLDivergence", "GaussianHead", "Posterior",
           "MomentMatching", "Adversarial", "MMD", "SlicedWasserstein", "SIGReg", "CramerWold",
           "NearestNeighborKL", "Combination", "parse_spec"]
