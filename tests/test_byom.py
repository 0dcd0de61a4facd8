"""Bring your own model: a model svag_jax does not ship trains through `svag-train` (a config
naming it by import path) with its scale-invariant groups found at the start, per-group metrics in
metrics.jsonl and TensorBoard, a bitwise resume and its analysis; an NNX model and a Linen model
without train flag or fixed head train too; the angular update is the angle of the step the trial
takes next.
"""

import dataclasses
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from svag_jax import data as data_lib
from svag_jax import record, schedules
from svag_jax.analysis import groups as groups_analysis
from svag_jax.data import TrainData
from svag_jax.record import GROUP_METRICS, group_key
from svag_jax.rows import GN_KEYS, METRIC_KEYS
from svag_jax.schedules import Schedules
from svag_jax.train import Trainer
from tests import numerics
from tests.helpers import event_steps, run_cli, run_tiny, tiny_config

ROOT = pathlib.Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures('compile_bound')

# A config file naming tests/foreign_models.py's AffineMLP (BatchNorm with affine scale and bias, a
# trained head) by import path, on synthetic 8x8 images: 2 trials, 2 epochs of 8 steps, G/N every
# epoch.
CONFIG = """
from svag_jax.configs import base


def get_config():
  c = base.get_config()
  c.data.source = 'synthetic'
  c.data.synthetic_shape = (8, 8, 1)
  c.data.synthetic_num_train = 256
  c.data.synthetic_num_test = 64
  c.data.synthetic_num_classes = 4
  c.model.name = 'tests.foreign_models:AffineMLP'
  c.model.kwargs.widths = (16, 16)
  c.train.batch_size = 32
  c.train.epochs = 2.0
  c.train.steps_per_dispatch = 4
  c.metrics.gn_every = 1.0
  c.metrics.gn_batches = 2
  c.trials.num = 2
  return c
"""
# Its groups (tests/foreign_models.py): each kernel alone, the first BatchNorm's scale and bias.
AFFINE_MLP_GROUPS = {
    frozenset({'Dense_0/kernel'}),
    frozenset({'Dense_1/kernel'}),
    frozenset({'BatchNorm_0/bias', 'BatchNorm_0/scale'}),
}


def test_a_model_by_import_path_trains_through_svag_train_resumes_bitwise_and_draws(
    tmp_path, monkeypatch
):
  monkeypatch.chdir(ROOT)
  config = tmp_path / 'byom.py'
  config.write_text(CONFIG)
  a, b = tmp_path / 'a', tmp_path / 'b'
  assert run_cli([f'--config={config}', f'--workdir={a}', '--config.train.epochs=1']) == 0
  assert run_cli([f'--config={config}', f'--workdir={a}']) == 0  # resumes to 2 epochs
  assert run_cli([f'--config={config}', f'--workdir={b}']) == 0
  rows = record.read_metrics(a)
  assert rows == record.read_metrics(b)  # every value, bit for bit
  assert record.read_status(a)['status'] == 'done'

  found = record.read_groups(a)  # found at the start, and kept by the resumed run
  assert found['source'] == 'found'
  assert {frozenset(g['members']) for g in found['groups']} == AFFINE_MLP_GROUPS
  assert set(found['ungrouped']) == {
      'BatchNorm_1/bias',
      'BatchNorm_1/scale',
      'Dense_2/bias',
      'Dense_2/kernel',
  }
  names = [g['name'] for g in found['groups']]
  for row in rows:
    assert math.isfinite(row['angular_update']) and row['angular_update'] > 0
    for name in names:
      for metric in GROUP_METRICS:
        assert math.isfinite(row[group_key(name, metric)]), (name, metric)  # G/N every eval
  # the groups' squared norms and N add up to less than the whole net's (the head and the last
  # BatchNorm's affine are in no group)
  r = rows[-1]
  for metric in ('w_norm_sq', 'N'):
    total = sum(r[group_key(n, metric)] for n in names)
    assert 0 < total < r[metric]

  tags = event_steps(a / 'tensorboard')  # one section per group: 'group.<name>/...'
  for name in names:
    assert tags[f'default:{group_key(name, "angular_update")}/mean'] == [8, 16]
  assert groups_analysis.main([str(a)]) == 0
  assert (a / 'figures' / 'groups.png').stat().st_size > 0


def test_an_nnx_model_and_a_model_without_train_flag_or_fixed_head(tmp_path):
  # the model fields at their defaults (not read here), per-group metrics on
  common = {'model.widths': (32, 64, 64), 'model.init_scale': 1.0, 'metrics.groups': 'auto'}
  _, rows = run_tiny(tmp_path / 'nnx', **common, **{'model.name': 'tests.foreign_models:NNXNet'})
  found = record.read_groups(tmp_path / 'nnx')
  assert [g['members'] for g in found['groups']] == [['dense/kernel']]  # BN without affine
  assert math.isfinite(rows[-1]['group.dense.kernel/effective_lr'])
  # a Linen model without a train argument, BatchNorm or fixed head: no group, and still the
  # whole net's angular update
  _, rows = run_tiny(
      tmp_path / 'plain', **common, **{'model.name': 'tests.foreign_models:PlainMLP'}
  )
  assert record.read_groups(tmp_path / 'plain')['groups'] == []
  assert rows[-1]['angular_update'] > 0 and not any(k.startswith('group.') for k in rows[-1])


