"""Summaries of the SDE and mixing-time analyses on hand-made data of known values."""

import pathlib

import numpy as np
import pytest
from matplotlib.figure import Figure

from svag_jax.analysis import common, plots
from svag_jax.analysis import svag_convergence as sc


def sweep_point(name, config, steps, effective_steps, epochs, values) -> common.Run:
  """A one-arm run (a point of an SDE sweep) with the given per-trial values [T, E]."""
  shape = next(iter(values.values())).shape
  metrics = common.ArmMetrics(
      np.arange(shape[0]),
      np.asarray(epochs, float),
      np.asarray(steps),
      np.asarray(effective_steps, float),
      values,
      np.zeros(shape, bool),
  )
  return common.Run(name, pathlib.Path(name), config, 'done', {'default': metrics})


def run(l, batch, acc_before, acc_end, nsr, trials=4):
  """A run with 4 evals at epochs 1, 2 (the decay), 3, 4 and per-trial values acc +- 0.01."""
  spread = np.linspace(-0.01, 0.01, trials)[:, None]
  acc = np.tile([0.5, acc_before, 0.6, acc_end], (trials, 1)) + spread
  optim = {'oracle': 'sgd'} if l is None else {'oracle': 'svag', 'svag_l': l}
  config = {
      'optim': {**optim, 'lr_schedule': None},
      'train': {'batch_size': batch},
      'arms': {'default': {'lr_schedule': [[2.0, 0.1]]}},
  }
  epochs = np.array([1.0, 2.0, 3.0, 4.0])
  steps = epochs * 10 * (l or 1)
  values = {'test_accuracy': acc, 'NSR': np.full((trials, 4), nsr) + spread}
  return sweep_point(f'b{batch}_{l}', config, steps, steps / (l or 1), epochs, values)


def test_summary_reads_phase_ends_l_steps_sgd_gap_and_theorem_condition():
  runs = [
      run(4, 50, 0.80, 0.95, 8.0),
      run(None, 50, 0.70, 0.90, 8.0),
      run(2, 50, 0.75, 0.94, 8.0),
      run(None, 1000, 0.60, 0.80, 0.2),
      run(2, 1000, 0.65, 0.85, 0.2),
  ]
  s = sc.summarize(runs, c2=2.0)
  assert s['threshold'] == 1.0 and [b for b in s if b != 'threshold'] == [50, 1000]
  b50 = s[50]
  assert list(b50['phases']) == ['before decay', 'end']
  before, end = b50['phases']['before decay'], b50['phases']['end']
  assert list(before['acc']) == ['SGD', 'SVAG l=2', 'SVAG l=4']  # SGD first, then by l
  assert before['acc']['SGD'].mean == pytest.approx(0.70)
  assert end['acc']['SVAG l=4'].mean == pytest.approx(0.95)
  ((l, l2, d),) = end['l_steps']
  assert (l, l2) == (2, 4) and d.mean == pytest.approx(0.01)
  se = np.std(np.linspace(-0.01, 0.01, 4), ddof=1) / 2
  assert d.se == pytest.approx(np.hypot(se, se))
  lmax, gap = before['sgd_gap']
  assert lmax == 4 and gap.mean == pytest.approx(0.10)
  assert b50['nsr'].mean == pytest.approx(8.0) and b50['sde_fails'] is False
  assert s[1000]['nsr'].mean == pytest.approx(0.2) and s[1000]['sde_fails'] is True
  assert sc.summarize(runs, c2=11.0)[1000]['sde_fails'] is False  # threshold 0.1


def test_relaxation_time_recovers_an_exponential_and_ignores_the_noise_floor():
  from svag_jax.analysis import relaxation

  dt = np.arange(0, 1000, 5.0)
  rng = np.random.default_rng(0)
  for tau in (12.5, 100.0):
    q = 4.0 + 96.0 * np.exp(-dt / tau) + 0.01 * rng.standard_normal(dt.size)
    assert relaxation.trial_relaxation_time(dt, q) == pytest.approx(tau, rel=0.02)
  assert np.isnan(relaxation.trial_relaxation_time(dt[:3], np.ones(3)))  # nothing relaxes


