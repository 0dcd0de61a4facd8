"""Test setup: 4 fake CPU devices (set before JAX starts) and small shared fixtures."""

import contextlib
import os

os.environ['XLA_FLAGS'] = (
    os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=4'
).strip()

import jax  # noqa: E402  (must come after XLA_FLAGS)
import pytest  # noqa: E402

from configs import base  # noqa: E402


def tiny_config(**overrides):
  """A config that trains in seconds: tiny CNN on synthetic 8x8 images."""
  c = base.get_config()
  c.data.source = 'synthetic'
  c.data.synthetic_shape = (8, 8, 1)
  c.data.synthetic_num_train = 256
  c.data.synthetic_num_test = 64
  c.data.synthetic_num_classes = 4
  c.model.widths = (4, 8)
  c.model.init_scale = 0.5
  c.train.batch_size = 32
  c.train.epochs = 2
  c.train.eval_every = 1.0
  c.train.steps_per_dispatch = 4
  c.trials.num = 2
  c.trials.vmap_chunk = 0  # one chunk: one compile (round-robin chunks compile per device)
  for key, value in overrides.items():
    node = c
    *path, last = key.split('.')
    for p in path:
      node = node[p]
    node[last] = value
  return c


@contextlib.contextmanager
def most_optimizations_disabled():
  """Skip most XLA optimisations: for tests whose cost is compiling tiny programs."""
  previous = jax.config.read('jax_disable_most_optimizations')
  jax.config.update('jax_disable_most_optimizations', True)
  try:
    yield
  finally:
    jax.config.update('jax_disable_most_optimizations', previous)


def run_tiny(workdir, **overrides):
  """Trains tiny_config (1 epoch, 1 trial, plus overrides) into `workdir`: (result, metric rows)."""
  from svag_jax import experiment  # noqa: PLC0415 (after XLA_FLAGS)
  from svag_jax import workdir as workdir_lib

  cfg = tiny_config(**{'train.epochs': 1, 'trials.num': 1, **overrides})
  result = experiment.run(cfg, str(workdir))
  return result, workdir_lib.read_metrics(workdir)


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
