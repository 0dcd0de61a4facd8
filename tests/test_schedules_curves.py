"""Cosine and triangle LR curves: values, SVAG stretching, one program for all arms, checks."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from svag_jax import arms as arms_lib
from svag_jax import config as config_lib
from svag_jax import experiment, record, schedules
from svag_jax.checks import ConfigError
from svag_jax.plan import trial_schedules
from tests.helpers import tiny_config

pytestmark = pytest.mark.usefixtures('compile_bound')


def _values(schedule: schedules.Schedule, steps) -> np.ndarray:
  """value_at over `steps` under jit + vmap (as in training)."""
  f = jax.jit(jax.vmap(schedules.value_at, in_axes=(None, 0)))
  return np.asarray(f(jax.tree.map(jnp.asarray, schedule), jnp.asarray(steps, jnp.int32)))


def test_cosine_values_at_hand_computed_steps():
  # 10 steps/epoch, cosine from epoch 1 to 5 (steps 10..50), LR 0.4 halved at epoch 3
  s = schedules.from_epochs(0.4, ((3, 0.5),), 10, curve='cosine', curve_epochs=(1, 5))
  steps = [0, 10, 20, 29, 30, 40, 50, 60]
  c = lambda t: 0.5 * (1 + math.cos(math.pi * min(max((t - 10) / 40, 0), 1)))  # noqa: E731
  piecewise = [0.4 if t < 30 else 0.2 for t in steps]
  expected = [p * c(t) for p, t in zip(piecewise, steps)]
  np.testing.assert_allclose(_values(s, steps), expected, rtol=1e-6, atol=1e-8)
  assert _values(s, [20])[0] == pytest.approx(0.4 * (0.5 + 0.5 * math.cos(math.pi / 4)))
  assert _values(s, [50, 60]).tolist() == [0.0, 0.0]


def test_triangle_values_at_hand_computed_steps():
  # 4 steps/epoch, triangle (1, 3, 5) epochs = steps (4, 12, 20)
  s = schedules.from_epochs(1.0, (), 4, curve='triangle', curve_epochs=(1, 3, 5))
  steps = [0, 3, 4, 6, 8, 12, 14, 16, 20, 24]
  expected = [0, 0, 0, 0.25, 0.5, 1.0, 0.75, 0.5, 0.0, 0.0]
  np.testing.assert_allclose(_values(s, steps), expected, atol=1e-7)
  # degenerate peaks: a pure linear decay from start, a pure warm-up that drops to 0 at end
  decay = schedules.from_epochs(2.0, (), 4, curve='triangle', curve_epochs=(0, 0, 2))
  np.testing.assert_allclose(_values(decay, [0, 2, 4, 8, 9]), [2.0, 1.5, 1.0, 0.0, 0.0])
  warm = schedules.from_epochs(2.0, (), 4, curve='triangle', curve_epochs=(0, 2, 2))
  np.testing.assert_allclose(_values(warm, [0, 4, 7, 8, 9]), [0.0, 1.0, 1.75, 0.0, 0.0])


def test_constant_curve_is_exactly_the_piecewise_schedule():
  s = schedules.from_epochs(0.3, ((1, 0.1), (2, 3.0)), 7, 4)
  assert int(s.curve) == schedules.CONSTANT
  steps = np.arange(0, 30)
  piecewise = np.asarray(s.values)[np.sum(steps[:, None] >= np.asarray(s.boundaries), 1)]
  np.testing.assert_array_equal(_values(s, steps), piecewise)  # bit for bit
  bare = schedules.Schedule(s.boundaries, s.values)  # curve fields default to constant
  np.testing.assert_array_equal(_values(bare, steps), piecewise)


def test_svag_stretched_curve_hits_the_same_values_at_the_same_effective_step():
  cfg = tiny_config(**{'train.epochs': 3, 'optim.lr': 0.3, 'optim.lr_schedule': ((1.0, 0.5),)})
  cfg.arms = {
      'cos': {'lr_curve': 'cosine', 'lr_curve_epochs': (0.25, 2.75)},
      'tri': {'lr_curve': 'triangle'},
  }
  arms = arms_lib.arms(cfg)
  spe, l = 7, 2
  sgd, _ = trial_schedules(arms, 1, spe)
  svag, _ = trial_schedules(arms, 1, spe * l, schedules.SvagTime(l))
  steps = np.arange(0, 3 * spe + 1)
  for arm in range(len(arms)):
    one = jax.tree.map(lambda x, i=arm: x[i], sgd.lr)
    two = jax.tree.map(lambda x, i=arm: x[i], svag.lr)
    # SVAG's LR is eta / l: l x its value at step l t is SGD's at t, exactly (powers of 2)
    np.testing.assert_array_equal(l * _values(two, l * steps), _values(one, steps))
  # the triangle's default epochs (0, epochs / 2, epochs): its peak is at epoch 1.5
  tri = jax.tree.map(lambda x: jnp.asarray(x[1]), sgd.lr)
  curve = [float(schedules.curve_at(tri, t)) for t in (0, 7, 10, 11, 21)]
  np.testing.assert_allclose(curve, [0, 7 / 10.5, 10 / 10.5, 1 - 0.5 / 10.5, 0], rtol=1e-6)


def test_arms_with_different_curves_train_in_one_program(tmp_path, train_traces):
  traces = train_traces
  cfg = tiny_config(**{'train.epochs': 2, 'trials.num': 1, 'optim.lr': 0.2})
  cfg.arms = {
      'const': {},
      'cos': {'lr_curve': 'cosine'},
      'tri': {'lr_curve': 'triangle', 'lr_curve_epochs': (0, 1, 2)},
  }
  result = experiment.run(cfg, str(tmp_path))
  assert result['status'] == 'done'
  assert traces == [cfg.train.steps_per_dispatch], traces  # traced (hence compiled) once
  lr = {(r['arm'], r['epoch']): r['lr'] for r in record.read_metrics(tmp_path)}
  # the logged LR includes the curve: at epoch 1 of 2, cosine 1/2, triangle at its peak
  assert lr[('const', 1.0)] == pytest.approx(0.2) and lr[('const', 2.0)] == pytest.approx(0.2)
  assert lr[('cos', 1.0)] == pytest.approx(0.1, abs=1e-7) and lr[('cos', 2.0)] == 0.0
  assert lr[('tri', 1.0)] == pytest.approx(0.2) and lr[('tri', 2.0)] == 0.0


@pytest.mark.parametrize(
    'where, fields, match',
    [
        ('optim', {'lr_curve': 'cosin'}, r'optim\.lr_curve.*choose one of constant, cosine'),
        ('optim', {'lr_curve': 'cosine', 'lr_curve_epochs': (0, 1, 2)}, r'takes 2 epochs'),
        ('optim', {'lr_curve': 'triangle', 'lr_curve_epochs': (0, 2)}, r'takes 3 epochs'),
        ('optim', {'lr_curve': 'cosine', 'lr_curve_epochs': (2, 1)}, r'start <= end'),
        ('optim', {'lr_curve': 'cosine', 'lr_curve_epochs': (1, 1)}, r'start < end'),
        ('optim', {'lr_curve': 'triangle', 'lr_curve_epochs': (0, 1.5, 1)}, r'peak <= end'),
        ('optim', {'lr_curve': 'cosine', 'lr_curve_epochs': (0, 5)}, r'not in \[0, train\.epochs'),
        ('optim', {'lr_curve': 'cosine', 'lr_curve_epochs': (-1, 2)}, r'not in \[0'),
        ('optim', {'lr_curve_epochs': (0, 2)}, r'constant LR curve takes no epochs'),
        ('arms', {'lr_curve': 'triangle', 'lr_curve_epochs': (0, 'x', 2)}, r'arms\.a\.lr_curve_e'),
        ('arms', {'lr_curve': 'sine'}, r'arms\.a\.lr_curve'),
    ],
)
def test_bad_curves_are_config_errors(where, fields, match):
  cfg = tiny_config(**{'train.epochs': 2})
  if where == 'optim':
    for k, v in fields.items():
      cfg.optim[k] = v
  else:
    cfg.arms = {'a': fields}
  with pytest.raises(ConfigError, match=match):
    config_lib.validate(cfg)


def test_curve_defaults_resolve_to_the_whole_run():
  cfg = tiny_config(**{'train.epochs': 4, 'optim.lr_curve': 'triangle'})
  cfg.arms = {'tri': {}, 'cos': {'lr_curve': 'cosine'}, 'flat': {'lr_curve': 'constant'}}
  arms = {a.name: a for a in arms_lib.arms(cfg)}
  assert arms['tri'].lr_curve_epochs == (0.0, 2.0, 4.0)
  assert arms['cos'].lr_curve_epochs == (0.0, 4.0)
  assert arms['flat'].lr_curve_epochs == ()


def test_curve_from_epochs_rejects_bad_input():
  with pytest.raises(ValueError, match='unknown curve'):
    schedules.curve_from_epochs('sine', (), 1)
  with pytest.raises(ValueError, match='takes 2 epochs'):
    schedules.curve_from_epochs('cosine', (1,), 1)
  with pytest.raises(ValueError, match='nondecreasing'):
    schedules.curve_from_epochs('triangle', (0, 2, 1), 1)
