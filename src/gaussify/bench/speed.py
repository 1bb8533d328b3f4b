"""Speed of gaussify next to the PyPI packages that do the same work, in the same process.

Regularizers (forward + backward on one batch z of shape (n, d), on ``--device``):

  =============  ==========================================================================
  swd            POT ``ot.sliced_wasserstein_distance`` (same projection count, a target sample)
  pursued-swd    POT ``ot.max_sliced_wasserstein_distance`` (same random projection count)
  mmd            geomloss ``SamplesLoss("gaussian")`` (and ``"energy"``), tensorized
  sigreg         jepa-science ``SIGReg`` (same slice count, 17 knots, t_max = 3)
  cramer-wold    geomloss ``SamplesLoss("energy")``: the closest sample-based kernel distance
  kl, moments,   no PyPI peer: timed alone (adversarial includes its critic updates, as in
  adversarial,   training mode)
  knn, placement
  =============  ==========================================================================

Metrics (NumPy, always on the CPU; time and tracemalloc peak of one call):

  =====================  ====================================================================
  henze_zirkler          pingouin ``multivariate_normality`` (skipped where its n x n arrays
                         would exceed ``--mem-gib``)
  energy                 the energy statistic with ``scipy.spatial.distance.pdist`` (no p-value)
  coordinates(shapiro)   ``scipy.stats.shapiro`` on every column
  coordinates(dagostino) ``scipy.stats.normaltest`` on every column
  t-SNE                  gaussify's openTSNE run (one perplexity, one seed, plus its KL score)
                         vs scikit-learn ``TSNE`` with the same perplexity and iteration count
  others                 no PyPI peer: timed alone
  =====================  ====================================================================

Protocol: every entry is the median of ``--repeats`` timed runs after one warm-up run; a gaussify
entry and its peers run round-robin, so that they share the machine's load. Ratio = gaussify /
peer (below 1: gaussify is faster). How each cost grows is the least-squares fit of
log t = c + a log n + b log d over the grid (n-sweep at one d, d-sweep at one n).

    python -m gaussify.bench.speed --quick
    python benchmarks/bench_speed.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tracemalloc
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import machine_lines, timed

__all__ = ["main", "run", "plan", "markdown", "fit_exponents", "plot"]

PACKAGES = ("gaussify", "torch", "numpy", "scipy", "scikit-learn", "pot", "geomloss", "jepa-science", "pingouin",
            "openTSNE")

# --------------------------------------------------------------------------------------------- grids
# A cross design: an n-sweep at one d and a d-sweep at one n, enough to fit both exponents.
REG_GRID = [(1024, 256), (2048, 256), (4096, 256), (8192, 256), (4096, 64), (4096, 128), (4096, 512)]
METRIC_GRID = [(1000, 8), (2000, 8), (4000, 8), (8000, 8), (4000, 2), (4000, 32)]
TSNE_GRID = [(500, 8), (1000, 8), (2000, 8), (1000, 32)]
GPU_REG_GRID = [(256, 512), (1024, 512), (4096, 512), (8192, 512), (4096, 64), (4096, 256), (4096, 1024),
                (4096, 2048)]
"""``--gpu-grid``: regularizers only, n = 256 … 8192 at d = 512 and d = 64 … 2048 at n = 4096 (one short call on
an accelerator; ``speed_gpu.md``)."""
QUICK_REG_GRID = [(256, 32), (512, 32), (512, 64)]
QUICK_METRIC_GRID = [(300, 4), (600, 4), (300, 8)]
QUICK_TSNE_GRID = [(100, 4), (200, 4), (100, 8)]
ACCEPT_POINT = (4096, 256)  # the regularizer acceptance point (equal slice counts)
HEAVY_S = 5.0  # a warm-up slower than this is timed once more only, not --repeats times
NO_PEER = "—"
GIB = 1 << 30

NOTES = {
    "kl": "no PyPI peer (needs a posterior head); timed alone",
    "moments": "no PyPI peer; timed alone",
    "adversarial": "no PyPI peer; timed alone (includes the critic updates of training mode)",
    "mmd": "gaussify: 5 RBF scales against N(0, I) in closed form (no target sample); geomloss: 1 scale, "
           "3 n x n blocks with a target sample",
    "swd": "POT sorts a target sample too; gaussify compares with exact normal quantiles",
    "sigreg": "same slices, knots and t_max",
    "pursued-swd": "gaussify: the random slices plus 16 directions pursued by one FastICA step on 8,192 remembered "
                   "rows; POT: the maximum over as many random projections of a target-sample transport",
    "placement": "no PyPI peer; timed alone (a d x d Cholesky per call)",
    "cramer-wold": "no PyPI Cramér–Wold; closest peer is the geomloss energy distance (another kernel, "
                   "with a target sample)",
    "knn": "no PyPI peer; timed alone (blocked neighbour search without gradient, then O(n d) graph)",
    "mardia_skewness": "no PyPI peer",
    "mardia_kurtosis": "no PyPI peer",
    "epps_pulley": "no PyPI peer; Monte Carlo null cached (first call includes it)",
    "doornik_hansen": "no PyPI peer",
    "mahalanobis_radius": "no PyPI peer; Monte Carlo null cached (first call includes it)",
    "kl_divergence": "no PyPI peer; first call at a new (n, d) simulates and caches its Gaussian kNN reference",
    "energy": "peer computes the statistic only (no p-value); gaussify's Monte Carlo null is cached "
              "(first call includes it)",
    "henze_zirkler": "same statistic (MLE covariance) and lognormal p-value",
    "coordinates(shapiro)": "above 5000 rows gaussify tests a 5000-row subsample (Royston's range)",
    "coordinates(dagostino)": "same test, plus Holm correction",
    "t-SNE": "openTSNE as gaussify runs it (250 + 500 iterations; its KL score is the kl_divergence row) vs "
             "scikit-learn TSNE (max_iter = 750), perplexity 30 (less for tiny n), random init, same thread count",
}


# Why an entry can be slower than its peer, and what would fix it (from profiling; appended to FAIL rows).
FAIL_NOTES = {
    "energy": "why: only below ~800 rows (the --quick grid, 1.0–1.2): the tiles' fixed costs (factor matrices, "
              "thread-pool limit: ~30 µs) and whole diagonal tiles (0.75 n² square roots at 300 rows vs pdist's n²/2) "
              "outweigh pdist on a sub-millisecond call; from 1000 rows the 256-row tiles win (0.55–0.9). Fix: pdist "
              "for n <= 512 and d <= 8, where it is 1.1–1.9x faster than the tiles",
}

# --------------------------------------------------------------------------------------------- timing
def _traced(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Result and tracemalloc peak (bytes) of one call: NumPy buffers are traced, C++ heaps are not."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        out = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return out, float(peak)


def _cuda_peak(fn: Callable[[], Any], device: Any) -> float | None:
    if getattr(device, "type", "cpu") != "cuda":
        return None
    import torch

    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize(device)
    return float(torch.cuda.max_memory_allocated(device) - base)


def _round_robin(fns: Sequence[Callable[[], Any]], repeats: int, device: Any = None) -> list[float]:
    """Median seconds of each callable over ``repeats`` round-robin rounds; a first round slower than
    HEAVY_S in total is the only one."""
    runs = [[timed(fn, device)[1] for fn in fns]]
    if sum(runs[0]) <= HEAVY_S:
        runs += [[timed(fn, device)[1] for fn in fns] for _ in range(repeats - 1)]
    return [statistics.median(column) for column in zip(*runs)]


# --------------------------------------------------------------------------------------------- regularizers
@dataclass
class _Case:
    """One gaussify entry and its peers at one grid point: callables return nothing useful."""

    section: str
    method: str
    ours: Callable[[], Any]
    peers: list[tuple[str, Callable[[], Any] | None, str]] = field(default_factory=list)  # (name, fn, skip)
    note: str = ""


def _optional(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _regularizer_cases(n: int, d: int, slices: int, device: Any) -> list[_Case]:
    import torch

    from ..regularizers import REGISTRY, Posterior, make_regularizer

    g = torch.Generator().manual_seed(n + d)
    z = torch.randn(n, d, generator=g).to(device).requires_grad_(True)
    logvar = (0.1 * torch.randn(n, d, generator=g)).to(device).requires_grad_(True)
    y = torch.randn(n, d, generator=g).to(device)  # the target sample that the peers need
    leaves = (z, logvar)

    def step(loss: Callable[[], torch.Tensor]) -> Callable[[], None]:
        def call() -> None:
            for leaf in leaves:
                leaf.grad = None
            loss().backward()
        return call

    geomloss, ot, jepa = _optional("geomloss"), _optional("ot"), _optional("jepa_science")
    missing = "peer not installed"
    gaussian = energy = sigreg_peer = None
    if geomloss is not None:
        gaussian = geomloss.SamplesLoss("gaussian", blur=1.0, backend="tensorized")
        energy = geomloss.SamplesLoss("energy", backend="tensorized")
    if jepa is not None:
        sigreg_peer = jepa.SIGReg(num_slices=slices, n_knots=17, t_max=3.0).to(device)
    seeds = iter(range(10**9))  # a new POT seed each call: fresh projections, as gaussify draws
    peers: dict[str, list[tuple[str, Callable[[], None] | None, str]]] = {
        "swd": [("POT sliced_wasserstein_distance",
                 None if ot is None else step(lambda: ot.sliced_wasserstein_distance(
                     z, y, n_projections=slices, p=2, seed=next(seeds))), missing)],
        "mmd": [("geomloss gaussian", None if gaussian is None else step(lambda: gaussian(z, y)), missing),
                ("geomloss energy", None if energy is None else step(lambda: energy(z, y)), missing)],
        "pursued-swd": [("POT max_sliced_wasserstein_distance",
                         None if ot is None else step(lambda: ot.max_sliced_wasserstein_distance(
                             z, y, n_projections=slices, p=2, seed=next(seeds))), missing)],
        "sigreg": [("jepa-science SIGReg", None if sigreg_peer is None else step(lambda: sigreg_peer(z)), missing)],
        "cramer-wold": [("geomloss energy", None if energy is None else step(lambda: energy(z, y)), missing)],
    }
    options = {"swd": {"num_slices": slices}, "sigreg": {"num_slices": slices}, "pursued-swd": {"num_slices": slices}}
    cases = []
    for name in REGISTRY:
        reg = make_regularizer(name, d, random_state=0, **options.get(name, {})).to(device)
        if reg.takes == "posterior":
            def loss(reg=reg):
                return reg(Posterior(z, z, logvar))
        else:
            def loss(reg=reg):
                return reg(z)
        cases.append(_Case("regularizer", name, step(loss), peers.get(name, []), NOTES.get(name, "")))
    return cases


# --------------------------------------------------------------------------------------------- metrics
def _pingouin_hz(X: np.ndarray) -> float:
    import pingouin

    return float(pingouin.multivariate_normality(X).hz)


def _scipy_pdist_energy(X: np.ndarray) -> float:
    """The energy statistic the textbook way: all n(n−1)/2 distances in one array (no p-value)."""
    from scipy import special
    from scipy.spatial.distance import pdist

    n, d = X.shape
    evals, P = np.linalg.eigh(np.cov(X, rowvar=False).reshape(d, d))
    Y = (X - X.mean(axis=0)) @ (P / np.sqrt(evals)) @ P.T
    const = np.exp(special.gammaln((d + 1) / 2) - special.gammaln(d / 2))
    mean1 = np.sqrt(2) * const * np.mean(special.hyp1f1(-0.5, d / 2, -np.sum(Y**2, axis=1) / 2))
    return float(n * (2 * mean1 - 2 * const - 2 * pdist(Y).sum() / n**2))


def _scipy_shapiro(X: np.ndarray) -> None:
    from scipy import stats

    with warnings.catch_warnings():  # "p-value may not be accurate for N > 5000": timed anyway
        warnings.simplefilter("ignore", UserWarning)
        [stats.shapiro(column) for column in X.T]


def _scipy_normaltest(X: np.ndarray) -> None:
    from scipy import stats

    stats.normaltest(X, axis=0)


def _metric_cases(X: np.ndarray, n_sim: int, mem_gib: float, n_jobs: int) -> list[_Case]:
    from ..metrics import normality as nt
    from ..metrics.divergence import kl_divergence

    n, _ = X.shape
    pingouin = _optional("pingouin")
    hz_skip = ("peer not installed" if pingouin is None else
               f"skipped: its n x n arrays need {4 * 8 * n * n / GIB:.1f} GiB > {mem_gib:g} GiB"
               if 4 * 8.0 * n * n > mem_gib * GIB else "")
    pdist_skip = (f"skipped: pdist needs {4.0 * n * (n - 1) / GIB:.1f} GiB > {mem_gib:g} GiB"
                  if 4.0 * n * (n - 1) > mem_gib * GIB else "")

    def case(method: str, ours: Callable[[], Any], peers: list | None = None) -> _Case:
        return _Case("metric", method, ours, peers or [], NOTES.get(method, ""))

    mc = {"n_sim": n_sim}
    return [
        case("mardia_skewness", lambda: nt.mardia_skewness(X)),
        case("mardia_kurtosis", lambda: nt.mardia_kurtosis(X)),
        case("henze_zirkler", lambda: nt.henze_zirkler(X),
             [("pingouin multivariate_normality", None if hz_skip else (lambda: _pingouin_hz(X)), hz_skip)]),
        case("energy", lambda: nt.energy_test(X, **mc),
             [("scipy pdist energy", None if pdist_skip else (lambda: _scipy_pdist_energy(X)), pdist_skip)]),
        case("epps_pulley", lambda: nt.epps_pulley(X, **mc)),
        case("doornik_hansen", lambda: nt.doornik_hansen(X)),
        case("coordinates(shapiro)", lambda: nt.coordinate_tests(X, "shapiro"),
             [("scipy shapiro", lambda: _scipy_shapiro(X), "")]),
        case("coordinates(dagostino)", lambda: nt.coordinate_tests(X, "dagostino"),
             [("scipy normaltest", lambda: _scipy_normaltest(X), "")]),
        case("mahalanobis_radius", lambda: nt.mahalanobis_radius_test(X, **mc)),
        case("kl_divergence", lambda: kl_divergence(X, n_jobs=n_jobs)),
    ]


def _tsne_cases(X: np.ndarray, n_jobs: int) -> list[_Case]:
    """openTSNE as :func:`gaussify.most_gaussian_tsne` runs it (one perplexity, one seed; the KL score it
    adds is the kl_divergence row) against scikit-learn's TSNE with the same perplexity and iterations."""
    from openTSNE import TSNE

    manifold = _optional("sklearn.manifold")
    perplexity = min(30.0, (X.shape[0] - 1) / 3.0 - 1.0)

    def ours() -> None:
        TSNE(perplexity=perplexity, initialization="random", random_state=0, n_jobs=n_jobs).fit(X)

    def peer() -> None:
        manifold.TSNE(perplexity=perplexity, max_iter=750, init="random", random_state=0,
                       n_jobs=n_jobs).fit_transform(X)

    return [_Case("metric", "t-SNE", ours, [("scikit-learn TSNE", peer if manifold else None,
                                                "peer not installed")], NOTES["t-SNE"])]


