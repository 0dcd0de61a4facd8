"""Closed forms on hand values, and the SGD equilibrium of a scale-invariant toy:
(2 - eta lambda) lambda R = eta (G + N) (Li, Malladi & Arora 2021, eq. 10-11), its momentum form
(1 - beta)(2 - eta lambda/(1 + beta)) lambda R = eta (N + G (1 - beta)/(1 + beta)) with the
rotational equilibrium E||w_{k+1} - w_k||^2 = 2 eta lambda R / (1 + beta) (derivation at the end
of svag_jax/theory.py), and the stationary effective LR sqrt(2 lambda_e) / sigma (Li, Lyu &
Arora 2020, Lemma 5.2).

Toy: l_i(w) = (x_i.w / ||w|| - y_i)^2 / 2 on N = 16 fixed examples in d = 4 (exactly scale
invariant), SGD with coupled WD (optim.sgd) on batches of B = 2 drawn with replacement
(oracles.batch_gradient), 32 vmapped trials. At every step G(w) = ||grad L(w)||^2 and
N(w) = Tr Sigma_1(w) / B are computed exactly from per-example gradients, so the only randomness
left is the trajectory. The relation is checked on the second half of the run (from 20 to 300
multiples of 1/(eta lambda) after the start, far past the O(1/(eta lambda)) relaxation), averaged
over time and trials; tolerance 5 SE, SE = std over the 32 independent trials of each trial's
time-mean residual / sqrt(32). Power checks: dropping the -eta lambda term (where
eta lambda >= 0.1), or N, is off by > 8 SE.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from svag_jax import optim, oracles, theory

N, D, B, TRIALS = 16, 4, 2, 32
# A larger toy where the gradient noise dominates (G << N: N/G ~ 80 at lambda_e = 0.01).
NOISY = (256, 16, 8, 64)
# Toys (examples, dimension, batch size with replacement, trials) whose equilibrium at
# lambda_e = 0.01 has N/G ~ 1, 10 and 100 (measured 0.7-1.2, 10.5-11.4, ~110; N/G grows a little
# with beta): the momentum relation's G weight is resolved at the first two.
NSR_TOYS = {1: (16, 4, 256, 32), 10: (256, 16, 256, 32), 100: (256, 16, 6, 32)}


def test_lsr_critical_batch():
  assert theory.lsr_critical_batch(3.0, 128) == pytest.approx(2 * 4 * 128)
  assert theory.lsr_critical_batch(3.0, 128, c2=1.5) == pytest.approx(768)
  np.testing.assert_allclose(theory.lsr_critical_batch(np.array([0.0, 1.0]), 64), [128, 256])
  assert float(jax.jit(theory.lsr_critical_batch)(jnp.float32(0.5), 100)) == pytest.approx(300)
  with pytest.raises(ValueError, match='> 1'):
    theory.lsr_critical_batch(1.0, 128, c2=1.0)


def test_sde_approximation_fails():
  # C^2 = 2: threshold 1/(2 - 1) = 1; C^2 = 5: threshold 1/4
  np.testing.assert_array_equal(
      theory.sde_approximation_fails(np.array([0.5, 0.999, 1.0, 3.0])), [True, True, False, False]
  )
  assert theory.sde_approximation_fails(0.2, c2=5.0)
  assert not theory.sde_approximation_fails(0.3, c2=5.0)


def test_min_closeness_is_where_theorem_5_2_flips():
  # N/G = 1/3: G/N = 3, so C >= 2 (C^2 = 4, threshold 1/(C^2 - 1) = 1/3); just below C, it fails
  assert theory.min_closeness(1 / 3) == pytest.approx(2.0)
  for nsr in (0.05, 0.3, 1.0, 8.5):
    c2 = theory.min_closeness(nsr) ** 2
    assert not theory.sde_approximation_fails(nsr, c2=c2 * (1 + 1e-9))
    assert theory.sde_approximation_fails(nsr, c2=c2 * (1 - 1e-6))


def test_equilibrium_and_stationary_hand_values():
  # (2 - 0.05) * 0.5 * 2 = 1.95 = 0.1 * (10 + 9.5)
  assert theory.equilibrium_residual(0.1, 0.5, 2.0, 10.0, 9.5) == pytest.approx(0.0, abs=1e-12)
  assert theory.equilibrium_residual(0.1, 0.5, 3.0, 10.0, 9.5) == pytest.approx(0.975)
  assert theory.stationary_effective_lr(0.02, 4.0) == pytest.approx(0.1)
  # momentum 0.5: 0.5 (2 - 0.05 / 1.5) 0.5 R = 1 at R = 120 / 59, = 0.1 (8 + 6 / 3)
  assert theory.gradient_weight(0.5) == pytest.approx(1 / 3)
  assert theory.equilibrium_residual(0.1, 0.5, 120 / 59, 6.0, 8.0, 0.5) == pytest.approx(
      0.0, abs=1e-12
  )
  assert theory.equilibrium_angular_update(0.1, 0.5, 0.5) == pytest.approx((0.1 / 1.5) ** 0.5)
  # equilibrium_sq_norm solves the relation with G, N scaling as 1/R
  for momentum in (0.0, 0.5, 0.9):
    r = theory.equilibrium_sq_norm(0.3, 0.2, 2.0, 3.0, momentum)
    assert theory.equilibrium_residual(0.3, 0.2, r, 2.0 / r, 3.0 / r, momentum) == pytest.approx(
        0, abs=1e-12
    )
  # and to first order in lambda_e its effective LR is the stationary one
  lr, wd = 1e-3, 1e-3
  assert lr / theory.equilibrium_sq_norm(lr, wd, 2.0, 3.0) == pytest.approx(
      theory.stationary_effective_lr(lr * wd, 5.0), rel=1e-6
  )


def _data(n=N, d=D):
  rng = np.random.default_rng(0)
  return (
      jnp.asarray(rng.normal(size=(n, d)), jnp.float32),
      jnp.asarray(rng.choice([-1.0, 1.0], size=n), jnp.float32),
  )


def _per_example(w, x, y):
  return 0.5 * jnp.square(x @ w / jnp.linalg.norm(w) - y)


def _loss_fn(params, x, y, weights=None):
  losses = _per_example(params['w'], x, y)
  return (jnp.mean(losses) if weights is None else jnp.sum(weights * losses)), {}


@functools.cache
def _run(lr, wd, steps, momentum=0.0, sizes=(N, D, B, TRIALS)):
  """R_k = ||w_k||^2, G(w_k), N(w_k), <grad L(w_k), w_k> / (|grad| |w|) and the step
  ||w_{k+1} - w_k||^2: [trials, steps] of the toy with `sizes` = (examples, dimension, batch size
  with replacement, trials)."""
  n_examples, dim, batch, trials = sizes
  x, y = _data(n_examples, dim)
  tx = optim.sgd(lr, wd, momentum)

  def exact_g_n(w):
    g = jax.vmap(jax.grad(lambda w, xi, yi: _per_example(w, xi[None], yi[None])[0]), (None, 0, 0))(
        w, x, y
    )
    mean = g.mean(0)
    cos = jnp.vdot(mean, w) / (jnp.linalg.norm(mean) * jnp.linalg.norm(w))
    noise = jnp.sum(jnp.square(g - mean)) / n_examples / batch
    return jnp.sum(jnp.square(mean)), noise, cos

  def trial(key):
    params = {'w': jax.random.normal(jax.random.fold_in(key, 0), (dim,))}

    def body(carry, step):
      params, opt_state = carry
      idx = jax.random.randint(jax.random.fold_in(key, step + 1), (batch,), 0, n_examples)
      grads, _ = oracles.batch_gradient(_loss_fn, params, x[idx], y[idx])
      updates, opt_state = tx.update(grads, opt_state, params)
      g, n, cos = exact_g_n(params['w'])
      new = jax.tree.map(jnp.add, params, updates)
      step_sq = jnp.sum(jnp.square(updates['w']))
      return (new, opt_state), (jnp.sum(jnp.square(params['w'])), g, n, cos, step_sq)

    _, out = jax.lax.scan(body, (params, tx.init(params)), jnp.arange(steps))
    return out

  keys = jax.random.split(jax.random.key(0), trials)
  return tuple(np.asarray(a, np.float64) for a in jax.jit(jax.vmap(trial))(keys))


@pytest.mark.parametrize('lr,wd,steps', [(1.0, 0.3, 2000), (0.05, 0.2, 4000)])
def test_sgd_equilibrium_norm_relation(lr, wd, steps):
  r, g, n, cos, _ = _run(lr, wd, steps)
  assert np.abs(cos).max() < 1e-4  # the toy is scale invariant: <grad L, w> = 0
  tail = slice(steps // 2, None)
  per_trial = theory.equilibrium_residual(lr, wd, r, g, n)[:, tail].mean(1)
  se = per_trial.std(ddof=1) / np.sqrt(TRIALS)
  assert abs(per_trial.mean()) < 5 * se, (per_trial.mean(), se)
  scale = np.mean(lr * (g + n)[:, tail])
  assert abs(per_trial.mean()) < 0.02 * scale  # and small in relative terms
  # power: the relation without -eta lambda (2 lambda R = eta (G + N)) or without N is rejected
  without_lr_wd = (2 * wd * r - lr * (g + n))[:, tail].mean()
  without_noise = ((2 - lr * wd) * wd * r - lr * g)[:, tail].mean()
  if lr * wd >= 0.1:  # the -eta lambda term is only resolvable when eta lambda is not small
    assert abs(without_lr_wd) > 8 * se
  assert abs(without_noise) > 8 * se


def test_stationary_effective_lr():
  """At lambda_e = 0.01 the equilibrium effective LR eta / ||w||^2 (mean over the tail and trials)
  matches sqrt(2 lambda_e) / sigma, sigma^2 = E (G + N) ||w||^2 (the squared gradient norm at unit
  weight norm), to 3%: Lemma 5.2 is first order in lambda_e (here (2 - lambda_e)/2 alone is 0.25%);
  a missing factor 2 would be off by 29%."""
  lr, wd, steps = 0.05, 0.2, 4000
  r, g, n, _, _ = _run(lr, wd, steps)
  tail = slice(steps // 2, None)
  sigma2 = np.mean(((g + n) * r)[:, tail])
  effective = np.mean(lr / r[:, tail])
  assert effective == pytest.approx(theory.stationary_effective_lr(lr * wd, sigma2), rel=0.03)
  unit_g, unit_n = np.mean((g * r)[:, tail]), np.mean((n * r)[:, tail])
  assert np.mean(r[:, tail]) == pytest.approx(
      theory.equilibrium_sq_norm(lr, wd, unit_g, unit_n), rel=0.03
  )


def _relative_tail_mean(residual, scale, tail):
  """Mean over trials of each trial's tail-mean residual / scale, and its standard error."""
  per_trial = residual[:, tail].mean(1) / scale
  return per_trial.mean(), per_trial.std(ddof=1) / np.sqrt(len(per_trial))


