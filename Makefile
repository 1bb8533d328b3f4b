# `make test` and `make demo` work on a fresh machine: they create .venv, install
# torch==2.13.0 first (a CPU build; an open range would pull a multi-GB CUDA build),
# then the project with its extras.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test lint docs browser floor demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install "torch==2.13.0"
	$(PY) -m pip install -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# GAUSSIFY_DOCS_SITE: tests/test_docs.py opens the site `make docs` has just built instead of building another.
test: $(STAMP) lint docs
	GAUSSIFY_DOCS_SITE=site $(PY) -m pytest -n 2 -q

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks examples docs
	$(PY) -m mypy

# The API reference and guide site into site/; --strict: a broken link or cross-reference fails it.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

# Chromium from Debian's packages (apt-get, as root or through sudo), unless there is one: tests/test_docs.py opens
# the built site in it, offline, and is skipped without it.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

# The lowest scikit-learn that pyproject.toml allows (validate_data and __sklearn_tags__ need 1.6), in a venv of
# its own: the estimator's tests, whose scikit-learn contract checks are the ones a floor can break.
FLOOR := .venv-floor
floor:
	$(PYTHON) -m venv $(FLOOR)
	$(FLOOR)/bin/python -m pip install -q "torch==2.13.0"
	$(FLOOR)/bin/python -m pip install -q -e . "scikit-learn==1.6.0" pytest hypothesis mnist1d
	$(FLOOR)/bin/python -m pytest -q -p no:cacheprovider tests/test_embedder.py

demo: $(STAMP)
	$(VENV)/bin/gaussify demo --out demo_output

bench: $(STAMP)
	$(PY) benchmarks/bench_speed.py --out benchmarks/results
	$(PY) benchmarks/bench_epoch.py --out benchmarks/results
	$(PY) benchmarks/bench_quality.py --out benchmarks/results
	$(PY) benchmarks/bench_metrics.py --out benchmarks/results/metrics.md

clean:
	rm -rf $(VENV) $(FLOOR) demo_output site .pytest_cache