# --------------------------------------------------------------------------------------------- running
def _measure(case: _Case, n: int, d: int, repeats: int, device: Any, memory: bool) -> list[dict]:
    """Rows of one case: a warm-up of each callable, one traced run each (memory), then round-robin repeats."""
    runnable = [(name, fn) for name, fn, _ in case.peers if fn is not None]
    fns = [case.ours] + [fn for _, fn in runnable]
    first, values = [], []
    for fn in fns:
        value, seconds = timed(fn, device)
        first.append(seconds)
        values.append(value)
    peaks: list[float | None] = [None] * len(fns)
    if memory:
        peaks = [_traced(fn)[1] for fn in fns]
    elif getattr(device, "type", "cpu") == "cuda":
        peaks = [_cuda_peak(fn, device) for fn in fns]
    times = _round_robin(fns, repeats, device)
    base = {"section": case.section, "method": case.method, "n": n, "d": d, "ours_s": times[0],
            "ours_first_s": first[0], "ours_mib": None if peaks[0] is None else peaks[0] / 2**20}
    extra = _agreement(case.method, values)
    rows = []
    measured = dict(zip([name for name, _ in runnable], zip(times[1:], peaks[1:])))
    for name, peer_fn, skip in case.peers or [(NO_PEER, None, "")]:
        row = {**base, "peer": name, "peer_s": None, "peer_mib": None, "ratio": None, "mem_ratio": None,
               "note": "; ".join(s for s in (case.note, skip if peer_fn is None else "", extra) if s)}
        if name in measured:
            peer_s, peer_peak = measured[name]
            row["peer_s"], row["ratio"] = peer_s, times[0] / peer_s
            if peer_peak is not None:
                row["peer_mib"] = peer_peak / 2**20
                if peaks[0] is not None and peer_peak > 0:
                    row["mem_ratio"] = peaks[0] / peer_peak
        rows.append(row)
    return rows


