"""Differentiable penalties that push a batch of embeddings towards a Gaussian target.

``loss = task_loss + weight * reg(z)``. Every regularizer is an ``nn.Module`` whose ``forward`` takes what its
class declares in :attr:`Regularizer.takes`: z of shape (n, d) (``"points"``) or a :class:`~gaussify.Posterior`
(``"posterior"``, :class:`KLDivergence`), and returns a 0-dim tensor computed on the global batch under
``torch.distributed``.

:data:`REGISTRY` is the one list of regularizers: the CLI, the estimator, the top-level exports, the benchmarks
and the tests read their names from it, so adding a regularizer is one new module plus one line there. Names are
imported lazily (PEP 562): the registry's names are known without loading torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .._registry import LazyRegistry
from .._validation import RandomState, as_seed, renamed_parameters

if TYPE_CHECKING:
    from ..target import TargetLike
    from .base import Regularizer


class Registry(LazyRegistry["type[Regularizer]"]):
    """Registry name → regularizer class, given as ``"module:Class"`` paths inside this package and imported on
    first lookup (so ``list(REGISTRY)`` needs no torch).

    Parameters
    ----------
    paths : dict of str to str
        Name → ``"module:Class"``, the module relative to :mod:`gaussify.regularizers`.

    Examples
    --------
    >>> from gaussify.regularizers import REGISTRY, Registry
    >>> sorted(REGISTRY)
    ['adversarial', 'cramer-wold', 'kl', 'knn', 'mmd', 'moments', 'placement', 'pursued-swd', 'sigreg', 'swd']
    >>> REGISTRY.class_name("knn"), REGISTRY["knn"].__name__
    ('NearestNeighborKL', 'NearestNeighborKL')
    >>> Registry({"swd": "sliced:SlicedWasserstein"})["swd"].name
    'swd'
    """

    package = __name__


REGISTRY: Registry = Registry({
    "kl": "kl:KLDivergence",
    "moments": "moments:MomentMatching",
    "adversarial": "adversarial:Adversarial",
    "mmd": "mmd:MMD",
    "swd": "sliced:SlicedWasserstein",
    "sigreg": "sigreg:SIGReg",
    "cramer-wold": "cramer_wold:CramerWold",
    "knn": "knn:NearestNeighborKL",
    "placement": "placement:PlacementKL",
    "pursued-swd": "pursued:PursuedSlicedWasserstein",
})
"""Every regularizer by name (the names of :func:`make_regularizer`, the CLI and ``GaussianEmbedder``)."""

_OTHERS = {"Regularizer": "base", "GaussianHead": "kl", "Posterior": "kl", "Combination": "combination",
           "parse_spec": "combination"}
_CLASSES = {REGISTRY.class_name(name): name for name in REGISTRY}


@renamed_parameters(seed="random_state")
def make_regularizer(name: str, target: TargetLike, *, random_state: RandomState = None, **kwargs: Any) -> Regularizer:
    """Build a regularizer by its :data:`REGISTRY` name or a weighted sum of them such as ``"swd+0.01*knn"`` (a
    :class:`Combination`; then ``kwargs`` maps part names to their keyword arguments, e.g. ``{"knn": {"k": 2}}``).

    ``target`` is a :class:`~gaussify.Gaussian` or an int d for N(0, I_d); ``random_state`` (None, an int or a
    NumPy Generator) seeds the module's generator, and part j of a sum gets seed + j.

    Parameters
    ----------
    name : str
        A :data:`REGISTRY` name or a sum of them, each at most once with a positive coefficient.
    target : Gaussian, int or (mean, cov)
        The target of every part.
    random_state : None, int or numpy.random.Generator, default None
        Seed of the module's generator; part j of a sum gets seed + j.
    **kwargs
        Keyword arguments of the regularizer's class; for a sum, a dict per part name.

    Returns
    -------
    Regularizer
        The regularizer, or a :class:`Combination` for a sum.

    Examples
    --------
    >>> import torch
    >>> from gaussify import make_regularizer
    >>> make_regularizer("knn", 2, k=2)
    NearestNeighborKL(dim=2, standard_target=True, k=2)
    >>> reg = make_regularizer("swd+0.01*knn", 2, random_state=0, knn={"k": 2})
    >>> reg.extra_repr()
    '1*swd + 0.01*knn'
    >>> reg(torch.randn(64, 2)).shape
    torch.Size([])
    """
    from .combination import Combination, parse_spec

    terms = parse_spec(name, REGISTRY)
    if len(terms) == 1 and terms[0][0] == 1.0:
        return REGISTRY[terms[0][1]](target, random_state=random_state, **kwargs)
    unknown = sorted(set(kwargs) - {part for _, part in terms})
    if unknown:
        raise ValueError(f"keyword arguments of a combination are keyed by its parts {[p for _, p in terms]}, "
                         f"got {unknown}")
    for _, part in terms:
        if REGISTRY[part].takes != "points":
            raise ValueError(f"{part!r} cannot be combined: it takes a {REGISTRY[part].takes}, not a batch of points")
    seed = as_seed(random_state)
    parts = [(coef, REGISTRY[part](target, random_state=seed + j, **kwargs.get(part, {})))
             for j, (coef, part) in enumerate(terms)]
    return Combination(target, parts, random_state=seed)


__all__ = ["REGISTRY", "Registry", "make_regularizer", *_OTHERS, *_CLASSES]


def __getattr__(name: str) -> Any:
    if name in _CLASSES:
        value = REGISTRY[_CLASSES[name]]
    elif name in _OTHERS:
        value = getattr(importlib.import_module(f".{_OTHERS[name]}", __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
