"""``GaussianEmbedder``: a scikit-learn estimator that trains a small encoder whose embedding
keeps what a task needs and comes out N(0, I) (or a given target), and maps new points."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import Tensor, nn

from ._torchutils import seeded, torch_device, torch_threads
from ._validation import (InvalidParameterError, as_seed, check_bool, check_int, check_ints, check_n_jobs,
                          check_options, check_parameters, check_real)
from .model_folder import (CONFIG_FILE, EMBEDDER_FORMAT, EMBEDDER_WEIGHTS, POST_FOLDER, check_model_folder,
                           read_model_config, write_model_folder)
from .regularizers import REGISTRY, GaussianHead, Posterior, make_regularizer, parse_spec
from .tasks import (TASKS, CallableTask, ClassificationTask, NeighborsTask, ReconstructionTask, RegressionTask, Task,
                    few_rows_per_class, knn_indices, mlp, target_kind)
from .training import TRAIN_CHECKS, train

__all__ = ["GaussianEmbedder", "Encoder", "default_regularizer", "default_input_noise"]

DEFAULT_REGULARIZER = "auto"
"""``regularizer="auto"``: :func:`default_regularizer` of the embedding dimension."""
LOW_DIM_REGULARIZER = "swd+0.003*knn"
HIGH_DIM_REGULARIZER = "pursued-swd+0.1*placement+0.03*knn"
LOW_DIM_MAX = 16


def default_regularizer(n_components: int) -> str:
    """The regularizer ``"auto"`` trains with: :data:`LOW_DIM_REGULARIZER` up to :data:`LOW_DIM_MAX` dimensions,
    :data:`HIGH_DIM_REGULARIZER` above. Random slices see a collapsing direction with weight 1/d and few
    non-Gaussian directions less and less as d grows, so above 16-D the penalty adds the log-determinant placement
    term and directions pursued on earlier batches. Held out, 3 splits (``benchmarks/results/quality_high.md``, with
    the default input noise of 1): digits 32-D, KL 13.2 → 0.76 nats at linear probe 0.977 → 0.972; the kNN
    coefficient 0.03 rather than 0.01 put it on the Pareto front of both data sets (digits 0.76 at 0.972 against 1.75
    at 0.970; mnist1d 0.19 at 0.689 against 0.35 at 0.715). At 16-D the sliced default measured better (digits KL
    0.24 at 0.947 against 0.46 at 0.916 without input noise; mnist1d a tie, 0.14 against 0.13).

    Examples
    --------
    >>> from gaussify.embedder import default_regularizer
    >>> default_regularizer(16), default_regularizer(32)
    ('swd+0.003*knn', 'pursued-swd+0.1*placement+0.03*knn')
    """
    return LOW_DIM_REGULARIZER if check_int(n_components, "n_components") <= LOW_DIM_MAX else HIGH_DIM_REGULARIZER


NOISELESS_MAX = 8
"""``input_noise="auto"`` is 0 up to this many dimensions, where the demo and ``quality.md`` were measured."""
LOW_DIM_INPUT_NOISE = 0.3
HIGH_DIM_INPUT_NOISE = 1.0


def default_input_noise(n_components: int) -> float:
    """The ``input_noise`` that ``"auto"`` trains with: 0 up to :data:`NOISELESS_MAX` dimensions,
    :data:`LOW_DIM_INPUT_NOISE` up to :data:`LOW_DIM_MAX` and :data:`HIGH_DIM_INPUT_NOISE` above. Held out, 3 splits
    (``benchmarks/results/quality_high.md``): at 16-D noise 0.3 takes the linear probe from 0.947 to 0.967 on digits
    (KL 0.24 → 0.28) and from 0.682 to 0.727 on mnist1d (KL 0.14 → 0.24); at 32-D noise 1 takes digits from 0.910 to
    0.972 (KL 0.755 → 0.759) and mnist1d from 0.589 to 0.689 (KL 0.11 → 0.19). The task alone gains too (weight 0:
    mnist1d 32-D 0.736 → 0.783).

    Examples
    --------
    >>> from gaussify.embedder import default_input_noise
    >>> default_input_noise(8), default_input_noise(16), default_input_noise(32)
    (0.0, 0.3, 1.0)
    """
    d = check_int(n_components, "n_components")
    return 0.0 if d <= NOISELESS_MAX else LOW_DIM_INPUT_NOISE if d <= LOW_DIM_MAX else HIGH_DIM_INPUT_NOISE


WEIGHTS_FILE, MODEL_FORMAT = EMBEDDER_WEIGHTS, EMBEDDER_FORMAT
"""The weights file and the ``format`` recorded in a saved model's config.json (:mod:`gaussify.model_folder`)."""
POSTS = ("flow", "rbig")
"""Post-hoc maps of ``post``: :class:`~gaussify.flows.GaussianizingFlow` and :class:`~gaussify.baselines.RBIG`."""
FLOW_DEFAULTS = {"noise": 0.2}
"""``post="flow"`` options unless ``post_params`` says otherwise: training noise of 0.2 (whitened units) smooths
the density the flow learns from the encoder's training embedding, which is tighter than that of new points
(digits 2-D, 3 splits: held-out KL 0.106 with a train/held-out gap of 0.035, against 0.113 and 0.113 without
noise; benchmarks/results/post.md)."""


