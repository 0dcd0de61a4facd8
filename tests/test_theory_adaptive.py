"""The adaptive optimizers on a scale-invariant toy: effective LR eta / ||w||, the exact rotational
equilibrium identities, the closed forms of Kosson, Messmer & Jaggi 2024 (AdamW:
sqrt(2 eta lambda (1 - beta1) / (1 + beta1)), Adam + L2 with the logged intrinsic LR), AdamW's
equilibrium norm eta C / (2 lambda). Derivations: the note at the end of svag_jax/theory.py.

Toy: l_i(w) = (x_i.w / ||w|| - y_i)^2 / 2 (exactly scale invariant), N = 256 examples in d = 16,
batches of 8 drawn with replacement, 32 vmapped trials (N/G ~ 100: the random-walk regime of the
closed forms), beta2 = 0.99 (the second moment settles in ~100 steps). Tails: the second half of
the run. Tolerances: 5 SE (SE = std over trials of each trial's tail mean / sqrt(32)) for the exact
identities; the closed forms are first-order random-walk values, measured here within 3% (norm:
7%), and tested at 5% (norm: 10%); every constant they contain is off by far more when wrong
(power checks beside each).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from svag_jax import metrics, optim, oracles, theory

N, D, B, TRIALS = 256, 16, 8, 32
BETA2 = 0.99


def _data():
  rng = np.random.default_rng(0)
  return (
      jnp.asarray(rng.normal(size=(N, D)), jnp.float32),
      jnp.asarray(rng.choice([-1.0, 1.0], size=N), jnp.float32),
  )


def _loss_fn(params, x, y, weights=None):
  del weights
  w = params['w']
  return jnp.mean(0.5 * jnp.square(x @ w / jnp.linalg.norm(w) - y)), {}


@functools.cache
def _run(name, lr, wd, beta1, steps, eps=1e-8, init_scale=1.0):
  """[trials, steps] of R_k = ||w_k||^2, U_k = ||w_{k+1} - w_k||^2, <w_k, p_k> (p_k = u_{k+1} -
  beta1 u_k, the new part of the preconditioned update) and the intrinsic LR the run logs."""
  x, y = _data()
  tx = optim.make(name, lr, wd, beta1=beta1, beta2=BETA2, eps=eps)
  b1 = 0.0 if name == 'rmsprop' else beta1
  settings = metrics.AdaptiveSettings(name, BETA2, eps)

  def trial(key):
    params = {'w': init_scale * jax.random.normal(jax.random.fold_in(key, 0), (D,))}

    def body(carry, step):
      params, state, u_prev = carry
      idx = jax.random.randint(jax.random.fold_in(key, step + 1), (B,), 0, N)
      grads, _ = oracles.batch_gradient(_loss_fn, params, x[idx], y[idx])
      updates, new_state = tx.update(grads, state, params)
      w = params['w']
      u = -updates['w'] / lr - (wd * w if name == 'adamw' else 0.0)  # the preconditioned update
      logged = metrics.adaptive_learning_rates(lr, wd, params, state, settings)
      out = (
          jnp.sum(w**2),
          jnp.sum(updates['w'] ** 2),
          jnp.vdot(w, u - b1 * u_prev),
          logged['intrinsic_lr_adaptive'],
      )
      return (optax.apply_updates(params, updates), new_state, u), out

    init = (params, tx.init(params), jnp.zeros((D,)))
    _, out = jax.lax.scan(body, init, jnp.arange(steps))
    return out

  keys = jax.random.split(jax.random.key(0), TRIALS)
  return tuple(np.asarray(a, np.float64) for a in jax.jit(jax.vmap(trial))(keys))


def _tail_mean(values, steps):
  """Mean over trials of each trial's tail mean, and its SE."""
  per_trial = values[:, steps // 2 :].mean(1)
  return per_trial.mean(), per_trial.std(ddof=1) / np.sqrt(len(per_trial))


@pytest.mark.parametrize('name', ['adamw', 'adam'])
@pytest.mark.parametrize('beta1', [0.0, 0.9])
def test_exact_rotational_identities(name, beta1):
  """AdamW: U (1 + beta1 (1 - eta lambda)) / 2 = (1 - beta1) eta lambda R + eta E<w, p>;
  Adam + L2: U (1 + beta1) / 2 = eta E<w, p> (exact at stationarity), within 5 SE and 0.3% of U.
  At eta lambda = 0.05 the discrete term is resolved: the first-order denominator (1 + beta1) in
  the AdamW identity, or a (1 - beta1) dropped, is rejected (> 8 SE)."""
  lr, wd, steps = 0.25, 0.2, 8000
  r, u, radial, _ = _run(name, lr, wd, beta1, steps)
  if name == 'adamw':
    le = lr * wd
    residual = u * (1 + beta1 * (1 - le)) / 2 - (1 - beta1) * le * r - lr * radial
    first_order = u * (1 + beta1) / 2 - (1 - beta1) * le * r - lr * radial
    no_one_minus_beta = u * (1 + beta1 * (1 - le)) / 2 - le * r - lr * radial
  else:
    residual = u * (1 + beta1) / 2 - lr * radial
    first_order = None
    no_one_minus_beta = u * (1 + beta1) / 2 - lr * radial / (1 - beta1 * 0.5)  # a wrong constant
  scale = np.mean(u[:, steps // 2 :])
  mean, se = _tail_mean(residual / scale, steps)
  assert abs(mean) < 5 * se and abs(mean) < 0.003, (mean, se)
  if first_order is not None and beta1:
    assert abs(_tail_mean(first_order / scale, steps)[0]) > 8 * se
  if beta1:
    assert abs(_tail_mean(no_one_minus_beta / scale, steps)[0]) > 8 * se


@pytest.mark.parametrize('beta1', [0.0, 0.9])
def test_adamw_rotational_equilibrium_closed_form(beta1):
  """At eta lambda = 0.01: E||w_{k+1} - w_k||^2 / ||w_k||^2 = 2 eta lambda (1 - beta1) / (1 +
  beta1) (the REQ code's avg_rotation^2) within 5% (measured -2.1% / -1.5%). Rejected: SGD +
  momentum's 2 eta lambda / (1 + beta1) (10x at beta1 = 0.9), the decay lambda instead of
  eta lambda (optax's weight_decay is multiplied by the LR), a missing factor 2."""
  lr, wd, steps = 0.05, 0.2, 4000
  r, u, _, _ = _run('adamw', lr, wd, beta1, steps)
  measured, _ = _tail_mean(u / r, steps)
  predicted = theory.rotational_angular_update('adamw', lr, wd, beta1=beta1) ** 2
  assert measured == pytest.approx(predicted, rel=0.05)
  wrong = [
      theory.equilibrium_angular_update(lr, wd, beta1) ** 2,  # SGD + momentum
      theory.adaptive_angular_update(wd, beta1) ** 2,  # lambda as the decay per step
      predicted / 2,
  ]
  for w in wrong[0 if beta1 else 1 :]:
    assert abs(measured / w - 1) > 0.3


@pytest.mark.parametrize('name, beta1', [('adam', 0.0), ('adam', 0.9), ('rmsprop', 0.0)])
def test_coupled_wd_angular_update_from_the_logged_intrinsic_lr(name, beta1):
  """Adam + L2 and RMSprop: U / R = 2 lambda_e (1 - beta1) / (1 + beta1) with lambda_e = eta lambda
  p the logged `intrinsic_lr_adaptive` (p = <1 / (sqrt(v_hat) + eps)>_{w^2} from the optimizer's
  state), within 5% (measured -2.7% to -2.9%); eta lambda alone (AdamW's formula) is off by the
  factor p ~ 2.2 of this toy."""
  lr, wd, steps = 0.05, 0.2, 4000
  r, u, _, logged = _run(name, lr, wd, beta1, steps)
  measured, _ = _tail_mean(u / r, steps)
  predicted = theory.rotational_angular_update(name, lr, wd, beta1=beta1, intrinsic_lr=logged) ** 2
  predicted, _ = _tail_mean(predicted, steps)
  assert measured == pytest.approx(predicted, rel=0.05)
  assert abs(measured / theory.adaptive_angular_update(lr * wd, beta1) ** 2 - 1) > 0.3


def test_rmsprop_is_adam_without_first_moment():
  """The two chains are one update: `optim.rmsprop` = `optim.adam` with beta1 = 0 on the toy."""
  a = _run('rmsprop', 0.05, 0.2, 0.0, 4000)
  b = _run('adam', 0.05, 0.2, 0.0, 4000)
  np.testing.assert_allclose(a[0], b[0], rtol=1e-5)


@pytest.mark.parametrize('beta1', [0.0, 0.9])
def test_adamw_equilibrium_norm_and_effective_lr(beta1):
  """||w||^2 = eta C / (2 lambda) (C = 16 weights) within 10% (measured +7% / -3%): the effective LR
  eta / ||w|| = sqrt(2 eta lambda / C) is set by eta lambda alone. Rejected: SGD's
  equilibrium relation (R grows as 1/sqrt(lambda), not 1/lambda): halving lambda doubles R."""
  lr, steps = 0.05, 4000
  r, _, _, _ = _run('adamw', lr, 0.2, beta1, steps)
  r_half, _, _, _ = _run('adamw', lr, 0.1, beta1, steps)
  measured, _ = _tail_mean(r, steps)
  assert measured == pytest.approx(theory.adamw_equilibrium_sq_norm(lr, 0.2, D), rel=0.1)
  assert _tail_mean(r_half, steps)[0] / measured == pytest.approx(2.0, rel=0.1)
  effective = _tail_mean(theory.adaptive_effective_lr(lr, r), steps)[0]
  assert effective == pytest.approx((2 * lr * 0.2 / D) ** 0.5, rel=0.05)


@pytest.mark.parametrize('name', ['adamw', 'rmsprop'])
def test_effective_lr_is_lr_over_norm(name):
  """Scale-free updates: the run from c w_0 at LR c eta and eps eps / c moves the same unit
  directions as the run from w_0 at eta, eps (RMSprop without WD; AdamW with WD lambda / c, the
  same eta lambda), so the direction's LR is eta / ||w||. SGD needs c^2 eta (its effective LR is
  eta / ||w||^2): at c eta its directions differ."""
  x, y = _data()
  c, lr, eps, steps = 8.0, 0.05, 1e-6, 50
  wd = 0.2 if name == 'adamw' else 0.0

  def directions(tx, scale):
    params = {'w': scale * jax.random.normal(jax.random.key(3), (D,))}

    def body(carry, step):
      params, state = carry
      idx = jax.random.randint(jax.random.fold_in(jax.random.key(4), step), (B,), 0, N)
      grads, _ = oracles.batch_gradient(_loss_fn, params, x[idx], y[idx])
      updates, state = tx.update(grads, state, params)
      params = optax.apply_updates(params, updates)
      return (params, state), params['w'] / jnp.linalg.norm(params['w'])

    _, out = jax.lax.scan(body, (params, tx.init(params)), jnp.arange(steps))
    return np.asarray(out)

  make = lambda lr, wd, eps: optim.make(name, lr, wd, beta1=0.9, beta2=BETA2, eps=eps)
  base = directions(make(lr, wd, eps), 1.0)
  np.testing.assert_allclose(directions(make(c * lr, wd / c, eps / c), c), base, atol=2e-5)
  assert np.abs(directions(make(lr, wd, eps / c), c) - base).max() > 0.01  # LR eta at scale c
  sgd = directions(optim.sgd(lr, wd), 1.0)  # with WD / c^2 (the same eta lambda) at scale c
  np.testing.assert_allclose(directions(optim.sgd(c * c * lr, wd / c**2), c), sgd, atol=2e-5)
  assert np.abs(directions(optim.sgd(c * lr, wd / c), c) - sgd).max() > 0.01


def test_rotational_angular_update_refuses_what_it_cannot_predict():
  """Adam + L2 / RMSprop need the group's lambda_e (eta lambda alone is AdamW's value: off by p);
  an unknown optimizer name is refused rather than read as SGD."""
  with pytest.raises(ValueError, match='lambda_e'):
    theory.rotational_angular_update('adam', 1e-3, 1e-4)
  with pytest.raises(ValueError, match='unknown optimizer'):
    theory.rotational_angular_update('lion', 1e-3, 1e-4)
