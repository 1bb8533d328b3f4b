"""A calibrated p-value for one training batch: is it distinguishable from N(0, I) at its size?

The sliced statistics are the regularizers' own (:mod:`gaussify.regularizers.sigreg` and
:mod:`gaussify.regularizers.sliced` compute them; torch is imported on the first call, not with
:mod:`gaussify.metrics`), so the p-value says whether a batch's SIGReg or sliced Wasserstein value is above
what exact N(0, I) batches of the same size give; the default adds a test of the radii, which sees what
random slices in high dimension average away.
"""

from __future__ import annotations

import zlib
from functools import lru_cache
from typing import Any

import numpy as np

from ._cache import cached_array
from .._validation import RandomState, as_sample, check_int, check_random_state, sample_shape, target_moments
from .normality import N_SIM, _upper_pvalue

__all__ = ["batch_pvalue", "BATCH_STATISTICS"]

BATCH_STATISTICS = ("sigreg+radius", "sigreg", "swd", "radius")
_NULL_SEED = 0
_NULL_CHUNK = 1 << 22  # projected values per simulated chunk (16 MiB in float32)


def _slice_statistic(statistic: str) -> Any:
    from ..regularizers.sigreg import epps_pulley_1d
    from ..regularizers.sliced import wasserstein_to_normal_1d

    return {"sigreg": epps_pulley_1d, "swd": wasserstein_to_normal_1d}[statistic]


def _sliced_means(W: Any, theta: Any, statistic: str) -> Any:
    """Mean over slices of the statistic of each projected sample: W (B, n, d), unit columns theta (B, d, K) → (B,)."""
    projections = theta.transpose(1, 2) @ W.transpose(1, 2)  # (B, K, n): one contiguous row per slice
    batches, slices, n = projections.shape
    return _slice_statistic(statistic)(projections.reshape(batches * slices, n)).reshape(batches, slices).mean(dim=1)


def _radius_cramer_von_mises(W: Any) -> Any:
    r"""Cramér–von Mises statistic of the radii of each sample W (B, n, d) against their law under N(0, I):
    u_i = F_{χ²_d}(‖w_i‖²) (regularised incomplete gamma P(d/2, ‖w‖²/2)), ω² = 1/(12n) + Σ_i (u_(i) − (2i−1)/(2n))²
    → (B,). Blind to directions, but it sees a wrong spread of radii that slices average away."""
    import torch

    n, d = W.shape[1], W.shape[2]
    u = torch.special.gammainc(torch.tensor(0.5 * d, dtype=W.dtype, device=W.device), 0.5 * W.square().sum(2))
    grid = (2.0 * torch.arange(1, n + 1, dtype=W.dtype, device=W.device) - 1.0) / (2.0 * n)
    return 1.0 / (12.0 * n) + (u.sort(dim=1).values - grid).square().sum(1)


def _statistics(W: Any, theta: Any, components: tuple[str, ...]) -> Any:
    """Each component statistic of each sample: W (B, n, d), theta (B, d, K) → (B, len(components))."""
    import torch

    return torch.stack([_radius_cramer_von_mises(W) if name == "radius" else _sliced_means(W, theta, name)
                        for name in components], dim=1)


def _smooth_upper_pvalue(null: np.ndarray, value: np.ndarray) -> np.ndarray:
    """1 − F̂(value), F̂ the empirical CDF of the sorted ``null`` interpolated linearly between its points (a
    continuous p-value, so that minima over components have no ties)."""
    m = null.size
    return 1.0 - np.interp(value, null, (np.arange(1, m + 1) - 0.5) / m, left=0.0, right=1.0)


