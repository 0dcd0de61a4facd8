"""SVAG: one-step moments match Lemma 4.7 exactly on linear regression; l = 1 is SGD bit for bit.

Problem: least squares l_i(w) = (x_i.w - y_i)^2 / 2 on N = 8 fixed examples in d = 3 (inputs with a
common offset), at a fixed w far from the optimum, so that grad L is large next to the noise and
every term of the moments matters.
Per-example gradients g_i are known in closed form, so grad L = mean g_i and
Sigma_1 = (1/N) sum (g_i - grad L)(g_i - grad L)^T exactly; batches of B = 2 drawn with replacement
have covariance Sigma = Sigma_1 / B (B = 4). One SVAG step
Delta = -(eta/l)(c1 g_gamma1 + c2 g_gamma2) must have
  E Delta = -(eta/l) grad L,   Cov Delta = (eta^2/l) Sigma,
  E Delta Delta^T = (eta^2/l) Sigma + (eta^2/l^2) grad L grad L^T.
Tolerance: every entry within 5 Monte-Carlo standard errors (SE = sample std / sqrt(M) of the
per-sample quantity; 5 SE has a two-sided false-alarm rate of 6e-7 per entry). Power checks make
sure M is large enough that a 1% error in c1 (mean) or a 5% error in the covariance would be more
than 8 SE.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from svag_jax import models, optim, oracles, schedules, schema
from svag_jax.data import TrainData, normalize
from svag_jax.train import Trainer

N, D, B, ETA = 8, 3, 4, 0.2
M = 1 << 18  # Monte-Carlo samples of one step


def _problem():
  rng = np.random.default_rng(0)
  x = (np.array([1.0, 0.5, -0.5]) + 0.3 * rng.normal(size=(N, D))).astype(np.float32)
  y = (0.3 * rng.normal(size=(N,))).astype(np.float32)
  w = np.array([1.5, -1.0, 0.5], np.float32)
  return jnp.asarray(x), jnp.asarray(y), {'w': jnp.asarray(w)}


def _loss_fn(params, x, y, weights=None):
  per_example = 0.5 * jnp.square(x @ params['w'] - y)
  loss = jnp.mean(per_example) if weights is None else jnp.sum(weights * per_example)
  return loss, {}


def _exact_moments(x, y, w):
  x, y, w = (np.asarray(a, np.float64) for a in (x, y, w))
  g = (x @ w - y)[:, None] * x  # per-example gradients [N, D]
  mean = g.mean(0)
  sigma1 = (g - mean).T @ (g - mean) / N
  return mean, sigma1 / B  # with-replacement batch-B covariance


def _svag_steps(l, key):
  x, y, params = _problem()
  tx = optax.chain(optim.svag(l), optim.sgd(ETA / l, 0.0))

  def one(k):
    idx = jax.random.randint(k, (2, B), 0, N)
    grads, _ = oracles.batch_gradient_pair(_loss_fn, params, x[idx], y[idx])
    updates, _ = tx.update(grads, tx.init(params), params)
    return updates['w']

  return np.asarray(jax.jit(jax.vmap(one))(jax.random.split(key, M)), np.float64)


def _z_scores(samples, expected):
  """|empirical mean - expected| / SE, entrywise; samples [M, ...]."""
  se = samples.std(0, ddof=1) / np.sqrt(len(samples))
  return np.abs(samples.mean(0) - expected) / se, se


@pytest.mark.parametrize('l', [1, 2, 8])
def test_one_step_moments(l):
  x, y, params = _problem()
  grad, sigma = _exact_moments(x, y, params['w'])
  delta = _svag_steps(l, jax.random.key(l))

  z_mean, se_mean = _z_scores(delta, -(ETA / l) * grad)
  assert z_mean.max() < 5, (z_mean, delta.mean(0), -(ETA / l) * grad)
  if l > 1:  # power: c1 off by 1% shifts the mean by 0.01 c1 (eta/l) grad L
    c1, _ = optim.svag_coefficients(l)
    assert np.max(0.01 * c1 * (ETA / l) * np.abs(grad) / se_mean) > 8

  second = delta[:, :, None] * delta[:, None, :]
  expected_second = (ETA**2 / l) * sigma + (ETA**2 / l**2) * np.outer(grad, grad)
  z_second, se_second = _z_scores(second, expected_second)
  assert z_second.max() < 5, (z_second, second.mean(0), expected_second)

  centred = delta - delta.mean(0)
  cov = centred[:, :, None] * centred[:, None, :]
  expected_cov = (ETA**2 / l) * sigma
  z_cov, se_cov = _z_scores(cov, expected_cov)
  assert z_cov.max() < 5, (z_cov, cov.mean(0), expected_cov)

  # power: a 5% error in the noise covariance would be caught on the diagonal
  assert np.all(0.05 * np.diag(expected_cov) > 8 * np.diag(se_cov))
  assert np.all(0.05 * np.diag(expected_second) > 8 * np.diag(se_second))


@pytest.mark.parametrize('l', [1, 2, 4, 8, 3.5])
def test_coefficients(l):
  c1, c2 = optim.svag_coefficients(l)
  assert c1 + c2 == pytest.approx(1.0, abs=1e-12)
  assert c1**2 + c2**2 == pytest.approx(l, rel=1e-12)
  assert c1 == pytest.approx((1 + np.sqrt(2 * l - 1)) / 2, rel=1e-15)


def test_combination_hand_values():
  g = {'a': jnp.array([[1.0, 2.0], [3.0, -4.0]])}
  out, _ = optim.svag(2).update(g, optim.svag(2).init(None))
  c1, c2 = (1 + np.sqrt(3)) / 2, (1 - np.sqrt(3)) / 2
  np.testing.assert_allclose(out['a'], [c1 * 1 + c2 * 3, c1 * 2 - c2 * 4], rtol=1e-6)


def test_l1_returns_first_gradient_even_if_second_is_not_finite():
  g1 = jnp.array([1.0, -0.0, 3e-38])
  g = {'a': jnp.stack([g1, jnp.array([jnp.nan, jnp.inf, -jnp.inf])])}
  out, _ = jax.jit(optim.svag(1).update)(g, optim.SvagState())
  chex.assert_trees_all_equal(out['a'], g1)
  assert jnp.signbit(out['a'][1])  # -0.0 survives


def test_rejects_unstacked_gradients_and_bad_l():
  with pytest.raises(ValueError, match='leading axis of size 2'):
    optim.svag(2).update({'a': jnp.ones((3, 4))}, optim.SvagState())
  with pytest.raises(ValueError, match='>= 1'):
    optim.svag(0.5)


@functools.cache
def _trainer_setup():
  cfg = schema.defaults().model
  cfg.update(name='cnn', widths=(4, 8), norm='batch')
  model = models.build(cfg, num_classes=4)
  rng = np.random.default_rng(1)
  n = 64
  data = TrainData(
      images=jnp.asarray(rng.integers(0, 256, (n, 8, 8, 1)), jnp.uint8),
      labels=jnp.asarray(rng.integers(0, 4, (n,)), jnp.int32),
      mean=jnp.array([0.5]),
      std=jnp.array([0.25]),
  )
  trainer = Trainer(model=model, batch_size=8, num_train=n, sampling='replacement')
  sched = schedules.Schedules(schedules.from_epochs(0.3, (), 8), schedules.from_epochs(0.05, (), 8))
  state = jax.jit(trainer.init)(jax.random.key(0), sched, data)
  ref_state, ref_loss = jax.jit(trainer.train_step)(state, data)
  return trainer, data, state, ref_state, ref_loss


@pytest.mark.parametrize('oracle', ['sgd', 'svag'])
def test_l1_is_sgd_bit_for_bit_on_a_trainer_step(oracle):
  """oracles.batch_gradient + optim.sgd and oracles.batch_gradient_pair + optim.svag(1) + optim.sgd
  reproduce Trainer.train_step (BatchNorm CNN, jitted) exactly: params, BatchNorm statistics,
  loss."""
  trainer, data, state, ref, ref_loss = _trainer_setup()

  def step(state, data):
    idx = trainer.sampler.batch_indices(state.key, state.step)
    if oracle == 'svag':  # the second batch is an independent draw; it must not matter at l = 1
      other = trainer.sampler.batch_indices(jax.random.fold_in(state.key, 7), state.step)
      idx = jnp.stack([idx, other])
    images = normalize(data.images[idx], data.mean, data.std)
    loss_fn = lambda p, x, y: trainer.loss(p, state, x, y, True)
    oracle_fn = oracles.batch_gradient_pair if oracle == 'svag' else oracles.batch_gradient
    grads, (loss, batch_stats) = oracle_fn(loss_fn, state.params, images, data.labels[idx])
    tx = trainer.optimizer(state.schedules, state.key)
    opt_state = state.opt_state
    if oracle == 'svag':
      tx = optax.chain(optim.svag(1), tx)
      opt_state = (optim.SvagState(), opt_state)
      loss, batch_stats = loss[0], jax.tree.map(lambda s: s[0], batch_stats)
    updates, _ = tx.update(grads, opt_state, state.params)
    return optax.apply_updates(state.params, updates), batch_stats, loss

  params, batch_stats, loss = jax.jit(step)(state, data)
  chex.assert_trees_all_equal(params, ref.params)
  chex.assert_trees_all_equal(batch_stats, ref.batch_stats)
  chex.assert_trees_all_equal(loss, ref_loss)
  assert not all(
      jnp.array_equal(a, b) for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(state.params))
  )  # it did move