def _agreement(method: str, values: list[Any]) -> str:
    """Relative difference of the statistics where gaussify and the peer compute the same number."""
    if method not in ("henze_zirkler", "energy") or len(values) < 2:
        return ""
    ours, theirs = float(values[0].statistic), float(values[1])
    return f"statistic rel. diff. {abs(theirs / ours - 1):.1e}"


def run(quick: bool = False, *, repeats: int | None = None, device: str = "auto", slices: int = 256,
        sections: Sequence[str] = ("regularizers", "metrics"), mem_gib: float = 4.0,
        n_sim: int | None = None, threads: int | None = None, progress: bool = True,
        gpu_grid: bool = False) -> list[dict]:
    """Measure every case on its grid; returns one dict per (method, grid point, peer).

    Keys: section, method, n, d, device, ours_s, ours_first_s, ours_mib, peer, peer_s, peer_mib,
    ratio (ours_s / peer_s), mem_ratio, note. Times in seconds, memory in MiB (None where not measured).
    ``threads`` caps torch's intra-op threads, the BLAS/OpenMP pools (threadpoolctl) and the ``n_jobs`` of
    kl_divergence and both t-SNEs for everyone alike; None keeps the libraries' defaults (all cores).
    """
    import contextlib

    import torch

    if threads is None:
        return _run(plan(quick, sections, gpu_grid), quick, repeats, device, slices, mem_gib, n_sim, -1, progress)
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads) if threads else contextlib.nullcontext():
            return _run(plan(quick, sections, gpu_grid), quick, repeats, device, slices, mem_gib, n_sim, threads,
                        progress)
    finally:
        torch.set_num_threads(before)


