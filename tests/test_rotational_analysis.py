"""analysis.rotational_equilibrium on hand-made runs of known angles: the prediction of each
optimizer (momentum and Adam's beta1 enter, Adam + L2 per layer), the RMS over the equilibrium
window, the balance between layers and the relaxation time in units of 1 / lambda_e."""

import math
import pathlib

import numpy as np
import pytest

from svag_jax import record, theory
from svag_jax.analysis import common
from svag_jax.analysis import groups as groups_analysis
from svag_jax.analysis import rotational_equilibrium as rot

TRIALS, EVALS, STEP = 4, 60, 50  # an evaluation every 50 steps, 3,000 steps


def point(name, optim, angles, rates=None) -> common.Run:
  """A one-arm run with layers {layer: angle [T, E]} and, for Adam + L2, {layer: lambda_e}."""
  shape = (TRIALS, EVALS)
  values = {
      'lr': np.full(shape, optim['lr']),
      'wd': np.full(shape, optim['wd']),
  }
  for layer, angle in angles.items():
    values[record.group_key(layer, 'angular_update')] = angle
    if rates is not None:
      values[record.group_key(layer, 'intrinsic_lr_adaptive')] = np.full(shape, rates[layer])
  steps = np.arange(1, EVALS + 1) * STEP
  metrics = common.ArmMetrics(
      np.arange(TRIALS), steps / 40, steps, steps.astype(float), values, np.zeros(shape, bool)
  )
  return common.Run(name, pathlib.Path(name), {'optim': optim}, 'done', {'default': metrics})


def relaxing(value, rate, factor=1.0):
  """angle [T, E]: `factor` x value (1 - exp(-rate step)), a +-1% spread over the trials."""
  steps = np.arange(1, EVALS + 1) * STEP
  spread = 1 + np.linspace(-0.01, 0.01, TRIALS)[:, None]
  return factor * value * (1 - np.exp(-rate * steps))[None, :] * spread


def test_each_optimizers_prediction_the_window_rms_and_the_balance():
  sgd = {'optimizer': 'sgd', 'lr': 0.1, 'wd': 0.02, 'momentum': 0.0}
  momentum = {'optimizer': 'sgd', 'lr': 0.01, 'wd': 0.02, 'momentum': 0.9}
  adam = {'optimizer': 'adam', 'lr': 2e-3, 'wd': 1e-3, 'beta1': 0.9}
  adamw = {'optimizer': 'adamw', 'lr': 2e-3, 'wd': 1.0, 'beta1': 0.9}
  rate = 2e-3
  sgd_angle = math.sqrt(2 * 0.1 * 0.02)
  momentum_angle = math.sqrt(2 * 0.01 * 0.02 / 1.9)
  adamw_angle = math.sqrt(2 * 2e-3 * 0.1 / 1.9)
  rates = {'a': 4e-3, 'b': 1e-3}
  adam_angles = {k: math.sqrt(2 * v * 0.1 / 1.9) for k, v in rates.items()}
  runs = [
      point('sgd', sgd, {'a': relaxing(sgd_angle, rate), 'b': relaxing(sgd_angle, rate)}),
      # momentum: 20% below its own prediction (SGD's formula would put it 3x too low)
      point('mom', momentum, {'a': relaxing(momentum_angle, rate, 0.8)}),
      point('adam', adam, {k: relaxing(v, rate) for k, v in adam_angles.items()}, rates),
      point('adamw', adamw, {'a': relaxing(adamw_angle, rate), 'b': relaxing(adamw_angle, rate)}),
  ]
  tables = {r.name: {row['layer']: row for row in rot.layer_table(r)} for r in runs}
  # the last third: steps 2,050 .. 3,000, where 1 - exp(-2e-3 step) > 0.98
  for name, layer, factor in (('sgd', 'a', 1), ('mom', 'a', 0.8), ('adam', 'b', 1)):
    assert np.mean(tables[name][layer]['ratio']) == pytest.approx(factor, rel=0.02)
  assert np.mean(tables['mom']['a']['predicted']) == pytest.approx(momentum_angle, rel=1e-9)
  assert np.mean(tables['adam']['a']['predicted']) == pytest.approx(adam_angles['a'], rel=1e-9)
  assert np.mean(tables['adamw']['b']['predicted']) == pytest.approx(adamw_angle, rel=1e-9)
  # balance: 1 for SGD and AdamW, sqrt(4e-3 / 1e-3) = 2 for these Adam + L2 layers
  sgd_rows = list(tables['sgd'].values())
  assert np.mean(rot.balance(sgd_rows, 'angle')) == pytest.approx(1.0, abs=1e-9)
  adam_rows = list(tables['adam'].values())
  assert np.mean(rot.balance(adam_rows, 'predicted')) == pytest.approx(2.0, rel=1e-9)
  assert np.mean(rot.balance(adam_rows, 'angle')) == pytest.approx(2.0, rel=1e-3)
  # the prediction the per-group figure divides by is the same one
  metrics = runs[2].arms['default']
  np.testing.assert_allclose(
      groups_analysis.predicted_angle(runs[2], metrics, 'a'), adam_angles['a']
  )
  lines = rot.summary(rot.layer_tables(runs))
  assert any(line.startswith('adam ') and ' b ' in f' {line} ' for line in lines)
  assert any(line.startswith('  adam: measured 2') for line in lines)


@pytest.mark.parametrize('rate', [2e-3, 4e-3])
def test_the_relaxation_time_is_read_in_units_of_one_over_lambda_e(rate):
  """1 - exp(-tau) is within 10% of 1 from tau = ln 10 = 2.30 on: read to within the evaluation
  spacing and the smoothing (5 evaluations: +-2 x 50 steps x rate in tau) at both rates, whose
  windows (tau >= 4.1) sit at 1 (at a run of 3 / lambda_e the window itself is still relaxing)."""
  sgd = {'optimizer': 'sgd', 'lr': 0.1, 'wd': rate / 0.1, 'momentum': 0.0}
  angle = theory.equilibrium_angular_update(0.1, rate / 0.1)
  (row,) = rot.layer_table(point('sgd', sgd, {'a': relaxing(angle, rate)}))
  assert row['settle'] == pytest.approx(math.log(10), abs=3 * STEP * rate)


def test_a_run_without_per_group_angles_is_refused_by_name(tmp_path):
  run = point('plain', {'optimizer': 'sgd', 'lr': 0.1, 'wd': 0.01}, {})
  with pytest.raises(ValueError, match='plain'):
    groups_analysis.rows_of([run])
  assert rot.layer_table(run) == []
