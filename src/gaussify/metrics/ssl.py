"""Label-free quality of a self-supervised embedding: RankMe and LiDAR, effective ranks (NumPy/SciPy only).

Both are exp of the Shannon entropy of a normalised spectrum, p_k = λ_k / ‖λ‖₁ + ε: a number between 1 and the
number of non-zero λ_k that counts how many directions the embedding really uses, and that tracks linear-probe
accuracy across hyperparameters without labels (a collapsed embedding scores ≈ 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import eigh

from .._validation import as_sample, check_real, to_numpy

__all__ = ["rankme", "lidar"]


def _effective_rank(spectrum: np.ndarray, eps: float) -> float:
    """exp(−Σ p_k log p_k), p_k = λ_k / ‖λ‖₁ + ε, of a non-negative spectrum λ (1 for an all-zero one)."""
    total = spectrum.sum()
    if total <= 0:
        return 1.0
    p = spectrum / total + eps
    return float(np.exp(-np.sum(p * np.log(p))))


def rankme(Z: Any, *, eps: float = 1e-7) -> float:
    r"""RankMe: the effective rank of the embedding matrix Z (n × d).

    exp(−Σ_k p_k log p_k) with p_k = σ_k / ‖σ‖₁ + ε over its singular values σ_k (Z as it is, not centred, as in
    the paper). Invariant to the order of the rows, to orthogonal maps of the columns and to the scale of Z; r equal
    singular values give r, an isotropic Gaussian sample with n ≫ d gives ≈ d, a collapsed embedding ≈ 1.

    Reference: Garrido, Balestriero, Najman & LeCun, "RankMe: Assessing the downstream performance of
    pretrained self-supervised representations by their rank", ICML 2023 (ε = 1e-7 there).

    Parameters
    ----------
    Z : array-like of shape (n, d)
        The embedding, one row per sample.
    eps : float, default 1e-7
        ε added to each normalised singular value.

    Returns
    -------
    float
        The effective rank, between 1 and min(n, d).

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.metrics import rankme
    >>> Z = np.random.default_rng(0).standard_normal((500, 2))
    >>> round(rankme(Z), 2), round(rankme(np.column_stack([Z[:, 0], Z[:, 0]])), 2)
    (2.0, 1.0)
    """
    check_real(eps, "eps")
    return _effective_rank(np.linalg.svd(as_sample(Z), compute_uv=False), eps)


def lidar(Z: Any, labels: Any = None, *, delta: float = 1e-4, eps: float = 1e-7) -> float:
    r"""LiDAR: the effective rank of the linear discriminant matrix of surrogate classes (the views of each sample).

    The surrogate classes are the augmented views of each source sample. With class means μ_c, their mean μ̄ and
    C classes over N rows,

    .. math::
        \Sigma_b = \frac{1}{C-1}\sum_c (\mu_c - \bar\mu)(\mu_c - \bar\mu)^\top, \quad
        \Sigma_w = \frac{1}{N-C}\sum_{c}\sum_{i \in c} (z_i - \mu_c)(z_i - \mu_c)^\top + \delta I,

    and LiDAR = exp(−Σ_k p_k log p_k), p_k = λ_k / ‖λ‖₁ + ε over the eigenvalues λ_k of
    Σ_w^{-1/2} Σ_b Σ_w^{-1/2} (the generalised eigenvalues of (Σ_b, Σ_w)).
    Invariant to the order of the classes and of the views within a class; at most min(d, C − 1).

    Reference: Thilak, Huang, Saremi, Dinh, Goh, Nakkiran, Susskind & Littwin, "LiDAR: Sensing Linear Probing
    Performance in Joint Embedding SSL Architectures", ICLR 2024.

    Parameters
    ----------
    Z : array-like of shape (n_classes, n_views, d) or (N, d)
        The views: (n_classes, n_views, d), or (N, d) with ``labels``.
    labels : array-like of shape (N,), optional
        The source sample of each row of a 2-D ``Z``.
    delta : float, default 1e-4
        δ, as in the paper (absolute, in the embedding's units); it keeps Σ_w invertible when the views agree
        exactly in some direction.
    eps : float, default 1e-7
        ε added to each normalised eigenvalue.

    Returns
    -------
    float
        The effective rank.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.metrics import lidar
    >>> rng = np.random.default_rng(0)

    20 samples × 8 views in 4-D, but the samples differ in 2 directions only:

    >>> sources = np.concatenate([rng.standard_normal((20, 1, 2)), np.zeros((20, 1, 2))], axis=2)
    >>> views = sources + 0.1 * rng.standard_normal((20, 8, 4))
    >>> 1.5 < lidar(views) < 2.5
    True
    >>> labels = np.repeat(np.arange(20), 8)
    >>> lidar(views.reshape(160, 4), labels) == lidar(views)
    True
    """
    check_real(delta, "delta", strict=True)
    check_real(eps, "eps")
    if labels is None:
        views = to_numpy(Z)
        if views.ndim != 3:
            raise ValueError(f"Z must have shape (n_classes, n_views, d) when labels is not given, got {views.shape}")
        n_classes, n_views, dim = views.shape
        X = as_sample(views.reshape(n_classes * n_views, dim))
        codes = np.repeat(np.arange(n_classes), n_views)
    else:
        X = as_sample(Z)
        names = np.asarray(to_numpy(labels)).reshape(-1)
        if names.shape[0] != X.shape[0]:
            raise ValueError(f"labels has {names.shape[0]} entries but Z has {X.shape[0]} rows")
        codes = np.unique(names, return_inverse=True)[1].reshape(-1)
    n, d = X.shape
    n_classes = int(codes.max()) + 1
    if n_classes < 2 or n <= n_classes:
        raise ValueError(f"LiDAR needs at least 2 classes and more rows than classes (some class with 2 views), "
                         f"got {n_classes} classes over {n} rows")
    counts = np.bincount(codes, minlength=n_classes)
    means = np.zeros((n_classes, d))
    np.add.at(means, codes, X)
    means /= counts[:, None]
    between = np.cov(means, rowvar=False, ddof=1).reshape(d, d)
    within_rows = X - means[codes]
    within = within_rows.T @ within_rows / (n - n_classes) + delta * np.eye(d)
    return _effective_rank(np.clip(eigh(between, within, eigvals_only=True), 0.0, None), eps)