def plan(quick: bool, sections: Sequence[str], gpu_grid: bool = False) -> list[tuple[str, int, int]]:
    """The (section, n, d) points to measure: the quick grids, the ``--gpu-grid`` one for the regularizers, or the
    full ones."""
    points: list[tuple[str, int, int]] = []
    if "regularizers" in sections:
        grid = QUICK_REG_GRID if quick else GPU_REG_GRID if gpu_grid else REG_GRID
        points += [("regularizers", n, d) for n, d in grid]
    if "metrics" in sections:
        points += [("metrics", n, d) for n, d in (QUICK_METRIC_GRID if quick else METRIC_GRID)]
        points += [("tsne", n, d) for n, d in (QUICK_TSNE_GRID if quick else TSNE_GRID)]
    return points


def _run(points: list[tuple[str, int, int]], quick: bool, repeats: int | None, device: str, slices: int,
         mem_gib: float, n_sim: int | None, n_jobs: int, progress: bool) -> list[dict]:
    from tqdm.auto import tqdm

    from ..metrics import normality as nt

    repeats = repeats if repeats is not None else (3 if quick else 5)
    if repeats < 1 or slices < 1:
        raise ValueError("repeats and slices must be positive")
    n_sim = n_sim if n_sim is not None else (100 if quick else nt.N_SIM)
    dev = resolve_device(device)
    from ..regularizers import REGISTRY

    per_point = {"regularizers": len(REGISTRY), "metrics": 10, "tsne": 1}
    rows: list[dict] = []
    with tqdm(total=sum(per_point[s] for s, _, _ in points), desc="speed", unit="case", disable=not progress) as bar:
        for section, n, d in points:
            if section == "regularizers":
                cases, device_used, memory = _regularizer_cases(n, d, slices, dev), dev, False
            else:
                X = np.random.default_rng(n + d).standard_normal((n, d))
                cases = _metric_cases(X, n_sim, mem_gib, n_jobs) if section == "metrics" else _tsne_cases(X, n_jobs)
                device_used, memory = None, True
            for case in cases:
                bar.set_postfix_str(f"{case.method} n={n} d={d}")
                for row in _measure(case, n, d, repeats, device_used, memory):
                    rows.append({**row, "device": str(dev) if section == "regularizers" else "cpu"})
                bar.update()
    return rows


