"""A calibrated p-value for one training batch: is it distinguishable from N(0, I) at its size?

The statistics are the sliced regularizers' own (:mod:`gaussify.regularizers.sigreg` and
:mod:`gaussify.regularizers.sliced` compute them; torch is imported on the first call, not with
:mod:`gaussify.metrics`), so the p-value says whether a batch's SIGReg or sliced Wasserstein value is above
what exact N(0, I) batches of the same size give.
"""

from __future__ import annotations

import zlib
from functools import lru_cache
from typing import Any

import numpy as np

from ._cache import cached_array
from ._common import as_sample, check_int, sample_shape, target_moments
from .normality import N_SIM, _upper_pvalue

__all__ = ["batch_pvalue", "BATCH_STATISTICS"]

BATCH_STATISTICS = ("sigreg", "swd")
_NULL_SEED = 0
_NULL_CHUNK = 1 << 22  # projected values per simulated chunk (16 MiB in float32)


def _slice_statistic(statistic: str) -> Any:
    from ..regularizers.sigreg import epps_pulley
    from ..regularizers.sliced import wasserstein_to_normal_1d

    return {"sigreg": epps_pulley, "swd": wasserstein_to_normal_1d}[statistic]


def _sliced_means(W: Any, theta: Any, statistic: str) -> Any:
    """Mean over slices of the statistic of each projected sample: W (B, n, d), unit columns theta (B, d, K) → (B,)."""
    projections = theta.transpose(1, 2) @ W.transpose(1, 2)  # (B, K, n): one contiguous row per slice
    batches, slices, n = projections.shape
    return _slice_statistic(statistic)(projections.reshape(batches * slices, n)).reshape(batches, slices).mean(dim=1)


def _unit_directions(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Directions uniform on the unit sphere along axis −2: normalised standard normal vectors (float32)."""
    theta = rng.standard_normal(shape, dtype=np.float32)
    return theta / np.linalg.norm(theta, axis=-2, keepdims=True)


def _simulate_batch_null(statistic: str, n: int, d: int, num_slices: int, n_sim: int) -> np.ndarray:
    """The statistic of ``n_sim`` N(0, I_d) batches of n rows, each with its own random slices, sorted (float32
    arithmetic, as the regularizers compute in)."""
    import torch

    rng = np.random.default_rng([_NULL_SEED, n, d, num_slices, zlib.crc32(statistic.encode())])
    chunk = max(1, _NULL_CHUNK // (n * num_slices))
    sims = []
    with torch.no_grad():
        for start in range(0, n_sim, chunk):
            size = min(chunk, n_sim - start)
            W = torch.from_numpy(rng.standard_normal((size, n, d), dtype=np.float32))
            theta = torch.from_numpy(_unit_directions(rng, (size, d, num_slices)))
            sims.append(_sliced_means(W, theta, statistic).double().numpy())
    return np.sort(np.concatenate(sims))


@lru_cache(maxsize=64)
def _batch_null(statistic: str, n: int, d: int, num_slices: int, n_sim: int) -> np.ndarray:
    """Sorted null statistics (read-only), cached in memory and on disk (:mod:`gaussify.metrics._cache`)."""
    sims = cached_array(f"batch-{statistic}-n{n}-d{d}", ("batch", statistic, n, d, num_slices, n_sim, _NULL_SEED),
                        (n_sim,), lambda: _simulate_batch_null(statistic, n, d, num_slices, n_sim))
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


def batch_pvalue(z: Any, statistic: str = "sigreg", *, target: Any = None, num_slices: int = 256, n_sim: int = N_SIM,
                 random_state: Any = None) -> float:
    r"""Monte Carlo p-value of one batch (a torch tensor or an array, n × d) against N(0, I) or ``target``.

    With w_j = L⁻¹(z_j − μ) (target N(μ, LLᵀ)) and K = ``num_slices`` directions θ_k uniform on the sphere,
    T = (1/K) Σ_k S(θ_kᵀw), where S is the regularizers' 1-D statistic:

    * ``"sigreg"``: Epps–Pulley, S(x) = n ∫_{−3}^{3} |φ̂_n(t) − e^{−t²/2}|² e^{−t²/2} dt (17-knot trapezoid),
      the value of :class:`~gaussify.regularizers.SIGReg` (Epps & Pulley 1983, Biometrika 70; Balestriero &
      LeCun 2025, LeJEPA, arXiv:2511.08544);
    * ``"swd"``: S(x) = (1/n) Σ_i (x_(i) − Φ⁻¹((i − ½)/n))², the value of
      :class:`~gaussify.regularizers.SlicedWasserstein` (Kolouri et al. 2019).

    p = (1 + #{T_sim ≥ T}) / (n_sim + 1) over ``n_sim`` simulated N(0, I_d) batches of the same n, **each with
    its own fresh slices**: the null of the randomised statistic, so p is exactly calibrated when the batch's
    slices are fresh too: ``random_state=None`` (new slices every call) or a ``numpy.random.Generator``
    (new, reproducible slices every call). An int fixes the slices, which makes a call reproducible; its null
    then differs from the simulated one by the spread over slice draws, which shrinks as K grows.

    The null is simulated once per (statistic, n, d, num_slices, n_sim) and cached in memory and on disk
    (see :mod:`gaussify.metrics.normality`); at n = 256, d = 64 and the defaults that first call takes
    seconds on a CPU, every later call costs the statistic and a binary search. The statistic runs on the
    tensor's device; returning a Python float synchronises once (a NaN or Inf in z raises ``ValueError``).

    Slices average over directions, and in d ≥ 8 most 1-D projections of a non-Gaussian law are close to
    normal: a whitened uniform cube (mean 0, covariance I) at n = 256, d = 8 is rejected at α = 0.05 only
    10–20% of the time by either statistic, whatever ``num_slices`` (sigreg needs n ≈ 2048 for 99%);
    :func:`~gaussify.metrics.mahalanobis_radius_test` with ``target`` rejects it every time at n = 256.
    """
    import torch

    if statistic not in BATCH_STATISTICS:
        raise ValueError(f"statistic must be one of {list(BATCH_STATISTICS)}, got {statistic!r}")
    num_slices = check_int(num_slices, "num_slices")
    n_sim = check_int(n_sim, "n_sim")
    batch = _as_batch(z)
    n, d = batch.shape
    if target is not None:
        from ..target import Gaussian

        batch = Gaussian(*target_moments(target, d)).whiten(batch)
    theta = torch.from_numpy(_unit_directions(np.random.default_rng(random_state), (d, num_slices)))
    with torch.no_grad():
        value = float(_sliced_means(batch[None], theta.to(device=batch.device, dtype=batch.dtype)[None], statistic)[0])
    if not np.isfinite(value):
        raise ValueError(f"z contains NaN or Inf (the {statistic} statistic of the batch is {value})")
    return _upper_pvalue(_batch_null(statistic, n, d, num_slices, n_sim), value)
