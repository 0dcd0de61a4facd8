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


def run(l, batch, acc_eq, acc_end, nsr, trials=4):
  """A run with evals at epochs 0.5, 1, 1.5, 2 (the decay) and 3; eta lambda = 0.1 and 10 SGD
  steps per epoch, so the equilibrium window (one mixing time, 10 steps) holds epochs 1 .. 2,
  where the test accuracy is acc_eq (+- 0.01 over the trials); acc_end at the end."""
  spread = np.linspace(-0.01, 0.01, trials)[:, None]
  acc = np.tile([0.5, acc_eq, acc_eq, acc_eq, acc_end], (trials, 1)) + spread
  optim = {'oracle': 'sgd'} if l is None else {'oracle': 'svag', 'svag_l': l}
  config = {
      'optim': {**optim, 'lr_schedule': None},
      'train': {'batch_size': batch},
      'arms': {'default': {'lr': 0.5, 'wd': 0.2, 'lr_schedule': [[2.0, 0.1]]}},
  }
  epochs = np.array([0.5, 1.0, 1.5, 2.0, 3.0])
  steps = epochs * 10 * (l or 1)
  values = {
      'test_accuracy': acc,
      'train_loss': 1 - acc,
      'w_norm_sq': np.full((trials, 5), 2.0 if l is None else 1.0),
      'NSR': np.full((trials, 5), nsr) + spread,
      'G': np.full((trials, 5), 1.0 if l is None else 0.5),
      'N': np.full((trials, 5), nsr),
  }
  return sweep_point(f'b{batch}_{l}', config, steps, steps / (l or 1), epochs, values)


def test_summary_reads_equilibrium_windows_l_steps_the_limit_fit_and_theorem_condition():
  # at B = 50 the equilibrium accuracy is exactly 0.9 - 0.1 / l (SGD: l = 1)
  runs = [run(l, 50, 0.9 - 0.1 / (l or 1), 0.95, 8.0) for l in (8, None, 2, 4)]
  runs += [run(None, 800, 0.6, 0.8, 0.2), run(2, 800, 0.65, 0.85, 0.2)]
  s = sc.summarize(runs, c2=2.0)
  assert s['threshold'] == 1.0 and [b for b in s if b != 'threshold'] == [50, 800]
  b50 = s[50]
  assert list(b50['phases']) == ['equilibrium', 'end']
  acc = b50['phases']['equilibrium']['test_accuracy']
  assert list(acc['points']) == ['SGD', 'SVAG l=2', 'SVAG l=4', 'SVAG l=8']  # SGD first, then l
  np.testing.assert_allclose(acc['points']['SGD'], 0.8 + np.linspace(-0.01, 0.01, 4))
  l, l2, d = acc['l_step']
  assert (l, l2) == (4, 8) and d[0] == pytest.approx(0.1 / 4 - 0.1 / 8)
  assert d[1] < d[0] < d[2]
  fit = acc['limit']
  assert fit.a == pytest.approx(0.9) and fit.b == pytest.approx(-0.1)
  assert fit.a_low < 0.9 < fit.a_high and fit.a_high - fit.a_low < 0.03
  lmax, gap = acc['sgd_gap']
  assert lmax == 8 and gap[0] == pytest.approx(0.8 - 0.8875)
  assert b50['phases']['end']['test_accuracy']['sgd_gap'][1][0] == pytest.approx(0.0, abs=1e-12)
  assert b50['phases']['equilibrium']['w_norm_sq']['ratio'] == pytest.approx(2.0)
  assert b50['nsr'][0] == pytest.approx(8.0) and b50['sde_fails'] is False
  assert s[800]['nsr'][0] == pytest.approx(0.2) and s[800]['sde_fails'] is True
  assert s[800]['phases']['equilibrium']['test_accuracy']['limit'] is None  # one l: no fit
  assert sc.summarize(runs, c2=11.0)[800]['sde_fails'] is False  # threshold 0.1
  # Definition 5.1 against the largest l: R 2/1, G 1/0.5, N equal -> C = 2
  assert s[800]['closeness']['ratios'] == pytest.approx({'w_norm_sq': 2.0, 'G': 2.0, 'N': 1.0})
  assert s[800]['closeness']['c'] == pytest.approx(2.0) and s[50]['closeness']['l'] == 8
  lines = sc.summary(runs)
  assert any('limit a + b/l: a = 0.9000' in line for line in lines)
  assert any('C = 2;' in line and 'sqrt(1 + G/N): 2.45' in line for line in lines)