def resolve_device(device: str) -> Any:
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda but torch sees no CUDA device")
    return dev


# --------------------------------------------------------------------------------------------- analysis
def fit_exponents(rows: list[dict]) -> list[dict]:
    """Per (section, method, implementation): least squares of log t = c + a log n + b log d.

    a (or b) is None when the grid does not vary n (or d) for that implementation."""
    series: dict[tuple[str, str, str], dict[tuple[int, int], float]] = {}
    for r in rows:
        series.setdefault((r["section"], r["method"], "gaussify"), {})[(r["n"], r["d"])] = r["ours_s"]
        if r["peer_s"] is not None:
            series.setdefault((r["section"], r["method"], r["peer"]), {})[(r["n"], r["d"])] = r["peer_s"]
    fits = []
    for (section, method, impl), points in series.items():
        ns = np.array([n for n, _ in points], dtype=float)
        ds = np.array([d for _, d in points], dtype=float)
        t = np.log(np.array(list(points.values())))
        columns, names = [np.ones_like(t)], []
        for values, name in ((ns, "n"), (ds, "d")):
            if len(set(values)) > 1:
                columns.append(np.log(values))
                names.append(name)
        fit: dict[str, Any] = {"section": section, "method": method, "implementation": impl, "n_exp": None,
                               "d_exp": None, "points": len(points)}
        if len(names) and len(points) > len(names):
            coef = np.linalg.lstsq(np.column_stack(columns), t, rcond=None)[0]
            for name, value in zip(names, coef[1:]):
                fit[f"{name}_exp"] = float(value)
        fits.append(fit)
    return fits


