"""The most Gaussian t-SNE: a perplexity × seed × dof sweep with openTSNE, keeping the run closest to N(0, I).

t-SNE (van der Maaten & Hinton 2008) minimises KL(P || Q) between input affinities P, set by the
perplexity, and Student-t affinities Q of the embedding (dof = 1 is standard t-SNE; smaller dof gives
heavier tails, Kobak et al. 2019). The result depends on the perplexity and, through the random
initialisation, on the seed. :func:`most_gaussian_tsne` runs every combination, scores each run with
:func:`gaussify.metrics.divergence.kl_divergence` and keeps the argmin of the chosen criterion.

Standardisation before scoring. A t-SNE embedding is defined up to translation, overall scale and
rotation (the cost depends on pairwise distances only through Q, which is invariant to rotations and
translations; the scale is set by the optimiser, not by the data). Each run is therefore centred and
divided by one scalar, z = (y − ȳ) / s with s² = tr Σ̂ / d (so the sample has zero mean and unit
average variance). Rotation needs no treatment: KL to N(0, I) is rotation invariant. The embedding is
*not* whitened: its aspect ratio is a genuine outcome of the optimisation, and the placement term of
the score reports it (an elongated run scores worse on ``criterion="kl"``, not on ``"negentropy"``,
which is affine invariant). Use ``post="whiten"`` to remove it afterwards.

Post-processing. ``post`` (``"whiten"``, ``"quantile"``, ``"rbig"`` or a transformer) is fitted on the
chosen run only, after the choice: the search ranks t-SNE runs, not how easily a baseline repairs them.

Threads. ``n_jobs`` defaults to 1: on cores shared with other work a parallel run waits for its slowest,
descheduled thread at every step, and all cores were several times slower than one (1257 digits rows, 4 runs,
two loaded cores: 78 s with ``n_jobs=-1``, 26 s with 1; on idle cores -1 was 1.3 times faster). Pass
``n_jobs=-1`` on a machine of your own.
"""

from __future__ import annotations

import inspect
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from openTSNE import TSNE
from openTSNE.affinity import PerplexityBasedNN
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from ._validation import as_sample, check_bool, check_int, check_n_jobs, check_real
from .baselines import make_baseline
from .metrics.divergence import kl_divergence

__all__ = ["most_gaussian_tsne", "TSNESearchResult", "GaussianTSNE", "CRITERIA"]

CRITERIA = ("kl", "negentropy")  # each is also a column of the result rows
_OWNED_PARAMS = {"perplexity", "initialization", "random_state", "dof", "n_components", "n_jobs", "verbose"}
_AFFINITY_PARAMS = {"metric": "metric", "metric_params": "metric_params", "neighbors": "method",
                    "knn_kwargs": "knn_kwargs"}  # TSNE keyword -> PerplexityBasedNN keyword
_TSNE_PARAMS = set(inspect.signature(TSNE.__init__).parameters) - {"self"} - _OWNED_PARAMS


@dataclass
class TSNESearchResult:
    """Outcome of :func:`most_gaussian_tsne`.

    ``embedding``: the chosen run, standardised (and post-processed if ``post`` was given), shape (n, k).
    ``best``: its row of ``results`` (perplexity, seed, dof, kl, negentropy, placement, tsne_kl, seconds),
    plus post_kl, post_negentropy, post_placement when ``post`` was given.
    ``results``: one row (a dict of plain Python numbers) per (perplexity, seed, dof) run.
    ``center``, ``scale``: the chosen run's standardisation z = (y − center) / scale; ``tsne_embedding``: that
    run as an ``openTSNE.TSNEEmbedding``; ``post``: the fitted post-processing transformer or ``None``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from gaussify import most_gaussian_tsne
    >>> X = load_digits().data[:100]
    >>> search = most_gaussian_tsne(X, perplexities=(5, 10), seeds=(0,), n_iter=50)
    >>> search.embedding.shape, len(search.results), search.criterion
    ((100, 2), 2, 'kl')
    >>> search.best == min(search.results, key=lambda row: row["kl"])
    True
    >>> search.transform(X[:5]).shape
    (5, 2)
    """

    embedding: np.ndarray
    best: dict[str, Any]
    results: list[dict[str, Any]]
    criterion: str
    n_features_in: int
    post: Any = None
    center: np.ndarray | None = field(default=None, repr=False)
    scale: float = field(default=1.0, repr=False)
    tsne_embedding: Any = field(default=None, repr=False)

    def transform(self, X_new: Any, **params: Any) -> np.ndarray:
        """Embed new points into the chosen run: openTSNE's ``TSNEEmbedding.transform`` (each new point is
        optimised against the fixed training embedding; ``params`` go to it, e.g. ``n_iter``), then the run's
        standardisation and the fitted ``post`` transform. The perplexity is the chosen run's,
        ``best["perplexity"]``, unless ``params`` give one (openTSNE's own default is 5).

        New points land close to their neighbours' positions, so a held-out set is usually more clustered
        (less Gaussian) than the training embedding: score it separately rather than assume ``best``."""
        X_new = as_sample(X_new, min_rows=1, name="X_new")
        if X_new.shape[1] != self.n_features_in:
            raise ValueError(f"X_new has {X_new.shape[1]} features, the embedding was fitted on {self.n_features_in}")
        Y = np.asarray(self.tsne_embedding.transform(X_new, **{"perplexity": self.best["perplexity"], **params}))
        assert self.center is not None  # set with tsne_embedding by most_gaussian_tsne
        Z = (Y - self.center) / self.scale
        return Z if self.post is None else self.post.transform(Z)


