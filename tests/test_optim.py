"""The optax chain gives exactly the papers' update, and schedules switch where they should."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from svag_jax import optim, schedules

PARAMS = {'a': jnp.array([1.0, -2.0, 3.0]), 'b': jnp.array([[0.5, 0.25]])}
GRADS = {'a': jnp.array([0.1, 0.2, -0.3]), 'b': jnp.array([[-1.0, 2.0]])}


def test_one_step_matches_hand_formula():
  lr, wd = 0.1, 0.1
  tx = optim.sgd(lr, wd)
  updates, _ = tx.update(GRADS, tx.init(PARAMS), PARAMS)
  new = optax.apply_updates(PARAMS, updates)
  expected = jax.tree.map(lambda w, g: w - lr * (g + wd * w), PARAMS, GRADS)
  chex.assert_trees_all_equal(new, expected)  # bit for bit


def test_momentum_matches_pytorch_heavy_ball():
  lr, wd, beta = 0.05, 0.01, 0.9
  tx = optim.sgd(lr, wd, beta)
  state, w, v = tx.init(PARAMS), PARAMS, jax.tree.map(jnp.zeros_like, PARAMS)
  for t in range(3):
    g = jax.tree.map(lambda x: x * (t + 1), GRADS)
    updates, state = tx.update(g, state, w)
    v = jax.tree.map(lambda v, g, w: beta * v + (g + wd * w), v, g, w)
    expected = jax.tree.map(lambda w, v: w - lr * v, w, v)
    w = optax.apply_updates(w, updates)
    chex.assert_trees_all_close(w, expected, rtol=1e-6)


def test_schedules_switch_at_boundaries():
  spe = 10  # steps per epoch
  lr = schedules.from_epochs(0.4, ((2, 0.5), (4, 0.5)), spe)
  wd = schedules.from_epochs(0.1, ((3, 0.0),), spe)
  np.testing.assert_array_equal(lr.boundaries, [20, 40])
  np.testing.assert_allclose(lr.values, [0.4, 0.2, 0.1])
  got = [float(schedules.value_at(lr, jnp.int32(s))) for s in (0, 19, 20, 39, 40, 1000)]
  np.testing.assert_allclose(got, [0.4, 0.4, 0.2, 0.2, 0.1, 0.1], rtol=1e-7)
  tx = optim.sgd(
      functools.partial(schedules.value_at, lr), functools.partial(schedules.value_at, wd)
  )
  state, w = tx.init(PARAMS), PARAMS
  zero = jax.tree.map(jnp.zeros_like, GRADS)
  for step in range(31):
    updates, state = tx.update(zero, state, w)
    eta, lam = (0.4 if step < 20 else 0.2), (0.1 if step < 30 else 0.0)
    # with zero gradient the step is exactly w <- w - eta * lam * w
    chex.assert_trees_all_close(updates, jax.tree.map(lambda x: -eta * lam * x, w), rtol=1e-6)
    w = optax.apply_updates(w, updates)


def test_named_schedules():
  assert schedules.step_decay(0.1) == (pytest.approx(0.4), ((40, 0.5), (80, 0.5)))
  assert schedules.then(schedules.const(0.1), 120, 0.1) == (0.1, ((120, 0.1),))
  s = schedules.from_epochs(*schedules.step_decay(0.1), steps_per_epoch=1, num_boundaries=4)
  np.testing.assert_allclose(s.values, [0.4, 0.2, 0.1, 0.1, 0.1], rtol=1e-7)
  assert s.boundaries[-1] == np.iinfo(np.int32).max


@pytest.mark.parametrize('momentum', [0.0, 0.9])
def test_chain_under_jit_and_vmap(momentum):
  lrs = jnp.array([0.1, 0.2])

  def step(lr, params, grads):
    tx = optim.sgd(lr, 0.1, momentum)
    updates, state = tx.update(grads, tx.init(params), params)
    return optax.apply_updates(params, updates), state

  stacked = jax.tree.map(lambda x: jnp.stack([x, x]), (PARAMS, GRADS))
  new, state = jax.jit(jax.vmap(step))(lrs, *stacked)
  for i in range(2):
    single, single_state = step(float(lrs[i]), PARAMS, GRADS)
    chex.assert_trees_all_close(jax.tree.map(lambda x: x[i], new), single, rtol=1e-6)
    chex.assert_trees_all_equal_structs(jax.tree.map(lambda x: x[i], state), single_state)
  chex.assert_trees_all_equal_dtypes(jax.tree.map(lambda x: x[0], new), PARAMS)


def test_45_momentum_steps_with_both_schedules_match_the_hand_recursion_bit_for_bit():
  """optax's add_decayed_weights (with a schedule and its own count) inside `optim.sgd` is the
  recursion v <- beta v + (g + lambda_t w), w <- w - eta_t v exactly, over many steps."""
  spe, beta = 5, 0.9
  lr = schedules.from_epochs(0.2, ((3, 0.5), (6, 0.1)), spe)
  wd = schedules.from_epochs(0.05, ((4, 0.0),), spe)
  lr_t, wd_t = functools.partial(schedules.value_at, lr), functools.partial(schedules.value_at, wd)
  tx = optim.sgd(lr_t, wd_t, beta)
  state, w = tx.init(PARAMS), PARAMS
  ref_w, ref_v = PARAMS, jax.tree.map(jnp.zeros_like, PARAMS)
  for t in range(45):
    g = jax.tree.map(lambda x: jnp.sin(x * (t + 1)), GRADS)
    updates, state = tx.update(g, state, w)
    w = optax.apply_updates(w, updates)
    eta, lam = lr_t(jnp.int32(t)), wd_t(jnp.int32(t))
    ref_v = jax.tree.map(lambda v, g, w: g + lam * w + beta * v, ref_v, g, ref_w)
    ref_w = jax.tree.map(lambda w, v: w + (-eta) * v, ref_w, ref_v)
    chex.assert_trees_all_equal(w, ref_w)
  assert int(state[0].count) == 45  # the WD schedule's own count


def test_clip_by_global_norm_after_svag_matches_a_hand_computation():
  """The documented place for clipping: after svag(l) (on c1 g1 + c2 g2), before sgd."""
  l, clip, lr, wd = 4, 0.5, 0.1, 0.01
  c1, c2 = optim.svag_coefficients(l)
  stacked = jax.tree.map(lambda g: jnp.stack([g, -0.5 * g + 0.1]), GRADS)
  tx = optax.chain(optim.svag(l), optax.clip_by_global_norm(clip), optim.sgd(lr / l, wd))
  updates, _ = tx.update(stacked, tx.init(PARAMS), PARAMS)
  combined = jax.tree.map(lambda g: c1 * g[0] + c2 * g[1], stacked)
  norm = np.sqrt(sum(np.sum(np.asarray(g, np.float64) ** 2) for g in jax.tree.leaves(combined)))
  assert norm > clip  # the case where clipping acts
  expected = jax.tree.map(
      lambda g, w: -(lr / l) * (np.asarray(g) * clip / norm + wd * np.asarray(w)), combined, PARAMS
  )
  chex.assert_trees_all_close(updates, expected, rtol=1e-6)