def acceptance(rows: list[dict]) -> list[dict]:
    """Regularizers at ACCEPT_POINT (ratio <= 1 against the first, direct peer); metrics at every point
    where a peer ran (time ratio <= 1 at all of them)."""
    out = []
    reg = [r for r in rows if r["section"] == "regularizer"]
    at_point = [r for r in reg if (r["n"], r["d"]) == ACCEPT_POINT]
    if reg and not at_point:
        out.append({"method": "(all regularizers)", "peer": "", "where": f"n, d = {ACCEPT_POINT}",
                    "ratio": None, "verdict": "not measured", "note": "the grid does not include this point"})
    seen = set()
    for r in at_point:
        key = (r["method"], r["peer"])
        if key in seen:
            continue
        seen.add(key)
        verdict = _verdict(r["ratio"], r["peer"])
        out.append({"method": r["method"], "peer": r["peer"], "where": f"n = {r['n']}, d = {r['d']}",
                    "ratio": r["ratio"], "verdict": verdict, "note": _with_fail_note(r["note"], r["method"], verdict)})
    metrics: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if r["section"] == "metric":
            metrics.setdefault((r["method"], r["peer"]), []).append(r)
    for (method, peer), group in metrics.items():
        ran = [r for r in group if r["ratio"] is not None]
        worst = max(ran, key=lambda r: r["ratio"]) if ran else None
        mem = [r["mem_ratio"] for r in ran if r["mem_ratio"] is not None]
        where = (f"{len(ran)} of {len(group)} points; worst n = {worst['n']}, d = {worst['d']}"
                 + (f"; peak-memory ratio {min(mem):.2g}–{max(mem):.2g}" if mem else "")) if worst else ""
        note = group[0]["note"] if worst is None else worst["note"]
        verdict = _verdict(None if worst is None else worst["ratio"], peer)
        out.append({"method": method, "peer": peer, "where": where, "ratio": None if worst is None else worst["ratio"],
                    "verdict": verdict, "note": _with_fail_note(note, method, verdict)})
    return out


def _with_fail_note(note: str, method: str, verdict: str) -> str:
    extra = FAIL_NOTES.get(method, "") if verdict == "FAIL" else ""
    return "; ".join(s for s in (note, extra) if s)


def _verdict(ratio: float | None, peer: str) -> str:
    if peer == NO_PEER:
        return "no peer"
    if ratio is None:
        return "peer not run"
    return "pass" if ratio <= 1.0 else "FAIL"


# --------------------------------------------------------------------------------------------- report
def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    ms = 1e3 * seconds
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def _mib(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}" if value < 100 else f"{value:.0f}"


def _num(value: float | None, fmt: str = ".2f") -> str:
    return "—" if value is None else format(value, fmt)


