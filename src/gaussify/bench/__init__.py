"""Benchmarks shipped with gaussify (``gaussify bench ...``): :mod:`gaussify.bench.speed`."""