def test_fast_equilibrium_weight_distances_on_known_weights(tmp_path):
  from svag_jax import workdir as workdir_lib
  from svag_jax.analysis import fast_equilibrium

  # trials 0, 1 of arm a: equal weights; trial 2 (arm b): orthogonal to them, the same norm
  w = np.array([[3.0, 0.0, 0.0, 4.0], [3.0, 0.0, 0.0, 4.0], [0.0, 5.0, 0.0, 0.0]])
  tree = {
      'params': {'dense': {'kernel': w[:, :2].reshape(3, 1, 2), 'bias': w[:, 2:]}},
      'batch_stats': {'bn': {'mean': np.ones((3, 2))}},
      'frozen': {'head': 7.0 * np.ones((3, 2))},
  }
  workdir_lib.Workdir(tmp_path).save_params(2.0, tree, ['a', 'a', 'b'])
  d = fast_equilibrium.weight_distances(tmp_path)
  assert list(d) == [2.0] and set(d[2.0]) == {('a', 'a'), ('a', 'b'), ('b', 'b')}
  np.testing.assert_allclose(d[2.0][('a', 'a')], [0.0], atol=1e-12)
  np.testing.assert_allclose(d[2.0][('a', 'b')], [np.sqrt(2)] * 2)  # head, BN stats left out
  assert d[2.0][('b', 'b')].size == 0
  (line,) = fast_equilibrium.weight_distance_lines(d)
  assert line.startswith('weights, epoch 2:') and 'a-b 1.414' in line
  assert fast_equilibrium.weight_distances(tmp_path / 'none') == {}


def test_ngd_paired_difference_is_taken_trial_by_trial():
  from svag_jax.analysis import ngd

  def oracle_run(oracle, final):
    acc = np.stack([np.full_like(final, 0.1), final], axis=1)
    config = {'optim': {'oracle': oracle}}
    steps = np.array([0, 100])
    values = {'test_accuracy': acc, 'train_accuracy': acc}
    return sweep_point(oracle, config, steps, steps, steps / 10, values)

  # Trial-to-trial spread (by init) much larger than the NGD - SGD offset: the bands of the
  # means overlap, the paired difference resolves the offset exactly.
  sgd = np.array([0.80, 0.90, 0.85, 0.95])
  runs = [oracle_run('sgd', sgd), oracle_run('ngd', sgd - 0.01), oracle_run('gd', sgd[::-1])]
  diffs = ngd.paired_differences(runs)
  assert list(diffs) == ['NGD', 'GD']
  m, lo, hi = diffs['NGD']
  assert m == pytest.approx(-0.01) and lo == pytest.approx(-0.01) and hi == pytest.approx(-0.01)
  assert ngd.inside_sgd_band(ngd.final_intervals(runs))['NGD']
  m, lo, hi = diffs['GD']
  assert m == pytest.approx(0.0, abs=1e-12) and lo < -0.05 and hi > 0.05
  assert ngd.paired_differences(runs[1:]) == {}


def test_log_band_is_the_geometric_mean_and_stays_positive():
  # Two epochs; in the second the trials spread so widely that the interval reaches below 0.
  values = np.array([[1.0, 0.01], [4.0, 100.0], [2.0, 1.0]])
  ax = Figure().subplots()
  plots.plot_mean_interval(ax, np.array([0.0, 1.0]), values, log=True)
  plots.plot_mean_interval(ax, np.array([0.0, 1.0]), values)
  geo, arith = ax.lines
  np.testing.assert_allclose(geo.get_ydata(), [2.0, 1.0])  # exp(mean log)
  np.testing.assert_allclose(arith.get_ydata(), values.mean(axis=0))
  log_band, linear_band = ax.collections
  assert log_band.get_paths()[0].vertices[:, 1].min() > 0
  assert linear_band.get_paths()[0].vertices[:, 1].min() < 0