@pytest.mark.parametrize('momentum', [0.0, 0.5, 0.9])
@pytest.mark.parametrize('nsr', sorted(NSR_TOYS))
def test_momentum_equilibrium_norm_relation(nsr, momentum):
  """At lambda_e = eta lambda / (1 - beta) = 0.01 and N/G ~ `nsr`, the tail of the toy satisfies
  (1 - beta)(2 - eta lambda/(1 + beta)) lambda R = eta (N + G (1 - beta)/(1 + beta)) within 5 SE
  and 2% (measured: within 1.3%, mostly within 0.5%), and E||w_{k+1} - w_k||^2 = 2 eta lambda R /
  (1 + beta) within 5 SE and 1%.

  Power: the earlier relation (2 - lambda_e) lambda (1 - beta) R = eta (G + N), i.e. G with weight
  1, is off by 48% / 76% at N/G ~ 1 and 6% / 8% at N/G ~ 10 (beta = 0.5 / 0.9) and is rejected
  there (> 5 SE and > 2%); at N/G ~ 100 the two differ by ~1%, below this test's resolution. The
  momentum-blind SGD relation is rejected at every N/G."""
  wd, steps = 0.2, 4000
  lr = 0.01 * (1 - momentum) / wd
  sizes = NSR_TOYS[nsr]
  r, g, n, cos, step_sq = _run(lr, wd, steps, momentum, sizes)
  assert np.abs(cos).max() < 1e-4
  tail = slice(steps // 2, None)
  measured_nsr = n[:, tail].mean() / g[:, tail].mean()
  assert nsr / 2 < measured_nsr < nsr * 2  # the toy is in the regime it is named for
  scale = np.mean(lr * (n + theory.gradient_weight(momentum) * g)[:, tail])
  rel, se = _relative_tail_mean(theory.equilibrium_residual(lr, wd, r, g, n, momentum), scale, tail)
  assert abs(rel) < 5 * se and abs(rel) < 0.02, (rel, se)
  # the rotational equilibrium: exact in expectation
  rot, rot_se = _relative_tail_mean(
      step_sq - theory.rotational_angular_update('sgd', lr, wd, momentum) ** 2 * r,
      np.mean(step_sq[:, tail]),
      tail,
  )
  assert abs(rot) < 5 * rot_se and abs(rot) < 0.01, (rot, rot_se)
  if momentum:
    le = theory.intrinsic_lr(lr, wd, momentum)
    unit_weight = (2 - le) * wd * (1 - momentum) * r - lr * (g + n)  # G with weight 1
    old, _ = _relative_tail_mean(unit_weight, scale, tail)
    if nsr <= 10:
      assert abs(old) > 5 * se and abs(old) > 0.02, (old, se)
    blind = theory.equilibrium_residual(lr, wd, r, g, n)  # the SGD relation at the same eta
    assert abs(_relative_tail_mean(blind, scale, tail)[0]) > 0.5


@pytest.mark.parametrize('momentum', [0.5, 0.9])
def test_momentum_stationary_norm_and_effective_lr(momentum):
  """On the noise-dominated toy (N/G ~ 80) at lambda_e = 0.01: R = `equilibrium_sq_norm` and the
  effective LR eta / ((1 - beta) R) = sqrt(2 lambda_e) / sigma, sigma^2 = (N + G (1 - beta)/(1 +
  beta)) R, both to 3% (first order in lambda_e)."""
  wd, steps = 0.2, 4000
  lr = 0.01 * (1 - momentum) / wd
  r, g, n, _, _ = _run(lr, wd, steps, momentum, NOISY)
  tail = slice(steps // 2, None)
  unit_g, unit_n = np.mean((g * r)[:, tail]), np.mean((n * r)[:, tail])
  assert np.mean(r[:, tail]) == pytest.approx(
      theory.equilibrium_sq_norm(lr, wd, unit_g, unit_n, momentum), rel=0.03
  )
  sigma2 = unit_n + theory.gradient_weight(momentum) * unit_g
  effective = np.mean(lr / (1 - momentum) / r[:, tail])
  le = theory.intrinsic_lr(lr, wd, momentum)
  assert effective == pytest.approx(theory.stationary_effective_lr(le, sigma2), rel=0.03)


def test_momentum_sets_the_time_scale_of_the_norm():
  """From the same start, SGD at eta = 0.05 and momentum 0.9 at eta = 0.005 (same lambda, same
  lambda_e = eta lambda / (1 - beta) = 0.01) trace the same mean ||w||^2 curve once the momentum
  buffer has filled (~1 / (1 - beta) = 10 steps; measured within 7% from step 150 on), while SGD at
  the momentum run's eta lambda = 0.001 relaxes ~10x slower (off by > 3x at step 400)."""
  wd, steps = 0.2, 2000
  sgd = _run(0.05, wd, steps, 0.0, NOISY)[0].mean(0)
  heavy = _run(0.005, wd, steps, 0.9, NOISY)[0].mean(0)
  same_eta_wd = _run(0.005, wd, steps, 0.0, NOISY)[0].mean(0)
  assert np.max(np.abs(heavy[150:] / sgd[150:] - 1)) < 0.12
  assert same_eta_wd[400] / sgd[400] > 3
