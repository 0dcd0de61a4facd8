"""Test setup: 4 fake CPU devices (set before JAX starts) and the shared fixtures; the plain
helpers are in tests/helpers.py."""

import os

os.environ['XLA_FLAGS'] = (
    os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=4'
).strip()

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
