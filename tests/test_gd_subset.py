"""Full-batch GD with BatchNorm through the 'sgd' oracle (configs/gd_subset.py, 2020 Fig. 5b/c).

The claim the config rests on: with train.batch_size = data.num_train every step's batch is the
whole subset in some order, and BatchNorm's batch statistics do not depend on that order, so the
loss, gradient and new running statistics are those of full-batch GD (equal for two permutations;
a proper sub-batch differs, so the comparison can fail). Also: the configs validate, the wd_off
arm's WD is 0 from its switch step, the drop counter, and a tiny run + the analysis end to end.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from svag_jax import arms as arms_lib
from svag_jax import config as config_lib
from svag_jax import models, record
from svag_jax.analysis import gd_subset as analysis
from svag_jax.configs import base
from svag_jax.configs import gd_subset as gd_config
from svag_jax.data import TrainData
from svag_jax.plan import trial_schedules
from svag_jax.schedules import Schedule, Schedules, value_at
from svag_jax.train import Trainer
from tests import numerics
from tests.helpers import run_tiny

pytestmark = pytest.mark.usefixtures('compile_bound')

N = 48
# Two orders of the same N examples are two float32 programs (tests/numerics.py): the reductions
# of the cnn's forward and backward passes (8x8x1 images, widths (4, 8): fan-ins 9 and 36,
# BatchNorm over N x 64 and N x 16 positions, head 128, 3 classes, mean over N; weight gradients
# summed over the same positions) bound the mlp's (fan-ins 64 and 4, BatchNorm over N) too.
TOL = 2 * numerics.chain_tol(
    2 * [9, N * 64, N * 64, 36, N * 16, N * 16, 128, 3, N] + [N * 64, N * 16]
)


def _trainer_and_data(name):
  cfg = base.get_config().model
  cfg.name, cfg.widths, cfg.norm = name, (4, 8), 'batch'
  model = models.build(cfg, num_classes=3)
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.integers(0, 256, (N, 8, 8, 1)), jnp.uint8)
  labels = jnp.asarray(rng.integers(0, 3, (N,)), jnp.int32)
  data = TrainData(images, labels, jnp.full((1,), 0.5), jnp.full((1,), 0.25))
  return Trainer(model, batch_size=N, num_train=N), data


@pytest.mark.parametrize('name', ['cnn', 'mlp'])
def test_full_batch_step_does_not_depend_on_the_order(name):
  trainer, data = _trainer_and_data(name)
  sched = Schedule(np.asarray([2**31 - 1], np.int32), np.asarray([0.1, 0.1], np.float32))
  state = trainer.init(jax.random.key(0), Schedules(sched, sched), data)
  loss_fn = trainer.loss_fn(state, data)

  @jax.jit
  def value_and_grad(idx):
    return jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, data.images[idx], data.labels[idx]
    )

  # the batches the trainer itself draws in two different epochs are two orders of all N
  idx_a = trainer.sampler.batch_indices(state.key, jnp.int32(0))
  idx_b = trainer.sampler.batch_indices(state.key, jnp.int32(1))
  np.testing.assert_array_equal(np.sort(idx_a), np.arange(N))
  np.testing.assert_array_equal(np.sort(idx_b), np.arange(N))
  assert not np.array_equal(idx_a, idx_b)
  (loss_a, aux_a), g_a = value_and_grad(idx_a)
  (loss_b, aux_b), g_b = value_and_grad(idx_b)
  numerics.assert_close(loss_a, loss_b, TOL)
  numerics.assert_close(g_a, g_b, TOL)
  numerics.assert_close(aux_a, aux_b, TOL)
  # power: a proper sub-batch (different examples and statistics) gives a different gradient
  (loss_c, _), g_c = value_and_grad(idx_a[: N // 2])
  diff = max(
      float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(g_a), jax.tree.leaves(g_c))
  )
  assert diff > 1e-3 and abs(float(loss_a - loss_c)) > 1e-4


@pytest.mark.parametrize('arg', [None, 'cpu', 'cnn'])
def test_configs_validate_and_are_full_batch(arg):
  c = gd_config.get_config(arg)
  config_lib.validate(c)
  assert c.train.batch_size == c.data.num_train and c.optim.oracle == 'sgd'
  assert c.model.norm == 'batch' and c.optim.momentum == 0
  arms = {a.name: a for a in arms_lib.arms(c)}
  wd_off = gd_config.CIFAR_WD_OFF if arg is None else gd_config.WD_OFF
  assert arms['wd'].wd_schedule == () and arms['wd_off'].wd_schedule == ((wd_off, 0.0),)
  assert arms['wd'].lr == arms['wd_off'].lr and arms['wd'].wd == arms['wd_off'].wd > 0
  assert wd_off < c.train.epochs
  with pytest.raises(ValueError, match='unknown config argument'):
    gd_config.get_config('gpu')


def test_count_drops_and_first_reach():
  acc = np.array([0.5, 0.95, 0.99, 1.0, 0.85, 0.8, 1.0, 0.96, 1.0, 0.89, 1.0, np.nan, 1.0])
  assert analysis.first_reach(acc, 0.99) == 2
  assert analysis.count_drops(acc, 0.99, 0.9) == 2  # [0.85, 0.8] and [0.89]
  assert analysis.count_drops(acc, 0.99, 0.97) == 3  # ... and 0.96
  assert analysis.count_drops(acc[:2], 0.99, 0.9) == 0  # never reached
  assert analysis.count_drops(np.array([0.99, 0.5, 0.5]), 0.99, 0.9) == 1
  assert analysis.count_drops(np.array([0.5, 1.0]), 0.0, 0.9) == 1  # starts low


def test_tiny_run_switches_wd_off_and_analysis_draws(tmp_path, capsys):
  n = 64
  _, rows = run_tiny(
      tmp_path,
      **{
          'data.synthetic_num_train': n,
          'train.batch_size': n,
          'train.epochs': 6,
          'train.eval_every': 2.0,
          'train.steps_per_dispatch': 2,
          'trials.num': 1,
          'train.eval_bn_batches': 2,
          'arms': {
              'wd': dict(lr=0.5, wd=0.05),
              'wd_off': dict(lr=0.5, wd=0.05, wd_schedule=((4.0, 0.0),)),
          },
      },
  )
  by = {(r['arm'], r['step']): r for r in rows}
  assert sorted({r['step'] for r in rows}) == [2, 4, 6]  # one epoch = one full-batch step
  assert by[('wd', 6)]['wd'] == pytest.approx(0.05)
  assert by[('wd_off', 2)]['wd'] == pytest.approx(0.05)
  assert by[('wd_off', 4)]['wd'] == 0.0 and by[('wd_off', 6)]['wd'] == 0.0
  assert record.read_status(tmp_path)['status'] == 'done'
  assert analysis.wd_off_step(record.read_config(tmp_path)) == 4.0
  assert analysis.main([str(tmp_path)]) == 0
  out = capsys.readouterr().out
  assert 'wd_off drops WD at step 4.0' in out and 'drops<0.9' in out
  assert (tmp_path / 'figures' / 'gd_subset.png').stat().st_size > 10_000
  assert (tmp_path / 'figures' / 'gd_subset.pdf').exists()


def test_schedule_value_after_switch():
  # the step at which WD becomes 0 is the epoch of the switch (B = N: one step per epoch)
  c = gd_config.get_config('cpu')
  scheds, names = trial_schedules(arms_lib.arms(c), 1, steps_per_epoch=1)
  i = names.index('wd_off')
  wd = jax.tree.map(lambda x: x[i], scheds.wd)
  arm_wd = {a.name: a.wd for a in arms_lib.arms(c)}['wd_off']  # the arms carry lr and wd
  assert float(value_at(wd, jnp.int32(int(gd_config.WD_OFF) - 1))) == pytest.approx(arm_wd)
  assert float(value_at(wd, jnp.int32(int(gd_config.WD_OFF)))) == 0.0
