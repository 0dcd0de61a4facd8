"""Scaling rules (svag_jax.scaling) against hand values; the sqrt rule and SVAG keep the adaptive
SDE's constants (theory.adaptive_sde_constants), the linear rule does not; a sweep over B is one
config (batch_overrides)."""

import math

import pytest

from svag_jax import scaling, theory
from svag_jax.arms import set_arms, shadowed_fields
from svag_jax.configs import base

BASE = scaling.Settings(lr=1e-3, wd=0.1, beta1=0.99, beta2=0.999, eps=1e-8)


def test_hand_values():
  # batch x 4: sqrt rule LR x 2, 1 - beta x 4, eps / 2
  s = scaling.scale(BASE, 'sqrt', 4, 'adam')
  assert s == pytest.approx(scaling.Settings(2e-3, 0.1, 0.96, 0.996, 5e-9))
  assert scaling.scale(BASE, 'sqrt', 4, 'adamw').wd == pytest.approx(0.2)  # decoupled: x 2
  r = scaling.scale(BASE, 'sqrt', 4, 'rmsprop')
  assert r.beta1 == 0.99 and r.beta2 == pytest.approx(0.996)  # rmsprop has no first moment
  assert scaling.scale(BASE, 'linear', 4, 'adam') == BASE._replace(lr=4e-3)
  assert scaling.scale(BASE, 'none', 4, 'adamw') is BASE
  assert scaling.scale(BASE, 'sqrt', 1, 'adamw') is BASE
  assert scaling.scale(BASE, 'sqrt', 4, 'sgd') == BASE._replace(lr=2e-3)
  assert scaling.scale(BASE, 'linear', 0.5, 'sgd') == BASE._replace(lr=5e-4)
  # SVAG l = 4 (the paper's ell = 2): LR / 2, 1 - beta / 4, eps x 2; l = 1 is the identity
  v = scaling.svag(BASE, 4, 'adamw')
  assert v == pytest.approx(scaling.Settings(5e-4, 0.05, 0.9975, 0.99975, 2e-8))
  assert scaling.svag(BASE, 4, 'sgd') == BASE._replace(lr=2.5e-4)
  assert scaling.svag(BASE, 1, 'adam') is BASE


def test_svag_is_the_sde_rule_at_one_over_l():
  for optimizer in scaling.OPTIMIZERS:
    rule = scaling.sde_rule(optimizer)
    for l in (2, 4, 8, 16):
      got = scaling.svag(BASE, l, optimizer)
      want = scaling.scale(BASE, rule, 1 / l, optimizer)
      assert got == pytest.approx(want, rel=1e-12), (optimizer, l)


@pytest.mark.parametrize('optimizer', ['rmsprop', 'adam', 'adamw'])
@pytest.mark.parametrize('kappa', [0.25, 2, 8, 32])
def test_sqrt_rule_keeps_the_sde_constants(optimizer, kappa):
  """(sigma_0^2, eps_0, c_1, c_2, lambda_0 for adamw) of batch kappa B under the sqrt rule equal
  those of batch B; under the linear rule sigma_0^2 and c_i change by kappa (so it is not the SDE
  rule for adaptive methods)."""
  batch = 32
  decoupled = optimizer in scaling.DECOUPLED

  def constants(s, b, l=1):
    return theory.adaptive_sde_constants(
        s.lr, b, s.beta1, s.beta2, s.eps, s.wd, decoupled=decoupled, svag_l=l
    )

  ref = constants(BASE, batch)
  sq = constants(scaling.scale(BASE, 'sqrt', kappa, optimizer), kappa * batch)
  for k in ('sigma0_sq', 'eps0', 'c2', *(('c1',) if optimizer != 'rmsprop' else ())):
    assert sq[k] == pytest.approx(ref[k], rel=1e-12), k
  if decoupled:
    assert sq['lambda0'] == pytest.approx(ref['lambda0'], rel=1e-12)
  # kappa x the batch = kappa x fewer steps per epoch, and kappa x fewer steps per unit of time
  assert sq['steps_per_time'] == pytest.approx(ref['steps_per_time'] / kappa)
  lin = constants(scaling.scale(BASE, 'linear', kappa, optimizer), kappa * batch)
  assert lin['sigma0_sq'] == pytest.approx(ref['sigma0_sq'] * kappa)
  assert lin['c2'] == pytest.approx(ref['c2'] / kappa**2)
  # SVAG(l) at batch B is the SDE of batch B: the same constants, l x the steps per unit of time
  l = 8
  sv = constants(scaling.svag(BASE, l, optimizer), batch, l)
  for k in ('sigma0_sq', 'eps0', 'c2', *(('lambda0',) if decoupled else ())):
    assert sv[k] == pytest.approx(ref[k], rel=1e-12), k
  assert sv['steps_per_time'] == pytest.approx(l * ref['steps_per_time'])