def _check_dict(value: Any, name: str) -> dict:
    if not isinstance(value, dict):
        raise InvalidParameterError(f"{name} must be a dict or None, got {type(value).__name__}")
    return value


class Encoder(nn.Module):
    """Input standardisation (learned on fit) → MLP → z, or → :class:`GaussianHead` when ``stochastic`` (for a
    regularizer that takes a posterior).

    Parameters
    ----------
    n_features : int
        Width of the input.
    n_components : int
        Dimension of the embedding z.
    hidden : tuple of int
        Widths of the MLP's hidden layers (Linear → SiLU blocks).
    stochastic : bool
        End in a :class:`~gaussify.GaussianHead` (``forward`` then returns a :class:`~gaussify.Posterior`).

    Examples
    --------
    >>> import torch
    >>> from gaussify.embedder import Encoder
    >>> Encoder(4, 2, (16,), stochastic=False)(torch.randn(8, 4)).shape
    torch.Size([8, 2])
    >>> Encoder(4, 2, (16,), stochastic=True)(torch.randn(8, 4)).mean.shape
    torch.Size([8, 2])
    """

    shift: Tensor  # buffers
    scale: Tensor

    def __init__(self, n_features: int, n_components: int, hidden: tuple[int, ...], stochastic: bool) -> None:
        check_int(n_features, "n_features")
        check_int(n_components, "n_components")
        hidden = check_ints(hidden, "hidden")
        check_bool(stochastic, "stochastic")
        super().__init__()
        self.register_buffer("shift", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))
        if stochastic:
            width = hidden[-1] if hidden else n_features
            self.body = mlp(n_features, hidden[:-1], width) if hidden else nn.Identity()
            self.head: nn.Module = nn.Sequential(nn.SiLU(), GaussianHead(width, n_components)) if hidden \
                else GaussianHead(width, n_components)
        else:
            self.body = mlp(n_features, hidden, n_components)
            self.head = nn.Identity()

    def scale_inputs(self, x: Tensor) -> Tensor:
        return (x - self.shift) / self.scale

    def forward(self, x: Tensor) -> Tensor | Posterior:
        return self.head(self.body(self.scale_inputs(x)))

    def embed(self, x: Tensor) -> Tensor:
        out = self(x)
        return out.mean if isinstance(out, Posterior) else out


