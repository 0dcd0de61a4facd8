"""One step count: the optax states' counts (LR schedule, WD schedule, noise) equal TrainState.step.

`TrainState.step` is the source of truth (svag_jax/train.py); the transforms keep their own counts
(optax's convention), incremented once per train_step, so they must agree after any number of
steps, for every oracle that changes the chain (svag adds a transform, noise another).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from svag_jax import data as data_lib
from svag_jax import models, optim, schedules, train
from tests.helpers import most_optimizations_disabled, tiny_config


@pytest.mark.parametrize('oracle, noise', [('sgd', 0.0), ('svag', 0.01), ('gd', 0.01)])
def test_opt_state_counts_follow_the_train_state_step(oracle, noise):
  cfg = tiny_config(**{'model.norm': 'group', 'model.num_groups': 2})
  ds = data_lib.load(cfg.data)
  trainer = train.Trainer(
      models.build(cfg.model, ds.num_classes),
      32,
      ds.num_train,
      oracle=oracle,
      svag_l=2 if oracle == 'svag' else 1,
      noise_scale=noise,
      chunk_size=128,
  )
  data = data_lib.TrainData(ds.train_images, ds.train_labels, ds.mean, ds.std)
  lr = schedules.from_epochs(0.1, ((1, 0.5),), trainer.steps_per_epoch)
  wd = schedules.from_epochs(0.01, ((2, 0.0),), trainer.steps_per_epoch)
  sched = jax.tree.map(jnp.asarray, schedules.Schedules(lr, wd))
  with most_optimizations_disabled():
    state = trainer.init(jax.random.key(0), sched, data)
    state, _ = jax.jit(trainer.train_steps, static_argnums=2)(state, data, 3)
    state, _ = jax.jit(trainer.train_step)(state, data)
  counts = optim.opt_state_counts(state.opt_state)
  # LR schedule and WD schedule, plus the noise transform's count when there is noise
  assert len(counts) == 2 + (noise > 0)
  assert int(state.step) == 4
  np.testing.assert_array_equal([int(c) for c in counts], [int(state.step)] * len(counts))
