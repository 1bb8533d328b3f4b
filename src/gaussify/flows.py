"""``GaussianizingFlow``: a normalizing flow fitted by maximum likelihood, used as a post-hoc Gaussianizer
that maps data to N(0, I) invertibly and gives the exact log-density of every point.

A flow is a bijection f of R^d with a tractable Jacobian; with the base N(0, I) the change of variables gives

    log p(x) = log N(f(x); 0, I) + log |det ∂f/∂x|,

and maximising it over a sample makes f(x) distributed as N(0, I) (Papamakarios et al. 2021, "Normalizing
Flows for Probabilistic Modeling and Inference", JMLR 22(57)). The flows come from zuko: neural spline
flows (Durkan et al. 2019, "Neural Spline Flows", NeurIPS), masked autoregressive flows (Papamakarios,
Pavlakou & Murray 2017, "Masked Autoregressive Flow for Density Estimation", NeurIPS) and affine
coupling (Dinh, Sohl-Dickstein & Bengio 2017, "Density estimation using Real NVP", ICLR).
"""

from __future__ import annotations

import copy
import math
import os
import warnings
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import zuko
from sklearn.utils.validation import check_is_fitted
from torch import Tensor, nn
from zuko.transforms import MonotonicRQSTransform

from ._torchutils import seeded, torch_device, torch_threads
from ._validation import (as_sample, as_seed, check_bool, check_int, check_ints, check_n_jobs, check_options,
                          check_real, standardize_to_target)
from .baselines import PCAWhitening, Baseline
from .model_folder import (CONFIG_FILE, FLOW_FORMAT, FLOW_WEIGHTS, check_model_folder, read_model_config,
                           write_model_folder)
from .training import TrainingDiverged

__all__ = ["GaussianizingFlow", "FLOWS", "AUTO_MAX_DIM", "AUTO_COUPLING", "cross_fitted_flow_kl"]


def _nsf_coupling(features: int, *, transforms: int, hidden_features: tuple[int, ...], bins: int) -> zuko.flows.Flow:
    """Rational-quadratic spline coupling layers (Durkan et al. 2019, the coupling variant; zuko's slope 1e-3),
    each on a random half of the coordinates given the other half."""
    return zuko.flows.RealNVP(features, transforms=transforms, randmask=True, hidden_features=hidden_features,
                              univariate=partial(MonotonicRQSTransform, slope=1e-3),
                              shapes=[(bins,), (bins,), (bins - 1,)])


FLOWS: dict[str, Callable[..., zuko.flows.Flow]] = {"nsf": zuko.flows.NSF, "maf": zuko.flows.MAF,
                                                    "realnvp": zuko.flows.RealNVP, "nsf-coupling": _nsf_coupling}
"""The flows by name; each has an exact (closed-form or pass-by-pass) inverse on all of R^d."""
_SPLINES = ("nsf", "nsf-coupling")  # the flows with a ``bins`` option
AUTO_MAX_DIM = 32
"""``flow="auto"`` is the autoregressive ``"nsf"`` up to this many dimensions and :data:`AUTO_COUPLING` above."""
AUTO_COUPLING = "realnvp"
"""The flow ``flow="auto"`` picks above :data:`AUTO_MAX_DIM` dimensions. On a 256-D embedding of mnist1d (20,000 rows
fitted, 10,000 held out, 2 busy cores; ``benchmarks/results/flow_high.md``) spline coupling (``"nsf-coupling"``, the
other defaults) took 1,991 s and 156 epochs, gained 73.7 nats of held-out log-likelihood over the whitening Gaussian
(KL 113 → 23) and cost 15 points of linear probe (0.541 → 0.389); affine coupling (``"realnvp"``, the other
defaults) took 23 s, gained 60.8 nats (KL 49) and cost 7 points (0.468): the fit time goal (10 minutes) and the
smaller cost decided."""
WEIGHTS_FILE, MODEL_FORMAT = FLOW_WEIGHTS, FLOW_FORMAT
_CHUNK = 8192  # rows per forward pass outside training: bounded memory for any number of rows


