"""Many trials = the one-trial functions mapped over a trial axis, whatever the strategy/devices."""

import chex
import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding

from svag_jax import data as data_lib
from svag_jax import models, schedules, train, trials
from tests.conftest import tiny_config

T, STEPS = 4, 6


@pytest.fixture(scope='module')
def setup():
  cfg = tiny_config()
  ds = data_lib.load(cfg.data)
  trainer = train.Trainer(models.build(cfg.model, ds.num_classes), 16, ds.num_train)
  td = data_lib.TrainData(ds.train_images, ds.train_labels, ds.mean, ds.std)
  spe = trainer.steps_per_epoch
  # trials differ in their schedules too (two arms), as in the Fast Equilibrium runs
  arms = [schedules.Schedules(schedules.from_epochs(lr, ((0.25, 0.5),), spe),
                              schedules.from_epochs(0.1, (), spe)) for lr in (0.1, 0.4)]
  sched = schedules.stack([arms[i % 2] for i in range(T)])
  splits = {'test': data_lib.make_eval_split(ds.test_images, ds.test_labels, 40)}
  return trainer, td, sched, splits


def _single_trial_runs(trainer, td, sched):
  """Reference: each trial alone, with the unbatched one-trial functions."""
  step = jax.jit(trainer.train_steps, static_argnums=2)
  out = []
  for i in range(T):
    state = trainer.init(trials.trial_keys(0, i, 1)[0], jax.tree.map(lambda x: x[i], sched), td)
    for _ in range(STEPS // 2):
      state, _ = step(state, td, 2)
    out.append(state)
  return out


def _run(runner, td, sched):
  states = runner.init(0, sched, td)
  for _ in range(STEPS // 2):
    states, _ = runner.train(states, td, 2)
  return states


def _unstack(states):
  return [jax.tree.map(lambda x: x[i], s) for s in states for i in range(s.step.shape[0])]


@pytest.mark.parametrize('chunk', [0, 2, 1])
def test_every_strategy_equals_single_trial_runs(setup, chunk):
  trainer, td, sched, _ = setup
  reference = _single_trial_runs(trainer, td, sched)
  runner = trials.TrialRunner(trainer, T, chunk, devices=jax.devices()[:1])
  got = _unstack(_run(runner, td, sched))
  assert len(got) == T
  for a, b in zip(got, reference):
    # vmapped kernels may round differently from unbatched ones: a few ulps after 6 steps
    chex.assert_trees_all_close(jax.random.key_data(a.key), jax.random.key_data(b.key))
    chex.assert_trees_all_close(a.params, b.params, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(a.batch_stats, b.batch_stats, rtol=1e-5, atol=1e-6)
    assert int(a.step) == STEPS


def test_sharded_over_four_devices_keeps_trial_sharding_and_matches_one_device(setup):
  trainer, td, sched, splits = setup
  assert len(jax.devices()) == 4, 'conftest sets 4 fake CPU devices'
  runner4 = trials.TrialRunner(trainer, T, 0)
  states4 = _run(runner4, td, sched)
  assert len(states4) == 1
  for path, leaf in jax.tree_util.tree_leaves_with_path(states4[0]):
    assert isinstance(leaf.sharding, NamedSharding), jax.tree_util.keystr(path)
    assert tuple(leaf.sharding.spec)[:1] == ('trial',), (jax.tree_util.keystr(path), leaf.sharding)
    assert len(leaf.sharding.device_set) == 4
  states1 = _run(trials.TrialRunner(trainer, T, 0, devices=jax.devices()[:1]), td, sched)
  chex.assert_trees_all_close(states4[0].params, states1[0].params, rtol=1e-5, atol=1e-6)
  m4, p4 = runner4.evaluate(states4, splits, td)
  m1, p1 = trials.TrialRunner(trainer, T, 0, devices=jax.devices()[:1]).evaluate(
      states1, splits, td)
  np.testing.assert_allclose(m4['test_loss'], m1['test_loss'], rtol=1e-5)
  assert p4.shape == (T, 40 * 2) and p4.dtype == np.uint8


def test_round_robin_chunks_match(setup):
  trainer, td, sched, _ = setup
  runner = trials.TrialRunner(trainer, T, 1)  # 4 chunks of 1, one per device
  states = _run(runner, td, sched)
  assert [next(iter(s.step.devices())) for s in states] == jax.devices()
  reference = _single_trial_runs(trainer, td, sched)
  for a, b in zip(_unstack(states), reference):
    chex.assert_trees_all_close(a.params, b.params, rtol=1e-5, atol=1e-6)
