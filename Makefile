# brainmodels: `make demo` and `make test` work on a fresh machine with only Python and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_WORKERS ?= 2

.PHONY: demo test test-slow test-all lint bench bench-quick clean help

help:
	@echo "make demo       run the main job on the embedded synthetic dataset (writes demo_output/)"
	@echo "make test       install (first time) and run the test suite and notebooks"
	@echo "make test-slow  run the long checks too"
	@echo "make lint       ruff + import layering"
	@echo "make bench      run the side-by-side benchmarks against peer libraries (long: ~30 min)"
	@echo "make bench-quick  the same benchmarks at small sizes (a smoke run)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@ $(VENV)/.installed $(VENV)/.installed-test

demo: $(VENV)/.installed
	$(BIN)/brainmodels demo --out demo_output

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m "not slow" -n $(PYTEST_WORKERS) --dist loadfile --durations=15 --nbmake tests notebooks

test-slow: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m slow --durations=15 tests

test-all: $(VENV)/.installed-test
	$(BIN)/python -m pytest --durations=15 tests

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q tests/core/test_layering.py

bench: $(VENV)/.installed-bench
	for f in benchmarks/[!_]*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

bench-quick: $(VENV)/.installed-bench
	for f in benchmarks/[!_]*.py; do echo "== $$f"; $(BIN)/python $$f --quick || exit 1; done

clean:
	rm -rf demo_output .pytest_cache build *.egg-info