def markdown(rows: list[dict], header: Sequence[str] = (), *, repeats: int | None = None,
             slices: int | None = None, n_sim: int | None = None, wall_s: float | None = None) -> str:
    """The report: header lines, then the regularizer, metric, growth and acceptance tables."""
    lines = ["# gaussify speed benchmark", "", *header, ""]
    protocol = [f"median of {repeats} timed runs after a warm-up" if repeats else "median of repeated runs",
                "gaussify and its peers round-robin in the same process",
                "ratio = gaussify / peer (below 1: gaussify faster)"]
    if slices:
        protocol.append(f"{slices} slices/projections for swd, sigreg and their peers")
    if n_sim:
        protocol.append(f"Monte Carlo null size {n_sim}")
    protocol.append(f"entries whose first timed round took over {HEAVY_S:g} s are timed once")
    lines += ["Protocol: " + "; ".join(protocol) + ".", ""]
    if wall_s is not None:
        lines += [f"Total wall time {wall_s:.0f} s.", ""]
    reg = [r for r in rows if r["section"] == "regularizer"]
    met = [r for r in rows if r["section"] == "metric"]
    if reg:
        lines += ["## Regularizers: forward + backward", "",
                  f"Device: {reg[0]['device']}. Peak memory is measured on CUDA only.", "",
                  "| regularizer | n | d | gaussify (ms) | peer | peer (ms) | ratio | gaussify peak (MiB) | "
                  "peer peak (MiB) | note |",
                  "|---|---:|---:|---:|---|---:|---:|---:|---:|---|"]
        for r in reg:
            lines.append(f"| {r['method']} | {r['n']} | {r['d']} | {_ms(r['ours_s'])} | {r['peer']} | "
                         f"{_ms(r['peer_s'])} | {_num(r['ratio'])} | {_mib(r['ours_mib'])} | "
                         f"{_mib(r['peer_mib'])} | {r['note']} |")
        lines.append("")
    if met:
        lines += ["## Metrics: time and peak memory (CPU)", "",
                  "Peak memory: tracemalloc peak of one call (NumPy buffers; allocations inside C/C++ "
                  "libraries that bypass Python's allocator are not seen). First call: the warm-up, which "
                  "includes one-off caches (Monte Carlo nulls, kNN references).", "",
                  "| metric | n | d | gaussify (ms) | first call (ms) | gaussify peak (MiB) | peer | peer (ms) | "
                  "peer peak (MiB) | ratio | memory ratio | note |",
                  "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|"]
        for r in met:
            lines.append(f"| {r['method']} | {r['n']} | {r['d']} | {_ms(r['ours_s'])} | {_ms(r['ours_first_s'])} | "
                         f"{_mib(r['ours_mib'])} | {r['peer']} | {_ms(r['peer_s'])} | {_mib(r['peer_mib'])} | "
                         f"{_num(r['ratio'])} | {_num(r['mem_ratio'])} | {r['note']} |")
        lines.append("")
    fits = fit_exponents(rows)
    if fits:
        lines += ["## How the cost grows", "",
                  "Least squares of log t = c + a·log n + b·log d over the grid points of each implementation.", "",
                  "| section | method | implementation | n exponent a | d exponent b | points |",
                  "|---|---|---|---:|---:|---:|"]
        for f in fits:
            lines.append(f"| {f['section']} | {f['method']} | {f['implementation']} | {_num(f['n_exp'])} | "
                         f"{_num(f['d_exp'])} | {f['points']} |")
        lines.append("")
    accepted = acceptance(rows)
    if accepted:
        lines += ["## Acceptance", "",
                  f"Regularizers: ratio <= 1.0 at n = {ACCEPT_POINT[0]}, d = {ACCEPT_POINT[1]} with equal slice "
                  "counts. Metrics: time ratio <= 1.0 at every grid point where the peer ran (worst shown).", "",
                  "| method | peer | where | ratio | verdict | note |", "|---|---|---|---:|---|---|"]
        for a in accepted:
            lines.append(f"| {a['method']} | {a['peer']} | {a['where']} | {_num(a['ratio'])} | {a['verdict']} | "
                         f"{a['note']} |")
        lines.append("")
    return "\n".join(lines)


