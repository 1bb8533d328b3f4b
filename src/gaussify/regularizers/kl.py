"""Stochastic encoder + closed-form KL to the target (a VAE's prior term, no decoder needed)."""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from .._validation import RandomState, check_int
from ..distributed import all_reduce_sum_with_grad
from ..target import TargetLike
from .base import Regularizer

__all__ = ["Posterior", "GaussianHead", "KLDivergence"]


class Posterior(NamedTuple):
    """A diagonal Gaussian posterior q(z | x) = N(mean, diag exp(logvar)) and a draw from it.

    All three tensors have shape (n, d).

    Attributes
    ----------
    sample : Tensor of shape (n, d)
        A draw z ~ q(z | x) (the mean in eval mode).
    mean : Tensor of shape (n, d)
        The posterior means m_i.
    logvar : Tensor of shape (n, d)
        The log-variances v_i.

    Examples
    --------
    >>> import torch
    >>> from gaussify import Posterior
    >>> post = Posterior(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3, 2))
    >>> sample, mean, logvar = post  # a named tuple
    >>> post.mean.shape
    torch.Size([3, 2])
    """

    sample: Tensor
    mean: Tensor
    logvar: Tensor


class GaussianHead(nn.Module):
    """Linear heads for the mean and the log-variance of a diagonal Gaussian posterior.

    ``forward(x)`` returns a :class:`Posterior`. In training mode the sample is
    reparametrised, ``mean + exp(logvar / 2) * eps`` with eps ~ N(0, I) (Kingma & Welling
    2014, "Auto-Encoding Variational Bayes"), so gradients reach both heads; in eval mode
    the sample is the mean. eps comes from ``generator`` when one is given, otherwise from
    torch's global RNG.

    The log-variance is clamped to [``LOGVAR_MIN``, ``LOGVAR_MAX``] = [-30, 20], i.e. a
    standard deviation between about 3e-7 and 2.2e4: ``exp(logvar)`` stays finite in float16
    and float32 and the KL term cannot overflow. The clamp has zero gradient outside the range.

    Parameters
    ----------
    in_features : int
        Width of the input x.
    out_features : int
        Dimension d of the embedding.
    generator : torch.Generator, optional
        Source of the reparametrisation noise (default: torch's global RNG).

    Examples
    --------
    >>> import torch
    >>> from gaussify import GaussianHead
    >>> head = GaussianHead(4, 2, generator=torch.Generator().manual_seed(0))
    >>> post = head(torch.randn(64, 4))
    >>> post.sample.shape, post.logvar.shape
    (torch.Size([64, 2]), torch.Size([64, 2]))
    >>> _ = head.eval()
    >>> post = head(torch.randn(64, 4))
    >>> torch.equal(post.sample, post.mean)  # eval mode: the sample is the mean
    True
    """

    LOGVAR_MIN: ClassVar[float] = -30.0
    LOGVAR_MAX: ClassVar[float] = 20.0

    def __init__(self, in_features: int, out_features: int, *,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        in_features, out_features = check_int(in_features, "in_features"), check_int(out_features, "out_features")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        self.mean = nn.Linear(in_features, out_features)
        self.logvar = nn.Linear(in_features, out_features)
        self.generator = generator

    def forward(self, x: Tensor) -> Posterior:
        mean = self.mean(x)
        logvar = self.logvar(x).clamp(self.LOGVAR_MIN, self.LOGVAR_MAX)
        if not self.training:
            return Posterior(mean, mean, logvar)
        if self.generator is None:
            eps = torch.randn_like(mean)
        else:
            eps = torch.randn(mean.shape, generator=self.generator, device=self.generator.device,
                              dtype=mean.dtype).to(mean.device)
        return Posterior(mean + torch.exp(0.5 * logvar) * eps, mean, logvar)


class KLDivergence(Regularizer):
    """Batch mean of KL(N(m_i, diag exp(v_i)) || N(mu, Sigma)) for a full-covariance target.

    For each row i, with s = exp(v_i) and Sigma = L Lᵀ,

        KL_i = ½ [ tr(Sigma⁻¹ diag s) + (mu − m_i)ᵀ Sigma⁻¹ (mu − m_i) − d + log|Sigma| − Σ_j v_ij ]

    computed with the Cholesky factor: tr(Sigma⁻¹ diag s) = Σ_j s_j ‖L⁻¹ e_j‖², the Mahalanobis
    term is ‖L⁻¹(m_i − mu)‖² (a triangular solve) and log|Sigma| = 2 Σ log L_jj; Sigma is never
    inverted. Against N(0, I) this is the textbook ½[−log|S| − d + tr S + mᵀm]
    (Kingma & Welling 2014, appendix B).

    ``forward`` takes a :class:`Posterior` (or a ``(mean, logvar)`` tuple). The KL is
    per-sample, so the value is exact for any batch size, including one row; under
    ``torch.distributed`` it is the mean over the global batch, Σ_ranks Σ_i KL_i / Σ_ranks n.
    Statistics run in float32 (float64 for float64 input) with autocast disabled.

    Parameters
    ----------
    target : Gaussian, int or (mean, cov)
        The target: a :class:`~gaussify.Gaussian`, an int d for N(0, I_d) or any target form of the metrics.
    random_state : None, int or numpy.random.Generator, default None
        Accepted like every regularizer's; the KL is deterministic.

    Examples
    --------
    >>> import torch
    >>> from gaussify import GaussianHead, KLDivergence
    >>> kl = KLDivergence(2)
    >>> kl((torch.zeros(3, 2), torch.zeros(3, 2)))  # posterior N(0, I) = the target
    tensor(0.)
    >>> head = GaussianHead(4, 2, generator=torch.Generator().manual_seed(0))
    >>> loss = kl(head(torch.randn(64, 4)))
    >>> loss.shape, loss.item() > 0
    (torch.Size([]), True)
    """

    name: ClassVar[str] = "kl"
    takes: ClassVar[str] = "posterior"
    min_batch = 1
    precision_diag: Tensor  # buffers
    target_logdet: Tensor

    def __init__(self, target: TargetLike, *, random_state: RandomState = None) -> None:
        super().__init__(target, random_state=random_state)
        chol = self.target_chol
        eye = torch.eye(self.dim, dtype=chol.dtype)
        chol_inv = torch.linalg.solve_triangular(chol, eye, upper=False)
        self.register_buffer("precision_diag", chol_inv.square().sum(0))  # diag of Sigma⁻¹
        self.register_buffer("target_logdet", 2.0 * torch.log(torch.diagonal(chol)).sum())

    def per_sample(self, mean: Tensor, logvar: Tensor) -> Tensor:
        """KL_i for each row, shape (n,); validates the inputs (shape (n, d), finite)."""
        mean = self.check_input(mean, "mean")
        logvar = self.check_input(logvar, "logvar")
        if mean.shape != logvar.shape:
            raise ValueError(f"mean and logvar must have the same shape, got {tuple(mean.shape)} "
                             f"and {tuple(logvar.shape)}")
        dtype = torch.promote_types(mean.dtype, logvar.dtype)
        mean, logvar = mean.to(dtype), logvar.to(dtype)
        with torch.autocast(device_type=mean.device.type, enabled=False):
            trace = torch.exp(logvar) @ self.precision_diag.to(dtype)
            mahalanobis = self.whiten(mean).square().sum(1)
            return 0.5 * (trace + mahalanobis - self.dim + self.target_logdet.to(dtype) - logvar.sum(1))

    # takes = "posterior": forward's input is declared by Regularizer.takes, which mypy cannot express
    def forward(self, posterior: Posterior | tuple[Tensor, Tensor]) -> Tensor:  # type: ignore[override]
        if isinstance(posterior, tuple) and len(posterior) == 3:
            _, mean, logvar = posterior
        elif isinstance(posterior, tuple) and len(posterior) == 2:
            mean, logvar = posterior
        else:
            raise TypeError("KLDivergence expects a gaussify.Posterior (sample, mean, logvar) or a "
                            f"(mean, logvar) tuple, got {type(posterior).__name__}")
        kl = self.per_sample(mean, logvar)
        total = all_reduce_sum_with_grad(kl.sum())
        count = all_reduce_sum_with_grad(kl.new_full((), float(kl.shape[0])))
        loss = total / count
        self.require_finite(loss, "KLDivergence produced a non-finite value: exp(logvar) or the squared mean "
                            f"overflowed; keep logvar within [{GaussianHead.LOGVAR_MIN}, "
                            f"{GaussianHead.LOGVAR_MAX}] (GaussianHead clamps it)")
        return loss

