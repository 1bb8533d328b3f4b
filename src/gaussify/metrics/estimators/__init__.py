r"""The estimators of the shape part J of KL(P ‖ N(μ, Σ)) = J(P) + placement, one file each.

Each is a :class:`~gaussify.metrics.estimators.base.ShapeEstimator`: constructed with its options (the keywords of
:func:`~gaussify.metrics.kl_divergence` it names in ``options``), it estimates J from the self-whitened rows of a
sample and returns parts with the unclipped value ``raw``, its sampling ``sd``, a ``note`` and a bootstrap
``resampler``; :func:`~gaussify.metrics.kl_divergence` adds the placement, the measured interval and the bootstrap.

:data:`REGISTRY` is the one list of them: ``kl_divergence``'s ``method`` (:data:`~gaussify.metrics.KL_METHODS`),
the estimators ``gaussify bench accuracy`` compares and the ``method`` of each dimension of its measured interval
read their names from it, so adding an estimator is one new module plus one line there. Which one
``method="auto"`` uses is :func:`~gaussify.metrics.kl_method`'s rule, chosen by that benchmark.
"""

from __future__ import annotations

from ..._registry import LazyRegistry
from .base import ShapeEstimator

__all__ = ["REGISTRY", "Registry"]


class Registry(LazyRegistry[type[ShapeEstimator]]):
    """Registry name → shape estimator class, given as ``"module:Class"`` paths inside this package and imported
    on first lookup.

    Examples
    --------
    >>> from gaussify.metrics.estimators import REGISTRY
    >>> list(REGISTRY), REGISTRY["knn"]().label
    (['knn', 'gaussianization'], 'kNN k=16')
    """

    package = __name__


REGISTRY: Registry = Registry({
    "knn": "knn:KNNNegentropy",
    "gaussianization": "gaussianization:GaussianizationNegentropy",
})
"""Every estimator of J by name, in the order of :data:`~gaussify.metrics.KL_METHODS` (after ``"auto"``)."""
