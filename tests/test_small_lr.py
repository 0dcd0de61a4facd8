"""analysis.small_lr (a tiny momentum run) and analysis.scale_rescue (synthetic sweep workdirs)."""

import json
import math
import pathlib

import numpy as np
import pytest

from svag_jax.analysis import scale_rescue, small_lr, stats
from tests.helpers import most_optimizations_disabled, tiny_config

MOMENTUM = 0.5
TRIALS = 3
# 'ref': one phase at eta lambda = 0.01, then eta / 10 at epoch 1; 'other': a first phase, then
# eta lambda = 0.01 / 2 from 0.5 to 1 (a different LR and WD), then the same final decay.
ARMS = {
    'ref': {'lr': 0.1, 'wd': 0.1, 'lr_schedule': ((1, 0.1),)},
    'other': {'lr': 0.1, 'wd': 0.2, 'lr_schedule': ((0.5, 0.25), (1, 0.4))},
}


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory) -> pathlib.Path:
  from svag_jax import experiment  # noqa: PLC0415

  config = tiny_config(
      **{
          'model.name': 'mlp',
          'model.widths': (16,),
          'optim.momentum': MOMENTUM,
          'trials.num': TRIALS,
          'train.epochs': 2,
          'train.eval_every': 0.25,
          'train.steps_per_dispatch': 2,
      }
  )
  config.arms = ARMS
  path = tmp_path_factory.mktemp('small_lr') / 'run'
  with most_optimizations_disabled():
    assert experiment.run(config, str(path))['status'] == 'done'
  return path


def test_results_read_the_phase_before_the_final_decay(run_dir):
  from svag_jax import record  # noqa: PLC0415

  ref, other = small_lr.results(run_dir, reference='ref')
  assert (ref.arm, other.arm) == ('ref', 'other')
  assert ref.final_decay == other.final_decay == 1.0
  # lambda_e = eta lambda / (1 - beta) of the phase before the decay and after it
  assert ref.intrinsic_lr == pytest.approx(0.1 * 0.1 / (1 - MOMENTUM), rel=1e-5)
  assert ref.final_intrinsic_lr == pytest.approx(0.01 * 0.1 / (1 - MOMENTUM), rel=1e-5)
  assert other.intrinsic_lr == pytest.approx(0.025 * 0.2 / (1 - MOMENTUM), rel=1e-5)
  # window: the last quarter of each arm's own phase, the decay's row included
  assert ref.window == (0.75, 1.0) and other.window == (1.0, 1.0)
  rows = record.read_metrics(run_dir)
  by = {(r['arm'], r['trial'], r['epoch']): r for r in rows}
  trials = sorted({r['trial'] for r in rows if r['arm'] == 'ref'})
  np.testing.assert_allclose(ref.acc_before, [by['ref', t, 1.0]['test_accuracy'] for t in trials])
  np.testing.assert_allclose(ref.acc_final, [by['ref', t, 2.0]['test_accuracy'] for t in trials])
  want = [np.mean([by['ref', t, e]['w_norm_sq'] for e in (0.75, 1.0)]) for t in trials]
  np.testing.assert_allclose(ref.w_norm_sq, want, rtol=1e-12)


def test_difference_interval():
  a, b = np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.0, 0.0, 0.0])
  d, lo, hi = stats.difference_interval(a, b)
  se = math.sqrt(1.0 / 3)  # var(a) = 1, var(b) = 0: Welch's degrees of freedom are a's, 2
  half = 4.302652729911275 * se  # t_{0.975, 2}
  assert d == pytest.approx(2.0) and (lo, hi) == pytest.approx((2 - half, 2 + half))
  assert math.isnan(stats.difference_interval(a, b[:1])[1])
  # equal sizes and variances: Welch's degrees of freedom are 2 (n - 1), the pooled t test's
  _, lo, hi = stats.difference_interval(np.array([1.0, 3.0, 5.0]), np.array([0.0, 2.0, 4.0]))
  half = stats.t_quantile(4) * math.sqrt(4 / 3 + 4 / 3)
  assert (lo, hi) == pytest.approx((1 - half, 1 + half))


def test_cli_figure_and_summary(run_dir, tmp_path, capsys):
  assert small_lr.main([str(run_dir), '--out', str(tmp_path), '--reference', 'ref']) == 0
  out = capsys.readouterr().out
  assert (tmp_path / 'small_lr.png').read_bytes().startswith(b'\x89PNG')
  assert 'final test accuracy - ref:' in out
  assert 'lambda_e before the final decay 0.02' in out  # ref: eta lambda / (1 - beta)


def test_a_run_without_schedules_is_refused(tmp_path, capsys):
  (tmp_path / 'config.json').write_text(json.dumps({'arms': {'a': {'lr_schedule': []}}}))
  (tmp_path / 'metrics.jsonl').write_text(
      json.dumps({'step': 1, 'epoch': 1.0, 'trial': 0, 'arm': 'a', 'diverged': False}) + '\n'
  )
  assert small_lr.main([str(tmp_path)]) == 2
  assert 'no LR/WD change' in capsys.readouterr().err


def _synthetic_point(path: pathlib.Path, accs: dict[str, list[list[float]]]) -> None:
  """metrics.jsonl with the given test accuracies [trial][epoch] per arm (epochs 1, 2, ...)."""
  path.mkdir(parents=True)
  rows, trial = [], 0
  for arm, per_trial in accs.items():
    for values in per_trial:
      for e, acc in enumerate(values, start=1):
        rows.append(
            dict(step=e, epoch=float(e), trial=trial, arm=arm, diverged=False,
                 test_accuracy=acc, w_norm_sq=10.0 * e, effective_lr=0.1 / e)  # fmt: skip
        )
      trial += 1
  (path / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))


def test_scale_rescue_orders_points_and_finds_first_epochs(tmp_path, capsys):
  # init_x30 sorts after init_x4 by its factor (not by name); init_x4 is the reference point
  _synthetic_point(tmp_path / 'init_x30', {'c': [[0.1, 0.2, 0.3], [0.1, 0.3, 0.96]]})
  _synthetic_point(tmp_path / 'init_x4', {'c': [[0.9, 0.97, 0.97], [0.5, 0.96, 0.97]]})
  runs = scale_rescue.points(tmp_path)
  assert list(runs) == ['init_x4', 'init_x30']
  assert scale_rescue.target(runs) == pytest.approx(0.97 - scale_rescue.TARGET_GAP)
  np.testing.assert_array_equal(
      scale_rescue.first_epoch_reaching(runs['init_x4']['c'], 0.96), [2.0, 2.0]
  )
  np.testing.assert_array_equal(
      scale_rescue.first_epoch_reaching(runs['init_x30']['c'], 0.96), [np.nan, 3.0]
  )
  assert scale_rescue.main([str(tmp_path)]) == 0
  out = capsys.readouterr().out
  assert 'init_x30/c (2 trials)' in out and '1 trial(s) never' in out
  assert (tmp_path / 'figures' / 'scale_rescue.png').exists()
  assert scale_rescue.main([str(tmp_path / 'init_x4' / 'nothing')]) == 2