def test_relaxation_time_recovers_an_exponential_and_ignores_the_noise_floor():
  from svag_jax.analysis import relaxation

  dt = np.arange(0, 1000, 5.0)
  rng = np.random.default_rng(0)
  for tau in (12.5, 100.0):
    q = 4.0 + 96.0 * np.exp(-dt / tau) + 0.01 * rng.standard_normal(dt.size)
    assert relaxation.trial_relaxation_time(dt, q) == pytest.approx(tau, rel=0.02)
  assert np.isnan(relaxation.trial_relaxation_time(dt[:3], np.ones(3)))  # nothing relaxes


def test_distances_along_each_trajectory_on_known_weights(tmp_path):
  from svag_jax import workdir as workdir_lib
  from svag_jax.analysis import weights

  # trials 0, 1 (arm a) rotate by 90 degrees from epoch 2 to 4 (norm 5 throughout); trial 2
  # (arm b) does not move, but its intrinsic LR changes at epoch 2.5
  def tree(angle):
    w = np.array([[5 * np.cos(angle), 5 * np.sin(angle)]] * 2 + [[3.0, 4.0]])
    return {
        'params': {'dense': {'kernel': w[:, None, :]}},
        'batch_stats': {'bn': {'mean': np.ones((3, 2))}},
        'frozen': {'head': 7.0 * np.ones((3, 2))},
    }

  for epoch, angle in ((2.0, 0.0), (3.0, np.pi / 3), (4.0, np.pi / 2)):
    workdir_lib.Workdir(tmp_path).save_params(epoch, tree(angle), ['a', 'a', 'b'])
  epochs = np.array([1.0, 2.0, 2.5, 3.0, 4.0])
  lambda_e = {
      'a': (epochs, np.full(5, 0.01), np.array([0, 1])),
      'b': (epochs, np.array([0.04, 0.01, 0.02, 0.02, 0.02]), np.array([2])),
  }
  d = weights.trajectory_distances(weights.Snapshots(tmp_path), lambda_e, (2.0, 3.0, 9.0))
  deltas, rel, le = d['a'][2.0]
  np.testing.assert_allclose(deltas, [1.0, 2.0])
  np.testing.assert_allclose(rel, [[1.0, np.sqrt(2)]] * 2)  # 2 sin(angle / 2); head left out
  assert le == 0.01 and list(d['a']) == [2.0, 3.0]
  assert list(d['b']) == [3.0]  # from 2 its lambda_e changes before the next snapshot
  np.testing.assert_allclose(d['b'][3.0][1], [[0.0]])
  lines = weights.trajectory_lines(d)
  assert lines[0].startswith('weights, a from epoch 2 (lambda_e 0.01)') and ' 2 1.414 ' in lines[0]


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
  assert list(diffs) == ['NGD − SGD', 'GD − SGD', 'NGD − GD']
  m, lo, hi, detectable = diffs['NGD − SGD']
  assert m == pytest.approx(-0.01) and lo == pytest.approx(-0.01) and hi == pytest.approx(-0.01)
  assert detectable == pytest.approx(0.0, abs=1e-12)  # no spread: any difference is detected
  assert ngd.inside_sgd_band(ngd.final_intervals(runs))['NGD']
  m, lo, hi, detectable = diffs['GD − SGD']
  assert m == pytest.approx(0.0, abs=1e-12) and lo < -0.05 and hi > 0.05
  d = sgd[::-1] - sgd  # (t_0.975,3 + t_0.8,3) SD / 2
  assert detectable == pytest.approx((3.182446 + 0.978472) * d.std(ddof=1) / 2, rel=1e-5)
  assert list(ngd.paired_differences(runs[1:])) == ['NGD − GD']


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


