"""Speed of gaussify next to its PyPI peers: see ``gaussify.bench.speed``
(``python benchmarks/bench_speed.py --quick``)."""
from gaussify.bench.speed import main
raise SystemExit(main())
