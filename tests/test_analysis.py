"""analysis/: per-arm metric arrays, TV curves, figures and summary of a tiny two-arm run."""

import json
import pathlib
import subprocess
import sys
import warnings

import numpy as np
import pytest
from matplotlib.figure import Figure

from svag_jax import record, tv
from svag_jax import workdir as workdir_lib
from svag_jax.analysis import common
from svag_jax.analysis import fast_equilibrium as fe
from tests.helpers import ARMS, TRIALS_PER_ARM, make_tiny_workdir


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory) -> pathlib.Path:
  return make_tiny_workdir(tmp_path_factory.mktemp('fast_equilibrium') / 'run')


@pytest.fixture(scope='module')
def curves(run_dir):
  return fe.tv_curves(run_dir)


def test_load_metrics_gives_per_arm_arrays(run_dir):
  metrics = common.load_metrics(run_dir)
  assert list(metrics) == ['Const', 'LR-decay']  # trial order: the reference arm first
  const, decay = metrics['Const'], metrics['LR-decay']
  np.testing.assert_array_equal(const.trials, range(TRIALS_PER_ARM))
  np.testing.assert_array_equal(decay.trials, range(TRIALS_PER_ARM, 2 * TRIALS_PER_ARM))
  np.testing.assert_allclose(const.epochs, [1.0, 2.0])
  for name in ('train_accuracy', 'test_accuracy', 'w_norm_sq', 'effective_lr'):
    assert const.values[name].shape == (TRIALS_PER_ARM, 2)
    assert np.all(np.isfinite(const.values[name]))
  # The LR of each arm follows its own schedule (LR-decay: 0.4, halved at epoch 1).
  np.testing.assert_allclose(const.values['lr'], 0.1, rtol=1e-6)
  np.testing.assert_allclose(decay.at_epoch('lr', 2.0), 0.2, rtol=1e-6)


def test_tv_curves_of_the_run(run_dir, curves):
  assert list(curves) == [1.0, 2.0]
  predictions, _ = record.read_predictions(run_dir)
  metrics = common.load_metrics(run_dir)
  for epoch, by_arm in curves.items():
    c = by_arm['LR-decay']
    np.testing.assert_array_equal(c.trials, (2, 4))  # T/2 (the floor's largest) and T
    assert np.isfinite(c.floor[0]) and np.isnan(c.floor[1])
    # At t = T every trial is used, so the estimate is the plain TV of the two arrays.
    pred = np.asarray(predictions[epoch])
    num_classes = int(pred.max()) + 1
    expected = tv.tv_distance(pred[:TRIALS_PER_ARM], pred[TRIALS_PER_ARM:], num_classes)
    assert c.tv[-1] == pytest.approx(expected) and c.tv_std[-1] == 0
    # The error baseline is 1 - mean test accuracy of each arm (from metrics.jsonl).
    for arm, error in (('Const', c.error_a), ('LR-decay', c.error_b)):
      assert error == pytest.approx(1 - metrics[arm].at_epoch('test_accuracy', epoch).mean())


def test_make_figures_writes_png_and_pdf(run_dir, curves):
  paths = fe.make_figures(run_dir, curves=curves)
  names = sorted(p.name for p in paths)
  assert names == sorted(f'{n}.{f}' for n in ('errors', 'norms', 'tv') for f in ('png', 'pdf'))
  for p in paths:
    assert p.parent == run_dir / 'figures'
    data = p.read_bytes()
    assert len(data) > 1000, p
    assert data.startswith(b'\x89PNG' if p.suffix == '.png' else b'%PDF'), p


def test_plot_functions_draw_into_given_axes(run_dir, curves):
  axes = Figure().subplots(1, 2)
  assert list(fe.plot_errors(run_dir, axes=axes)) == list(axes)
  assert axes[1].get_ylabel() == 'test error (%)'
  assert [t.get_text().split(' (')[0] for t in axes[0].get_legend().get_texts()] == list(ARMS)
  # a grey line where a schedule changes (LR-decay at epoch 1), none beyond the last evaluation
  marks = [line.get_xdata()[0] for line in axes[0].lines if line.get_color() == '0.8']
  assert marks == [1.0]
  axes = fe.plot_tv(run_dir, curves=curves)
  assert len(axes) == 2 and 'epoch 2' in axes[1].get_title()
  with pytest.raises(ValueError, match='draws 2 panel'):
    fe.plot_norms(run_dir, axes=[Figure().subplots()])