def test_refusals():
  with pytest.raises(ValueError, match='beta1'):
    scaling.scale(BASE._replace(beta1=0.9), 'sqrt', 20, 'adam')  # 1 - 20 * 0.1 < 0
  with pytest.raises(ValueError, match='unknown scaling rule'):
    scaling.scale(BASE, 'cubic', 2, 'adam')
  with pytest.raises(ValueError, match='unknown optimizer'):
    scaling.scale(BASE, 'sqrt', 2, 'lion')
  with pytest.raises(ValueError, match='kappa'):
    scaling.scale(BASE, 'sqrt', 0, 'adam')
  with pytest.raises(ValueError, match='>= 1'):
    scaling.svag(BASE, 0.5, 'adam')


def _config(optimizer):
  c = base.get_config()
  c.train.batch_size = 25
  c.optim.optimizer = optimizer
  c.optim.lr, c.optim.wd = 1e-3, 1e-4
  if optimizer != 'sgd':
    c.optim.beta1, c.optim.beta2, c.optim.eps = 0.99, 0.999, 1e-8
  return c


def test_batch_overrides():
  c = _config('adamw')
  assert scaling.batch_overrides(c, 'sqrt', 100) == {
      'train.batch_size': 100,
      'optim.lr': 2e-3,
      'optim.wd': 2e-4,
      'optim.beta1': 0.96,
      'optim.beta2': 0.996,
      'optim.eps': 5e-9,
  }
  assert scaling.batch_overrides(c, 'linear', 100) == {'train.batch_size': 100, 'optim.lr': 4e-3}
  assert scaling.batch_overrides(c, 'none', 100) == {'train.batch_size': 100}
  # SGD reads no beta / eps: none are overridden (they must stay unread)
  assert scaling.batch_overrides(_config('sgd'), 'sqrt', 100) == {
      'train.batch_size': 100,
      'optim.lr': 2e-3,
  }
  r = scaling.batch_overrides(_config('rmsprop'), 'sqrt', 100)
  assert 'optim.beta1' not in r and r['optim.beta2'] == 0.996
  # arms that set their own LR get their own override; optim.lr, read by no arm, stays
  a = set_arms(_config('adam'), {'x': {'lr': 0.01}, 'y': {'lr': 0.04}})
  got = scaling.batch_overrides(a, 'sqrt', 100)
  assert got['arms.x.lr'] == 0.02 and got['arms.y.lr'] == 0.08 and 'optim.lr' not in got
  assert math.isclose(got['optim.eps'], 5e-9)
  # one arm reads optim.lr: it is overridden too (as arms.shadowed_fields says)
  b = set_arms(_config('adam'), {'x': {'lr': 0.01}, 'y': {'wd': 1e-4}})
  got = scaling.batch_overrides(b, 'sqrt', 100)
  assert got['arms.x.lr'] == 0.02 and got['optim.lr'] == 2e-3 and 'arms.y.lr' not in got
  assert 'optim.lr' not in shadowed_fields(b) and 'optim.lr' in shadowed_fields(a)
