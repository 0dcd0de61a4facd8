# Every target sets up what it needs from nothing: a .venv with the package and its dev extra, at
# the versions of requirements.lock (the tested ones; `pip install .` keeps pyproject's ranges).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := requirements.lock
WORKDIR ?= runs/fast_equilibrium_cpu
CONFIG ?= fast_equilibrium:cpu

.PHONY: run test test-python test-isa bench lint format install lock clean

# A venv at $(1) holding exactly the locked versions, then svag_jax itself (editable, no deps).
define install_locked
	$(1)/bin/python -m pip install -q --upgrade pip
	$(1)/bin/python -m pip install -q -r $(LOCK)
	$(1)/bin/python -m pip install -q --no-deps --no-build-isolation -e .
	$(1)/bin/python -m pip check
endef

$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(call install_locked,$(VENV))
	touch $(STAMP)

## make install: .venv with the locked versions of the package's and the dev extra's dependencies.
install: $(STAMP)

## make lock: re-resolve requirements.lock from pyproject's ranges (newest versions), one file for
## Python 3.11-3.13 on every platform (uv's universal resolution: environment markers where the
## versions differ by Python). Then run `make test test-python` and commit the lock.
UV_VERSION := 0.13.9
lock:
	test -x .venv-lock/bin/uv || ($(PYTHON) -m venv .venv-lock && \
	  .venv-lock/bin/python -m pip install -q uv==$(UV_VERSION))
	.venv-lock/bin/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
	  --upgrade --custom-compile-command 'make lock' --output-file $(LOCK)

## make run: the main job (CPU Fast Equilibrium on the bundled MNIST digits), then its figures.
run: $(STAMP)
	$(PY) -m svag_jax.launch.main --config=$(CONFIG) --workdir=$(WORKDIR)
	$(PY) -m svag_jax.analysis.fast_equilibrium $(WORKDIR)

## make test: the whole test suite on CPU, on two pytest-xdist workers (one per core of CI's machine).
XDIST ?= -n 2  # pytest-xdist workers; XDIST= runs in one process
test: $(STAMP)
	$(PY) -m pytest -q $(XDIST) tests

## make test-python: the fast part of the suite under each of Python 3.11, 3.12 and 3.13, each in
## its own venv (.venv-py3.X) from the lock; python3.X from PATH, else pyenv's latest 3.X.
PYTHON_VERSIONS := 3.11 3.12 3.13
FAST_TESTS := $(addprefix tests/test_,$(addsuffix .py,imports release config config_docs arms \
  schedules_curves optim transforms svag tv theory toy models augment data estimators experiment \
  sweep cluster bad_inputs analysis_shape help lock))
python_of = $(shell python$(1) -c 'import sys; print(sys.executable)' 2>/dev/null || \
  PYENV_VERSION=$$(pyenv latest $(1) 2>/dev/null) pyenv which python 2>/dev/null)
.PRECIOUS: .venv-py%/.installed
test-python: $(addprefix test-python-,$(PYTHON_VERSIONS))
test-python-%: .venv-py%/.installed
	.venv-py$*/bin/python -m pytest -q $(XDIST) $(FAST_TESTS)
.venv-py%/.installed: pyproject.toml $(LOCK)
	test -n "$(call python_of,$*)" || (echo "no Python $*: neither python$* nor pyenv's" && false)
	rm -rf .venv-py$* && $(call python_of,$*) -m venv .venv-py$*
	$(call install_locked,.venv-py$*)
	touch $@

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
	rm -rf $(VENV) .venv-py3.* .venv-lock runs
