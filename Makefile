# `make test` and `make demo` work on a fresh machine: they create .venv, install
# torch==2.13.0 first (a CPU build; an open range would pull a multi-GB CUDA build),
# then the project with its extras.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test lint docs demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install "torch==2.13.0"
	$(PY) -m pip install -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP) lint docs
	$(PY) -m pytest -n 2 -q

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks examples docs

# The API reference and guide site into site/; --strict: a broken link or cross-reference fails it.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

demo: $(STAMP)
	$(VENV)/bin/gaussify demo --out demo_output

bench: $(STAMP)
	$(PY) benchmarks/bench_speed.py --out benchmarks/results
	$(PY) benchmarks/bench_epoch.py --out benchmarks/results
	$(PY) benchmarks/bench_quality.py --out benchmarks/results
	$(PY) benchmarks/bench_metrics.py --out benchmarks/results/metrics.md

clean:
	rm -rf $(VENV) demo_output site .pytest_cache
