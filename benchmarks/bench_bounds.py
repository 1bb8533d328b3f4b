"""Do the lower bounds hold where embeddings live? ``kl_lower_bounds`` against exact KLs at d = 16-128.

On the high-dimensional accuracy suite's families (``gaussify.bench.accuracy``: ``HIGH["families"]``), ``--reps``
samples per (family, d) at ``--n`` rows: how often each bound, and their maximum, exceeds the exact KL (Monte Carlo,
cached in ``--cache`` like the accuracy suite's), against the promised rate (the maximum at most 5%: binomial
p-value of the count), and how large the largest bound is as a share of the truth.

    python benchmarks/bench_bounds.py --out benchmarks/results/bounds_high.md
"""

from __future__ import annotations

import argparse
import time
import zlib
from pathlib import Path

import numpy as np
from scipy.stats import binomtest
from tqdm.auto import tqdm

from gaussify.bench import machine_lines
from gaussify.bench.accuracy import HIGH, _cached_true_kl, make_family
from gaussify.compare import format_table
from gaussify.metrics import BOUND_LEVEL, kl_lower_bounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/bounds_high.md"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/gaussify-accuracy-high"))
    parser.add_argument("--dims", type=int, nargs="+", default=list(HIGH["dims"]))
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = []
    cells = [(name, d) for name in HIGH["families"] for d in args.dims]
    for name, d in tqdm(cells, desc="bounds", unit="cell"):
        family = make_family(name, d)
        true, se = _cached_true_kl(family, HIGH["mc_draws"], args.cache)
        for rep in range(args.reps):
            Z = family.sample(args.n, np.random.default_rng([zlib.crc32(name.encode()), d, args.n, rep, 1]))
            bounds = kl_lower_bounds(Z)
            rows.append({"family": name, "d": d, "true": true, "se": se, **bounds})
    names = [key for key in rows[0] if key.endswith("_kl")]
    # a bound "exceeds" the truth beyond the Monte Carlo error of the truth itself (3 se)
    over = {key: np.array([r.get(key, 0.0) > r["true"] + 3 * r["se"] for r in rows]) for key in names}
    largest = np.array([max(r[k] for k in names) for r in rows])
    over_max = largest > np.array([r["true"] + 3 * r["se"] for r in rows])
    table = []
    for d in args.dims:
        at = np.array([r["d"] == d for r in rows])
        entry = {"d": d, "samples": int(at.sum())}
        entry |= {f"{key} over": int(over[key][at].sum()) for key in names}
        entry["max over"] = int(over_max[at].sum())
        entry["binomial p (5%)"] = binomtest(int(over_max[at].sum()), int(at.sum()), 1 - BOUND_LEVEL,
                                             alternative="greater").pvalue
        truth = np.array([r["true"] for r in rows])[at]
        seen = truth > 0.1
        entry["median largest / truth (truth > 0.1)"] = float(np.median(largest[at][seen] / truth[seen]))
        table.append(entry)
    pooled = binomtest(int(over_max.sum()), len(rows), 1 - BOUND_LEVEL, alternative="greater").pvalue
    worst = [{"family": r["family"], "d": r["d"], "true KL": r["true"],
              **{key: r.get(key, float("nan")) for key in names}} for r, o in zip(rows, over_max) if o]
    lines = ["# Lower bounds against exact KLs at d = 16-128", "",
             *machine_lines(None, ("gaussify", "numpy", "scipy")),
             f"- Command: `python benchmarks/bench_bounds.py` at n = {args.n}, {args.reps} samples per (family, d), "
             f"{len(HIGH['families'])} families; {time.perf_counter() - start:.0f} s",
             "- Over: the bound exceeds the exact KL by more than 3 Monte Carlo standard errors of the truth.", "",
             format_table(table), "",
             f"Pooled over d: the largest bound exceeded the truth in {int(over_max.sum())} of {len(rows)} samples "
             f"(promised: at most {1 - BOUND_LEVEL:.0%}; binomial p = {pooled:.3g}).", ""]
    if worst:
        lines += ["## Samples where the largest bound exceeded the truth", "", format_table(worst), ""]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