class GaussianEmbedder(TransformerMixin, BaseEstimator):
    """Train an encoder x ↦ z ∈ R^k with ``loss = task + weight · regularizer(z)`` so that the
    embedding is N(0, I_k) and keeps what the task needs; ``transform`` maps new points.

    The defaults (``regularizer="auto"``: ``"swd+0.003*knn"`` up to 16-D, weight 10, 200 epochs) were chosen on
    held-out data: the sliced Wasserstein penalty kept the best balance of Gaussianity and 5-NN accuracy, and the
    small nearest-neighbour KL term removes the clumps that projections miss (digits, 3 seeds: KL 0.51 → 0.35
    in 2-D at 5-NN accuracy 0.890 → 0.881, 3.3 → 2.1 in 8-D at 0.963 → 0.931). Above 16-D ``"auto"`` adds
    the log-determinant placement term and pursued directions (:func:`default_regularizer`), and above 8-D
    ``input_noise="auto"`` trains the task on noisy copies too (:func:`default_input_noise`).

    Parameters
    ----------
    n_components
        embedding dimension k.
    regularizer
        ``"auto"`` (:func:`default_regularizer` of ``n_components``), a name of
        :data:`gaussify.regularizers.REGISTRY` or a weighted sum such as ``"swd+0.01*knn"``; one
        that takes a posterior (``"kl"``, :attr:`Regularizer.takes <gaussify.regularizers.base.Regularizer.takes>`)
        makes the encoder stochastic.
    weight
        the regularizer's weight, or ``"auto"``: a Lagrange multiplier held by dual ascent so that the
        batches' KL to the target (a kNN estimate in nats, bias-corrected) stays at ``gaussianity_level``
        (:class:`gaussify.training.DualWeight`; ``history_["gaussianity"]`` records it per epoch).
    gaussianity_level
        the batch KL in nats that ``weight="auto"`` holds; ``None`` asks for batches as
        Gaussian as exact target batches (the 95% quantile of the monitor on them, about 0.1-0.2 nats at
        256 rows). Ignored with a numeric weight.
    hidden_layer_sizes
        widths of the MLP's hidden layers.
    task
        ``"auto"`` (``"supervised"`` when ``y`` is given, else ``"neighbors"``),
        ``"classification"`` (cross-entropy over the classes of ``y``), ``"regression"`` (MSE on
        standardised ``y``), ``"supervised"`` (either, by :func:`gaussify.tasks.target_kind`: strings and
        integers are classes, floats are classes only when whole numbers with at least 5 rows per value),
        ``"reconstruction"``, ``"neighbors"`` (keep input-space k-nearest neighbours close), or a
        callable ``fn(z, x_scaled, y_batch) -> loss``.
    regularizer_kwargs
        options passed to the regularizer's constructor (for a sum: keyed by part,
        e.g. ``{"knn": {"k": 2}}``).
    max_epochs, batch_size, learning_rate
        the optimisation (Adam).
    input_noise
        standard deviation of Gaussian noise, in standardised input units: the task's loss is averaged over the
        batch and a noisy copy of it, while the regularizer scores the clean rows (:func:`gaussify.training.train`).
        A data augmentation that keeps the encoder smooth between training rows, so that new points land as the
        training rows do; 0 turns it off, ``"auto"`` is :func:`default_input_noise` of ``n_components`` (0 up to
        8-D).
    validation_fraction, n_iter_no_change
        early stopping on the task loss of a held-out split
        (0, the default, disables it and trains ``max_epochs``: with a strong regularizer the
        validation task loss first rises, so stopping on it restores an untrained encoder).
    post
        ``None``, ``"flow"`` or ``"rbig"``: a post-hoc invertible map fitted on the embedding (a
        :class:`~gaussify.flows.GaussianizingFlow` by maximum likelihood, or :class:`~gaussify.baselines.RBIG`),
        so that ``transform`` = post ∘ encoder; ``inverse_transform`` maps back to the encoder's embedding and,
        for ``"flow"``, ``score_samples`` is the exact log-density of the encoder's embedding of a point.
    post_fraction
        with ``post``, a fraction of the training rows the encoder does not train on, embedded like
        new points: the flow early-stops on their likelihood and ``post_gap_`` reports the KL on both. The
        default 0 fits the map on the encoder's training embedding (with the flow's training noise, which
        closes most of the gap): holding rows back from the encoder cost more accuracy than it gained in KL
        (digits 2-D: 0.132 at 5-NN 0.838 against 0.106 at 0.880).
    post_params
        options of the post-hoc map's constructor (for ``"flow"`` on top of :data:`FLOW_DEFAULTS`).
    device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, …
    n_jobs
        CPU threads for torch and the post-fit report while fitting and transforming (restored
        afterwards); -1 uses every core. The default 1 is as fast as 2 on a quiet 2-core machine for these
        small MLPs and does not collapse when other jobs compete for the cores.
    random_state
        seed for initialisation, shuffling and the regularizer's directions.
    verbose
        show a progress bar.

    Attributes
    ----------
    encoder_
        the trained :class:`Encoder` (on CPU, eval mode).
    n_features_in_, n_epochs_
        the number of input features and of epochs trained.
    loss_curve_
        training loss per epoch.
    history_
        per-epoch lists: loss, task, regularizer, weight, val_loss, seconds = wall time of the epoch's
        training steps, and gaussianity with ``weight="auto"``.
    classes_
        the class labels (classification only).
    post_
        the fitted post-hoc map (with ``post``).
    post_gap_
        ``{"fit_rows": KL, "held_back": KL}`` of the final embedding (post-hoc map included) on the
        rows the map was fitted on and on the held-back rows.
    gaussianity_
        :class:`~gaussify.GaussianityReport` of the training embedding (None below
        :data:`gaussify.metrics.MIN_ROWS` training rows).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from gaussify import GaussianEmbedder
    >>> X, y = load_digits(return_X_y=True)
    >>> X, y = X[:100], y[:100]
    >>> emb = GaussianEmbedder(n_components=2, max_epochs=2, random_state=0).fit(X, y)
    >>> emb.transform(X).shape, emb.n_epochs_, list(emb.get_feature_names_out())
    ((100, 2), 2, ['gaussianembedder0', 'gaussianembedder1'])

    With a post-hoc flow, ``score_samples`` is a log-density and ``inverse_transform`` undoes the flow:

    >>> emb = GaussianEmbedder(max_epochs=2, post="flow", post_params={"max_epochs": 2}, random_state=0).fit(X, y)
    >>> emb.score_samples(X).shape, emb.inverse_transform(emb.transform(X)).shape
    ((100,), (100, 2))
    """

    def __init__(self, n_components: int = 2, *, regularizer: str = DEFAULT_REGULARIZER,
                 weight: float | str = 10.0, gaussianity_level: float | None = None,
                 hidden_layer_sizes: tuple[int, ...] = (256, 256),
                 task: str | Callable = "auto", regularizer_kwargs: dict | None = None, max_epochs: int = 200,
                 batch_size: int = 256, learning_rate: float = 1e-3, input_noise: float | str = "auto",
                 validation_fraction: float = 0.0,
                 n_iter_no_change: int = 20, post: str | None = None, post_fraction: float = 0.0,
                 post_params: dict | None = None, device: str = "auto", n_jobs: int = 1,
                 random_state: int | None = None, verbose: bool = False) -> None:
        self.n_components = n_components
        self.regularizer = regularizer
        self.weight = weight
        self.gaussianity_level = gaussianity_level
        self.hidden_layer_sizes = hidden_layer_sizes
        self.task = task
        self.regularizer_kwargs = regularizer_kwargs
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.input_noise = input_noise
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.post = post
        self.post_fraction = post_fraction
        self.post_params = post_params
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ----------------------------------------------------------------------------- checks
    _parameter_checks: ClassVar[dict[str, Callable[[Any, str], Any]]] = {
        **TRAIN_CHECKS, "n_components": check_int,
        "regularizer": lambda value, name: value == DEFAULT_REGULARIZER or parse_spec(value, REGISTRY),
        "hidden_layer_sizes": check_ints,
        "task": lambda value, name: callable(value) or check_options(value, name, TASKS),
        "regularizer_kwargs": lambda value, name: value is None or _check_dict(value, name),
        "input_noise": lambda value, name: (isinstance(value, str) and value == "auto") or check_real(value, name),
        "validation_fraction": lambda value, name: check_real(value, name, high=1.0),
        "post": lambda value, name: check_options(value, name, (None, *POSTS)),
        "post_fraction": lambda value, name: check_real(value, name, high=1.0),
        "post_params": lambda value, name: value is None or _check_dict(value, name),
        "n_jobs": lambda value, name: check_n_jobs(value),
    }
    """Every hyperparameter's check (scikit-learn's ``_parameter_constraints`` in :func:`gaussify._validation`'s
    form: scikit-learn validates its table with a private module), run by :meth:`fit` before any work."""

    def _check_params(self) -> None:
        check_parameters(self, self._parameter_checks)
        if self.post:  # bad post_params fail now, not after the encoder has trained
            try:
                self._make_post(0)._check_params()
            except TypeError as err:
                raise ValueError(f"post_params: {err}") from None

    def _input_noise(self) -> float:
        """The input noise trained with: ``input_noise``, or :func:`default_input_noise` for ``"auto"``."""
        return default_input_noise(self.n_components) if self.input_noise == "auto" else float(self.input_noise)

    def _regularizer_spec(self) -> str:
        """The regularizer trained with: ``regularizer``, or :func:`default_regularizer` for ``"auto"``."""
        return default_regularizer(self.n_components) if self.regularizer == DEFAULT_REGULARIZER else self.regularizer

    def _stochastic(self) -> bool:
        """A regularizer that takes a posterior (``"kl"``) needs a stochastic encoder (a posterior per point)."""
        return any(REGISTRY[part].takes == "posterior" for _, part in parse_spec(self._regularizer_spec(), REGISTRY))

    # ----------------------------------------------------------------------------- fit
    def fit(self, X, y=None) -> "GaussianEmbedder":
        """Train the encoder on X (n_samples, n_features), with labels or targets y if given."""
        self._check_params()
        X = validate_data(self, X, dtype=np.float32, ensure_min_samples=2)
        if X.shape[0] < 2:
            raise ValueError(f"n_samples={X.shape[0]}: at least 2 samples are needed")
        seed = as_seed(self.random_state)
        device = torch_device(self.device)
        with seeded(seed, device, self.n_jobs):
            self._fit(X, y, seed, device)
        return self

    def _fit(self, X: np.ndarray, y, seed: int, device: torch.device) -> None:
        rng = np.random.default_rng(seed)
        n = X.shape[0]
        n_val = int(round(self.validation_fraction * n)) if n >= 20 else 0
        perm = rng.permutation(n)
        val_idx, train_idx = perm[:n_val], perm[n_val:]
        n_held = int(round(self.post_fraction * train_idx.size)) if self.post and train_idx.size >= 40 else 0
        held_idx, train_idx = train_idx[:n_held], train_idx[n_held:]
        hidden = tuple(int(w) for w in self.hidden_layer_sizes)
        encoder = Encoder(X.shape[1], self.n_components, hidden, stochastic=self._stochastic())
        shift = X[train_idx].mean(0)
        scale = X[train_idx].std(0)
        encoder.shift.copy_(torch.from_numpy(shift))
        encoder.scale.copy_(torch.from_numpy(np.where(scale > 1e-8 * max(1.0, float(np.abs(shift).max())), scale, 1.0)))
        encoder.to(device)
        X_t = torch.as_tensor(X, device=device)
        task = self._make_task(X, y, encoder, train_idx, seed).to(device)
        regularizer = make_regularizer(self._regularizer_spec(), self.n_components, random_state=seed,
                                       **(self.regularizer_kwargs or {})).to(device)
        noise = self._input_noise()
        result = train(encoder, regularizer, task, X_t, torch.as_tensor(train_idx, device=device),
                       torch.as_tensor(val_idx, device=device) if n_val else None, weight=self.weight,
                       max_epochs=self.max_epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
                       n_iter_no_change=self.n_iter_no_change, random_state=seed, verbose=self.verbose,
                       gaussianity_level=self.gaussianity_level,
                       input_noise=noise * encoder.scale if noise else 0.0)
        self.encoder_ = encoder.cpu().eval()
        self.history_ = result.history
        self.loss_curve_ = list(result.history["loss"])
        self.n_epochs_ = result.epochs
        self.regularizer_ = regularizer.cpu()
        from .metrics import MIN_ROWS, evaluate

        Z_fit, Z_held = self._embed(X[train_idx]), self._embed(X[held_idx]) if n_held else None
        if self.post:
            self.post_ = self._make_post(seed)
            self.post_.fit(Z_fit, **({"X_val": Z_held} if self.post == "flow" and n_held else {}))
            Z_fit = self.post_.transform(Z_fit)
        self.gaussianity_ = (evaluate(Z_fit, tests="fast", n_jobs=self.n_jobs)
                             if len(train_idx) >= MIN_ROWS else None)
        if self.gaussianity_ is not None and n_held >= MIN_ROWS:  # the fit rows' KL is the report's
            self.post_gap_ = {"fit_rows": self.gaussianity_.kl,
                              "held_back": evaluate(self.post_.transform(Z_held), tests="none", n_jobs=self.n_jobs).kl}

    def _make_post(self, seed: int):
        """The unfitted post-hoc map, seeded and threaded like the encoder."""
        if self.post == "flow":
            from .flows import GaussianizingFlow

            return GaussianizingFlow(**{**FLOW_DEFAULTS, "random_state": seed, "n_jobs": self.n_jobs,
                                        "device": self.device, **(self.post_params or {})})
        from .baselines import RBIG

        return RBIG(**{"random_state": seed, **(self.post_params or {})})

    def _make_task(self, X: np.ndarray, y, encoder: Encoder, train_idx: np.ndarray, seed: int) -> Task:
        task = self.task
        if y is not None:
            y = np.asarray(y)
            if y.shape[0] != X.shape[0]:
                raise ValueError(f"y has {y.shape[0]} rows but X has {X.shape[0]}")
        if callable(task):
            return CallableTask(task, None if y is None else torch.as_tensor(y))
        if task == "auto":
            task = "supervised" if y is not None else "neighbors"
        k = self.n_components
        if task in ("supervised", "classification", "regression"):
            if y is None:
                raise ValueError(f"task={task!r} needs labels or targets y")
            if task == "supervised":
                task = target_kind(y)
        if task == "classification":
            if y.ndim > 1 and y.shape[1] > 1:
                raise ValueError(f"task='classification' needs one label per row, got y of shape {y.shape}")
            classes, codes = np.unique(y.reshape(-1), return_inverse=True)
            if len(classes) < 2:
                raise ValueError(f"task='classification' needs at least 2 classes, got {len(classes)}")
            if self.task != "classification" and few_rows_per_class(len(classes), y.shape[0]):
                warnings.warn(f"y has {len(classes)} classes for {y.shape[0]} rows; training a {len(classes)}-class "
                              "classifier. If y is a quantity, pass task='regression'", UserWarning, stacklevel=4)
            self.classes_ = classes
            return ClassificationTask(torch.as_tensor(codes.reshape(-1)), k, len(classes))
        if task == "regression":
            try:
                y2 = np.asarray(y, dtype=np.float32).reshape(X.shape[0], -1)
            except ValueError:
                raise ValueError("task='regression' needs numeric targets y") from None
            if not np.isfinite(y2).all():
                raise ValueError("y contains NaN or Inf")
            std = y2[train_idx].std(0)
            targets = (y2 - y2[train_idx].mean(0)) / np.where(std > 0, std, 1.0)
            return RegressionTask(torch.as_tensor(targets), k)
        if task == "reconstruction":
            return ReconstructionTask(k, X.shape[1], tuple(int(w) for w in self.hidden_layer_sizes))
        scaled = (X - encoder.shift.numpy()) / encoder.scale.numpy()
        return NeighborsTask(torch.as_tensor(knn_indices(scaled, 15, seed)))

    # ----------------------------------------------------------------------------- transform
    def _embed(self, X: np.ndarray, batch_size: int = 8192) -> np.ndarray:
        with torch.no_grad():
            parts = [self.encoder_.embed(torch.as_tensor(X[i : i + batch_size]))
                     for i in range(0, X.shape[0], batch_size)]
        return torch.cat(parts).numpy().astype(np.float64) if parts else np.empty((0, self.n_components))

    def transform(self, X) -> np.ndarray:
        """Embed X in eval mode (the posterior mean for a stochastic encoder): a row's embedding never depends on
        its batch."""
        check_is_fitted(self, "encoder_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        with torch_threads(self.n_jobs):
            Z = self._embed(X)
        return Z if self.post is None else self.post_.transform(Z)

    @available_if(lambda self: self.post is not None)
    def inverse_transform(self, Z) -> np.ndarray:
        """The encoder's embedding of points whose ``transform`` is ``Z``: the post-hoc map inverted (only with
        ``post``: the encoder itself is not invertible)."""
        check_is_fitted(self, "encoder_")
        return self.post_.inverse_transform(Z)

    @available_if(lambda self: self.post == "flow")
    def score_samples(self, X) -> np.ndarray:
        """log p(z) of each row's encoder embedding z under the fitted flow, exact (``post="flow"`` only: only a
        flow has a density); low values flag points unlike the training data."""
        check_is_fitted(self, "encoder_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        with torch_threads(self.n_jobs):
            return self.post_.score_samples(self._embed(X))

    def fit_transform(self, X, y=None, **fit_params) -> np.ndarray:
        return self.fit(X, y).transform(X)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """``gaussianembedder0``, ``gaussianembedder1``, …: scikit-learn's class-name prefix, as every gaussify
        transformer that mixes coordinates names its outputs (the CLI writes the same names)."""
        check_is_fitted(self, "encoder_")
        return np.asarray([f"gaussianembedder{i}" for i in range(self.n_components)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.target_tags.required = False
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags

    # ----------------------------------------------------------------------------- persistence
    def save(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write ``encoder.safetensors`` and ``config.json`` (hyperparameters, shapes, curves) to
        ``directory`` atomically: the files appear complete or not at all. No pickle.

        Nothing else is ever deleted: ``directory`` must be new, an empty folder or, with ``overwrite=True``, an
        earlier model holding only these two files (:func:`gaussify.model_folder.check_model_folder`); use
        :meth:`check_save_path` to check it before a long fit."""
        check_is_fitted(self, "encoder_")
        if callable(self.task):
            raise ValueError("a model trained with a callable task cannot be saved: its loss is code, not data")
        directory = self.check_save_path(directory, overwrite=overwrite)
        params = self.get_params()
        params["hidden_layer_sizes"] = list(params["hidden_layer_sizes"])
        config = {"format": MODEL_FORMAT, "params": params,
                  "n_features_in": int(self.n_features_in_), "history": self.history_,
                  "n_epochs": self.n_epochs_}
        if hasattr(self, "feature_names_in_"):
            config["feature_names_in"] = [str(f) for f in self.feature_names_in_]
        if hasattr(self, "post_gap_"):
            config["post_gap"] = self.post_gap_
        write_model_folder(directory, config, self.encoder_.state_dict(), config_file=CONFIG_FILE,
                           weights_file=WEIGHTS_FILE, parts={POST_FOLDER: self.post_} if self.post else None)
        return directory

    @staticmethod
    def check_save_path(directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """The resolved folder :meth:`save` would write, or ``ValueError`` if saving there could destroy data."""
        return check_model_folder(directory, files=(CONFIG_FILE, WEIGHTS_FILE, POST_FOLDER), config=CONFIG_FILE,
                                  model_format=MODEL_FORMAT, overwrite=overwrite)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "GaussianEmbedder":
        """Restore a model written by :meth:`save`; ``transform`` gives identical results."""
        from safetensors.torch import load_file

        directory = Path(directory)
        config = read_model_config(directory, config_file=CONFIG_FILE, model_format=MODEL_FORMAT)
        params = dict(config["params"])
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        model = cls(**params)
        encoder = Encoder(config["n_features_in"], model.n_components, params["hidden_layer_sizes"],
                          stochastic=model._stochastic())
        encoder.load_state_dict(load_file(directory / WEIGHTS_FILE))
        model.encoder_ = encoder.eval()
        model.n_features_in_ = config["n_features_in"]
        if "feature_names_in" in config:
            model.feature_names_in_ = np.asarray(config["feature_names_in"], dtype=object)
        model.history_ = config["history"]
        model.loss_curve_ = list(model.history_["loss"])
        model.n_epochs_ = config["n_epochs"]
        if model.post == "flow":
            from .flows import GaussianizingFlow

            model.post_ = GaussianizingFlow.load(Path(directory) / POST_FOLDER)
        elif model.post == "rbig":
            from .baselines import RBIG

            model.post_ = RBIG.load(Path(directory) / POST_FOLDER)
        if "post_gap" in config:
            model.post_gap_ = config["post_gap"]
        return model
