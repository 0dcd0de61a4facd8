"""Refreshing BatchNorm statistics before evaluation: up to date, and training never sees them."""

import chex
import jax
import numpy as np

from svag_jax import data as data_lib
from svag_jax import evaluate, models, schedules, train
from tests.helpers import tiny_config


def test_refreshed_batch_stats_are_a_fixed_point_and_leave_the_state_alone():
  cfg = tiny_config()
  ds = data_lib.load(cfg.data)
  trainer = train.Trainer(models.build(cfg.model, ds.num_classes), 32, ds.num_train)
  # 0.9^48 < 1% of the old statistics remain
  evaluator = evaluate.Evaluator(trainer.model, bn_batches=48, bn_batch_size=32)
  data = data_lib.TrainData(ds.train_images, ds.train_labels, ds.mean, ds.std)
  one = schedules.Schedules(schedules.from_epochs(0.1, (), 8), schedules.from_epochs(0.1, (), 8))
  state = trainer.init(jax.random.key(0), one, data)
  fresh = evaluate.refreshed_batch_stats(trainer.model, state.variables, data, 48, 32)
  again = evaluate.refreshed_batch_stats(
      trainer.model, state.replace(batch_stats=fresh).variables, data, 48, 32
  )
  # initial running stats are mean 0 / var 1; the refreshed ones describe the actual activations
  assert not np.allclose(fresh['BatchNorm_0']['var'], 1.0, rtol=0.1)
  # an EMA (momentum 0.9) over the same 48 batches: starting from the refreshed statistics instead
  # of the initial ones changes the result by exactly 0.9^48 of their difference
  for layer in fresh:
    for k in ('mean', 'var'):
      start = np.asarray(state.batch_stats[layer][k])
      bound = 0.9**48 * np.abs(start - fresh[layer][k]) * 1.01 + 1e-6
      assert np.all(np.abs(again[layer][k] - fresh[layer][k]) <= bound), (layer, k)
  splits = {'test': data_lib.make_eval_split(ds.test_images, ds.test_labels, 32)}
  before = jax.tree.map(np.asarray, state.batch_stats)
  metrics, _ = jax.jit(evaluator.one)(state.variables, splits, data)
  chex.assert_trees_all_equal(jax.tree.map(np.asarray, state.batch_stats), before)
  assert np.isfinite(float(metrics['test_loss']))
