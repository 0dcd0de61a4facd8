"""G/N estimators: Ĝ and N̂ are unbiased for ||grad L||^2 and Tr Sigma_B; the estimate of a trial
uses training-mode BatchNorm, no WD, and leaves the trial's state untouched.

Known answers: least squares on N = 8 fixed examples at a fixed w; per-example gradients are
closed-form, so G = ||grad L||^2 and N = Tr Sigma_1 / B (batches of B = 4 with replacement) are
exact. Averages over R independent estimates must be within 5 Monte-Carlo SE (sample std / sqrt(R))
of them; power checks make sure the biased variants (||ḡ||^2 without - N̂/K, or dividing by K
instead of K - 1) would be off by more than 8 SE.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from svag_jax import metrics, models, schedules, schema
from svag_jax.data import TrainData, normalize
from svag_jax.train import Trainer

N, D, B = 8, 3, 4
R = 1 << 15  # independent estimates


def _problem(near_optimum):
  rng = np.random.default_rng(0)
  x = np.array([1.0, 0.5, -0.5]) + 0.3 * rng.normal(size=(N, D))
  y = 0.3 * rng.normal(size=(N,))
  w = np.array([1.5, -1.0, 0.5])
  if near_optimum:  # G << N: the regime where the LSR breaks late
    w = np.linalg.lstsq(x, y, rcond=None)[0] + 0.02
  g = (x @ w - y)[:, None] * x
  mean = g.mean(0)
  trace_sigma1 = np.sum(np.square(g - mean)) / N
  params = {'w': jnp.asarray(w, jnp.float32)}
  return (
      jnp.asarray(x, jnp.float32),
      jnp.asarray(y, jnp.float32),
      params,
      (float(mean @ mean), trace_sigma1 / B),
  )


def _loss_fn(params, x, y, weights=None):
  per_example = 0.5 * jnp.square(x @ params['w'] - y)
  return (jnp.mean(per_example) if weights is None else jnp.sum(weights * per_example)), {}


@pytest.mark.parametrize('k', [2, 8])
@pytest.mark.parametrize('near_optimum', [False, True])
def test_unbiased(k, near_optimum):
  x, y, params, (g_true, n_true) = _problem(near_optimum)

  def estimate(key):
    idx = jax.random.randint(key, (k, B), 0, N)
    grads, _ = metrics.batch_gradients(_loss_fn, params, x[idx], y[idx])
    out = metrics.gradient_noise(grads)
    return out['G'], out['N']

  g_hat, n_hat = (
      np.asarray(a, np.float64)
      for a in jax.jit(jax.vmap(estimate))(jax.random.split(jax.random.key(k), R))
  )
  se_g, se_n = g_hat.std(ddof=1) / np.sqrt(R), n_hat.std(ddof=1) / np.sqrt(R)
  assert abs(g_hat.mean() - g_true) < 5 * se_g, (g_hat.mean(), g_true, se_g)
  assert abs(n_hat.mean() - n_true) < 5 * se_n, (n_hat.mean(), n_true, se_n)
  # power: forgetting -N̂/K in Ĝ, or dividing by K instead of K - 1 in N̂, biases by N/K
  assert n_true / k > 8 * se_g and n_true / k > 8 * se_n


def test_hand_values():
  grads = {
      'a': jnp.array([[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]]),
      'b': jnp.array([[1.0], [0.0], [2.0]]),
  }
  g = np.concatenate([np.asarray(grads['a']), np.asarray(grads['b'])], 1)
  mean = g.mean(0)
  n_hat = np.sum(np.square(g - mean)) / 2
  g_hat = mean @ mean - n_hat / 3
  out = jax.jit(metrics.gradient_noise)(grads)
  np.testing.assert_allclose(out['N'], n_hat, rtol=1e-6)
  np.testing.assert_allclose(out['G'], g_hat, rtol=1e-6)
  np.testing.assert_allclose(out['NSR'], n_hat / g_hat, rtol=1e-6)
  with pytest.raises(ValueError, match='K >= 2'):
    metrics.gradient_noise({'a': jnp.ones((1, 3))})


def test_trial_estimate_uses_train_mode_no_wd_and_leaves_state_untouched(fast_compiles):
  cfg = schema.defaults().model
  cfg.update(name='mlp', widths=(8,), norm='batch')
  rng = np.random.default_rng(1)
  n, k, b = 64, 3, 8
  data = TrainData(
      images=jnp.asarray(rng.integers(0, 256, (n, 4, 4, 1)), jnp.uint8),
      labels=jnp.asarray(rng.integers(0, 4, (n,)), jnp.int32),
      mean=jnp.array([0.5]),
      std=jnp.array([0.25]),
  )
  trainer = Trainer(model=models.build(cfg, 4), batch_size=b, num_train=n)
  sched = schedules.Schedules(schedules.from_epochs(0.1, (), 8), schedules.from_epochs(0.5, (), 8))
  state = trainer.init(jax.random.key(0), sched, data)
  state, _ = jax.jit(trainer.train_step)(state, data)  # non-trivial running statistics
  before = jax.tree.map(np.array, (state.params, state.batch_stats))  # host copies
  idx = jax.random.randint(jax.random.key(5), (k, b), 0, n)
  images, labels = normalize(data.images[idx], data.mean, data.std), data.labels[idx]

  def loss_fn(p, x, y, weights=None):
    del weights
    return trainer.loss(p, state, x, y, True)

  @jax.jit
  def run(params):
    out = metrics.gradient_noise_metrics(loss_fn, params, images, labels)
    grads, losses = metrics.batch_gradients(loss_fn, params, images, labels, unroll=True)
    ref = [
        jax.value_and_grad(lambda p: trainer.loss(p, state, images[j], labels[j], True)[0])(params)
        for j in range(k)
    ]  # training-mode BatchNorm, data loss only (no lambda w)
    eval_grad = jax.grad(lambda p: trainer.loss(p, state, images[0], labels[0], False)[0])(params)
    return out, grads, losses, ref, eval_grad

  out, grads, losses, ref, eval_grad = run(state.params)
  assert set(out) == {'G', 'N', 'NSR', 'gn_loss'}
  assert float(out['N']) > 0
  chex.assert_trees_all_equal((state.params, state.batch_stats), before)
  assert jax.tree.leaves(state.batch_stats)
  for j in range(k):
    chex.assert_trees_all_close(
        jax.tree.map(lambda g: g[j], grads), ref[j][1], rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(losses[j], ref[j][0], rtol=1e-6)
  diff = jax.tree.map(lambda a, e: float(jnp.max(jnp.abs(a[0] - e))), grads, eval_grad)
  assert max(jax.tree.leaves(diff)) > 1e-4  # eval-mode statistics would give another gradient
