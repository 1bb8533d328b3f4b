"""Quality benchmark: Gaussianity against retained information for every method (see
:mod:`gaussify.bench.quality`). Same as ``gaussify bench quality``.

    python benchmarks/bench_quality.py --quick --out /tmp/quality
    python benchmarks/bench_quality.py --out benchmarks/results
"""

import sys

from gaussify.bench.quality import main

if __name__ == "__main__":
    sys.exit(main())
