# Every target sets up what it needs from nothing: a .venv with the package and its dev extra.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WORKDIR ?= runs/fast_equilibrium_cpu
CONFIG ?= fast_equilibrium:cpu

.PHONY: run test test-isa bench lint format install clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## make run: the main job (CPU Fast Equilibrium on the bundled MNIST digits), then its figures.
run: $(STAMP)
	$(PY) -m svag_jax.launch.main --config=$(CONFIG) --workdir=$(WORKDIR)
	$(PY) -m svag_jax.analysis.fast_equilibrium $(WORKDIR)

## make test: the whole test suite on CPU, on two pytest-xdist workers (one per core of CI's machine).
test: $(STAMP)
	$(PY) -m pytest -q -n 2 tests

## make test-isa: the float-comparing tests under XLA:CPU's default ISA, AVX2 and SSE4.2: their
## tolerances must hold on every CPU, not only on one machine's rounding (tests/numerics.py).
NUMERICS_TESTS := $(addprefix tests/test_,$(addsuffix .py,models models_cifar transforms svag ngd \
  estimators optim trials conv tv theory toy gd_subset schedules_curves augment)) \
  tests/test_experiment.py::test_resume_to_more_epochs_is_bitwise_identical \
  tests/test_integration_sde.py::test_svag_l1_is_sgd_bit_for_bit
test-isa: $(STAMP)
	$(PY) -m pytest -q $(NUMERICS_TESTS)
	XLA_FLAGS="$$XLA_FLAGS --xla_cpu_max_isa=AVX2" $(PY) -m pytest -q $(NUMERICS_TESTS)
	XLA_FLAGS="$$XLA_FLAGS --xla_cpu_max_isa=SSE4_2" $(PY) -m pytest -q $(NUMERICS_TESTS)

bench: $(STAMP)
	$(PY) -m benchmarks.trials

## make lint: ruff (lint) and pyink (format check), both pinned in the dev extra; `make format` fixes.
LINTED := svag_jax configs launch analysis benchmarks tests
lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/pyink --check --quiet $(LINTED)

format: $(STAMP)
	$(VENV)/bin/pyink --quiet $(LINTED)

clean:
	rm -rf $(VENV) runs