def plot(rows: list[dict], path: str | Path) -> Path:
    """Time against n (at the n-sweep's d) and against d (at the d-sweep's n), log-log, per method;
    gaussify solid, the peer dashed in the same colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sections = [s for s in ("regularizer", "metric") if any(r["section"] == s for r in rows)]
    fig, axes = plt.subplots(len(sections), 2, figsize=(13, 5.2 * len(sections)), squeeze=False)
    for row_axes, section in zip(axes, sections):
        sub = [r for r in rows if r["section"] == section]
        methods = list(dict.fromkeys(r["method"] for r in sub))
        colours = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(methods), 2)))
        for ax, axis, other in ((row_axes[0], "n", "d"), (row_axes[1], "d", "n")):
            for colour, method in zip(colours, methods):
                mine = [r for r in sub if r["method"] == method]
                # the sweep along `axis`: the value of `other` shared by the most points of this method
                counts: dict[int, int] = {}
                for r in mine:
                    counts[r[other]] = counts.get(r[other], 0) + 1
                fixed = max(counts, key=lambda k: (counts[k], k))
                sweep = sorted({r[axis]: r for r in mine if r[other] == fixed}.values(), key=lambda r: r[axis])
                if len(sweep) < 2:
                    continue
                ax.plot([r[axis] for r in sweep], [1e3 * r["ours_s"] for r in sweep], "-o", color=colour, ms=3,
                        label=f"{method} ({other}={fixed})")
                peer_sweep = [r for r in sorted((r for r in mine if r[other] == fixed and r["peer_s"] is not None),
                                                key=lambda r: r[axis])]
                for peer in dict.fromkeys(r["peer"] for r in peer_sweep):
                    pts = [r for r in peer_sweep if r["peer"] == peer]
                    if len(pts) >= 2:
                        ax.plot([r[axis] for r in pts], [1e3 * r["peer_s"] for r in pts], "--", color=colour,
                                alpha=0.8, label=f"  {peer}")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(axis)
            ax.set_ylabel("time (ms)")
            ax.set_title(f"{section}s: time vs {axis} (peer dashed)")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gaussify bench speed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="tiny grids, Monte Carlo null 100, 1 thread unless --threads (under a minute)")
    parser.add_argument("--out", metavar="DIR", help="write DIR/speed.md and DIR/speed_scaling.png")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per entry (default 5; 3 with --quick)")
    parser.add_argument("--device", default="auto", help="torch device of the regularizers: auto (cuda if present), "
                                                         "cpu, cuda, cuda:1 ...")
    parser.add_argument("--slices", type=int, default=256, help="slices/projections for swd, sigreg and their peers")
    parser.add_argument("--only", choices=("regularizers", "metrics"), help="run one section only")
    parser.add_argument("--mem-gib", type=float, default=4.0, help="skip a peer whose O(n²) arrays exceed this")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for everyone (torch, BLAS/OpenMP, n_jobs); default: the libraries' defaults "
                             "(1 with --quick). "
                             "Use 1 on a shared, oversubscribed machine: spinning thread pools distort timings")
    parser.add_argument("--gpu-grid", action="store_true",
                        help="regularizers only, n = 256 … 8192 and d = 64 … 2048 (with --quick the quick grid), "
                             "written to DIR/speed_gpu.md: the accelerator study")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be positive")
    if args.slices < 1:
        parser.error("--slices must be positive")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be positive")
    try:
        device = resolve_device(args.device)
    except (RuntimeError, ValueError) as err:
        parser.error(str(err))
    from ..metrics import normality as nt

    if args.quick and args.threads is None:
        args.threads = 1  # quick stays quick and stable on a busy machine (spinning thread pools)
    repeats = args.repeats or (3 if args.quick else 5)
    n_sim = 100 if args.quick else nt.N_SIM
    sections = ("regularizers",) if args.gpu_grid else (args.only,) if args.only else ("regularizers", "metrics")
    header_start = machine_lines(device, PACKAGES)
    start = time.perf_counter()
    rows = run(args.quick, repeats=repeats, device=args.device, slices=args.slices, sections=sections,
               mem_gib=args.mem_gib, n_sim=n_sim, threads=args.threads, progress=not args.no_progress,
               gpu_grid=args.gpu_grid)
    wall = time.perf_counter() - start
    load_end = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    header = header_start + [f"- Load average at the end: {load_end}",
                             f"- Mode: {'quick' if args.quick else 'full'}; regularizer device {device}; threads "
                             f"{args.threads or 'library defaults (all cores)'} for gaussify and peers alike"]
    report = markdown(rows, header, repeats=repeats, slices=args.slices, n_sim=n_sim, wall_s=wall)
    print(report)
    if args.out:
        from ..io import write_text_atomic

        out = Path(args.out)
        stem = "speed_gpu" if args.gpu_grid else "speed"
        write_text_atomic(out / f"{stem}.md", report)
        plot(rows, out / f"{stem}_scaling.png")
        print(f"wrote {out / f'{stem}.md'} and {out / f'{stem}_scaling.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