def test_an_adaptive_sweep_is_labelled_by_its_optimizer_without_sgds_theorem():
  def plain(optimizer, l, acc_eq, acc_end):
    r = run(l, 200, acc_eq, acc_end, 5.0)
    r.config['optim']['optimizer'] = optimizer
    return r

  def adam(l, acc):
    return plain('adam', l, acc, acc + 0.1)

  s = sc.summarize([adam(None, 0.7), adam(2, 0.75), adam(4, 0.8)])
  end = s[200]['phases']['end']['test_accuracy']
  assert list(end['points']) == ['Adam', 'SVAG l=2', 'SVAG l=4']
  lmax, gap = end['sgd_gap']
  assert lmax == 4 and gap[0] == pytest.approx(0.8 - 0.9)
  assert s[200]['optimizer'] == 'Adam' and s[200]['sde_fails'] is None  # Theorem 5.2: SGD only
  assert s[200]['nsr'][0] == pytest.approx(5.0)
  lines = sc.summary([adam(None, 0.7), adam(4, 0.8)])
  assert any('Adam - l=4' in line for line in lines)
  assert any('Adam N/G in the equilibrium window' in line for line in lines)
  assert not any('threshold' in line or 'Theorem 5.2' in line for line in lines)
  # without G/N (metrics.gn_every = 0, all NaN) the figure still draws, its N/G panel says so
  no_gn = [run(l, 200, 0.7, 0.8, np.nan) for l in (None, 2, 4)]
  for r in no_gn:
    r.config['optim']['optimizer'] = 'adam'
  axes = sc.plot(no_gn)
  axes[0].figure.canvas.draw()
  assert [t.get_text() for t in axes[2].texts] == ['G/N not logged']
  # Adam + L2: the last quarter of the pre-decay phase (epochs 1.5, 2); AdamW: one 1 / (eta lambda)
  # (10 steps = 1 epoch: epochs 1 .. 2), as for SGD. Epoch 1's accuracy tells them apart.
  for optimizer, window in (('adam', [False, False, True, True, False]), ('adamw', None)):
    r = plain(optimizer, None, 0.7, 0.8)
    expected = sc.phase_windows(run(None, 200, 0.7, 0.8, 5.0))['equilibrium']
    np.testing.assert_array_equal(
        sc.phase_windows(r)['equilibrium'], expected if window is None else window
    )
  assert list(sc.phase_windows(run(None, 200, 0.7, 0.8, 5.0))['equilibrium']) == [
      False,
      True,
      True,
      True,
      False,
  ]


def test_sqrt_rule_breaks_and_noise_reading():
  from svag_jax.analysis import sqrt_rule  # noqa: PLC0415

  trials = 4
  spread = np.linspace(-0.001, 0.001, trials)[:, None]
  epochs = np.array([1.0, 2.0, 3.0, 4.0])

  def point(rule, batch, error, nsr=None):
    acc = np.tile([0.5, 0.6, 0.7, 1 - error], (trials, 1)) + spread
    values = {'test_accuracy': acc, 'lr': np.tile([1e-3, 1e-3, 1e-3, 1e-4], (trials, 1))}
    if nsr is not None:  # G = 1, N = nsr at every eval
      values |= {'G': np.ones((trials, 4)), 'N': np.full((trials, 4), float(nsr))}
    config = {'optim': {'optimizer': 'adam'}, 'train': {'batch_size': batch}}
    name = f'si_{rule}_b{batch}'
    return sweep_point(name, config, epochs * 10, epochs * 10, epochs, values)

  runs = [point('base', 25, 0.040, nsr=20.0), point('sqrt', 100, 0.041, nsr=5.0)]
  runs += [point('sqrt', 400, 0.045), point('sqrt', 2000, 0.060)]
  runs += [point('linear', 100, 0.047), point('linear', 400, 0.070)]
  runs += [point('none', 100, 0.050), point('none', 400, 0.049)]
  s = sqrt_rule.summarize(runs)
  m = s['si']
  assert m['best'] == pytest.approx(0.040) and m['threshold'] == pytest.approx(0.048)
  assert m['rules']['sqrt']['B'] == [25, 100, 400, 2000]  # the base point in every rule
  assert m['breaks'] == {'sqrt': (2000, 400), 'linear': (400, 100), 'none': (100, 25)}
  b25, b100 = m['noise']
  assert b25['B'] == 25 and b25['nsr'] == pytest.approx(20.0) and b25['B1'] == pytest.approx(500)
  assert b100['B1'] == pytest.approx(500) and b25['B*'] == pytest.approx(2 * 21 * 25)
  assert s['optimizer'] == 'adam'
  lines = sqrt_rule.summary(s)
  assert any('sqrt: fails at B = 2000 (holds to 400)' in line for line in lines)
  axes = sqrt_rule.plot(s)
  assert len(axes) == 2 and isinstance(axes[0].figure, Figure)
  assert sqrt_rule.parse('plain_linear_b800') == ('plain', 'linear', 800)
  assert sqrt_rule.parse('b200_adam') is None
