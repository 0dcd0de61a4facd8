"""NGD and GD oracles: the NGD noise is exactly N(0, Sigma_1 / B); GD is the full-batch gradient;
chunking changes nothing; batch-dependent (BatchNorm) models are refused.

Sigma_1 = (1/N) sum_i (g_i - grad L)(g_i - grad L)^T is computed from explicit per-example gradients
g_i (jax.vmap of jax.grad over single examples), on two tiny models: a 3-parameter linear
regression and a GroupNorm MLP (4 inputs, 6 hidden units in 2 groups: 24 trainable parameters).
Tolerance of the statistical checks: every entry of the mean and of
the covariance within 5 Monte-Carlo standard errors (SE = sample std of the per-draw quantity /
sqrt(M)), with power checks that a 10% error on any diagonal entry of the covariance, or the extra
grad L grad L^T / B of uncentred weights, would exceed 8 SE.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from svag_jax import models, oracles, schema
from tests import numerics

N, B = 16, 4
M = 1 << 15  # NGD draws
# Two programs computing the same gradient (chunked / vmapped / unbatched) each carry the rounding
# of the MLP's forward and backward reductions (fan-in 4, GroupNorm groups of 3, head 6, a sum over
# the N examples), relative to max |entry| (tests/numerics.py); the linear problem has fewer.
TOL = 2 * numerics.chain_tol(2 * [4, 3, 3, 6, N] + [N])


def _linear():
  rng = np.random.default_rng(0)
  x = jnp.asarray(np.array([1.0, 0.5, -0.5]) + 0.3 * rng.normal(size=(N, 3)), jnp.float32)
  y = jnp.asarray(0.3 * rng.normal(size=(N,)), jnp.float32)
  params = {'w': jnp.array([1.5, -1.0, 0.5])}

  def per_example(params, x, y):
    return 0.5 * jnp.square(x @ params['w'] - y)

  return per_example, params, x, y


def _mlp(norm='group'):
  cfg = schema.defaults().model
  cfg.update(name='mlp', widths=(6,), norm=norm, num_groups=2)
  model = models.build(cfg, num_classes=3)
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(N, 2, 2, 1)), jnp.float32)
  y = jnp.asarray(rng.integers(0, 3, (N,)), jnp.int32)
  variables = model.init({'params': jax.random.key(0)}, x[:1], train=False)
  params, rest = variables['params'], {k: v for k, v in variables.items() if k != 'params'}

  def per_example(params, x, y):
    logits, updates = model.apply(
        {'params': params, **rest}, x, train=True, mutable=['batch_stats']
    )
    return -jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1)[:, 0], updates

  return per_example, params, x, y


def _loss_fn(per_example, with_aux=False):
  """The oracles' interface from a per-example loss [n] (and, for the MLP, its model updates)."""

  def loss_fn(params, x, y, weights=None):
    out = per_example(params, x, y)
    losses, aux = out if with_aux else (out, {})
    return (jnp.mean(losses) if weights is None else jnp.sum(weights * losses)), dict(aux)

  return loss_fn


@functools.cache
def _problem(name):
  per_example, params, x, y = _linear() if name == 'linear' else _mlp()
  loss_fn = _loss_fn(per_example, with_aux=name == 'mlp')
  flat, unravel = ravel_pytree(params)

  def single(flat_w, xi, yi):
    return loss_fn(unravel(flat_w), xi[None], yi[None])[0]

  g = np.asarray(jax.vmap(jax.grad(single), in_axes=(None, 0, 0))(flat, x, y), np.float64)
  mean = g.mean(0)
  sigma1 = (g - mean).T @ (g - mean) / N
  return loss_fn, params, x, y, unravel, mean, sigma1


def _z(samples, expected):
  se = samples.std(0, ddof=1) / np.sqrt(len(samples))
  return np.abs(samples.mean(0) - expected) / se, se


def _z_second_moment(eps, expected):
  """z-scores of the entries of mean_m eps_m eps_m^T against `expected` ([M, P] -> [P, P]),
  without forming the [M, P, P] products."""
  m = len(eps)
  mean = eps.T @ eps / m
  mean_sq = np.square(eps).T @ np.square(eps) / m
  se = np.sqrt((mean_sq - np.square(mean)) / (m - 1))
  return np.abs(mean - expected) / se, se