def test_runs_without_groups_keep_the_old_columns(tmp_path):
  _, rows = run_tiny(tmp_path, **{'metrics.groups': 'none'})
  bookkeeping = ['step', 'effective_step', 'svag_l', 'epoch', 'trial', 'arm', 'diverged']
  assert list(rows[0]) == [*bookkeeping, *METRIC_KEYS, *GN_KEYS]
  assert record.read_groups(tmp_path) is None


# Each kernel of a LayerNorm MLP is scale invariant alone: two groups.
LAYER_NORM_GROUPS = (
    ('Dense_0.kernel', ('Dense_0/kernel',)),
    ('Dense_1.kernel', ('Dense_1/kernel',)),
)


def _layer_norm_mlp(**overrides):
  """(cfg, data, trainer, state at step 0) of the tiny config's LayerNorm MLP 64-16-16-4 with
  `LAYER_NORM_GROUPS` and constant schedules at the config's LR and WD."""
  cfg = tiny_config(**{
      'model.name': 'mlp', 'model.widths': (16, 16), 'model.norm': 'layer', **overrides
  })  # fmt: skip
  ds = data_lib.load(cfg.data)
  data = TrainData(ds.train_images, ds.train_labels, ds.mean, ds.std)
  trainer = dataclasses.replace(
      Trainer.from_config(cfg, ds.num_train, ds.num_classes), groups=LAYER_NORM_GROUPS
  )
  spe = trainer.steps_per_epoch
  lr, wd = cfg.optim.lr, cfg.optim.wd
  sched = Schedules(schedules.from_epochs(lr, (), spe), schedules.from_epochs(wd, (), spe))
  return cfg, data, trainer, trainer.init(jax.random.key(0), sched, data)


def test_the_angular_update_is_the_angle_of_the_next_step():
  """For SGD with coupled WD on a scale-invariant loss one step is exact geometry: the batch
  gradient g is orthogonal to w, so w_{t+1} = (1 - eta lambda) w_t - eta g and the angle between
  w_t and w_{t+1} is atan(eta ||g|| / ((1 - eta lambda) ||w_t||)), per group (here every kernel of
  a LayerNorm MLP, each invariant alone) and for the whole net."""
  cfg, data, trainer, state = _layer_norm_mlp()
  lr, wd = cfg.optim.lr, cfg.optim.wd
  angles = jax.jit(trainer.angular_updates)(state, data)
  idx = trainer.sampler.batch_indices(state.key, state.step)  # the step's batch
  grads, _, _ = trainer._gradient(state, data, [idx])
  # float32 rounding: the forward / backward reductions (input 64 features, 16 units, LayerNorm
  # over 16, head 16 -> 4, a batch of 32) and the norms of the P = 1280 weights; the difference
  # w_{t+1} - w_t carries u32 ||w|| of rounding, u32 / angle relative to the step.
  lengths = [64, 16, 16, 16, 16, 4, 32] * 2 + [32]
  for name, members in (*LAYER_NORM_GROUPS, ('', ('Dense_0/kernel', 'Dense_1/kernel'))):
    leaf = lambda tree, p: tree[p.split('/')[0]]['kernel']
    g = jnp.sqrt(sum(jnp.sum(jnp.square(leaf(grads, p))) for p in members))
    w = jnp.sqrt(sum(jnp.sum(jnp.square(leaf(state.params, p))) for p in members))
    want = float(jnp.arctan(np.float32(lr) * g / ((1 - np.float32(lr * wd)) * w)))
    got = float(angles[group_key(name, 'angular_update') if name else 'angular_update'])
    tol = numerics.chain_tol(lengths) + 3 * numerics.sum_tol(1280) + 4 * numerics.U32 / want
    numerics.assert_close(got, want, tol, err_msg=name)


@pytest.mark.parametrize('optimizer', ['adam', 'rmsprop', 'adamw'])
def test_each_groups_adaptive_intrinsic_lr_weights_up_to_the_nets(optimizer):
  """'group.<name>/intrinsic_lr_adaptive' is the group's own eta lambda p_S: over a partition of the
  weights the ||w_S||^2-weighted mean of the p_S is the whole net's p (so the groups' columns
  average to the logged 'intrinsic_lr_adaptive'), and under AdamW every group's is eta lambda. A
  p_S computed over the wrong tensors (another group's, or the net's) breaks the first identity
  unless the groups' p happen to agree, which the check that they differ rules out."""
  _, data, trainer, state = _layer_norm_mlp(
      **{'optim.optimizer': optimizer, 'optim.lr': 1e-2, 'optim.wd': 1e-3}
  )
  step = jax.jit(trainer.train_step)
  for _ in range(3):
    state, _ = step(state, data)
  out = jax.jit(trainer.schedule_metrics)(state)
  per_group = [
      float(out[group_key(name, 'intrinsic_lr_adaptive')]) for name, _ in LAYER_NORM_GROUPS
  ]
  sq = [float(out[group_key(name, 'w_norm_sq')]) for name, _ in LAYER_NORM_GROUPS]
  if optimizer == 'adamw':
    assert per_group == pytest.approx([1e-2 * 1e-3] * 2, rel=1e-6)
    return
  assert abs(per_group[0] / per_group[1] - 1) > 0.05  # the groups' preconditioners differ
  weighted = sum(p * s for p, s in zip(per_group, sq)) / sum(sq)
  assert weighted == pytest.approx(float(out['intrinsic_lr_adaptive']), rel=1e-5)