def test_summary_lines(run_dir, curves):
  lines = fe.summary(run_dir, curves)
  assert len(lines) == 3, lines  # one per arm, one per non-reference arm
  for line, arm in zip(lines[:2], ARMS, strict=True):
    assert line.startswith(f'{arm}: final test error (epoch 2) ')
    assert '% ± ' in line and line.endswith(f'over {TRIALS_PER_ARM} trials')
  assert lines[2].startswith('TV(Const, LR-decay): epoch 1: ')
  assert 'epoch 2: ' in lines[2] and 'error sum' in lines[2] and 'floor' in lines[2]
  assert f'at t={TRIALS_PER_ARM}' in lines[2]
  # TV and floor side by side at the same t (T/2, the floor's largest), at every prediction epoch
  assert lines[2].count('vs floor ') == 2 and f'at t={TRIALS_PER_ARM // 2}' in lines[2]


def test_cli_prints_figures_and_summary(run_dir, tmp_path, capsys):
  assert fe.main([str(run_dir), '--out', str(tmp_path), '--resamples', '2']) == 0
  out = capsys.readouterr().out.strip().splitlines()
  assert out[0].startswith('Figures (errors, norms, tv; png/pdf) in ' + str(tmp_path))
  assert '(run status: done)' in out[0]
  assert len(out) == 4 and out[1].startswith('Const: final test error')
  assert (tmp_path / 'tv.pdf').stat().st_size > 0


def test_cli_rejects_a_directory_without_metrics(tmp_path, capsys):
  with pytest.raises(SystemExit):
    fe.main([str(tmp_path)])
  assert 'has no metrics.jsonl' in capsys.readouterr().err


def _fake_run(path: pathlib.Path) -> pathlib.Path:
  """A hand-written workdir: arms A, B x 3 trials, evals at epochs 1, 2; B's trial 5 diverges
  before epoch 2 (null metrics, garbage predictions)."""
  wd = workdir_lib.Workdir(path)
  arms = ['A'] * 3 + ['B'] * 3
  accuracy = {1: [0.5, 0.6, 0.7, 0.4, 0.5, 0.6], 2: [0.8, 0.9, 1.0, 0.7, 0.8, None]}
  rows = []
  for epoch in (1, 2):
    for i, arm in enumerate(arms):
      acc = accuracy[epoch][i]
      rows.append(
          {
              'step': 10 * epoch,
              'epoch': float(epoch),
              'trial': i,
              'arm': arm,
              'diverged': acc is None,
              'train_accuracy': acc,
              'test_accuracy': acc,
              'w_norm_sq': None if acc is None else 2.0,
              'lr': 0.1,
              'effective_lr': None if acc is None else 0.05,
          }
      )
  wd.append_metrics(rows)
  pred = np.zeros((6, 4), np.uint8)
  pred[3:] = 1
  pred[5] = 7  # the diverged trial: must not count
  wd.save_predictions(2, pred, arms)
  return path


def test_diverged_trials_are_left_out(tmp_path):
  run_dir = _fake_run(tmp_path / 'fake')
  metrics = common.load_metrics(run_dir)
  assert np.isnan(metrics['B'].values['test_accuracy'][2, 1])
  np.testing.assert_array_equal(metrics['B'].diverged_at(2.0), [False, False, True])
  c = fe.tv_curves(run_dir)[2.0]['B']
  assert c.num_trials_a == 3 and c.num_trials_b == 2
  assert c.tv[-1] == 1.0  # A predicts class 0 everywhere, B's survivors class 1
  assert c.error_a == pytest.approx(0.1) and c.error_b == pytest.approx(0.25)
  lines = fe.summary(run_dir)
  assert lines[1] == 'B: final test error (epoch 2) 25.00% ± 5.00% over 2 trials (1 diverged)'


def test_mean_and_band_ignores_nan():
  values = np.array([[1.0, np.nan, 0.0], [3.0, np.nan, 10.0]])
  with warnings.catch_warnings():
    warnings.simplefilter('error')
    mean, low, high = common.mean_and_band(values, (0.0, 1.0))
  np.testing.assert_allclose(mean, [2.0, np.nan, 5.0])
  np.testing.assert_allclose(low, [1.0, np.nan, 0.0])
  np.testing.assert_allclose(high, [3.0, np.nan, 10.0])


def test_analysis_does_not_import_training_code():
  code = (
      'import sys, svag_jax.analysis.fast_equilibrium; '
      'print(json.dumps(sorted(m for m in sys.modules if m.startswith("svag_jax") '
      'and not m.startswith("svag_jax.analysis"))))'
  )
  out = subprocess.run(
      [sys.executable, '-c', 'import json; ' + code],
      check=True,
      capture_output=True,
      text=True,
      cwd=pathlib.Path(__file__).parents[1],
  ).stdout
  assert set(json.loads(out)) <= {'svag_jax', 'svag_jax.record', 'svag_jax.tv', 'svag_jax.workdir'}
