# brainmodels: `make demo` and `make test` work on a fresh machine with only Python and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_WORKERS ?= 2
# The tested lock: exact versions of a green run, one file per supported Python (`make lock`).
PYVER       := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
CONSTRAINTS := requirements/constraints-py$(PYVER).txt
PIP_LOCK     = $(if $(wildcard $(CONSTRAINTS)),-c $(CONSTRAINTS),)

.PHONY: demo test test-slow test-all lint bench bench-quick bench-table lock clean help

help:
	@echo "make demo       run the main job on the embedded synthetic dataset (writes demo_output/)"
	@echo "make test       install (first time) and run the test suite and notebooks"
	@echo "make test-slow  run the long checks too"
	@echo "make lint       ruff + import layering"
	@echo "make bench      run the side-by-side benchmarks against peer libraries (long: ~30 min)"
	@echo "make bench-quick  the same benchmarks at small sizes (a smoke run)"
	@echo "make bench-table  regenerate the README's benchmark tables from benchmarks/records/"
	@echo "make lock       re-resolve the newest allowed versions into $(CONSTRAINTS)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

LOCK_NOTE    = $(if $(PIP_LOCK),,@echo "note: no tested lock for Python $(PYVER) ($(CONSTRAINTS)): installing the newest versions pyproject.toml allows")

$(VENV)/.installed: pyproject.toml $(wildcard $(CONSTRAINTS)) | $(BIN)/python
	$(LOCK_NOTE)
	$(BIN)/python -m pip install --quiet $(PIP_LOCK) -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(wildcard $(CONSTRAINTS)) | $(BIN)/python
	$(LOCK_NOTE)
	$(BIN)/python -m pip install --quiet $(PIP_LOCK) -e '.[test]'
	touch $@ $(VENV)/.installed

$(VENV)/.installed-bench: pyproject.toml $(wildcard $(CONSTRAINTS)) | $(BIN)/python
	$(LOCK_NOTE)
	$(BIN)/python -m pip install --quiet $(PIP_LOCK) -e '.[test,bench]'
	touch $@ $(VENV)/.installed $(VENV)/.installed-test

demo: $(VENV)/.installed
	@start=$$(date +%s); $(BIN)/brainmodels demo --out demo_output && \
	  echo "make demo: done in $$(( $$(date +%s) - start )) s (install excluded), output $$(du -sh demo_output | cut -f1)"

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

# the README's generated benchmark tables, from the newest records in benchmarks/records/
bench-table: | $(BIN)/python
	$(BIN)/python benchmarks/_records.py

# A fresh venv resolves the newest versions pyproject.toml allows (every extra), and its exact
# set becomes the lock for this Python. Then run `make test`: commit the lock only if it passes.
lock: | $(BIN)/python
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet '.[test,bench]'
	mkdir -p requirements
	{ echo "# tested lock for Python $(PYVER): written by 'make lock' on $$(date +%F); do not edit"; \
	  .lock-venv/bin/python -m pip freeze --all | grep -viE '^(brainmodels|pip|setuptools|wheel)[ =@]'; \
	} > $(CONSTRAINTS).tmp && mv $(CONSTRAINTS).tmp $(CONSTRAINTS)
	rm -rf .lock-venv
	@echo "wrote $(CONSTRAINTS); now run 'make test' (it reinstalls from the new lock)"

clean:
	rm -rf demo_output .pytest_cache build *.egg-info
