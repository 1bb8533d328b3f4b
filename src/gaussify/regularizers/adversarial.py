"""Adversarial regularizer: a critic tells target samples from encodings; the encoder is the generator."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.utils import skip_init

from .._validation import RandomState, check_int, check_ints, check_real
from ..target import TargetLike
from .base import Regularizer, to_device

__all__ = ["Adversarial"]

LOSSES = ("wgan-gp", "lsgan", "gan")


def default_critic(dim: int, hidden: Sequence[int], generator: torch.Generator) -> nn.Sequential:
    """MLP ``dim -> hidden... -> 1`` with LeakyReLU(0.2) and no normalisation layers.

    Weights and biases are drawn U(−1/√fan_in, 1/√fan_in) (PyTorch's default Linear scale) from
    ``generator``, so the critic is reproducible from the regularizer's seed and the global RNG is
    left untouched.
    """
    sizes = (dim, *hidden, 1)
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = skip_init(nn.Linear, fan_in, fan_out)
        bound = 1.0 / math.sqrt(fan_in)
        with torch.no_grad():
            linear.weight.uniform_(-bound, bound, generator=generator)
            linear.bias.uniform_(-bound, bound, generator=generator)
        layers.append(linear)
        if i < len(hidden):
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


class Adversarial(Regularizer):
    """A critic C trained to separate target samples from the batch; returns the encoder's loss.

    The critic sees the batch whitened by the target, w = L⁻¹(z − mu), and real samples
    x ~ N(0, I) drawn from the module's generator (as many as the batch has rows), so one
    critic architecture works against any N(mu, Sigma). In training mode every ``forward`` first
    runs ``critic_steps`` updates of the critic (its own Adam, betas (0.5, 0.9) as in WGAN-GP) on
    the detached batch, then returns the encoder (generator) loss for z with the critic frozen:

    ==========  =====================================================  ===========================
    loss        critic minimises                                       encoder loss returned
    ==========  =====================================================  ===========================
    "wgan-gp"   E C(w) − E C(x) + gp_weight E(‖∇C(x̂)‖ − 1)²,            −E C(w)
                x̂ = εx + (1−ε)w, ε ~ U(0, 1) per row
                (Gulrajani et al. 2017)
    "lsgan"     ½E(C(x) − 1)² + ½E C(w)²  (a-b-c = 0-1-1,               ½E(C(w) − 1)²
                Mao et al. 2017)
    "gan"       −E log σ(C(x)) − E log(1 − σ(C(w)))                    −E log σ(C(w)), non-saturating
                                                                       (Makhzani et al. 2015, AAE)
    ==========  =====================================================  ===========================

    The returned value is an encoder loss, not a divergence: compare it between batches under the
    same critic, not with 0 (for WGAN-GP it can be negative).

    The critic's parameters get no gradient from the returned loss (it is evaluated with detached
    parameters through ``torch.func.functional_call``), so neither ``loss.backward()`` nor the
    user's optimizer touch the critic; only ``self.optimizer`` does, inside ``forward``.
    The mode alone decides whether the critic learns: in training mode it is updated even when
    ``forward`` is called under ``torch.no_grad()`` or ``torch.inference_mode()`` (the updates run
    under ``torch.enable_grad()``, with autocast disabled); in eval mode it is never updated.
    Call ``.eval()`` on the regularizer to measure a batch without training the critic.

    Under ``torch.distributed`` every rank sees the same global batch, the same target draws and
    the same initial critic, so the critic stays identical across ranks; keep the regularizer
    outside the module wrapped in ``DistributedDataParallel``. The Adam state lives in
    ``self.optimizer`` (save ``self.optimizer.state_dict()`` alongside the module's to resume).

    Parameters
    ----------
    target : Gaussian, int or (mean, cov)
        The target: a :class:`~gaussify.Gaussian`, an int d for N(0, I_d) or any target form of the metrics.
    loss : {"wgan-gp", "lsgan", "gan"}, default "wgan-gp"
        The critic's and the encoder's losses (table above).
    critic : nn.Module, optional
        A module mapping (n, d) to (n, 1); by default an MLP with ``hidden`` layers, initialised from the
        module's generator.
    critic_steps : int, default 5
        Critic updates per ``forward`` in training mode (0: the critic never learns).
    lr : float, default 1e-3
        Learning rate of the critic's Adam.
    hidden : sequence of int, default (256, 256)
        Hidden widths of the default critic.
    gp_weight : float, default 10.0
        Weight of WGAN-GP's gradient penalty.
    random_state : None, int or numpy.random.Generator, default None
        Seed of the target draws and of the default critic's initialisation.

    Examples
    --------
    >>> import torch
    >>> from gaussify import Adversarial
    >>> reg = Adversarial(2, hidden=(16,), critic_steps=2, random_state=0)
    >>> z = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), requires_grad=True)
    >>> before = [p.detach().clone() for p in reg.critic.parameters()]
    >>> loss = reg(z)  # training mode: two critic updates, then the encoder's loss
    >>> loss.shape, any(not torch.equal(p, q) for p, q in zip(before, reg.critic.parameters()))
    (torch.Size([]), True)
    >>> loss.backward()
    >>> z.grad.shape
    torch.Size([64, 2])
    >>> _ = reg.eval()  # measure without training the critic
    """

    name: ClassVar[str] = "adversarial"

    def __init__(self, target: TargetLike, *, loss: str = "wgan-gp", critic: nn.Module | None = None,
                 critic_steps: int = 5, lr: float = 1e-3, hidden: Sequence[int] = (256, 256),
                 gp_weight: float = 10.0, random_state: RandomState = None) -> None:
        super().__init__(target, random_state=random_state)
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        critic_steps = check_int(critic_steps, "critic_steps", minimum=0)
        lr = check_real(lr, "lr", strict=True)
        gp_weight = check_real(gp_weight, "gp_weight")
        if critic is None:
            critic = default_critic(self.dim, check_ints(hidden, "hidden"), self.generator)
        elif not isinstance(critic, nn.Module):
            raise TypeError(f"critic must be a torch.nn.Module mapping (n, {self.dim}) to (n, 1), "
                            f"got {type(critic).__name__}")
        self.loss = loss
        self.critic_steps = critic_steps
        self.gp_weight = float(gp_weight)
        self.critic = critic
        self.optimizer = torch.optim.Adam(self.critic.parameters(), lr=lr, betas=(0.5, 0.9))

    def penalty(self, z: Tensor) -> Tensor:
        dtype = next(self.critic.parameters()).dtype
        w = self.whiten(z).to(dtype)
        if self.training and self.critic_steps:
            self._train_critic(w.detach())
        params = {key: p.detach() for key, p in self.critic.named_parameters()}
        score = self._score(w, params)
        if self.loss == "wgan-gp":
            loss = -score.mean()
        elif self.loss == "lsgan":
            loss = 0.5 * (score - 1).square().mean()
        else:
            loss = F.softplus(-score).mean()
        return loss.to(z.dtype)

    def _score(self, x: Tensor, params: dict[str, Tensor] | None = None) -> Tensor:
        out = self.critic(x) if params is None else functional_call(self.critic, params, (x,))
        if out.shape not in ((x.shape[0],), (x.shape[0], 1)):
            raise ValueError(f"the critic must map (n, {self.dim}) to (n, 1) or (n,), got {tuple(out.shape)}")
        return out.reshape(x.shape[0])

    def _critic_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        c_real, c_fake = self._score(real), self._score(fake)
        if self.loss == "lsgan":
            return 0.5 * ((c_real - 1).square().mean() + c_fake.square().mean())
        if self.loss == "gan":
            return F.softplus(-c_real).mean() + F.softplus(c_fake).mean()
        eps = to_device(torch.rand(real.shape[0], 1, generator=self.generator, dtype=real.dtype), real)
        mix = (eps * real + (1 - eps) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(self._score(mix).sum(), mix, create_graph=True)
        penalty = (grad.norm(dim=1) - 1).square().mean()
        return c_fake.mean() - c_real.mean() + self.gp_weight * penalty

    def _train_critic(self, fake: Tensor) -> None:
        with torch.inference_mode(False), torch.enable_grad():
            fake = fake.clone()  # an ordinary tensor even when called under inference mode
            for _ in range(self.critic_steps):
                real = to_device(torch.randn(fake.shape, generator=self.generator, dtype=fake.dtype), fake)
                self.optimizer.zero_grad(set_to_none=True)
                self._critic_loss(real, fake).backward()
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, loss={self.loss!r}, critic_steps={self.critic_steps}"