@pytest.mark.parametrize('name', ['linear', 'mlp'])
def test_ngd_noise_is_sigma1_over_b(name):
  loss_fn, params, x, y, _, grad, sigma1 = _problem(name)

  def draw(key):
    g, _ = oracles.ngd(loss_fn, params, x, y, key, batch_size=B, chunk_size=5)
    return ravel_pytree(g)[0]

  g = np.asarray(jax.jit(jax.vmap(draw))(jax.random.split(jax.random.key(3), M)), np.float64)
  z_mean, _ = _z(g, grad)
  assert z_mean.max() < 5, z_mean
  eps = g - grad  # the exact mean is known: Cov eps = E eps eps^T, no centring bias
  expected = sigma1 / B
  z_cov, se_cov = _z_second_moment(eps, expected)
  assert z_cov.max() < 5, (z_cov.max(), np.unravel_index(z_cov.argmax(), z_cov.shape))
  # power: a 10% error on any diagonal entry, and the error of uncentred weights
  # (an extra grad L grad L^T / B) on some entry, would exceed 8 SE
  assert np.all(0.1 * np.diag(expected) > 8 * np.diag(se_cov))
  assert np.max(np.abs(np.outer(grad, grad)) / B / se_cov) > 8


@pytest.mark.parametrize('name', ['linear', 'mlp'])
def test_gd_is_the_full_batch_gradient(name, fast_compiles):
  loss_fn, params, x, y, unravel, grad, _ = _problem(name)
  exact = jax.grad(lambda p: loss_fn(p, x, y)[0])(params)  # one pass over all N
  for chunk in (1, 5, 100):  # 100 > N: one pass
    g, (loss, aux) = jax.jit(functools.partial(oracles.gd, loss_fn, chunk_size=chunk))(params, x, y)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(exact)):
      numerics.assert_close(a, b, TOL)
    numerics.assert_close(ravel_pytree(g)[0], grad, TOL)
    numerics.assert_close(loss, loss_fn(params, x, y)[0], TOL)
    assert aux == {}


@pytest.mark.parametrize('name', ['linear', 'mlp'])
def test_chunking_does_not_change_ngd(name, fast_compiles):
  loss_fn, params, x, y, *_ = _problem(name)
  key = jax.random.key(11)
  outs = [
      oracles.ngd(loss_fn, params, x, y, key, B, chunk, unroll=unroll)
      for chunk, unroll in ((1, 1), (3, True), (5, 2), (N, 1))
  ]
  for g, (loss, _) in outs[1:]:
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(outs[0][0])):
      numerics.assert_close(a, b, TOL)
    numerics.assert_close(loss, outs[0][1][0], TOL)


def test_ngd_weights():
  w = oracles.ngd_weights(jax.random.key(0), 1000, 8)
  assert w.shape == (1000,) and w.dtype == jnp.float32
  # 1000 terms, plus the 1000-term mean z̄ they were centred with (tests/numerics.py)
  np.testing.assert_allclose(jnp.sum(w), 1.0, rtol=2 * numerics.chain_tol([1000]))
  # fresh z per key; (w - 1/N) sqrt(N B) is the centred standard normal z - z̄
  z = (w - 1e-3) * np.sqrt(1000 * 8)
  assert abs(float(jnp.std(z)) - 1) < 0.1
  assert not np.allclose(w, oracles.ngd_weights(jax.random.key(1), 1000, 8))


@pytest.mark.parametrize('oracle', ['ngd', 'gd'])
def test_batchnorm_is_refused(oracle):
  per_example, params, x, y = _mlp(norm='batch')
  loss_fn = _loss_fn(per_example, with_aux=True)
  call = {
      'ngd': lambda: oracles.ngd(loss_fn, params, x, y, jax.random.key(0), B, 8),
      'gd': lambda: oracles.gd(loss_fn, params, x, y, 8),
  }[oracle]
  with pytest.raises(ValueError, match="BatchNorm.*norm = 'group' or 'layer'"):
    call()


def test_oracles_vmap_over_trials(fast_compiles):
  """Trials (a leading axis on params and keys; shared data) map like single calls."""
  loss_fn, params, x, y, *_ = _problem('linear')
  trials = jax.tree.map(lambda w: jnp.stack([w, 2 * w, -w]), params)
  keys = jax.random.split(jax.random.key(2), 3)

  def both(p, key):
    return (oracles.ngd(loss_fn, p, x, y, key, B, 5)[0], oracles.gd(loss_fn, p, x, y, 5)[0])

  mapped = jax.jit(jax.vmap(both))(trials, keys)
  for i in range(3):
    single = both(jax.tree.map(lambda w: w[i], trials), keys[i])
    for a, b in zip(jax.tree.leaves(mapped), jax.tree.leaves(single)):
      numerics.assert_close(a[i], b, TOL)
