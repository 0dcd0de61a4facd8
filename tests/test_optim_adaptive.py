"""RMSprop, Adam (L2) and AdamW as optax chains: the PyTorch recursions by hand over many steps with
both schedules, SVAG(1) = the optimizer bit for bit, and `adaptive_svag` = svag + the rescaled
optimizer."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from svag_jax import optim, scaling, schedules

PARAMS = {'a': jnp.array([1.0, -2.0, 3.0]), 'b': jnp.array([[0.5, 0.25]])}
GRADS = {'a': jnp.array([0.1, 0.2, -0.3]), 'b': jnp.array([[-1.0, 2.0]])}


def _hand(name, lr_t, wd_t, beta1, beta2, eps, steps):
  """The PyTorch recursions (torch.optim.Adam with weight_decay / AdamW; RMSprop as Adam with
  beta1 = 0), in float64."""
  w = {k: np.asarray(v, np.float64) for k, v in PARAMS.items()}
  m = {k: np.zeros_like(v) for k, v in w.items()}
  v = {k: np.zeros_like(x) for k, x in w.items()}
  b1 = 0.0 if name == 'rmsprop' else beta1
  out = []
  for t in range(steps):
    eta, lam = float(lr_t(jnp.int32(t))), float(wd_t(jnp.int32(t)))
    for k in w:
      g = np.sin(np.asarray(GRADS[k], np.float64) * (t + 1))
      h = g if name == 'adamw' else g + lam * w[k]
      m[k] = b1 * m[k] + (1 - b1) * h
      v[k] = beta2 * v[k] + (1 - beta2) * h * h
      m_hat = m[k] / (1 - b1 ** (t + 1)) if b1 else m[k]
      u = m_hat / (np.sqrt(v[k] / (1 - beta2 ** (t + 1))) + eps)
      w[k] = w[k] - eta * (u + (lam * w[k] if name == 'adamw' else 0.0))
    out.append({k: x.copy() for k, x in w.items()})
  return out


@pytest.mark.parametrize('name', ['rmsprop', 'adam', 'adamw'])
def test_40_steps_with_both_schedules_match_the_pytorch_recursion(name):
  spe, beta1, beta2, eps = 5, 0.8, 0.95, 1e-3
  lr = schedules.from_epochs(0.05, ((3, 0.5), (6, 0.1)), spe)
  wd = schedules.from_epochs(0.1, ((4, 0.0),), spe)
  lr_t, wd_t = functools.partial(schedules.value_at, lr), functools.partial(schedules.value_at, wd)
  tx = optim.make(name, lr_t, wd_t, beta1=beta1, beta2=beta2, eps=eps)
  state, w = tx.init(PARAMS), PARAMS
  expected = _hand(name, lr_t, wd_t, beta1, beta2, eps, 40)
  for t in range(40):
    g = jax.tree.map(lambda x: jnp.sin(x * (t + 1)), GRADS)
    updates, state = tx.update(g, state, w)
    w = optax.apply_updates(w, updates)
    chex.assert_trees_all_close(w, expected[t], rtol=2e-5, atol=1e-6)
  counts = [int(c) for c in jax.tree.leaves(state) if getattr(c, 'dtype', None) == jnp.int32]
  assert counts and all(c == 40 for c in counts)  # every count (WD schedule, moments, LR) = steps


def test_adamw_is_optax_adamw_and_adam_with_l2_differs():
  tx, ref = optim.adamw(0.01, 0.1), optax.adamw(0.01, weight_decay=0.1)
  updates, _ = tx.update(GRADS, tx.init(PARAMS), PARAMS)
  expected, _ = ref.update(GRADS, ref.init(PARAMS), PARAMS)
  chex.assert_trees_all_close(updates, expected, rtol=1e-6)
  coupled, _ = optim.adam(0.01, 0.1).update(GRADS, optim.adam(0.01, 0.1).init(PARAMS), PARAMS)
  assert not np.allclose(coupled['a'], updates['a'])


@pytest.mark.parametrize('name', ['rmsprop', 'adam', 'adamw'])
def test_adaptive_svag_l1_is_the_optimizer_bit_for_bit(name):
  g2 = jax.tree.map(lambda g: jnp.stack([g, jnp.full_like(g, jnp.nan)]), GRADS)
  tx = optim.adaptive_svag(1, name, 0.01, 0.1, 0.9, 0.99, 1e-6)
  ref = optim.make(name, 0.01, 0.1, beta1=0.9, beta2=0.99, eps=1e-6)
  s, r, w, wr = tx.init(PARAMS), ref.init(PARAMS), PARAMS, PARAMS
  for _ in range(3):
    u, s = jax.jit(tx.update)(g2, s, w)
    ur, r = jax.jit(ref.update)(GRADS, r, wr)
    w, wr = optax.apply_updates(w, u), optax.apply_updates(wr, ur)
    chex.assert_trees_all_equal(w, wr)


@pytest.mark.parametrize('name', ['rmsprop', 'adam', 'adamw'])
def test_adaptive_svag_is_svag_into_the_rescaled_optimizer(name):
  l, lr, wd, b1, b2, eps = 4, 0.01, 0.1, 0.9, 0.99, 1e-6
  g2 = jax.tree.map(lambda g: jnp.stack([g, -0.5 * g + 0.1]), GRADS)
  s = scaling.svag(scaling.Settings(lr, wd, b1, b2, eps), l, name)
  ref = optax.chain(
      optim.svag(l), optim.make(name, s.lr, s.wd, beta1=s.beta1, beta2=s.beta2, eps=s.eps)
  )
  tx = optim.adaptive_svag(l, name, lr, wd, b1, b2, eps)
  got, _ = tx.update(g2, tx.init(PARAMS), PARAMS)
  want, _ = ref.update(g2, ref.init(PARAMS), PARAMS)
  chex.assert_trees_all_close(got, want, rtol=1e-6)
  assert s.lr == pytest.approx(lr / 2) and s.eps == pytest.approx(2 * eps)
  assert s.beta2 == pytest.approx(1 - (1 - b2) / 4)
  assert s.wd == pytest.approx(wd / 2 if name == 'adamw' else wd)
  with pytest.raises(ValueError, match='svag \\+ sgd'):
    optim.adaptive_svag(2, 'sgd', lr, wd)


def test_sgd_through_make_is_optim_sgd():
  a, b = optim.make('sgd', 0.1, 0.01, momentum=0.9), optim.sgd(0.1, 0.01, 0.9)
  ua, _ = a.update(GRADS, a.init(PARAMS), PARAMS)
  ub, _ = b.update(GRADS, b.init(PARAMS), PARAMS)
  chex.assert_trees_all_equal(ua, ub)
  with pytest.raises(ValueError, match='unknown optimizer'):
    optim.make('lion', 0.1, 0.0)
