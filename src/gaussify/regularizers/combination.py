"""Weighted sums of regularizers, named by a spec such as ``"swd+0.01*knn"``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import cast

import torch
from torch import Tensor, nn

from .._validation import InvalidParameterError, RandomState, is_real_number
from ..target import TargetLike
from .base import Regularizer

__all__ = ["Combination", "parse_spec"]

_TERM = re.compile(r"^(?:(?P<coef>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*\*\s*)?(?P<name>[a-z][a-z-]*)$")


def parse_spec(spec: str, names: Mapping[str, object]) -> list[tuple[float, str]]:
    """``"swd+0.01*knn"`` → [(1.0, "swd"), (0.01, "knn")]: terms joined by ``+``, each ``[c*]name`` with
    c > 0 and ``name`` a key of ``names``, each name at most once. Raises ValueError otherwise.

    Parameters
    ----------
    spec : str
        The sum, e.g. ``"swd+0.01*knn"``.
    names : mapping
        The known names (e.g. :data:`~gaussify.regularizers.REGISTRY`).

    Returns
    -------
    list of (float, str)
        (coefficient, name) per term, in the order of ``spec``.

    Examples
    --------
    >>> from gaussify.regularizers import REGISTRY, parse_spec
    >>> parse_spec("swd+0.01*knn", REGISTRY)
    [(1.0, 'swd'), (0.01, 'knn')]
    """
    if not isinstance(spec, str):
        raise ValueError(f"a regularizer is named by a string, got {type(spec).__name__}")
    terms = []
    for raw in spec.split("+"):
        match = _TERM.match(raw.strip())
        if match is None or match["name"] not in names:
            raise ValueError(f"unknown regularizer {raw.strip()!r} in {spec!r}; choose from {sorted(names)}, "
                             "optionally combined as e.g. 'swd+0.01*knn'")
        coef = float(match["coef"] or 1.0)
        if coef <= 0:
            raise ValueError(f"coefficients must be positive, got {raw.strip()!r} in {spec!r}")
        terms.append((coef, match["name"]))
    parts = [name for _, name in terms]
    if len(set(parts)) != len(parts):
        raise ValueError(f"each regularizer may appear once in {spec!r}")
    return terms


class Combination(Regularizer):
    r"""R(z) = Σ_j c_j R_j(z): several regularizers on the same (global) batch.

    Each part sees the batch once gathered (the parts' own ``penalty`` is called, so the batch is
    gathered under ``torch.distributed`` only once) and draws its random directions from its own
    seed (``seed + j``, from :func:`make_regularizer`). Every part takes points (:attr:`Regularizer.takes`); so
    does the sum.

    Parameters
    ----------
    target : Gaussian, int or (mean, cov)
        The target: a :class:`~gaussify.Gaussian`, an int d for N(0, I_d) or any target form of the metrics.
    parts : list of (float, Regularizer)
        (coefficient, regularizer) pairs, the regularizers built for the same target, each taking points.
    random_state : None, int or numpy.random.Generator, default None
        Unused beyond the parts' own seeds; accepted like every regularizer's.

    Examples
    --------
    >>> import torch
    >>> from gaussify import MMD, Combination, SlicedWasserstein
    >>> reg = Combination(2, [(1.0, SlicedWasserstein(2, random_state=0)), (0.5, MMD(2))])
    >>> reg.extra_repr()
    '1*swd + 0.5*mmd'
    >>> z = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    >>> reg(z).shape
    torch.Size([])
    """

    name = "combination"

    def __init__(self, target: TargetLike, parts: list[tuple[float, Regularizer]], *,
                 random_state: RandomState = None) -> None:
        if not (isinstance(parts, (list, tuple)) and all(
                isinstance(pair, (list, tuple)) and len(pair) == 2 and is_real_number(pair[0])
                and isinstance(pair[1], Regularizer) for pair in parts)):
            raise InvalidParameterError(f"parts must be a list of (float, Regularizer) pairs, got {parts!r}")
        if not parts:
            raise ValueError("a combination needs at least one part")
        super().__init__(target, random_state=random_state)
        for _, part in parts:
            if part.takes != "points":
                raise ValueError(f"{type(part).__name__} cannot be a part of a combination: it takes a "
                                 f"{part.takes}, not a batch of points")
        self.coefficients = [float(c) for c, _ in parts]
        self.parts = nn.ModuleList(part for _, part in parts)
        self.min_batch = max(part.min_batch for _, part in parts)

    def penalty(self, z: Tensor) -> Tensor:
        parts = [cast(Regularizer, part) for part in self.parts]  # nn.ModuleList yields nn.Module
        return torch.stack([c * part.penalty(z) for c, part in zip(self.coefficients, parts)]).sum()

    def extra_repr(self) -> str:
        return " + ".join(f"{c:g}*{part.name}" for c, part in zip(self.coefficients, self.parts))
