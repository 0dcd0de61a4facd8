"""Test setup: 4 fake CPU devices and one persistent XLA compilation cache per session (both set
before JAX starts) and the shared fixtures; the plain helpers are in tests/helpers.py."""

import atexit
import os
import shutil
import tempfile

os.environ['XLA_FLAGS'] = (
    os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=4'
).strip()

# The suite compiles the same small programs again and again: in every test that builds a Trainer
# of the tiny config and in every `svag-train` subprocess a test starts. One compilation cache for
# the whole session (the pytest process sets it up; the xdist workers and the subprocesses inherit
# the environment) compiles each program once: the fault / resume / record tests ran in 57 s
# instead of 106 s. A cached executable is the compiled one, so bitwise comparisons are unchanged.
# A cache dir given in the environment is used as it is (and kept).
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  _CACHE = tempfile.mkdtemp(prefix='svag_jax_tests_xla_cache_')
  os.environ['JAX_COMPILATION_CACHE_DIR'] = _CACHE
  os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0'
  os.environ['JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES'] = '0'
  atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

import pytest  # noqa: E402

from tests.helpers import most_optimizations_disabled  # noqa: E402


@pytest.fixture(scope='module')
def compile_bound():
  """For modules of compile-bound tests: `pytestmark = pytest.mark.usefixtures('compile_bound')`."""
  with most_optimizations_disabled():
    yield


@pytest.fixture
def fast_compiles():
  with most_optimizations_disabled():
    yield


@pytest.fixture
def train_traces(monkeypatch):
  """A list that gets `num_steps` each time `Trainer.train_steps` is traced (i.e. compiled)."""
  from svag_jax import train  # noqa: PLC0415 (after XLA_FLAGS)

  traces = []
  original = train.Trainer.train_steps

  def counting(self, state, data, num_steps):
    traces.append(num_steps)
    return original(self, state, data, num_steps)

  monkeypatch.setattr(train.Trainer, 'train_steps', counting)
  return traces


@pytest.fixture(scope='session')
def finished_tiny(tmp_path_factory):
  """The workdir of a finished run of `python -m svag_jax.launch.main --config=tests/tiny_config.py`
  with `tests.helpers.SHORT` (1 epoch, 1 trial: evaluations and checkpoints at steps 4 and 8),
  run in this process. Shared: copy it before changing it."""
  import pathlib  # noqa: PLC0415

  from tests.helpers import SHORT, TINY, run_cli  # noqa: PLC0415

  workdir = tmp_path_factory.mktemp('finished_tiny') / 'run'
  cwd = os.getcwd()
  os.chdir(pathlib.Path(__file__).resolve().parents[1])
  try:
    with most_optimizations_disabled():
      assert run_cli([TINY, f'--workdir={workdir}', *SHORT]) == 0
  finally:
    os.chdir(cwd)
  return workdir


@pytest.fixture
def finished_copy(finished_tiny, tmp_path, monkeypatch):
  """A copy of `finished_tiny` to change, the current directory at the repository."""
  import pathlib  # noqa: PLC0415
  import shutil  # noqa: PLC0415

  monkeypatch.chdir(pathlib.Path(__file__).resolve().parents[1])
  copy = tmp_path / 'run'
  shutil.copytree(finished_tiny, copy)
  return copy
