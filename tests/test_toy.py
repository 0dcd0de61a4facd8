"""The 2-d scale-invariant toy L(x, y) = x^2 / (x^2 + y^2) (svag_jax/toy.py), its experiment
(svag_jax/toy_experiment.py) and run record.

Properties of the loss (scale invariance, <grad L, w> = 0, grad L(c w) = grad L(w) / c, the guard
at the origin), one GD + WD step against the hand formula, gradient flow against its closed form
|x/y|(t) = |x0/y0| exp(-2 t / ||w0||^2) (monotone, norm conserved), GD + WD's chaos (|x/y| not
monotone, nearby starts separate while GF keeps them together), the rate fit on a synthetic
exponential, config validation, and launch.toy + analysis.toy_chaos end to end.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from svag_jax import chaos, toy, toy_experiment
from svag_jax.checks import ConfigError
from svag_jax.configs import toy_chaos

_loss, _grad, _step = jax.jit(toy.loss), jax.jit(toy.grad), jax.jit(toy.gd_step)


def _points(n=64, seed=0):
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.normal(size=(n, 2)), jnp.float32)


def test_loss_is_scale_invariant_and_gradient_orthogonal():
  w = _points()
  loss, grad = jax.vmap(toy.loss), jax.vmap(toy.grad)
  for c in (1e-3, 0.5, 7.0, 1e3):
    np.testing.assert_allclose(loss(c * w), loss(w), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad(c * w), grad(w) / c, rtol=1e-4, atol=1e-6 / c)
  g = np.asarray(grad(w), np.float64)
  wn = np.asarray(w, np.float64)
  inner = np.sum(g * wn, axis=1)
  assert np.all(np.abs(inner) <= 1e-5 * np.linalg.norm(g, axis=1) * np.linalg.norm(wn, axis=1))
  # not a trivial function: the values span (0, 1) and the gradient is not 0
  assert float(loss(w).min()) < 0.1 and float(loss(w).max()) > 0.9
  assert float(np.abs(g).max()) > 0.1


def test_gradient_matches_hand_formula():
  w = _points(16, seed=1)
  x, y = w[:, 0], w[:, 1]
  r4 = (x * x + y * y) ** 2
  expected = jnp.stack([2 * x * y * y / r4, -2 * x * x * y / r4], axis=1)
  np.testing.assert_allclose(jax.vmap(toy.grad)(w), expected, rtol=1e-5, atol=1e-6)


def test_hessian_matches_hand_formula():
  # the Jacobian of a GD step (used for the Lyapunov exponent) needs exact second derivatives
  w = _points(8, seed=2)
  x, y = w[:, 0], w[:, 1]
  r6 = (x * x + y * y) ** 3
  hxx = 2 * y * y * (y * y - 3 * x * x) / r6
  hxy = 4 * x * y * (x * x - y * y) / r6
  hyy = 2 * x * x * (3 * y * y - x * x) / r6
  expected = jnp.stack([jnp.stack([hxx, hxy], -1), jnp.stack([hxy, hyy], -1)], -1)
  np.testing.assert_allclose(jax.vmap(jax.jacfwd(toy.grad))(w), expected, rtol=2e-4, atol=1e-5)
  jac = jax.vmap(jax.jacfwd(lambda v: toy.gd_step(v, 0.1, 0.1)))(w)
  np.testing.assert_allclose(jac, 0.99 * jnp.eye(2) - 0.1 * expected, rtol=2e-4, atol=1e-5)


def test_guard_at_and_near_the_origin():
  origin = jnp.zeros(2, jnp.float32)
  assert float(_loss(origin)) == 0.5
  np.testing.assert_array_equal(_grad(origin), [0.0, 0.0])
  np.testing.assert_array_equal(_step(origin, 0.1, 0.1), [0.0, 0.0])
  for w in (
      [1e-10, 2e-10],
      [0.0, 1e-18],
      [1e-18, 0.0],
      [1e-25, 1e-25],
      [1e-30, -1e-31],
      [1e-37, 3e-38],
      [1e-39, 0.0],
      [1e30, -2e30],
  ):
    w = jnp.asarray(w, jnp.float32)
    assert np.isfinite(float(_loss(w))), w
    assert np.all(np.isfinite(np.asarray(_grad(w)))), w
    assert np.all(np.isfinite(np.asarray(_step(w, 0.1, 0.1)))), w
  # just above the guard the exact values are kept: L = 1/5, grad = (2 x y^2, -2 x^2 y) / r^4
  w = jnp.asarray([1e-10, 2e-10], jnp.float32)
  assert float(_loss(w)) == pytest.approx(0.2, rel=1e-6)
  np.testing.assert_allclose(_grad(w), [0.32e10, -0.16e10], rtol=1e-5)


def test_one_gd_step_equals_hand_formula():
  # w = (0.6, 0.8): r = 1, grad L = (2 x y^2, -2 x^2 y) = (0.768, -0.576)
  w = jnp.asarray([0.6, 0.8], jnp.float32)
  lr, wd = 0.1, 0.1
  expected = [(1 - lr * wd) * 0.6 - lr * 0.768, (1 - lr * wd) * 0.8 + lr * 0.576]
  np.testing.assert_allclose(_step(w, lr, wd), expected, rtol=1e-6)
  np.testing.assert_allclose(expected, [0.5172, 0.8496], rtol=1e-12)
  traj = toy.gd_trajectories(w[None], lr, wd, 1)
  np.testing.assert_allclose(traj.w[1, 0], expected, rtol=1e-6)


def test_gradient_flow_matches_closed_form_and_is_monotone():
  with jax.enable_x64(True):
    starts = jnp.asarray([[1.0, 1.0], [0.3, -2.0], [-1.5, 0.5]], jnp.float64)
    dt, samples = 0.1, 300
    gf = toy.gradient_flow_trajectories(starts, dt, samples, substeps=20)
  t = dt * np.arange(samples + 1)
  for s in range(3):
    np.testing.assert_allclose(gf.ratio[:, s], toy.gradient_flow_ratio(starts[s], t), rtol=1e-8)
  np.testing.assert_allclose(
      gf.norm_sq, np.broadcast_to(gf.norm_sq[0], gf.norm_sq.shape), rtol=1e-9
  )
  np.testing.assert_array_equal(chaos.ratio_increases(gf.ratio), [0, 0, 0])
  assert np.all(gf.ratio[-1] < 1e-5 * gf.ratio[0])  # it really moved


def test_gd_with_wd_is_erratic_and_separates_nearby_starts():
  with jax.enable_x64(True):
    starts = toy.paired_starts(jax.random.key(0), (1.0, 1.0), 0.05, 1e-13, 6, jnp.float64)
    gd = toy.gd_trajectories(starts, 0.1, 0.1, 1600)
    gf = toy.gradient_flow_trajectories(starts, 0.1, 1600, substeps=10)
    tangent = chaos.tangent_exponents(starts[0::2], 0.1, 0.1, 1600, burn_in=300)
  # |x/y| of GD + WD goes up at hundreds of steps; GF's never
  assert np.all(chaos.ratio_increases(gd.ratio) > 500)
  assert np.all(chaos.ratio_increases(gf.ratio) == 0)
  # the effective LR eta / ||w||^2 passes 1: WD shrank the norm below eta
  assert np.all(gd.norm_sq.min(axis=0) < 0.1)
  gd_dist = chaos.direction_distance(gd.w)
  gf_dist = chaos.direction_distance(gf.w)
  assert np.all(gd_dist[-200:].max(axis=0) > 0.1)  # GD pairs end far apart ...
  assert np.all(gf_dist.max(axis=0) < 1e-11)  # ... GF pairs stay 1e-13 close
  onset = chaos.chaos_onset(gd.norm_sq)
  assert np.all((onset > 100) & (onset < 400))  # WD needs ~ln(20) / (2 eta lambda) steps
  fit = chaos.divergence_rates(gd_dist, np.maximum(onset[0::2], onset[1::2]), 0.1)
  assert np.all(np.isfinite(fit.rate)) and np.all(fit.rate > 0.01)
  assert np.all((tangent > 0.02) & (tangent < 0.06))  # positive Lyapunov exponent (~0.038)


def test_divergence_rates_on_an_exact_exponential():
  k = np.arange(301, dtype=float)
  d = np.stack([1e-9 * np.exp(0.2 * k), 1e-9 * np.exp(0.05 * k)], axis=1)
  d = np.minimum(d, 1.0)
  d[:10, 0] = 1.0  # a transient before the onset must be ignored
  fit = chaos.divergence_rates(d, onset=np.array([10, 0]), saturation=0.1)
  np.testing.assert_allclose(fit.rate, [0.2, 0.05], rtol=1e-9)
  np.testing.assert_array_equal(fit.start, [10, 0])
  assert fit.stop[0] == int(np.ceil(np.log(0.1 / 1e-9) / 0.2))
  assert fit.stop[1] == 300  # never saturates: fit to the end
  short = chaos.divergence_rates(d, onset=np.array([295, 295]), saturation=0.1)
  assert np.all(np.isnan(short.rate))


def test_chaos_onset():
  norm_sq = np.array([[4.0, 4.0], [3.0, 3.0], [2.0, 2.5], [2.5, 2.0], [1.0, 1.0]])
  np.testing.assert_array_equal(chaos.chaos_onset(norm_sq), [2, 4])


@pytest.mark.parametrize(
    'field, value, match',
    [
        ('center', (0.0, 0.0), 'origin'),
        ('lr', -0.1, r'config\.lr'),
        ('wd', 20.0, r'lr \* wd'),
        ('dtype', 'float16', 'float32, float64'),
        ('saturation', 3.0, 'at most 2'),
        ('steps', 0, r'config\.steps = 0: must be > 0'),
    ],
)
def test_validate_names_the_field(field, value, match):
  c = toy_chaos.get_config()
  c[field] = value
  with pytest.raises(ConfigError, match=match):
    toy_experiment.validate(c)


def test_validate_unknown_field_suggests():
  c = toy_chaos.get_config()
  c.unlock()
  c.num_pair = 3
  with pytest.raises(ConfigError, match="Did you mean 'num_pairs'"):
    toy_experiment.validate(c)


def test_float64_without_x64_is_refused():
  c = toy_chaos.get_config()
  c.steps, c.num_pairs = 10, 1
  with pytest.raises(ConfigError, match='enable_x64'):
    toy_experiment.simulate(c)


def test_launch_and_analysis_end_to_end(tmp_path, capsys):
  from svag_jax.analysis import toy_chaos as analysis
  from svag_jax.launch import toy as launch

  c = toy_chaos.get_config('cpu')
  c.steps, c.num_pairs, c.gf_substeps = 800, 4, 5
  status = launch.run(c, str(tmp_path))
  assert not jax.config.read('jax_enable_x64')  # float64 was enabled for the run only
  assert status['status'] == 'done'
  on_disk = json.loads((tmp_path / 'status.json').read_text())
  assert on_disk['status'] == 'done' and on_disk['gf_ratio_increases'] == 0
  assert on_disk['gd_ratio_increases'] > 100 and on_disk['rate_mean'] > 0
  assert json.loads((tmp_path / 'config.json').read_text())['steps'] == 800
  with np.load(tmp_path / 'trajectories.npz') as f:
    assert f['gd_w'].shape == (801, 8, 2) and f['distance'].shape == (801, 4)
  assert analysis.main([str(tmp_path), '--show', '2']) == 0
  out = capsys.readouterr().out
  assert 'Lyapunov-like rate' in out
  assert (tmp_path / 'figures' / 'toy_chaos.png').stat().st_size > 10_000
  assert (tmp_path / 'figures' / 'toy_chaos.pdf').exists()
