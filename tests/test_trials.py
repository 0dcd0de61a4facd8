"""Many trials = the one-trial functions mapped over a trial axis, whatever the strategy/devices."""

import re

import chex
import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding

from svag_jax import data as data_lib
from svag_jax import models, schedules, train, trials
from svag_jax.checks import ConfigError
from tests import numerics
from tests.helpers import tiny_config

T, STEPS = 4, 6


@pytest.fixture(scope='module')
def setup():
  cfg = tiny_config()
  ds = data_lib.load(cfg.data)
  trainer = train.Trainer(models.build(cfg.model, ds.num_classes), 16, ds.num_train)
  td = data_lib.TrainData(ds.train_images, ds.train_labels, ds.mean, ds.std)
  spe = trainer.steps_per_epoch
  # trials differ in their schedules too (two arms), as in the Fast Equilibrium runs
  arms = [
      schedules.Schedules(
          schedules.from_epochs(lr, ((0.25, 0.5),), spe), schedules.from_epochs(0.1, (), spe)
      )
      for lr in (0.1, 0.4)
  ]
  sched = schedules.stack([arms[i % 2] for i in range(T)])
  splits = {'test': data_lib.make_eval_split(ds.test_images, ds.test_labels, 40)}
  return trainer, td, sched, splits


