"""Weight distances and averaging (analysis/weight_distance.py, analysis/weights.py), the
two-phase analysis, and their configs."""

import json

import jax
import numpy as np
import pytest

from svag_jax import arms as arms_lib
from svag_jax import config as config_lib
from svag_jax import experiment, record
from svag_jax import workdir as workdir_lib
from svag_jax.analysis import two_phase as two_phase_analysis
from svag_jax.analysis import weight_distance as swa
from svag_jax.analysis import weights
from svag_jax.configs import two_phase, weight_distance
from tests.helpers import tiny_config

# ---- Pytree helpers on hand-made trees. ----

A = {'x': np.array([[1.0, 2.0], [0.0, 0.0]], np.float32), 'y': {'z': np.array([2.0, 4.0])}}
B = {'x': np.array([[1.0, 0.0], [3.0, 4.0]], np.float32), 'y': {'z': np.array([2.0, 0.0])}}


def test_average_is_the_leafwise_mean_in_the_input_dtype():
  avg = weights.average([A, B])
  np.testing.assert_array_equal(avg['x'], [[1.0, 1.0], [1.5, 2.0]])
  np.testing.assert_array_equal(avg['y']['z'], [2.0, 2.0])
  assert avg['x'].dtype == np.float32 and avg['y']['z'].dtype == np.float64
  third = weights.average([A, A, B])
  np.testing.assert_allclose(third['y']['z'], [2.0, 8.0 / 3.0])
  with pytest.raises(ValueError):
    weights.average([])


def test_distance_and_norm_treat_the_tree_as_one_vector():
  # A - B = x: [[0, 2], [-3, -4]], z: [0, 4] -> squared 4 + 9 + 16 + 16 = 45
  assert weights.distance(A, B) == pytest.approx(np.sqrt(45))
  assert weights.sq_norm(A) == pytest.approx(1 + 4 + 4 + 16)
  assert weights.distance(A, A) == 0
  # per leading index (a trial axis): rows of x and entries of z
  per_trial = weights.distance(A, B, batch_dims=1)
  np.testing.assert_allclose(per_trial, np.sqrt([4 + 0, 25 + 16]))
  np.testing.assert_allclose(weights.sq_norm(A, 1), [1 + 4 + 4, 0 + 16])
  assert weights.trial(A, 1)['y']['z'] == 4.0


def test_relative_distance_is_symmetric_and_root_two_for_orthogonal_weights():
  a, b = np.array([3.0, 0.0, 4.0]), np.array([0.0, 10.0, 0.0])  # orthogonal, norms 5 and 10
  assert weights.relative_distance(a, b) == pytest.approx(np.sqrt(2))
  assert weights.relative_distance(b, a) == weights.relative_distance(a, b)
  assert weights.relative_distance(a, a) == 0
  assert weights.relative_distance(a, 7 * a) == pytest.approx(1.2)  # ||6a|| / sqrt((1 + 49) / 2)
  rows = np.stack([a, b, -a])  # broadcasting: one row against all
  np.testing.assert_allclose(weights.relative_distance(a, rows), [0, np.sqrt(2), 2.0])


def test_pairs_stay_within_an_arm():
  assert swa.cross_trial_pairs(['a', 'a', 'b', 'b', 'a']) == [(0, 1), (0, 4), (1, 4), (2, 3)]


# ---- Evaluating saved weights reproduces the run's own evaluation. ----

BN = 3  # BatchNorm refresh batches of the run and of the evaluator


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory, compile_bound):
  """2 trials of the tiny BatchNorm CNN, 2 epochs, snapshots at 1, 1.5, 2, eval BN refresh."""
  del compile_bound  # every compile of this module's run and evaluator is compile-bound
  path = tmp_path_factory.mktemp('swa')
  cfg = tiny_config(
      **{'train.epochs': 2, 'train.params_at': (1, 1.5, 2), 'train.eval_bn_batches': BN}
  )
  experiment.run(cfg, str(path))
  return path


@pytest.fixture(scope='module')
def evaluator(run_dir, compile_bound):
  del compile_bound
  return swa.Evaluator.from_workdir(run_dir)  # the run's eval_bn_batches by default


def test_evaluating_a_snapshot_equals_the_runs_own_evaluation(run_dir, evaluator):
  assert evaluator.bn_batches == BN
  rows = record.read_metrics(run_dir)
  for epoch in (1, 1.5, 2):
    got = evaluator(record.read_params(run_dir, epoch)[0])
    want = sorted((r for r in rows if r['epoch'] == epoch), key=lambda r: r['trial'])
    np.testing.assert_allclose(got['test_loss'], [r['test_loss'] for r in want], rtol=1e-5)
    np.testing.assert_allclose(got['test_accuracy'], [r['test_accuracy'] for r in want], atol=1e-6)
  # without the refresh the running statistics (lagging the weights) give other numbers
  plain = swa.Evaluator.from_workdir(run_dir, bn_batches=0)
  last = record.read_params(run_dir, 2)[0]
  assert not np.allclose(plain(last)['test_loss'], evaluator(last)['test_loss'], rtol=1e-4)


