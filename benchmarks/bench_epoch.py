"""Training speed: one epoch of GaussianEmbedder on a generated 70,000 x 784 array, every regularizer
(see :mod:`gaussify.bench.epoch`). Same as ``gaussify bench epoch``.

    python benchmarks/bench_epoch.py --quick
    python benchmarks/bench_epoch.py --out benchmarks/results
"""

import sys

from gaussify.bench.epoch import main

if __name__ == "__main__":
    sys.exit(main())
