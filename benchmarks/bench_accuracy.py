"""Accuracy benchmark: the KL estimates against the exact KL of laws with a known density (see
:mod:`gaussify.bench.accuracy`). Same as ``gaussify bench accuracy``.

    python benchmarks/bench_accuracy.py --quick --out /tmp/accuracy
    python benchmarks/bench_accuracy.py --out benchmarks/results
"""

import sys

from gaussify.bench.accuracy import main

if __name__ == "__main__":
    sys.exit(main())