def _simulate_batch_null(statistic: str, n: int, d: int, num_slices: int, n_sim: int) -> np.ndarray:
    """Sorted statistics of ``n_sim`` simulated N(0, I_d) batches of n rows, each with its own random slices
    (float32 arithmetic, as the regularizers compute in), one row per component; for a combination ("a+b") also
    ``n_sim`` more batches whose smallest component p-value (against the first rows) fills a last row."""
    import torch

    components = tuple(statistic.split("+"))
    combined = len(components) > 1
    rng = np.random.default_rng([_NULL_SEED, n, d, num_slices, zlib.crc32(statistic.encode())])
    chunk = max(1, _NULL_CHUNK // (n * num_slices))
    total = 2 * n_sim if combined else n_sim
    blocks = []
    with torch.no_grad():
        for start in range(0, total, chunk):
            size = min(chunk, total - start)
            W = torch.from_numpy(rng.standard_normal((size, n, d), dtype=np.float32))
            theta = torch.from_numpy(_unit_directions(rng, (size, d, num_slices)))
            blocks.append(_statistics(W, theta, components).double().numpy())
    sims = np.concatenate(blocks)
    nulls = np.sort(sims[:n_sim], axis=0).T
    if not combined:
        return nulls
    smallest = _combined_pvalues(nulls, sims[n_sim:])
    return np.vstack([nulls, np.sort(smallest)])


def _combined_pvalues(nulls: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Smallest smoothed component p-value of each row of ``values`` (B, C) against the sorted ``nulls`` (C, n_sim)."""
    return np.min([_smooth_upper_pvalue(null, values[:, c]) for c, null in enumerate(nulls)], axis=0)


def _unit_directions(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Directions uniform on the unit sphere along axis −2: normalised standard normal vectors (float32)."""
    theta = rng.standard_normal(shape, dtype=np.float32)
    return theta / np.linalg.norm(theta, axis=-2, keepdims=True)


@lru_cache(maxsize=64)
def _batch_null(statistic: str, n: int, d: int, num_slices: int, n_sim: int) -> np.ndarray:
    """Sorted null rows (read-only), cached in memory and on disk (:mod:`gaussify.metrics._cache`)."""
    rows = statistic.count("+") + 1 + ("+" in statistic)
    import torch  # the nulls are computed in torch's float32 arithmetic: its version keys them too

    key = ("batch", statistic, n, d, num_slices, n_sim, _NULL_SEED, torch.__version__)
    sims = cached_array(f"batch-{statistic}-n{n}-d{d}", key, (rows, n_sim),
                        lambda: _simulate_batch_null(statistic, n, d, num_slices, n_sim),
                        definition=f"batch-{statistic}")
    sims.setflags(write=False)
    return sims


def _as_batch(z: Any) -> Any:
    """A torch tensor (n, d) of a floating dtype on z's device; arrays go through :func:`as_sample`. A tensor is
    not scanned for NaN here (that would synchronise): a non-finite statistic reports it."""
    import torch

    from ..regularizers.base import compute_dtype

    if not isinstance(z, torch.Tensor):
        return torch.from_numpy(as_sample(z, min_rows=2, name="z"))
    if z.is_complex():
        raise TypeError("z must be real-valued")
    n, d = sample_shape(z.shape, min_rows=2, name="z")
    z = z.detach().reshape(n, d)
    return z.to(compute_dtype(z.dtype)) if z.is_floating_point() else z.float()


def batch_pvalue(z: Any, statistic: str = "sigreg+radius", *, target: Any = None, num_slices: int = 256,
                 n_sim: int = N_SIM, random_state: RandomState = None) -> float:
    r"""Monte Carlo p-value of one batch (a torch tensor or an array, n × d) against N(0, I) or ``target``.

    With w_j = L⁻¹(z_j − μ) (target N(μ, LLᵀ)) and K = ``num_slices`` directions θ_k uniform on the sphere:

    * ``"sigreg"``: T = (1/K) Σ_k EP(θ_kᵀw), EP(x) = n ∫_{−3}^{3} |φ̂_n(t) − e^{−t²/2}|² e^{−t²/2} dt (17-knot
      trapezoid), the value of :class:`~gaussify.regularizers.SIGReg` (Epps & Pulley 1983, Biometrika 70;
      Balestriero & LeCun 2025, LeJEPA, arXiv:2511.08544);
    * ``"swd"``: T = (1/K) Σ_k (1/n) Σ_i (x_(i) − Φ⁻¹((i − ½)/n))², x = θ_kᵀw, the value of
      :class:`~gaussify.regularizers.SlicedWasserstein` (Kolouri et al. 2019);
    * ``"radius"``: the Cramér–von Mises distance of the radii ‖w_j‖² to χ²_d (:func:`_radius_cramer_von_mises`);
    * ``"sigreg+radius"`` (default): both, combined by their smallest p-value, calibrated as a whole. Slices
      average over directions, and in d ≥ 8 most 1-D projections of a non-Gaussian law are close to normal
      (a whitened uniform cube at n = 256, d = 8 is rejected at α = 0.05 in 10–20% of batches by ``"sigreg"``
      or ``"swd"``, whatever K; sigreg needs n ≈ 2048 for 99%); the radius sees such laws at once, the slices
      see what keeps the radius law (a rotation-free shape, a shifted mean of small norm).

    p = (1 + #{T_sim ≥ T}) / (n_sim + 1) over ``n_sim`` simulated N(0, I_d) batches of the same n, **each with
    its own fresh slices**: the null of the randomised statistic, so p is exactly calibrated when the batch's
    slices are fresh too: ``random_state=None`` (new slices every call) or a ``numpy.random.Generator``
    (new, reproducible slices every call). An int fixes the slices, which makes a call reproducible; its null
    then differs from the simulated one by the spread over slice draws, which shrinks as K grows. For the
    combination each component's p-value is read off its own simulated null (linearly interpolated, so it is
    continuous) and the smallest is compared with the smallest of ``n_sim`` further simulated batches: an
    exact Monte Carlo test of the minimum, with no multiple-testing loss.

    The null is simulated once per (statistic, n, d, num_slices, n_sim) and cached in memory and on disk
    (see :mod:`gaussify.metrics.normality`); at n = 256, d = 64 and the defaults that first call takes
    seconds on a CPU, every later call costs the statistic and a binary search. The statistic runs on the
    tensor's device; returning a Python float synchronises once (a NaN or Inf in z raises ``ValueError``).

    Parameters
    ----------
    z : array-like or torch.Tensor of shape (n, d)
        The batch (at least 2 rows).
    statistic : {"sigreg+radius", "sigreg", "swd", "radius"}, default "sigreg+radius"
        The statistic, one of :data:`BATCH_STATISTICS`.
    target : None | int | Gaussian | tuple, optional
        The Gaussian target: None for N(0, I), an int d for N(0, I_d), a :class:`gaussify.Gaussian` or a
        ``(mean, cov)`` pair.
    num_slices : int, default 256
        Random directions K of the sliced statistics.
    n_sim : int, default N_SIM
        Simulated batches behind the p-value.
    random_state : None | int | Generator, optional
        The batch's slices: None or a Generator for fresh ones (exactly calibrated), an int to fix them.

    Returns
    -------
    float
        The p-value.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.metrics import batch_pvalue
    >>> rng = np.random.default_rng(0)
    >>> batch_pvalue(rng.standard_normal((128, 2)), num_slices=16, n_sim=199, random_state=rng) > 0.05
    True
    >>> batch_pvalue(rng.uniform(-1.7, 1.7, (128, 2)), num_slices=16, n_sim=199, random_state=rng) < 0.05
    True
    """
    import torch

    if statistic not in BATCH_STATISTICS:
        raise ValueError(f"statistic must be one of {list(BATCH_STATISTICS)}, got {statistic!r}")
    num_slices = check_int(num_slices, "num_slices")
    n_sim = check_int(n_sim, "n_sim")
    rng = check_random_state(random_state)
    batch = _as_batch(z)
    n, d = batch.shape
    if target is not None:
        from ..target import Gaussian

        batch = Gaussian(*target_moments(target, d)).whiten(batch)
    theta = torch.from_numpy(_unit_directions(rng, (d, num_slices)))
    components = tuple(statistic.split("+"))
    with torch.no_grad():
        values = _statistics(batch[None], theta.to(device=batch.device, dtype=batch.dtype)[None], components)
    values = values.double().cpu().numpy()
    if not np.isfinite(values).all():
        raise ValueError(f"z contains NaN or Inf (the {statistic} statistic of the batch is {values[0].tolist()})")
    null = _batch_null(statistic, n, d, num_slices, n_sim)
    if len(components) == 1:
        return _upper_pvalue(null[0], float(values[0, 0]))
    smallest = float(_combined_pvalues(null[:-1], values)[0])
    return float((1 + np.searchsorted(null[-1], smallest, side="right")) / (n_sim + 1))
