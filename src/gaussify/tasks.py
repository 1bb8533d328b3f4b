"""Task losses that decide what the embedding keeps (the seed's "pseudo-decoder").

A task sees the embedding ``z`` of a minibatch (and, for the neighbour task, of each row's
sampled input-space neighbour) and returns a scalar loss. The Gaussian regularizer is added
on top by the training loop.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._validation import check_int, check_ints

__all__ = ["Task", "ClassificationTask", "RegressionTask", "ReconstructionTask", "NeighborsTask",
           "CallableTask", "TASKS", "target_kind", "few_rows_per_class"]


class Task(nn.Module):
    """Base class. ``rows(idx, generator)`` lists the rows to encode for a minibatch of indices
    (the batch itself by default); ``forward(z, x, idx)`` returns the loss, where ``z`` holds the
    embeddings of those rows and ``x`` their (scaled) inputs.

    Examples
    --------
    A task that keeps the embedding's first coordinate close to the input's:

    >>> import torch
    >>> from gaussify.tasks import Task
    >>> class FirstCoordinate(Task):
    ...     def forward(self, z, x, idx):
    ...         return (z[:, 0] - x[:, 0]).square().mean()
    >>> FirstCoordinate()(torch.ones(4, 2), torch.ones(4, 3), torch.arange(4))
    tensor(0.)
    """

    def rows(self, idx: Tensor, generator: torch.Generator) -> Tensor:
        return idx

    def forward(self, z: Tensor, x: Tensor, idx: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class ClassificationTask(Task):
    """Cross-entropy of a distance head: logits_k = −s · ‖z − c_k‖² with learnable prototypes c_k
    and inverse temperature s = exp(log_scale) (Snell et al. 2017). Its decision regions are
    Voronoi cells, which can tile a Gaussian without every class meeting at the origin (a linear
    head's cones do), and s sharpens the head without inflating z. On digits it gave a more
    Gaussian held-out embedding than a linear head at about the same 5-NN accuracy.

    Parameters
    ----------
    labels : Tensor of int, shape (n,)
        The class index of every training row.
    dim : int
        The embedding dimension.
    n_classes : int
        The number of classes (prototypes).

    Examples
    --------
    >>> import torch
    >>> from gaussify.tasks import ClassificationTask
    >>> task = ClassificationTask(torch.tensor([0, 1, 0, 1]), dim=2, n_classes=2)
    >>> task(torch.randn(4, 2), None, torch.arange(4)).shape
    torch.Size([])
    """

    labels: Tensor  # buffer

    def __init__(self, labels: Tensor, dim: int, n_classes: int) -> None:
        check_int(dim, "dim")
        check_int(n_classes, "n_classes")
        super().__init__()
        self.register_buffer("labels", labels)
        self.prototypes = nn.Parameter(torch.randn(n_classes, dim))
        self.log_scale = nn.Parameter(torch.zeros(()))

    def forward(self, z: Tensor, x: Tensor, idx: Tensor) -> Tensor:
        logits = -self.log_scale.exp() * torch.cdist(z, self.prototypes).square()
        return F.cross_entropy(logits, self.labels[idx])


class RegressionTask(Task):
    """Mean squared error of a linear head on z against standardised continuous targets.

    Parameters
    ----------
    targets : Tensor of shape (n, m)
        The standardised targets of every training row.
    dim : int
        The embedding dimension.

    Examples
    --------
    >>> import torch
    >>> from gaussify.tasks import RegressionTask
    >>> task = RegressionTask(torch.randn(4, 1), dim=2)
    >>> task(torch.randn(4, 2), None, torch.arange(4)).shape
    torch.Size([])
    """

    targets: Tensor  # buffer

    def __init__(self, targets: Tensor, dim: int) -> None:
        check_int(dim, "dim")
        super().__init__()
        self.register_buffer("targets", targets)
        self.head = nn.Linear(dim, targets.shape[1])

    def forward(self, z: Tensor, x: Tensor, idx: Tensor) -> Tensor:
        return F.mse_loss(self.head(z), self.targets[idx])


class ReconstructionTask(Task):
    """Mean squared error of an MLP decoder that maps z back to the (scaled) input.

    Parameters
    ----------
    dim : int
        The embedding dimension.
    n_features : int
        The input width.
    hidden : tuple of int
        The encoder's hidden widths; the decoder uses them reversed.

    Examples
    --------
    >>> import torch
    >>> from gaussify.tasks import ReconstructionTask
    >>> task = ReconstructionTask(2, 3, (16,))
    >>> task(torch.randn(4, 2), torch.randn(4, 3), torch.arange(4)).shape
    torch.Size([])
    """

    def __init__(self, dim: int, n_features: int, hidden: tuple[int, ...]) -> None:
        check_int(dim, "dim")
        check_int(n_features, "n_features")
        hidden = check_ints(hidden, "hidden")
        super().__init__()
        self.decoder = mlp(dim, tuple(reversed(hidden)), n_features)

    def forward(self, z: Tensor, x: Tensor, idx: Tensor) -> Tensor:
        return F.mse_loss(self.decoder(z), x)


class NeighborsTask(Task):
    """Keep input-space neighbours close: for each row i and one of its k nearest neighbours j,
    −log q_ij − mean_{l≠i} log(1 − q_il) with the Cauchy kernel q = 1/(1 + ‖z_i − z_j‖²)
    (the attraction/repulsion of UMAP, McInnes et al. 2018, with in-batch negatives).

    Parameters
    ----------
    neighbors : Tensor of int, shape (n, k)
        Each training row's k nearest input-space neighbours.

    Examples
    --------
    ``rows`` adds one sampled neighbour per row of the batch, and the loss reads both halves:

    >>> import torch
    >>> from gaussify.tasks import NeighborsTask
    >>> task = NeighborsTask(torch.tensor([[1], [0], [3], [2]]))
    >>> rows = task.rows(torch.arange(4), torch.Generator().manual_seed(0))
    >>> rows
    tensor([0, 1, 2, 3, 1, 0, 3, 2])
    >>> task(torch.randn(8, 2), None, torch.arange(4)).shape
    torch.Size([])
    """

    neighbors: Tensor  # buffer

    def __init__(self, neighbors: Tensor) -> None:
        super().__init__()
        self.register_buffer("neighbors", neighbors)

    def rows(self, idx: Tensor, generator: torch.Generator) -> Tensor:
        pick = torch.randint(self.neighbors.shape[1], (idx.shape[0],), generator=generator)
        return torch.cat([idx, self.neighbors[idx, pick.to(idx.device, non_blocking=True)]])

    def forward(self, z: Tensor, x: Tensor, idx: Tensor) -> Tensor:
        n = z.shape[0] // 2
        anchor, positive = z[:n], z[n:]
        attract = torch.log1p((anchor - positive).pow(2).sum(1)).mean()
        q = 1.0 / (1.0 + torch.cdist(anchor, anchor).pow(2))
        # the mean over l != i as a masked sum: selecting with a boolean mask would read its size on the host
        off_diagonal = 1.0 - torch.eye(n, dtype=q.dtype, device=q.device)
        repel = -(torch.log1p(-q.clamp(max=1 - 1e-6)) * off_diagonal).sum() / (n * (n - 1))
        return attract + repel


class CallableTask(Task):
    """A user's loss ``fn(z, x, y_batch)`` (``y_batch`` is None without labels).

    Parameters
    ----------
    fn : callable
        ``fn(z, x, y_batch) -> loss``, a 0-dim tensor.
    y : Tensor or None
        The labels or targets of every training row, indexed per batch.

    Examples
    --------
    >>> import torch
    >>> from gaussify.tasks import CallableTask
    >>> task = CallableTask(lambda z, x, y: z.square().mean(), None)
    >>> task(torch.ones(3, 2), None, torch.arange(3))
    tensor(1.)
    """

    def __init__(self, fn: Callable[[Tensor, Tensor, Tensor | None], Tensor], y: Tensor | None) -> None:
        super().__init__()
        self.fn = fn
        self.y = y

    def forward(self, z: Tensor, x: Tensor, idx: Tensor) -> Tensor:
        loss = self.fn(z, x, None if self.y is None else self.y[idx.to(self.y.device)])
        if not isinstance(loss, Tensor) or loss.ndim != 0:
            raise TypeError("a callable task must return a 0-dim torch.Tensor loss")
        return loss


TASKS = ("auto", "supervised", "classification", "regression", "reconstruction", "neighbors")

MIN_ROWS_PER_CLASS = 5
"""Integer-valued floats count as class labels only when there are at least this many rows per distinct value
on average; below it (e.g. a whole-number disease score with 214 values over 442 rows) they are a quantity."""


def target_kind(y: np.ndarray) -> str:
    """``"classification"`` or ``"regression"`` for targets ``y`` (n,) or (n, m), by the one rule the package uses.

    Strings, booleans and integer dtypes are class labels; several columns are a multi-output regression;
    floats are class labels only if all of them are whole numbers with at least :data:`MIN_ROWS_PER_CLASS`
    rows per distinct value on average. Pass ``task="classification"`` or ``"regression"`` to the estimator
    to decide explicitly.

    Parameters
    ----------
    y : array-like of shape (n,) or (n, m)
        The targets.

    Returns
    -------
    {"classification", "regression"}

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.tasks import target_kind
    >>> target_kind(np.array(["a", "b"])), target_kind(np.array([0.5, 1.2])), target_kind(np.array([0, 1, 1, 0]))
    ('classification', 'regression', 'classification')
    """
    y = np.asarray(y)
    if y.ndim > 1 and y.shape[1] > 1:
        return "regression"
    if y.dtype.kind in "OUSbiu":
        return "classification"
    y = y.astype(np.float64).reshape(-1)
    if not np.isfinite(y).all() or not np.all(y == np.round(y)):
        return "regression"
    return "regression" if few_rows_per_class(len(np.unique(y)), y.size) else "classification"


def few_rows_per_class(n_classes: int, n_rows: int) -> bool:
    """Fewer than :data:`MIN_ROWS_PER_CLASS` rows per class on average (two classes always have enough).

    Examples
    --------
    >>> from gaussify.tasks import few_rows_per_class
    >>> few_rows_per_class(10, 30), few_rows_per_class(3, 30)
    (True, False)
    """
    check_int(n_classes, "n_classes")
    check_int(n_rows, "n_rows", minimum=0)
    return n_classes * MIN_ROWS_PER_CLASS > max(2 * MIN_ROWS_PER_CLASS, n_rows)


def mlp(n_in: int, hidden: tuple[int, ...], n_out: int) -> nn.Sequential:
    """Linear → SiLU blocks (no batch statistics, so a point's output never depends on its batch)."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(n_in, width), nn.SiLU()]
        n_in = width
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


def knn_indices(X: np.ndarray, k: int, random_state: int, n_jobs: int = 1) -> np.ndarray:
    """Indices (n, k) of each row's k nearest neighbours, itself excluded: exact below 10,000 rows,
    Annoy's approximate index (through openTSNE) above."""
    k = min(k, X.shape[0] - 1)
    if X.shape[0] <= 10_000:
        from sklearn.neighbors import NearestNeighbors

        _, idx = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X)
        return idx[:, 1:]
    from openTSNE.nearest_neighbors import Annoy

    idx, _ = Annoy(X, k, random_state=random_state, n_jobs=n_jobs).build()
    return idx