def _single_trial_runs(trainer, td, sched, perturb=0.0):
  """Reference: each trial alone, with the unbatched one-trial functions.

  perturb: multiply every initial weight by 1 +- perturb (random signs) to measure how the six
  SGD steps amplify a relative error of the weights (`_tolerance`).
  """
  step = jax.jit(trainer.train_steps, static_argnums=2)
  out = []
  for i in range(T):
    state = trainer.init(trials.trial_keys(0, i, 1)[0], jax.tree.map(lambda x: x[i], sched), td)
    if perturb:
      signs = lambda w: jax.random.rademacher(jax.random.key(i), w.shape, w.dtype)
      state = state.replace(
          params=jax.tree.map(lambda w: w * (1 + perturb * signs(w)), state.params)
      )
    for _ in range(STEPS // 2):
      state, _ = step(state, td, 2)
    out.append(state)
  return out


@pytest.fixture(scope='module')
def reference(setup):
  """(the single-trial runs, the tolerance of another program computing them).

  Another program (vmapped, chunked, sharded) rounds each step's gradient differently: a relative
  error <= chain_tol of the tiny CNN's forward and backward reductions (tests/numerics.py), plus a
  few u for the update, at each of the STEPS steps. The steps amplify an error of the weights by a
  factor A, measured here on the same program: perturb the initial weights by a relative
  delta = 1e-6 (17 u: above rounding, and small enough to stay linear: at 1e-4 ReLU / max-pool
  switches already make A ~1e3 instead of ~1-4) and compare after STEPS steps, normwise per
  leaf. Errors entering later are amplified less, so tol = A * STEPS * per-step error (~3e-3,
  while another trial's key or schedule differs by 7e-2 to 1.7 on every leaf).
  """
  trainer, td, sched, _ = setup
  runs = _single_trial_runs(trainer, td, sched)
  delta = 1e-6
  perturbed = _single_trial_runs(trainer, td, sched, perturb=delta)
  amplification = max(
      float(np.max(np.abs(a - b)) / np.max(np.abs(b))) / delta
      for r, p in zip(runs, perturbed)
      for a, b in zip(
          jax.tree.leaves((p.params, p.batch_stats)), jax.tree.leaves((r.params, r.batch_stats))
      )
  )
  # tiny CNN (helpers.tiny_config): 8x8x1 images, widths (4, 8), 4 classes, batch 16; fan-ins
  # 9 and 36, BatchNorm over 16 x 64 and 16 x 16 positions (forward and backward), head 8 x 16,
  # weight gradients summed over the same positions.
  lengths = 2 * [9, 1024, 1024, 36, 256, 256, 128, 4, 16] + [1024, 256]
  per_step = numerics.chain_tol(lengths) + 4 * numerics.U32
  return runs, max(amplification, 1.0) * STEPS * per_step


def _run(runner, td, sched):
  states = runner.init(0, sched, td)
  for _ in range(STEPS // 2):
    states = runner.train(states, td, 2)
  return states


def _unstack(states):
  return [jax.tree.map(lambda x: x[i], s) for s in states for i in range(s.step.shape[0])]


@pytest.mark.parametrize(
    'chunk,mode', [(0, 'vmap'), (2, 'vmap'), (1, 'vmap'), (0, 'side_by_side'), (2, 'side_by_side')]
)
def test_every_strategy_equals_single_trial_runs(setup, reference, chunk, mode):
  trainer, td, sched, _ = setup
  reference, tol = reference
  runner = trials.TrialRunner(trainer, T, chunk, devices=jax.devices()[:1], mode=mode)
  got = _unstack(_run(runner, td, sched))
  assert len(got) == T
  for a, b in zip(got, reference):
    # vmapped kernels may round differently from unbatched ones (`reference`); keys are exact
    chex.assert_trees_all_equal(jax.random.key_data(a.key), jax.random.key_data(b.key))
    numerics.assert_close((a.params, a.batch_stats), (b.params, b.batch_stats), tol)
    assert int(a.step) == STEPS


def test_sharded_over_four_devices_keeps_trial_sharding_and_matches_one_device(setup, reference):
  trainer, td, sched, splits = setup
  tol = reference[1]
  assert len(jax.devices()) == 4, 'conftest sets 4 fake CPU devices'
  runner4 = trials.TrialRunner(trainer, T, 0)
  states4 = _run(runner4, td, sched)
  assert len(states4) == 1
  for path, leaf in jax.tree_util.tree_leaves_with_path(states4[0]):
    assert isinstance(leaf.sharding, NamedSharding), jax.tree_util.keystr(path)
    assert tuple(leaf.sharding.spec)[:1] == ('trial',), (jax.tree_util.keystr(path), leaf.sharding)
    assert len(leaf.sharding.device_set) == 4
  states1 = _run(trials.TrialRunner(trainer, T, 0, devices=jax.devices()[:1]), td, sched)
  numerics.assert_close(states4[0].params, states1[0].params, tol)
  m4, p4 = runner4.evaluate(states4, splits, td)
  m1, p1 = trials.TrialRunner(trainer, T, 0, devices=jax.devices()[:1]).evaluate(
      states1, splits, td
  )
  # the loss of weights within tol, plus one more forward chain (about half of `lengths`)
  np.testing.assert_allclose(m4['test_loss'], m1['test_loss'], rtol=2 * tol)
  assert p4.shape == (T, 40 * 2) and p4.dtype == np.uint8


def test_round_robin_chunks_match(setup, reference):
  trainer, td, sched, _ = setup
  runner = trials.TrialRunner(trainer, T, 1)  # 4 chunks of 1, one per device
  states = _run(runner, td, sched)
  assert [next(iter(s.step.devices())) for s in states] == jax.devices()
  reference, tol = reference
  for a, b in zip(_unstack(states), reference):
    numerics.assert_close(a.params, b.params, tol)


def test_side_by_side_is_one_program_of_ungrouped_convs(setup):
  """A chunk of k trials side by side: one program holding k one-trial steps, every convolution
  as in the one-trial program (no feature groups), while vmap groups them."""
  trainer, td, sched, _ = setup
  hlo = {}
  for mode in trials.CHUNK_MODES:
    runner = trials.TrialRunner(trainer, T, 2, devices=jax.devices()[:1], mode=mode)
    states = runner.init(0, sched, td)
    hlo[mode] = runner._train.lower(states[0], td, 2, False).as_text()
  one = jax.jit(trainer.train_steps, static_argnums=2).lower(
      jax.tree.map(lambda x: x[0], states[0]), td, 2
  )
  convs = lambda text: [line for line in text.splitlines() if 'convolution(' in line]
  groups = lambda line: int(re.search(r'feature_group_count = (\d+)', line).group(1))
  grouped = lambda text: [line for line in convs(text) if groups(line) > 1]
  assert convs(one.as_text()) and not grouped(one.as_text())
  assert len(convs(hlo['side_by_side'])) == 2 * len(convs(one.as_text()))
  assert not grouped(hlo['side_by_side'])
  assert grouped(hlo['vmap'])


def test_side_by_side_evaluation_and_gradient_noise_match_vmap(setup, reference):
  """Same metrics, predictions and G/N of the same states, mapped either way (one device and the
  shard_map over four)."""
  trainer, td, sched, splits = setup
  tol = reference[1]  # the tolerance of a whole training run bounds one more forward/backward
  vmapped = trials.TrialRunner(trainer, T, 0, devices=jax.devices()[:1])
  states = _run(vmapped, td, sched)
  want_m, want_p = vmapped.evaluate(states, splits, td)
  want_gn = vmapped.gradient_noise(states, td)
  for devices in (jax.devices()[:1], jax.devices()):
    runner = trials.TrialRunner(trainer, T, 0, devices=devices, mode='side_by_side')
    placed = [jax.device_put(s, runner.shardings[0]) for s in states]
    got_m, got_p = runner.evaluate(placed, splits, td)
    got_gn = runner.gradient_noise(placed, td)
    assert got_m.keys() == want_m.keys() and got_gn.keys() == want_gn.keys()
    for k in want_m:
      np.testing.assert_allclose(got_m[k], want_m[k], rtol=tol, atol=tol, err_msg=k)
    # a prediction may flip only where two logits tie to within rounding: none of 160 here
    np.testing.assert_array_equal(got_p, want_p)
    for k in want_gn:
      np.testing.assert_allclose(got_gn[k], want_gn[k], rtol=tol, err_msg=k)


def test_side_by_side_sharded_over_four_devices_keeps_trial_sharding(setup, reference):
  trainer, td, sched, _ = setup
  reference, tol = reference
  runner = trials.TrialRunner(trainer, T, 0, mode='side_by_side')
  states = _run(runner, td, sched)
  for path, leaf in jax.tree_util.tree_leaves_with_path(states[0]):
    assert isinstance(leaf.sharding, NamedSharding), jax.tree_util.keystr(path)
    assert tuple(leaf.sharding.spec)[:1] == ('trial',), (jax.tree_util.keystr(path), leaf.sharding)
    assert len(leaf.sharding.device_set) == 4
  for a, b in zip(_unstack(states), reference):
    numerics.assert_close((a.params, a.batch_stats), (b.params, b.batch_stats), tol)


def test_from_config_reads_chunk_and_mode(setup):
  trainer = setup[0]
  cfg = tiny_config(**{'trials.vmap_chunk': 3, 'trials.mode': 'side_by_side'})
  runner = trials.TrialRunner.from_config(trainer, 7, cfg.trials)
  assert runner.chunks == [(0, 3), (3, 3), (6, 1)] and runner.mode == 'side_by_side'
  with pytest.raises(ConfigError, match=r'trials\.mode = .grouped.: unknown; choose one of vmap'):
    trials.TrialRunner(trainer, 2, mode='grouped')


def test_side_by_side_maps_like_vmap():
  f = lambda x, y, z: {'sum': x['a'] + y, 'z': z * x['b']}
  x = {'a': np.arange(6.0).reshape(3, 2), 'b': np.array([1.0, 2.0, 3.0])}
  y, z = np.array([10.0, 20.0]), 5.0
  got = trials.side_by_side(f, (0, None, None))(x, y, z)
  want = jax.vmap(f, in_axes=(0, None, None))(x, y, z)
  chex.assert_trees_all_equal(got, want)
  with pytest.raises(ValueError, match='one common leading size'):
    trials.side_by_side(f, (0, 0, None))(x, np.ones(2), z)


def test_the_runner_keeps_each_trials_loss_sums(setup, reference):
  """`train` adds each trial's summed step losses to the runner's per-chunk `loss_sums`;
  `mean_losses(n)` is their mean over the n steps in trial order; `reset_losses` starts them
  again from zeros or from given sums (a checkpoint's)."""
  trainer, td, sched, _ = setup
  tol = reference[1]
  runner = trials.TrialRunner(trainer, T, 1)  # 4 chunks of 1 trial
  states = runner.init(0, sched, td)
  for _ in range(2):
    states = runner.train(states, td, 2)
  assert [s.shape for s in runner.loss_sums] == [(1,)] * T
  got = runner.mean_losses(4)
  step = jax.jit(trainer.train_steps, static_argnums=2)
  want = []
  for i in range(T):
    state = trainer.init(trials.trial_keys(0, i, 1)[0], jax.tree.map(lambda x: x[i], sched), td)
    want.append(float(step(state, td, 4)[1]) / 4)
  np.testing.assert_allclose(got, want, rtol=tol)
  assert len(set(got.tolist())) == T  # every trial its own loss
  saved = runner.loss_sums
  runner.reset_losses()
  np.testing.assert_array_equal(runner.mean_losses(1), np.zeros(T, np.float32))
  runner.reset_losses(saved)
  np.testing.assert_array_equal(runner.mean_losses(4), got)