class GaussianizingFlow(Baseline):
    """A normalizing flow x ↦ z = f(W(x − μ)) fitted by maximum likelihood, so that z ~ N(0, I).

    ``fit`` whitens the sample (PCA whitening, W = Λ^{-1/2} Vᵀ, fitted on the training split) and then
    minimises the mean negative log-likelihood −(1/n) Σ log p(x_i) of a flow f on the whitened points, with

        log p(x) = log N(f(u); 0, I) + log |det ∂f/∂u| + log |det W|,   u = W(x − μ),
        log |det W| = −½ Σ_j log λ_j,

    by Adam with decoupled weight decay (AdamW) on minibatches (Papamakarios et al. 2021). The flow starts at
    the identity (its networks' output layers are zero), i.e. at the Gaussian fitted by the whitening, and
    weight decay pulls it back there. Whitening rather than per-column scaling: the flow then only has to
    model what is not linear, each coordinate is on the unit scale where the splines act ([−5, 5]; outside,
    the spline is the identity), and a strongly correlated pair is no longer a thin ridge that a few
    autoregressive or coupling layers fit badly.

    The defaults were chosen on held-out data (``benchmarks/bench_flow.py``, results in
    ``benchmarks/results/flow.md``): on 2-D embedding-like samples (ten blobs; digits by t-SNE) 16 bins beat 8
    (held-out kNN KL 0.06 vs 0.14 and 0.33 vs 0.50), a 20% validation split with patience 20 beat 10% with 10,
    and weight decay, input noise, more or fewer layers, other widths, MAF and RealNVP did no better. A uniform
    square is the exception (its hard edges favour 8 bins or the affine flows: exact held-out KL 0.074 or
    0.06 vs 0.11 at 1,400 rows). A 10,000 x 8 fit takes about 20 s on one core; ``"maf"`` is twice as fast.

    Parameters
    ----------
    flow
        ``"auto"`` (``"nsf"`` up to :data:`AUTO_MAX_DIM` dimensions, :data:`AUTO_COUPLING` above), ``"nsf"``
        (autoregressive rational-quadratic splines; Durkan et al. 2019), ``"maf"`` (affine autoregressive;
        Papamakarios et al. 2017), ``"realnvp"`` (affine coupling with alternating masks; Dinh et al. 2017) or
        ``"nsf-coupling"`` (spline coupling, each layer on a random half given the other half; Durkan et al.
        2019); in 1-D the affine ones are only affine maps. All invert exactly, the autoregressive ones in d
        sequential passes, the coupling ones in one pass per layer (zuko's other flows invert by bisection on a
        bounded interval, so they are not offered).
    n_transforms
        number of flow layers (alternating feature orders or masks; random halves for ``"nsf-coupling"``).
    hidden_features
        widths of each layer's hidden network (unused in 1-D, where each layer is elementwise
        with free parameters).
    bins
        spline bins per coordinate (``"nsf"`` and ``"nsf-coupling"``).
    max_epochs, batch_size, learning_rate, weight_decay
        the optimisation (AdamW).
    noise
        standard deviation of Gaussian noise added to every training batch, in whitened units: a
        regulariser that smooths the fitted density (0 disables it).
    validation_fraction, n_iter_no_change
        early stopping on the mean negative log-likelihood of a held-out
        split (used from 20 rows on): stop after ``n_iter_no_change`` epochs without a new best and restore
        the best epoch's weights, the start (epoch 0: the whitening's Gaussian) included, so that the fitted
        flow is never worse than that Gaussian on the validation rows. 0 trains ``max_epochs`` epochs and keeps
        the last.
    device
        where to train: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, …; the fitted flow is
        moved to the CPU in float64 for transforming and scoring.
    n_jobs
        CPU threads for torch while fitting and transforming (restored afterwards); -1 uses every core.
    random_state
        seed for the split, initialisation, shuffling and noise.
    verbose
        show a progress bar.

    Attributes
    ----------
    whitening_
        the fitted :class:`~gaussify.PCAWhitening` (``mean_``, ``components_``, ``explained_variance_``).
    flow_
        the zuko flow on whitened coordinates (CPU, float64, eval mode): ``flow_().transform(u)`` is f,
        ``flow_().log_prob(u)`` log N(f(u)) + log |det ∂f/∂u|.
    architecture_
        the name in :data:`FLOWS` that was fitted (what ``"auto"`` chose).
    n_features_in_, n_epochs_, best_epoch_
        the number of input features, of epochs trained, and the epoch whose weights were kept (1-based; 0: the
        start, no epoch beat it on the validation rows).
    history_
        per-epoch ``train_nll`` (mean over the epoch's noisy minibatches) and ``val_nll``, in nats per
        row in the input scale (comparable with ``-score``).

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify import GaussianizingFlow
    >>> Z = np.random.default_rng(0).uniform(-1, 1, (200, 2))  # a uniform square
    >>> flow = GaussianizingFlow(max_epochs=2, random_state=0).fit(Z)
    >>> flow.transform(Z).shape, flow.score_samples(Z).shape, flow.n_epochs_
    ((200, 2), (200,), 2)
    >>> np.allclose(flow.inverse_transform(flow.transform(Z)), Z)  # an exact bijection
    True
    >>> flow.sample(5, random_state=0).shape
    (5, 2)
    """

    def __init__(self, flow: str = "auto", *, n_transforms: int = 3, hidden_features: tuple[int, ...] = (64, 64),
                 bins: int = 16, max_epochs: int = 500, batch_size: int = 256, learning_rate: float = 1e-3,
                 weight_decay: float = 0.0, noise: float = 0.0, validation_fraction: float = 0.2,
                 n_iter_no_change: int = 20, device: str = "auto", n_jobs: int = 1,
                 random_state: int | None = None, verbose: bool = False) -> None:
        self.flow = flow
        self.n_transforms = n_transforms
        self.hidden_features = hidden_features
        self.bins = bins
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.noise = noise
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ----------------------------------------------------------------------------- checks and construction
    def _check_params(self) -> None:
        check_options(self.flow, "flow", ("auto", *FLOWS))
        for name in ("n_transforms", "max_epochs", "batch_size", "n_iter_no_change"):
            check_int(getattr(self, name), name)
        check_int(self.bins, "bins", minimum=2)
        check_ints(self.hidden_features, "hidden_features")
        check_real(self.learning_rate, "learning_rate", strict=True)
        check_real(self.weight_decay, "weight_decay")
        check_real(self.noise, "noise")
        check_real(self.validation_fraction, "validation_fraction", high=1.0)
        check_n_jobs(self.n_jobs)
        check_bool(self.verbose, "verbose")

    def _architecture(self, n_features: int) -> str:
        """The name in :data:`FLOWS` that ``flow`` stands for in ``n_features`` dimensions."""
        if self.flow != "auto":
            return self.flow
        return "nsf" if n_features <= AUTO_MAX_DIM else AUTO_COUPLING

    def _make_flow(self, architecture: str, n_features: int) -> zuko.flows.Flow:
        """The untrained flow, initialised to the identity (draws from torch's global RNG: call it seeded)."""
        kwargs: dict[str, Any] = {"transforms": int(self.n_transforms),
                                  "hidden_features": tuple(int(w) for w in self.hidden_features)}
        if architecture in _SPLINES:
            kwargs["bins"] = int(self.bins)
        flow = FLOWS[architecture](n_features, **kwargs)
        for layer in flow.transform.transforms:
            # zero parameters of the univariate maps are the identity (zuko's affine and spline maps);
            # a network (a Sequential) outputs them when its last layer is zero; an elementwise (1-D) layer holds them
            for param in (layer.hyper[-1] if hasattr(layer, "hyper") else layer).parameters():
                nn.init.zeros_(param)
        return flow

    # ----------------------------------------------------------------------------- fit
    def fit(self, X: Any, y: Any = None, *, X_val: Any = None) -> GaussianizingFlow:
        """Whiten X (n_samples, n_features) and fit the flow by maximum likelihood; ``y`` is ignored.

        ``X_val``: rows for early stopping instead of a ``validation_fraction`` split of X (all of X is then
        fitted). Give rows that look like the points the flow will map, e.g. embeddings of points an encoder
        did not train on, so that the stop measures how the density carries over to new points."""
        self._check_params()
        X = self._validate(X, reset=True)
        X_val = None if X_val is None else self._validate(X_val)
        seed = as_seed(self.random_state)
        device = torch_device(self.device)
        with seeded(seed, device, self.n_jobs):
            self._fit(X, X_val, seed, device)
        return self

    def _fit(self, X: np.ndarray, X_val: np.ndarray | None, seed: int, device: torch.device) -> None:
        n = X.shape[0]
        n_val = 0 if X_val is not None else int(round(self.validation_fraction * n)) if n >= 20 else 0
        perm = np.random.default_rng(seed).permutation(n)
        if n_val:
            X, X_val = X[perm[n_val:]], X[perm[:n_val]]
        with warnings.catch_warnings():  # a rank-deficient sample is refused below, not warned about
            warnings.simplefilter("ignore", UserWarning)
            whitening = PCAWhitening().fit(X)
        if whitening.n_components_ < X.shape[1]:
            raise ValueError(f"the sample covariance is singular (rank {whitening.n_components_} < {X.shape[1]}: "
                             "constant or collinear columns, or no more rows than columns); a flow needs a "
                             "full-rank covariance")
        log_det = _log_det(whitening)

        def whitened(rows: np.ndarray) -> Tensor:
            return torch.as_tensor(whitening.transform(rows), dtype=torch.float32, device=device)

        architecture = self._architecture(X.shape[1])
        flow = self._make_flow(architecture, X.shape[1]).to(device)
        history, best_epoch = self._train(flow, whitened(X), None if X_val is None else whitened(X_val), log_det,
                                          seed)
        self.whitening_, self.architecture_ = whitening, architecture
        self.flow_ = flow.cpu().double().eval()
        self.history_ = history
        self.n_epochs_ = len(history["train_nll"])
        self.best_epoch_ = best_epoch

    def _train(self, flow: zuko.flows.Flow, U: Tensor, U_val: Tensor | None, log_det: float,
               seed: int) -> tuple[dict[str, list[float]], int]:
        from tqdm.auto import tqdm

        generator = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.AdamW(flow.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        n = U.shape[0]
        batch_size = min(int(self.batch_size), n)
        history: dict[str, list[float]] = {"train_nll": [], "val_nll": []}
        def nll(rows: Tensor) -> float:  # nats per row in the input scale
            return -_chunked(lambda u: flow().log_prob(u), rows).mean().item() - log_det

        best_val, best_state, stale = math.inf, None, 0
        if U_val is not None:  # the start, the whitening Gaussian, is the first candidate: epoch 0
            best_val = nll(U_val)
            best_state = copy.deepcopy(flow.state_dict())
        best_epoch = 0
        bar = tqdm(range(self.max_epochs), desc="flow", unit="epoch", disable=not self.verbose, leave=False)
        for epoch in bar:
            flow.train()
            order = torch.randperm(n, generator=generator).to(U.device)
            total = torch.zeros((), device=U.device)
            for start in range(0, n, batch_size):
                u = U[order[start:start + batch_size]]
                if self.noise > 0:
                    u = u + self.noise * torch.randn(u.shape, generator=generator).to(u.device)
                loss = -flow().log_prob(u).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.detach() * u.shape[0]
            train_nll = total.item() / n - log_det
            if not math.isfinite(train_nll):
                raise TrainingDiverged(f"the negative log-likelihood became {train_nll} at epoch {epoch + 1}; "
                                       "try a smaller learning_rate, some noise or weight_decay")
            history["train_nll"].append(train_nll)
            postfix = {"train_nll": f"{train_nll:.4f}"}
            if U_val is not None:
                val_nll = nll(U_val)
                history["val_nll"].append(val_nll)
                postfix["val_nll"] = f"{val_nll:.4f}"
                if val_nll < best_val - 1e-4:  # (nats per row)
                    best_val, best_epoch, stale = val_nll, epoch + 1, 0
                    best_state = copy.deepcopy(flow.state_dict())
                else:
                    stale += 1
            bar.set_postfix(postfix)
            if stale >= self.n_iter_no_change:
                break
        bar.close()
        if best_state is None:
            return history, len(history["train_nll"])
        flow.load_state_dict(best_state)
        return history, best_epoch

    # ----------------------------------------------------------------------------- transform and score
    def _run(self, fn: Callable[[zuko.distributions.NormalizingFlow, Tensor], Tensor], U: np.ndarray) -> np.ndarray:
        """``fn(flow_(), rows)`` on float64 row chunks, as one NumPy array."""
        with torch_threads(self.n_jobs), torch.no_grad():
            distribution = self.flow_()
            return _chunked(lambda u: fn(distribution, u), torch.from_numpy(U)).numpy()

    def transform(self, X: Any) -> np.ndarray:
        """z = f(W(x − μ)): the N(0, I) coordinates of each row (float64)."""
        X = self._validate(X, reset=False)
        return self._run(lambda d, u: d.transform(u), self.whitening_.transform(X))

    def inverse_transform(self, X: Any) -> np.ndarray:
        """x = μ + W⁻¹ f⁻¹(z): the input-scale point of each row of N(0, I) coordinates."""
        Z = self._validate(X, reset=False)
        return self.whitening_.inverse_transform(self._run(lambda d, z: d.transform.inv(z), Z))

    def score_samples(self, X: Any) -> np.ndarray:
        """log p(x) = log N(f(u); 0, I) + log |det ∂f/∂u| − ½ Σ_j log λ_j per row, in the input scale:
        the exact log-density of the fitted model (low values flag points unlike the training data)."""
        X = self._validate(X, reset=False)
        return self._run(lambda d, u: d.log_prob(u), self.whitening_.transform(X)) + _log_det(self.whitening_)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log-likelihood per row (scikit-learn's convention: higher is better)."""
        return float(self.score_samples(X).mean())

    def sample(self, n_samples: int = 1, random_state: int | None = None) -> np.ndarray:
        """Draw rows from the fitted density: the inverse transform of N(0, I) draws."""
        check_is_fitted(self, "flow_")
        n = check_int(n_samples, "n_samples")
        return self.inverse_transform(np.random.default_rng(random_state).standard_normal((n, self.n_features_in_)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags

    # ----------------------------------------------------------------------------- persistence
    def save(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write ``flow.safetensors`` (flow weights and whitening) and ``config.json`` (hyperparameters,
        history) to ``directory`` atomically. Nothing else is ever deleted: ``directory`` must be new, empty
        or, with ``overwrite=True``, an earlier flow model (:meth:`check_save_path`)."""
        check_is_fitted(self, "flow_")
        directory = self.check_save_path(directory, overwrite=overwrite)
        params = self.get_params()
        params["hidden_features"] = [int(w) for w in params["hidden_features"]]
        config = {"format": MODEL_FORMAT, "params": params, "architecture": self.architecture_,
                  "n_features_in": int(self.n_features_in_),
                  "history": self.history_, "n_epochs": self.n_epochs_, "best_epoch": self.best_epoch_}
        weights = {f"flow.{name}": value for name, value in self.flow_.state_dict().items()}
        weights.update({f"whitening.{name}": torch.from_numpy(getattr(self.whitening_, name))
                        for name in _WHITENING})
        write_model_folder(directory, config, weights, config_file=CONFIG_FILE, weights_file=WEIGHTS_FILE)
        return directory

    @staticmethod
    def check_save_path(directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """The resolved folder :meth:`save` would write, or ``ValueError`` if saving there could destroy data."""
        return check_model_folder(directory, files=(CONFIG_FILE, WEIGHTS_FILE), config=CONFIG_FILE,
                                  model_format=MODEL_FORMAT, overwrite=overwrite)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> GaussianizingFlow:
        """Restore a model written by :meth:`save`; ``transform`` and ``score_samples`` give identical results."""
        from safetensors.torch import load_file

        config = read_model_config(directory, config_file=CONFIG_FILE, model_format=MODEL_FORMAT)
        params = dict(config["params"])
        params["hidden_features"] = tuple(params["hidden_features"])
        model = cls(**params)
        d = int(config["n_features_in"])
        weights = load_file(Path(directory) / WEIGHTS_FILE)
        architecture = str(config.get("architecture", params["flow"]))  # folders saved before "auto" lack it
        with seeded(0, torch.device("cpu"), model.n_jobs):  # construction draws random weights and masks, replaced
            flow = model._make_flow(architecture, d).double()
        flow.load_state_dict({name[5:]: value for name, value in weights.items() if name.startswith("flow.")})
        whitening = PCAWhitening()
        for name in _WHITENING:
            setattr(whitening, name, weights[f"whitening.{name}"].numpy())
        whitening.n_features_in_ = whitening.n_components_ = whitening._n_features_out = d
        model.flow_, model.whitening_, model.n_features_in_ = flow.eval(), whitening, d
        model.architecture_ = architecture
        model.history_, model.n_epochs_, model.best_epoch_ = config["history"], config["n_epochs"], \
            config["best_epoch"]
        return model


_WHITENING = ("mean_", "components_", "explained_variance_")


def cross_fitted_flow_kl(Z: Any, target: Any = None, *, random_state: int | None = 0, **flow_params: Any) -> float:
    r"""Cross-fitted flow estimate of KL(P ‖ target) in nats: a lower bound up to the noise of a sample mean.

    In the target's standard coordinates y = L⁻¹(z − μ) (KL is invariant under this bijection) the rows are split
    in two random halves A, B; a :class:`GaussianizingFlow` (``flow_params``, seeded by ``random_state``) is
    fitted on A and scored on B, and the other way round:

    .. math::
        \widehat{KL} = \tfrac12 \sum_{(A, B)} \operatorname{mean}_{i \in B} [\log \hat p_A(y_i) − \log φ(y_i)].

    For a density p̂ fitted on rows independent of y ~ P, E_P[log p̂ − log φ] = KL(P ‖ φ) − KL(P ‖ p̂) ≤ KL(P ‖ φ):
    the estimate is unbiased for a lower bound whose gap is the fit error KL(P ‖ p̂) (Gibbs' inequality), so
    a better flow can only raise it. It is slow (two flow fits) and needs rows enough for the flow to fit.

    Parameters
    ----------
    Z : array-like of shape (n, d)
        The sample, at least 2(d + 2) rows.
    target : optional
        The target, any form of the metrics (None: N(0, I)).
    random_state : int or None, default 0
        Seed of the split and of both flows.
    **flow_params
        Options of :class:`GaussianizingFlow`.

    Returns
    -------
    float
        The estimate in nats.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.flows import cross_fitted_flow_kl
    >>> Z = np.random.default_rng(0).uniform(-1, 1, (200, 2))
    >>> isinstance(cross_fitted_flow_kl(Z, max_epochs=2), float)
    True
    """
    Y = standardize_to_target(as_sample(Z, min_rows=8), target)
    n, d = Y.shape
    if n < 2 * (d + 2):
        raise ValueError(f"cross-fitting needs at least {2 * (d + 2)} rows (two halves with a full-rank covariance) "
                         f"in d={d}, got {n}")
    seed = as_seed(random_state)
    perm = np.random.default_rng(seed).permutation(n)
    halves = (perm[: n // 2], perm[n // 2:])
    log_phi = -0.5 * np.einsum("ij,ij->i", Y, Y) - 0.5 * d * math.log(2.0 * math.pi)
    values = []
    for fit, held_out in (halves, halves[::-1]):
        flow = GaussianizingFlow(random_state=seed, **flow_params).fit(Y[fit])
        values.append(float(np.mean(flow.score_samples(Y[held_out]) - log_phi[held_out])))
    return float(np.mean(values))


def _log_det(whitening: PCAWhitening) -> float:
    """log |det W| = −½ Σ_j log λ_j of the whitening map."""
    return float(-0.5 * np.log(whitening.explained_variance_).sum())


def _chunked(fn: Callable[[Tensor], Tensor], U: Tensor) -> Tensor:
    """``fn`` on row chunks of ``U`` without gradients, concatenated."""
    with torch.no_grad():
        return torch.cat([fn(U[i:i + _CHUNK]) for i in range(0, U.shape[0], _CHUNK)])