def test_swa_curves_and_cross_trial_average(run_dir, evaluator):
  snaps = weights.Snapshots(run_dir)
  assert snaps.epochs == [1.0, 1.5, 2.0] and snaps.window(1, 0.5) == [1.0, 1.5]
  curves = swa.swa_curves(snaps, evaluator, [1.0])[1.0]
  np.testing.assert_allclose(curves['deltas'], [0, 0.5, 1.0])
  np.testing.assert_array_equal(curves['num_averaged'], [1, 2, 3])
  # D = 0: the average of one snapshot is the snapshot
  np.testing.assert_array_equal(curves['swa']['test_loss'][:, 0], curves['last']['test_loss'][:, 0])
  # D = 1: the average of all three is evaluated, not the last iterate
  full = evaluator(weights.average([snaps[e] for e in snaps.epochs]))
  np.testing.assert_allclose(curves['swa']['test_loss'][:, 2], full['test_loss'], rtol=1e-6)
  assert not np.allclose(curves['swa']['test_loss'][:, 2], curves['last']['test_loss'][:, 2])
  cross = swa.cross_trial_average(snaps, evaluator)
  assert cross['pairs'].tolist() == [[0, 1]]
  w = snaps[2.0]
  first, second = (jax.tree.map(lambda x, i=i: x[i : i + 1], w) for i in (0, 1))
  np.testing.assert_allclose(
      cross['pair_accuracy'], evaluator(weights.average([first, second]))['test_accuracy']
  )
  dist = swa.distance_curves(snaps, [1.0])[1.0]
  assert dist[1][:, 0].tolist() == [0.0, 0.0] and np.all(dist[1][:, 1:] > 0)
  # relative: the distance over the RMS of the two norms
  norms = np.sqrt(np.stack([weights.sq_norm(snaps[e]['params'], 1) for e in snaps.epochs], 1))
  rms = np.sqrt((norms[:, :1] ** 2 + norms**2) / 2)
  np.testing.assert_allclose(dist[2], dist[1] / rms, rtol=1e-12)


def test_cli_draws_the_figures_and_prints_the_numbers(run_dir, capsys):
  assert swa.main([str(run_dir), '--starts', '1']) == 0
  out = capsys.readouterr().out
  assert 'average of two independent trials' in out and 'T=1 D=1 (3 snapshots)' in out
  for name in ('distances', 'swa'):
    for fmt in ('png', 'pdf'):
      assert (run_dir / 'figures' / f'{name}.{fmt}').stat().st_size > 0
  assert swa.main([str(run_dir), '--starts', '7']) == 2
  assert 'no snapshots at epochs [7.0]' in capsys.readouterr().err


# ---- Two-phase analysis on a hand-written run record, and the configs. ----


def test_two_phase_summary_numbers(tmp_path):
  cfg = tiny_config(**{'train.epochs': 4})
  cfg.arms = two_phase.arms(0.1, 0.1, 4, 2)
  wd = workdir_lib.Workdir(tmp_path)
  wd.start(cfg)
  rows = []
  for arm_i, arm in enumerate(('two_phase', 'step_decay')):
    for epoch in (1, 2, 3, 4):
      for t in range(2):
        loss = 1.0 / 10**epoch if arm == 'two_phase' else 0.5 / epoch
        rows.append(
            {
                'step': 8 * epoch,
                'epoch': float(epoch),
                'trial': 2 * arm_i + t,
                'arm': arm,
                'diverged': False,
                'train_loss': loss,
                'train_accuracy': 0.9,
                'test_accuracy': 0.8 + 0.1 * t,
                'effective_lr': 0.1 / epoch,
            }
        )
  wd.append_metrics(rows)
  assert two_phase_analysis.change_epochs(tmp_path) == [2.0, 3.0]
  lines = two_phase_analysis.summary(tmp_path)
  text = '\n'.join(lines)
  # test accuracy 0.8 and 0.9: mean 0.85, std 0.0707, half-width t_{0.975, 1} 0.0707 / sqrt(2)
  assert 'test_accuracy 0.8500 ± 0.6353 (std 0.0707)' in text  # t_{0.975, 1} = 12.706
  assert '< 0.05 at epoch 2, < 0.01 at epoch 3' in lines[1]  # two_phase: 0.01, 0.001 at 2, 3
  assert '< 0.05 at epoch nan' in lines[4]  # step decay: 0.125 at the end
  assert '1.00e-01 at 1, 5.00e-02 at 2' in lines[2]
  axes = two_phase_analysis.plot(tmp_path)
  assert len(axes) == 3 and axes[0].get_yscale() == 'log'


def test_configs_validate_and_keep_their_design():
  for module in (weight_distance, two_phase):
    for arg in ('cpu', None):
      config_lib.validate(module.get_config(arg))
  wd_cpu = weight_distance.get_config('cpu')
  assert wd_cpu.train.params_at[-1] == wd_cpu.train.epochs and not wd_cpu.optim.lr_schedule
  assert wd_cpu.trials.num >= 2  # the cross-trial average needs two trials
  arms = {a.name: a for a in arms_lib.arms(two_phase.get_config('cpu'))}
  assert arms['two_phase'].lr_schedule == ((20.0, 0.1),)
  assert arms['two_phase'].wd_schedule == ((20.0, 0.0),)
  assert arms['step_decay'].lr_schedule == ((30.0, 0.1), (45.0, 0.1))
  assert arms['step_decay'].wd_schedule == ()
  json.dumps(two_phase.get_config('cpu').to_dict(), default=list)
