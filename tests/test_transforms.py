"""One common suite over every transform of svag_jax.optim: jit == eager, vmap == a loop over
trials, state structure / shapes / dtypes stable across updates, updates keep the params' dtype,
no retracing; plus the noise moments of add_isotropic_noise, checked statistically.
"""

import functools
from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from svag_jax import optim
from tests.helpers import most_optimizations_disabled

KEY = jax.random.key(42)


@pytest.fixture(autouse=True, scope='module')
def _fast_compiles():
  """These programs are tiny and XLA's optimisation passes dominate their cost."""
  with most_optimizations_disabled():
    yield


def _wd_schedule(count):
  return 0.1 * 0.5 ** jnp.minimum(count, 3).astype(jnp.float32)


def _lr_schedule(count):
  return jnp.where(count < 2, 0.1, 0.01)


# name -> (factory(key) -> transform, whether its input gradients are stacked [2, ...] for SVAG)
TRANSFORMS: dict[str, tuple[Callable[[jax.Array], optax.GradientTransformation], bool]] = {
    'coupled_wd': (lambda key: optim.add_coupled_weight_decay(0.1), False),
    'coupled_wd_schedule': (lambda key: optim.add_coupled_weight_decay(_wd_schedule), False),
    'sgd': (lambda key: optim.sgd(0.1, 0.01), False),
    'sgd_momentum_schedules': (lambda key: optim.sgd(_lr_schedule, _wd_schedule, 0.9), False),
    'svag_1': (lambda key: optim.svag(1), True),
    'svag_4': (lambda key: optim.svag(4), True),
    'svag_sgd': (lambda key: optax.chain(optim.svag(8), optim.sgd(0.1 / 8, 0.01)), True),
    'isotropic_noise': (lambda key: optim.add_isotropic_noise(0.1, key), False),
    'isotropic_noise_schedule': (
        lambda key: optim.add_isotropic_noise(lambda c: 0.1 / (1.0 + c), key),
        False,
    ),
    'noisy_gd': (
        lambda key: optax.chain(optim.add_isotropic_noise(0.3, key), optim.sgd(0.1, 0.01)),
        False,
    ),
}
CASES = [(name, dtype) for name in TRANSFORMS for dtype in ('float32', 'bfloat16')]


def _params(dtype, seed=0):
  rng = np.random.default_rng(seed)
  return {
      'conv': {'kernel': jnp.asarray(rng.normal(size=(3, 3, 2, 4)), dtype)},
      'dense': jnp.asarray(rng.normal(size=(5,)), dtype),
  }


@functools.partial(jax.jit, static_argnums=(1, 3))
def _grads(params, stacked, step, seed=0):
  def one(p, j):
    k = jax.random.fold_in(jax.random.key(100 + seed), 7 * step + j)
    return jax.random.normal(k, p.shape).astype(p.dtype)

  if stacked:
    return jax.tree.map(lambda p: jnp.stack([one(p, 0), one(p, 1)]), params)
  return jax.tree.map(lambda p: one(p, 0), params)


def _run(tx, params, stacked, num_steps, update_fn=None, seed=0):
  update_fn = update_fn or tx.update
  state = tx.init(params)
  states, all_updates = [state], []
  for t in range(num_steps):
    updates, state = update_fn(_grads(params, stacked, t, seed), state, params)
    params = optax.apply_updates(params, updates)
    states.append(state)
    all_updates.append(updates)
  return params, states, all_updates


