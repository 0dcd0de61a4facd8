"""G/N/NSR columns of a run (config.metrics) and the isotropic-noise transform in the loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from svag_jax import data as data_lib
from svag_jax import models, sampling, schedules, train
from svag_jax.rows import GN_KEYS
from tests.helpers import run_tiny, tiny_config

pytestmark = pytest.mark.usefixtures('compile_bound')  # compile-bound runs


def test_isotropic_noise_enters_the_update(tmp_path):
  _, noisy = run_tiny(tmp_path / 'a', **{'optim.noise_scale': 0.1})
  _, plain = run_tiny(tmp_path / 'b')
  assert noisy[0]['w_norm_sq'] > plain[0]['w_norm_sq']  # noise adds E||xi||^2 > 0 to the norm


def test_isotropic_noise_is_a_stream_of_the_data_key():
  """Step t's noise is drawn from stream_key(state.key, STREAM_NOISE, t), split over the leaves:
  a noisy GD step minus the plain one from the same state is -lr * scale * xi of that key (GD: no
  other randomness). `Trainer.optimizer` is a function of the state's schedules and key, so init
  and every step build the same transform."""
  cfg = tiny_config(**{'model.name': 'mlp', 'model.widths': (16,), 'model.norm': 'layer'})
  ds = data_lib.load(cfg.data)
  data = data_lib.TrainData(ds.train_images, ds.train_labels, ds.mean, ds.std)
  make = lambda scale: train.Trainer(
      models.build(cfg.model, ds.num_classes), 32, ds.num_train, oracle='gd', noise_scale=scale
  )
  noisy, plain = make(0.5), make(0.0)
  lr, steps = 0.1, noisy.steps_per_epoch
  sched = schedules.Schedules(
      schedules.from_epochs(lr, (), steps), schedules.from_epochs(0.01, (), steps)
  )
  state = noisy.init(jax.random.key(3), jax.tree.map(jnp.asarray, sched), data)
  state, _ = jax.jit(noisy.train_step)(state, data)  # step 1: the noise's count has moved on
  rebuilt = noisy.optimizer(state.schedules, state.key).init(state.params)
  np.testing.assert_array_equal(
      jax.random.key_data(rebuilt[0].key), jax.random.key_data(state.opt_state[0].key)
  )
  a, _ = jax.jit(noisy.train_step)(state, data)
  b, _ = jax.jit(plain.train_step)(state.replace(opt_state=state.opt_state[1]), data)
  leaves, treedef = jax.tree.flatten(state.params)
  t = int(state.step)
  keys = jax.random.split(sampling.stream_key(state.key, sampling.STREAM_NOISE, t), len(leaves))
  xi = jax.tree.unflatten(treedef, [jax.random.normal(k, x.shape) for k, x in zip(keys, leaves)])
  for d, x in zip(
      jax.tree.leaves(jax.tree.map(jnp.subtract, b.params, a.params)), jax.tree.leaves(xi)
  ):
    np.testing.assert_allclose(d, lr * 0.5 * x, rtol=1e-4, atol=1e-6)


def test_gradient_noise_columns_leave_the_run_unchanged(tmp_path):
  _, rows = run_tiny(
      tmp_path / 'gn',
      **{'train.epochs': 2, 'metrics.gn_every': 2.0, 'metrics.gn_batches': 4, 'trials.num': 2},
  )
  _, plain = run_tiny(tmp_path / 'plain', **{'train.epochs': 2, 'trials.num': 2})
  strip = lambda rs: [{k: v for k, v in r.items() if k not in GN_KEYS} for r in rs]
  assert strip(rows) == strip(plain)  # estimating G/N changes neither weights nor BN statistics
  by_step = {}
  for r in rows:
    by_step.setdefault(r['step'], []).append(r)
  first, last = by_step[8], by_step[16]
  assert all(r['G'] is None and r['N'] is None and r['NSR'] is None for r in first)
  for r in last:
    assert r['N'] > 0 and np.isfinite(r['G'])
    if r['G'] > 0:
      assert r['NSR'] == pytest.approx(r['N'] / r['G'], rel=1e-5)
