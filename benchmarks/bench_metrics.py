"""Time and peak memory of the normality tests in ``gaussify.metrics.normality``, next to peers.

Peers, on the same standard-normal sample:
  pingouin HZ          ``pingouin.multivariate_normality`` (builds several n x n matrices); run only
                       where n² · 8 bytes < 2 GiB, otherwise "skipped: O(n²) memory"
  scipy normaltest     ``scipy.stats.normaltest`` on every column (D'Agostino K², linear)
  scipy shapiro        ``scipy.stats.shapiro`` column by column on all rows (p-value unreliable > 5000)
  scipy pdist energy   the energy statistic with ``scipy.spatial.distance.pdist`` (n(n−1)/2 distances in
                       memory), the textbook route, where that array is < 2 GiB
and ``gaussify.metrics.divergence.kl_divergence`` at n = 1e6, d = 8 (full mode, or ``--kl``).

``--evaluate`` instead times each phase of ``gaussify.evaluate`` on one standard-normal sample (``--n``/``--d``, by
default 100,000 × 16; ``--tests fast``, ``all`` or ``none``): the KL as ``evaluate`` calls it, each lower bound
alone, the bounds as ``evaluate`` computes them (nulls cached by then), the sliced Wasserstein distance, where the
non-Gaussianity is, the normality tests, then the whole call with every cache of the divergence module cleared
(cold) and once more (warm).

Time is wall time of one call; peak memory is the tracemalloc peak of that call (NumPy buffers are
traced; the input sample itself is excluded). Tests with a Monte Carlo p-value (energy, Epps–Pulley,
radius) simulate their null once per (min(n, MC_MAX_N), d): that one-off cost is timed separately in
the "MC null" column and the timed call uses the cached null. A point whose predicted time exceeds
``--budget-s`` or whose predicted memory exceeds ``--mem-gib`` is skipped and listed as such.

    python benchmarks/bench_metrics.py --quick
    python benchmarks/bench_metrics.py --out benchmarks/results/metrics.md
    python benchmarks/bench_metrics.py --n 100000 --d 16 --tests henze_zirkler,energy
    python benchmarks/bench_metrics.py --evaluate --tests all
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
import tracemalloc
import warnings
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import numpy as np
from scipy import stats
from scipy.spatial.distance import pdist

from gaussify.metrics import normality as nt

FULL_N = [1_000, 10_000, 100_000, 1_000_000]
FULL_D = [2, 16, 64]
QUICK_N = [1_000, 10_000]
QUICK_D = [2, 16]
GIB = 1 << 30

OURS: dict[str, Callable[[np.ndarray], nt.TestResult]] = {
    "mardia_skewness": nt.mardia_skewness,
    "mardia_kurtosis": nt.mardia_kurtosis,
    "henze_zirkler": nt.henze_zirkler,
    "energy": nt.energy_test,
    "epps_pulley": nt.epps_pulley,
    "doornik_hansen": nt.doornik_hansen,
    "coordinates": nt.coordinate_tests,
    "mahalanobis_radius": nt.mahalanobis_radius_test,
}
MONTE_CARLO = {"energy", "epps_pulley", "mahalanobis_radius"}
QUADRATIC = {"henze_zirkler", "energy", "epps_pulley"}


def pingouin_hz(X: np.ndarray) -> tuple[float, float]:
    import pingouin

    result = pingouin.multivariate_normality(X)
    return float(result.hz), float(result.pval)


def scipy_normaltest(X: np.ndarray) -> tuple[float, float]:
    result = stats.normaltest(X, axis=0)
    return float(np.max(result.statistic)), float(np.min(result.pvalue))


def scipy_shapiro(X: np.ndarray) -> tuple[float, float]:
    with warnings.catch_warnings():  # "p-value may not be accurate for N > 5000": we time it anyway
        warnings.simplefilter("ignore", UserWarning)
        results = [stats.shapiro(column) for column in X.T]
    return float(min(r.statistic for r in results)), float(min(r.pvalue for r in results))


def scipy_pdist_energy(X: np.ndarray) -> tuple[float, float]:
    """The energy statistic the textbook way: all pairwise distances in one array (no p-value)."""
    from scipy import special

    n, d = X.shape
    evals, P = np.linalg.eigh(np.cov(X, rowvar=False).reshape(d, d))
    Y = (X - X.mean(axis=0)) @ (P / np.sqrt(evals)) @ P.T
    const = np.exp(special.gammaln((d + 1) / 2) - special.gammaln(d / 2))
    mean1 = np.sqrt(2) * const * np.mean(special.hyp1f1(-0.5, d / 2, -np.sum(Y**2, axis=1) / 2))
    return float(n * (2 * mean1 - 2 * const - 2 * pdist(Y).sum() / n**2)), float("nan")


PEERS: dict[str, Callable[[np.ndarray], tuple[float, float]]] = {
    "pingouin HZ": pingouin_hz,
    "scipy normaltest": scipy_normaltest,
    "scipy shapiro": scipy_shapiro,
    "scipy pdist energy": scipy_pdist_energy,
}


def predicted(name: str, n: int, d: int) -> tuple[float, float]:
    """Rough (seconds, bytes) of one call, from measured per-pair / per-element rates on 1 core."""
    data = 8.0 * n * d
    pairs = n * n / 2.0
    if name in QUADRATIC:
        return pairs * (2.5 + 0.08 * d) * 1e-9, 3 * data
    if name == "mardia_skewness":
        if d * d <= n:
            return n * d**3 * 1e-9 / 2 + n * d * 1e-8, 2 * data
        return pairs * (1.5 + 0.08 * d) * 1e-9, 2 * data
    if name == "pingouin HZ":
        return n * n * (10 + 0.2 * d) * 1e-9, 4 * 8.0 * n * n
    if name == "scipy pdist energy":
        return pairs * (2.0 + 0.5 * d) * 1e-9, 8.0 * pairs
    if name == "scipy shapiro":
        return n * d * 2e-7, 4 * data
    return n * d * 1e-7, 3 * data


def measure(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    tracemalloc.start()
    tracemalloc.reset_peak()
    start = time.perf_counter()
    try:
        out = fn()
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return out, elapsed, peak


def run_point(n: int, d: int, names: list[str], peers: list[str], args: argparse.Namespace) -> list[dict]:
    X = np.random.default_rng(n + d).standard_normal((n, d))
    rows = []
    hz_ours = None
    quadratic_memory = {"pingouin HZ": 8.0 * n * n, "scipy pdist energy": 4.0 * n * (n - 1)}  # one n x n array
    for name in names + peers:
        row = {"n": n, "d": d, "test": name if name in OURS else f"*{name}*"}
        seconds, nbytes = predicted(name, n, d)
        if quadratic_memory.get(name, 0.0) >= 2 * GIB:
            rows.append({**row, "skip": "skipped: O(n²) memory"})
            continue
        if seconds > args.budget_s or (name in OURS and nbytes > args.mem_gib * GIB):
            rows.append({**row, "skip": f"skipped: predicted {seconds:.0f} s / {nbytes / GIB:.1f} GiB "
                                        f"> budget {args.budget_s:.0f} s / {args.mem_gib:g} GiB"})
            continue
        null_s = None
        if name in OURS:
            kwargs = {"n_sim": args.n_sim} if name in MONTE_CARLO else {}
            if name in MONTE_CARLO:  # simulate and cache the null once, timed on its own
                _, null_s, _ = measure(lambda: OURS[name](X[:min(n, nt.MC_MAX_N)], **kwargs))
            result, elapsed, peak = measure(lambda: OURS[name](X, **kwargs))
            stat, pvalue, note = result.statistic, result.pvalue, result.note
            if name == "henze_zirkler":
                hz_ours = stat
        else:
            (stat, pvalue), elapsed, peak = measure(lambda: PEERS[name](X))
            note = ""
            if name == "pingouin HZ" and hz_ours is not None:
                note = f"rel. diff. to ours {abs(stat / hz_ours - 1):.1e}"
        rows.append({**row, "time": elapsed, "peak": peak, "null": null_s, "stat": stat, "p": pvalue,
                     "note": note})
        print(format_row(rows[-1]), flush=True)
    return rows


def format_row(row: dict) -> str:
    if "skip" in row:
        return f"| {row['n']:>9,} | {row['d']:>3} | {row['test']} | – | – | – | – | – | {row['skip']} |"
    null = "" if row["null"] is None else f"{row['null']:.2f}"
    pvalue = "–" if np.isnan(row["p"]) else f"{row['p']:.3g}"
    return (f"| {row['n']:>9,} | {row['d']:>3} | {row['test']} | {row['time']:.3f} | "
            f"{row['peak'] / 2**20:.1f} | {null} | {row['stat']:.5g} | {pvalue} | {row['note']} |")


def time_kl(args: argparse.Namespace) -> str:
    n, d = 1_000_000, 8
    try:
        from gaussify.metrics.divergence import kl_divergence
    except ImportError as err:
        return f"kl_divergence at n={n:,}, d={d}: not available ({err})"
    X = np.random.default_rng(0).standard_normal((n, d))
    value, elapsed, peak = measure(lambda: kl_divergence(X))
    return f"kl_divergence at n={n:,}, d={d}: {elapsed:.1f} s, peak {peak / 2**20:.0f} MiB, value {value}"


def time_evaluate(n: int, d: int, tests: str) -> list[str]:
    """Markdown rows: time and tracemalloc peak of each phase of ``evaluate`` on an n × d standard-normal sample."""
    from gaussify.metrics import divergence as dv
    from gaussify.metrics import evaluate, where_non_gaussian
    from gaussify.metrics.report import FAST_TESTS

    X = np.random.default_rng(0).standard_normal((n, d))
    names = {"fast": FAST_TESTS, "all": nt.TEST_NAMES, "none": ()}[tests]
    phases: dict[str, Callable[[], Any]] = {
        "KL (kl_divergence)": lambda: dv.kl_divergence(X),
        "radial bound": lambda: dv.radial_kl(X),
        "sliced bound": lambda: dv.sliced_negentropy(X),
        "kl_lower_bounds (nulls cached)": lambda: dv.kl_lower_bounds(X),
        "sliced Wasserstein": lambda: dv.sliced_wasserstein_to_gaussian(X),
        "where the non-Gaussianity is": lambda: where_non_gaussian(X),
        f"normality tests ({tests})": lambda: nt.normality_tests(X, tests=names) if names else {},
    }
    if d <= dv.RELIABLE_MAX_DIM:  # above, the held-out Gaussianization's bound replaces it in kl_lower_bounds
        phases = {"marginal (ICA) bound": lambda: dv.marginal_negentropy(X), **phases}
    rows = [f"| phase ({n:,} × {d}) | time (s) | peak MiB |", "|---|---:|---:|"]
    for name, fn in phases.items():
        _, elapsed, peak = measure(fn)
        rows.append(f"| {name} | {elapsed:.2f} | {peak / 2**20:.0f} |")
        print(rows[-1], flush=True)
    for label in ("cold", "warm"):
        if label == "cold":
            for cached in vars(dv).values():
                if hasattr(cached, "cache_clear"):
                    cached.cache_clear()
        report, elapsed, peak = measure(lambda: evaluate(X, tests=tests))
        rows.append(f"| evaluate(tests={tests!r}), {label} | {elapsed:.2f} | {peak / 2**20:.0f} |")
        print(rows[-1], flush=True)
    return rows + ["", "cold: every cache of gaussify.metrics.divergence cleared (the normality tests' Monte Carlo "
                   "nulls stay cached from the phase above); warm: the same call again.", "", report.verdict()]


def machine_info() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    versions = ", ".join(f"{pkg} {version(pkg)}" for pkg in ("numpy", "scipy", "pingouin"))
    return (f"{datetime.datetime.now().isoformat(timespec='seconds')} · {platform.platform()} · {cpu} · "
            f"{cores} usable cores (load average {load}) · Python {platform.python_version()} · {versions}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="n in {1e3, 1e4}, d in {2, 16}, n_sim 100")
    parser.add_argument("--out", help="write the markdown table to this file")
    parser.add_argument("--n", help="comma-separated sample sizes (overrides the grid)")
    parser.add_argument("--d", help="comma-separated dimensions (overrides the grid)")
    parser.add_argument("--tests", help=f"comma-separated subset of {list(OURS) + list(PEERS)}")
    parser.add_argument("--budget-s", type=float, default=None, help="skip points predicted slower (s)")
    parser.add_argument("--mem-gib", type=float, default=2.0, help="skip points predicted larger (GiB)")
    parser.add_argument("--n-sim", type=int, default=None, help="Monte Carlo null size (default N_SIM)")
    parser.add_argument("--kl", action="store_true", help="time kl_divergence at n=1e6, d=8 (on in full mode)")
    parser.add_argument("--evaluate", action="store_true",
                        help="time the phases of evaluate at --n x --d (default 100000 x 16), --tests fast/all/none")
    args = parser.parse_args()
    if args.evaluate:
        lines = [machine_info(), ""] + time_evaluate(int(float(args.n or 100_000)), int(args.d or 16),
                                                     args.tests or "fast")
        if args.out:
            with open(args.out, "w") as fh:
                fh.write("\n".join(lines) + "\n")
        return
    args.budget_s = args.budget_s if args.budget_s is not None else (20.0 if args.quick else 300.0)
    args.n_sim = args.n_sim if args.n_sim is not None else (100 if args.quick else nt.N_SIM)
    sizes = [int(float(v)) for v in args.n.split(",")] if args.n else (QUICK_N if args.quick else FULL_N)
    dims = [int(v) for v in args.d.split(",")] if args.d else (QUICK_D if args.quick else FULL_D)
    chosen = args.tests.split(",") if args.tests else list(OURS) + list(PEERS)
    unknown = sorted(set(chosen) - set(OURS) - set(PEERS))
    if unknown:
        parser.error(f"unknown test(s) {unknown}")
    names = [t for t in chosen if t in OURS]
    peers = [t for t in chosen if t in PEERS]

    header = ["# gaussify normality tests: time and peak memory", "", machine_info(), "",
              f"n_sim = {args.n_sim}, MC null at min(n, {nt.MC_MAX_N}) rows, tile {nt.BLOCK_SIZE}², "
              f"budget {args.budget_s:.0f} s / {args.mem_gib:g} GiB per call. Peers in *italics*.", "",
              "| n | d | test | time (s) | peak MiB | MC null (s) | statistic | p-value | note |",
              "|---:|---:|---|---:|---:|---:|---:|---:|---|"]
    print("\n".join(header), flush=True)
    warm_up = np.random.default_rng(1).standard_normal((50, 2))  # imports and one-off initialisation
    for name in names:
        OURS[name](warm_up)
    for name in peers:
        PEERS[name](warm_up)
    rows = []
    total = time.perf_counter()
    for n in sizes:
        for d in dims:
            rows += run_point(n, d, names, peers, args)
    lines = header + [format_row(row) for row in rows]
    skipped = [row for row in rows if "skip" in row]
    for row in skipped:
        print(format_row(row))
    kl_line = time_kl(args) if (args.kl or not (args.quick or args.n or args.d or args.tests)) else \
        "kl_divergence: not timed in this mode (run without --quick, or with --kl)"
    lines += ["", kl_line, "", f"Total wall time {time.perf_counter() - total:.1f} s."]
    print("\n" + "\n".join(lines[len(header) + len(rows):]))
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