@pytest.mark.parametrize('name', list(TRANSFORMS))
def test_jit_matches_eager_without_retracing(name):
  factory, stacked = TRANSFORMS[name]
  tx = factory(KEY)
  params = _params('float32')
  eager, _, _ = _run(tx, params, stacked, 2)
  chex.clear_trace_counter()  # counts are per function code, shared by parametrized cases
  update = jax.jit(chex.assert_max_traces(tx.update, n=1))
  jitted, _, _ = _run(tx, params, stacked, 2, update_fn=update)
  _run(tx, params, stacked, 3, update_fn=update)  # new values, same shapes: still one trace
  chex.assert_trees_all_close(jitted, eager, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('name,dtype', CASES)
def test_state_and_update_structure_dtype_stable(name, dtype):
  factory, stacked = TRANSFORMS[name]
  tx = factory(KEY)
  params = _params(dtype)
  final, states, updates = _run(tx, params, stacked, 3, update_fn=jax.jit(tx.update))
  for state in states[1:]:
    chex.assert_trees_all_equal_structs(state, states[0])
    chex.assert_trees_all_equal_shapes_and_dtypes(state, states[0])
  for u in updates:
    chex.assert_trees_all_equal_shapes_and_dtypes(u, params)
  chex.assert_trees_all_equal_shapes_and_dtypes(final, params)
  chex.assert_tree_all_finite(final)


@pytest.mark.parametrize('name', list(TRANSFORMS))
def test_vmap_over_trials_matches_a_loop(name):
  factory, stacked = TRANSFORMS[name]
  num_trials = 3
  keys = jax.random.split(KEY, num_trials)
  params = [_params('float32', seed=s) for s in range(num_trials)]

  def trial(key, p, g):  # the transform is built inside: per-trial keys may be traced
    tx = factory(key)
    state = tx.init(p)
    updates, state = tx.update(g, state, p)
    updates, state = tx.update(g, state, optax.apply_updates(p, updates))
    return updates, state

  grads = [_grads(p, stacked, 0, seed=s) for s, p in enumerate(params)]
  stack = lambda trees: jax.tree.map(lambda *xs: jnp.stack(xs), *trees)

  @jax.jit
  def vmapped_and_looped(keys, params, grads):  # one program: fewer compiles
    looped = [
        trial(keys[i], *jax.tree.map(lambda x: x[i], (params, grads))) for i in range(num_trials)
    ]
    return jax.vmap(trial)(keys, params, grads), stack(looped)

  (v_updates, v_state), (l_updates, l_state) = vmapped_and_looped(keys, stack(params), stack(grads))
  chex.assert_trees_all_close(v_updates, l_updates, rtol=1e-6, atol=1e-7)
  chex.assert_trees_all_equal_structs(v_state, l_state)
  chex.assert_trees_all_equal_shapes_and_dtypes(v_state, l_state)
  if name.startswith('isotropic'):  # each trial draws its own noise from its own key
    assert not np.allclose(v_updates['dense'][0], v_updates['dense'][1])


def test_coupled_weight_decay_schedule_keeps_dtype():
  params = {'w': jnp.array([1.0, -2.0], jnp.bfloat16)}
  tx = optim.add_coupled_weight_decay(_wd_schedule)  # the schedule returns float32
  updates, _ = tx.update(jax.tree.map(jnp.zeros_like, params), tx.init(params), params)
  assert updates['w'].dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(updates['w'], np.float32), [0.1, -0.2], rtol=1e-2)


# ---- add_isotropic_noise: moments of the noise ----

SCALE, SIZE, STEPS = 0.3, 2000, 100  # 200k noise samples per leaf


@pytest.fixture(scope='module')
def noise_samples():
  """Noise of STEPS consecutive updates on zero gradients: [STEPS, SIZE] for each of two leaves."""
  params = {'a': jnp.zeros((SIZE,)), 'b': jnp.zeros((SIZE // 2, 2))}
  tx = optim.add_isotropic_noise(SCALE, KEY)

  def body(state, _):
    updates, state = tx.update(params, state)
    return state, (updates['a'], updates['b'].reshape(-1))

  _, (a, b) = jax.jit(lambda s: jax.lax.scan(body, s, None, length=STEPS))(tx.init(params))
  return np.asarray(a, np.float64), np.asarray(b, np.float64)


def test_noise_mean_and_variance(noise_samples):
  """Mean 0 within 5 SE = 5 scale / sqrt(n); variance scale^2 within 5 SE = 5 scale^2 sqrt(2/n)
  (a 5% error in the scale, i.e. 10% in the variance, is ~16 SE); Gaussian 4th moment 3 scale^4
  within 5 SE = 5 scale^4 sqrt(96 / n)."""
  for x in noise_samples:
    n = x.size
    assert abs(x.mean()) < 5 * SCALE / np.sqrt(n)
    assert abs(x.var() - SCALE**2) < 5 * SCALE**2 * np.sqrt(2 / n)
    assert abs(np.mean(x**4) - 3 * SCALE**4) < 5 * SCALE**4 * np.sqrt(96 / n)


def test_noise_is_independent_across_steps_and_leaves(noise_samples):
  """Correlations across consecutive updates, across coordinates and across leaves are 0 within
  5 / sqrt(n) (the SE of a sample correlation of independent variables)."""
  a, b = noise_samples
  lag = np.mean(a[1:] * a[:-1]) / SCALE**2
  assert abs(lag) < 5 / np.sqrt(a[1:].size)
  coords = np.mean(a[:, 1:] * a[:, :-1]) / SCALE**2
  assert abs(coords) < 5 / np.sqrt(a[:, 1:].size)
  leaves = np.mean(a * b) / SCALE**2
  assert abs(leaves) < 5 / np.sqrt(a.size)


def test_noise_is_reproducible_and_keyed():
  params = {'a': jnp.zeros((16,))}

  def first_two(key):
    tx = optim.add_isotropic_noise(1.0, key)
    u1, s = tx.update(params, tx.init(params))
    u2, s = tx.update(params, s)
    return u1['a'], u2['a'], s

  u1, u2, s = first_two(jax.random.key(0))
  v1, v2, _ = first_two(jax.random.key(0))
  w1, _, _ = first_two(jax.random.key(1))
  chex.assert_trees_all_equal((u1, u2), (v1, v2))
  assert not np.allclose(u1, u2) and not np.allclose(u1, w1)
  assert int(s.count) == 2
  # the noise of update t is fold_in(key, t): a resumed run (state restored) draws the same
  tx = optim.add_isotropic_noise(1.0, jax.random.key(0))
  resumed, _ = tx.update(params, optim.IsotropicNoiseState(jnp.int32(1), jax.random.key(0)))
  chex.assert_trees_all_equal(resumed['a'], u2)
