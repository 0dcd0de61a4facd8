# Every target sets up what it needs from nothing: a .venv with the package and its dev extra.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WORKDIR ?= runs/fast_equilibrium_cpu
CONFIG ?= configs/fast_equilibrium.py:cpu

.PHONY: run test bench lint install clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## make run: the main job (CPU Fast Equilibrium on the bundled MNIST digits), then its figures.
run: $(STAMP)
	$(PY) -m launch.main --config=$(CONFIG) --workdir=$(WORKDIR)
	$(PY) -m analysis.fast_equilibrium $(WORKDIR)

## make test: the whole test suite on CPU.
test: $(STAMP)
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) -m benchmarks.trials

lint: $(STAMP)
	$(VENV)/bin/ruff check svag_jax configs launch analysis benchmarks tests

clean:
	rm -rf $(VENV) runs