def _standardise(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    center = Y.mean(axis=0)
    scale = float(np.sqrt(((Y - center) ** 2).mean()))
    return (Y - center) / scale, center, scale


def _scores(Z: np.ndarray, n_jobs: int) -> dict[str, float]:
    est = kl_divergence(Z, random_state=0, n_jobs=n_jobs)
    return {"kl": float(est.value), "negentropy": float(est.negentropy), "placement": float(est.placement)}


def _check_grid(name: str, values: Any, kind: type) -> list:
    if isinstance(values, np.ndarray) and values.ndim == 1:
        values = values.tolist()
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
        raise TypeError(f"{name} must be a non-empty sequence, got {values!r}")
    out = []
    for v in values:
        out.append(check_int(v, name, minimum=0) if kind is int else check_real(v, name, strict=True))
    if len(set(out)) != len(out):
        raise ValueError(f"{name} contains duplicates: {list(values)!r}")
    return out


def _check_post(post: Any, random_state: int) -> Any:
    """An unfitted copy of ``post``, its ``random_state`` set to ours if it has one left at None."""
    if post is None:
        return None
    if isinstance(post, str):
        post = make_baseline(post)
    elif hasattr(post, "fit") and hasattr(post, "transform"):
        post = clone(post)
    else:
        raise TypeError(f"post must be None, 'whiten', 'quantile', 'rbig' or a transformer, got {type(post).__name__}")
    params = post.get_params(deep=False)
    if "random_state" in params and params["random_state"] is None:
        post.set_params(random_state=random_state)
    return post


def most_gaussian_tsne(X: Any, perplexities: Sequence[float] = (5, 15, 30, 50, 100), seeds: Sequence[int] = (0, 1, 2),
                       dofs: Sequence[float] = (1,), n_components: int = 2, criterion: str = "kl", post: Any = None,
                       random_state: int = 0, n_jobs: int = 1, verbose: bool = False,
                       **tsne_kwargs: Any) -> TSNESearchResult:
    """Run openTSNE for every (perplexity, seed, dof) and keep the run with the smallest ``criterion``.

    The kNN graph is built once, with 3·max(perplexities) neighbours, and every smaller perplexity reuses
    its first 3·p neighbours (``PerplexityBasedNN.set_perplexity``; with exact neighbours this equals a
    fresh computation). A perplexity p needs 3p neighbours, so p > (n − 1)/3 is dropped with a
    ``UserWarning``; if none is left a ``ValueError`` is raised. Each run starts from an isotropic
    Gaussian initialisation drawn with its seed (PCA initialisation would hardly vary with the seed), is
    standardised by one scalar (see the module docstring) and scored: KL(P_Z || N(0, I)) = negentropy +
    placement (``criterion="kl"``) or the negentropy alone (``"negentropy"``). ``post`` is then fitted on
    the chosen run.

    ``tsne_kwargs`` go to ``openTSNE.TSNE`` (e.g. ``n_iter``, ``early_exaggeration_iter``, ``learning_rate``,
    ``negative_gradient_method``); ``neighbors``, ``metric``, ``metric_params`` and ``knn_kwargs`` go to the
    kNN graph. Each run is seeded by its entry of ``seeds``; ``random_state`` seeds the kNN search (approximate
    for n ≥ 1000 under ``neighbors="auto"``) and ``post`` (a baseline's ``random_state``, or a transformer's left
    at None), so equal arguments give equal results (for n ≥ 1000 at equal ``n_jobs`` too: the approximate kNN
    graph depends on the thread count). All runs are scored with the same estimator seed (common random
    numbers). ``n_jobs``: threads for the kNN graph, t-SNE and scoring; 1 by default (see the module
    docstring), -1 for all cores.

    Parameters
    ----------
    X : array-like of shape (n, n_features)
        The input points.
    perplexities, seeds, dofs : sequences
        The grid: every (perplexity, seed, dof) is one openTSNE run.
    n_components : int, default 2
        The embedding dimension.
    criterion : {"kl", "negentropy"}, default "kl"
        What the chosen run minimises (:data:`CRITERIA`).
    post : {"whiten", "quantile", "rbig"}, transformer or None
        Fitted on the chosen run.
    random_state : int, default 0
        Seed of the kNN search and of ``post``.
    n_jobs : int, default 1
        Threads (-1: all cores).
    verbose : bool, default False
        Show a progress bar.
    **tsne_kwargs
        Keywords of ``openTSNE.TSNE`` and of its kNN graph.

    Returns
    -------
    TSNESearchResult

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from gaussify import most_gaussian_tsne
    >>> X = load_digits().data[:100]
    >>> search = most_gaussian_tsne(X, perplexities=(5, 10), seeds=(0,), n_iter=50, post="whiten")
    >>> search.embedding.shape, search.best["perplexity"] in (5, 10), "post_kl" in search.best
    ((100, 2), True, True)
    """
    X = as_sample(X, name="X")
    n = X.shape[0]
    perplexities = _check_grid("perplexities", perplexities, float)
    seeds = _check_grid("seeds", seeds, int)
    dofs = _check_grid("dofs", dofs, float)
    check_int(n_components, "n_components")
    check_int(random_state, "random_state", minimum=0)
    check_n_jobs(n_jobs)
    check_bool(verbose, "verbose")
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; expected one of {sorted(CRITERIA)}")
    post = _check_post(post, random_state)
    owned = _OWNED_PARAMS & set(tsne_kwargs)
    if owned:
        raise TypeError(f"{sorted(owned)} are set by the search (use perplexities, seeds, dofs, n_components, "
                        "random_state, n_jobs, verbose); do not pass them as t-SNE keywords")
    unknown = set(tsne_kwargs) - _TSNE_PARAMS
    if unknown:
        raise TypeError(f"unknown openTSNE.TSNE keywords {sorted(unknown)}")
    valid = [p for p in perplexities if 3 * p <= n - 1]
    if not valid:
        raise ValueError(f"every perplexity needs at least 3p + 1 rows; X has {n} rows, so perplexities must be "
                         f"<= {(n - 1) / 3:g}, got {perplexities}")
    if len(valid) < len(perplexities):
        warnings.warn(f"dropping perplexities {[p for p in perplexities if p not in valid]}: they exceed (n - 1)/3 = "
                      f"{(n - 1) / 3:g} for n = {n} rows", UserWarning, stacklevel=2)

    knn_params = {_AFFINITY_PARAMS[k]: tsne_kwargs.pop(k) for k in list(tsne_kwargs) if k in _AFFINITY_PARAMS}
    affinities = PerplexityBasedNN(X, perplexity=max(valid), n_jobs=n_jobs, random_state=random_state,
                                   **knn_params)

    results: list[dict[str, Any]] = []
    chosen: tuple[int, Any] | None = None
    runs = [(p, s, dof) for p in valid for s in seeds for dof in dofs]
    with tqdm(total=len(runs), desc="t-SNE runs", disable=not verbose) as bar:
        for perplexity, seed, dof in runs:
            affinities.set_perplexity(perplexity)
            start = time.perf_counter()
            run = TSNE(n_components=n_components, dof=dof, initialization="random", random_state=seed, n_jobs=n_jobs,
                       **tsne_kwargs).fit(affinities=affinities)
            seconds = time.perf_counter() - start
            row = {"perplexity": perplexity, "seed": seed, "dof": dof,
                   **_scores(_standardise(np.asarray(run))[0], n_jobs),
                   "tsne_kl": float(run.kl_divergence), "seconds": seconds}
            results.append(row)
            if chosen is None or row[criterion] < results[chosen[0]][criterion]:
                chosen = (len(results) - 1, run)
            bar.set_postfix({criterion: f"{results[chosen[0]][criterion]:.4f}"})
            bar.update()

    assert chosen is not None  # the grid of runs is not empty (checked above)
    index, run = chosen
    affinities.set_perplexity(results[index]["perplexity"])
    # openTSNE's transform re-centres the reference embedding on its bounding box, in place; centre it
    # now so that the standardisation below stays valid for transformed points.
    run -= (run.max(axis=0) + run.min(axis=0)) / 2
    Z, center, scale = _standardise(np.asarray(run))
    best = dict(results[index])
    if post is not None:
        Z = post.fit_transform(Z)
        best.update({f"post_{k}": v for k, v in _scores(Z, n_jobs).items()})
    return TSNESearchResult(embedding=Z, best=best, results=results, criterion=criterion, n_features_in=X.shape[1],
                            post=post, center=center, scale=scale, tsne_embedding=run)


class GaussianTSNE(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """scikit-learn face of :func:`most_gaussian_tsne`.

    ``fit`` runs the search and sets ``embedding_`` (the chosen, standardised run), ``best_``, ``results_``,
    ``search_`` (the :class:`TSNESearchResult`) and ``n_features_in_``; ``transform`` embeds new points
    (openTSNE's out-of-sample optimisation, ``transform_params`` passed on); ``fit_transform`` returns
    ``embedding_``. ``tsne_params`` holds keywords for ``openTSNE.TSNE``. Output columns are named
    ``gaussiantsne0``, ``gaussiantsne1``, … (scikit-learn's class-name prefix, as ``TSNE`` gives ``tsne0``), so
    ``set_output(transform="pandas")`` works.

    Parameters
    ----------
    perplexities, seeds, dofs, n_components, criterion, post, random_state, n_jobs, verbose
        As in :func:`most_gaussian_tsne`.
    tsne_params : dict, optional
        Keywords of ``openTSNE.TSNE`` (``tsne_kwargs`` there).
    transform_params : dict, optional
        Keywords of the out-of-sample optimisation of ``transform``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from gaussify import GaussianTSNE
    >>> X = load_digits().data[:100]
    >>> tsne = GaussianTSNE(perplexities=(10,), seeds=(0,), tsne_params={"n_iter": 50})
    >>> tsne.fit_transform(X).shape, list(tsne.get_feature_names_out())
    ((100, 2), ['gaussiantsne0', 'gaussiantsne1'])
    >>> tsne.transform(X[:5]).shape
    (5, 2)
    """

    def __init__(self, perplexities: Sequence[float] = (5, 15, 30, 50, 100), seeds: Sequence[int] = (0, 1, 2),
                 dofs: Sequence[float] = (1,), n_components: int = 2, criterion: str = "kl", post: Any = None,
                 random_state: int = 0, n_jobs: int = 1, verbose: bool = False,
                 tsne_params: dict[str, Any] | None = None, transform_params: dict[str, Any] | None = None) -> None:
        self.perplexities = perplexities
        self.seeds = seeds
        self.dofs = dofs
        self.n_components = n_components
        self.criterion = criterion
        self.post = post
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.tsne_params = tsne_params
        self.transform_params = transform_params

    def fit(self, X: Any, y: Any = None) -> GaussianTSNE:
        self.search_ = most_gaussian_tsne(X, perplexities=self.perplexities, seeds=self.seeds, dofs=self.dofs,
                                          n_components=self.n_components, criterion=self.criterion, post=self.post,
                                          random_state=self.random_state, n_jobs=self.n_jobs, verbose=self.verbose,
                                          **(self.tsne_params or {}))
        self.embedding_ = self.search_.embedding
        self._n_features_out = self.embedding_.shape[1]
        self.best_ = self.search_.best
        self.results_ = self.search_.results
        self.n_features_in_ = self.search_.n_features_in
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "search_")
        return self.search_.transform(X, **(self.transform_params or {}))

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        return self.fit(X, y).embedding_
