"""The 2-d scale-invariant toy of Li, Lyu & Arora (2020, Fig. 5a): GD + WD is chaotic, GF is not.

Loss `L(x, y) = x^2 / (x^2 + y^2)` on w = (x, y) in R^2 (= sin^2 of the angle theta between w and
the y-axis), scale invariant: L(c w) = L(w) for c > 0, hence <grad L(w), w> = 0 and
grad L(c w) = grad L(w) / c. Its minima are the y-axis (x = 0) without the origin.

  - GD with coupled WD (the papers' update, DESIGN.md section 2):
    `w <- (1 - eta lambda) w - eta grad L(w)`. WD shrinks ||w|| until the effective LR
    eta / ||w||^2 is large enough for the angle to overshoot the minimum; the angle then moves
    erratically and nearby trajectories separate exponentially (`chaos.divergence_rates`).
  - Gradient flow of L alone, dw/dt = -grad L(w): ||w|| is conserved (grad L is orthogonal to w)
    and tan(theta) = x / y obeys d tan(theta)/dt = -2 tan(theta) / ||w||^2, so
    |x / y|(t) = |x0 / y0| exp(-2 t / ||w0||^2): monotone (`gradient_flow_ratio`, the closed form
    the integrator is tested against). GD step k is compared with GF at time t = k eta.

The loss is not defined at the origin: `loss` returns 1/2 there (its mean over directions) with
gradient 0 (no NaN leaks into the gradient); everywhere else the exact values, computed so that
they stay finite arbitrarily close to the origin (see `loss`).

The dynamics are pure JAX on arrays w of shape [2] (one start), vmapped over [S, 2] starts, in the
dtype of the starts (float32, or float64 under x64); the fits are numpy on the returned arrays.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

# L at the origin (where x^2 / r^2 is undefined): its mean over directions.
_ORIGIN_VALUE = 0.5


def loss(w: jax.Array) -> jax.Array:
  """L(w) = x^2 / (x^2 + y^2) of one point w [2] (dimensionless scalar); 1/2 at the origin.

  Computed as L(v) of v = w / s, s = max(|x|, |y|), so that nothing overflows or underflows for
  tiny or huge w (r^4 of w = (1e-10, 2e-10) is below float32's range, while |v| is in
  [1, sqrt 2]). s is held constant for autodiff (stop_gradient; differentiating it would form
  s^2, which underflows); this loses nothing: the k-th derivative of L is homogeneous of degree
  -k, so D^k L(w / s) / s^k = D^k L(w) and its derivative in s vanishes (Euler's theorem). So
  gradients and higher derivatives are exact (the Jacobian of `gd_step` in `chaos.tangent_exponents`
  included; tested against the hand Hessian). Guard: w with s at most the smallest normal number
  of its dtype counts as the origin (value 1/2, gradient 0); above it ||grad L|| <= 1 / s is
  finite.
  """
  scale = jax.lax.stop_gradient(jnp.max(jnp.abs(w)))
  defined = scale > jnp.finfo(w.dtype).tiny
  # at the origin divide a harmless stand-in, so that no NaN reaches the (unused) branch's grad
  v = jnp.where(defined, w / jnp.where(defined, scale, 1), jnp.asarray([0.0, 1.0], w.dtype))
  value = v[0] * v[0] / (v[0] * v[0] + v[1] * v[1])
  return jnp.where(defined, value, jnp.asarray(_ORIGIN_VALUE, w.dtype))


def grad(w: jax.Array) -> jax.Array:
  """grad L(w) [2] = (2 x y^2, -2 x^2 y) / r^4 (autodiff of `loss`); 0 at the origin."""
  return jax.grad(loss)(w)


def gd_step(w: jax.Array, lr: float, wd: float) -> jax.Array:
  """One GD step with coupled WD: (1 - lr wd) w - lr grad L(w). w [2] -> [2]."""
  return (1.0 - lr * wd) * w - lr * grad(w)


class Trajectory(NamedTuple):
  """States of runs at steps 0..K (step 0 = the start).

  Attributes:
    w: [K + 1, S, 2] the points (x, y).
    ratio: [K + 1, S] |x / y| (inf where y = 0).
    norm_sq: [K + 1, S] ||w||^2.
    loss: [K + 1, S] L(w).
  """

  w: np.ndarray
  ratio: np.ndarray
  norm_sq: np.ndarray
  loss: np.ndarray


def _trajectory(ws: jax.Array) -> Trajectory:
  ws = np.asarray(ws)
  with np.errstate(divide='ignore'):
    ratio = np.abs(ws[..., 0]) / np.abs(ws[..., 1])
  losses = np.asarray(jax.vmap(jax.vmap(loss))(jnp.asarray(ws)))
  return Trajectory(ws, ratio, np.sum(ws * ws, axis=-1), losses)


def _gd_path(w0: jax.Array, lr: float, wd: float, steps: int) -> jax.Array:
  """[steps + 1, 2] GD + WD iterates of one start w0 [2]."""

  def body(w, _):
    w_next = gd_step(w, lr, wd)
    return w_next, w_next

  _, ws = jax.lax.scan(body, w0, None, length=steps)
  return jnp.concatenate([w0[None], ws])


def gd_trajectories(starts: jax.Array, lr: float, wd: float, steps: int) -> Trajectory:
  """GD + WD from each start, vmapped.

  Args:
    starts: [S, 2] starting points (float32, or float64 under jax_enable_x64).
    lr: eta (per step); wd: lambda (per unit of LR).
    steps: K, number of GD steps.

  Returns:
    The `Trajectory` over steps 0..K.
  """
  run = jax.jit(jax.vmap(_gd_path, in_axes=(0, None, None, None)), static_argnums=(3,))
  ws = run(jnp.asarray(starts), lr, wd, steps)  # [S, K + 1, 2]
  return _trajectory(jnp.swapaxes(ws, 0, 1))


def _rk4(w: jax.Array, h: float) -> jax.Array:
  """One classical Runge-Kutta step of dw/dt = -grad L(w) with time step h."""
  k1 = -grad(w)
  k2 = -grad(w + 0.5 * h * k1)
  k3 = -grad(w + 0.5 * h * k2)
  k4 = -grad(w + h * k3)
  return w + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def _gf_path(w0: jax.Array, dt: float, samples: int, substeps: int) -> jax.Array:
  """[samples + 1, 2] GF points at times 0, dt, ..., samples dt (RK4, `substeps` per dt)."""
  h = dt / substeps

  def sample(w, _):
    w_next = jax.lax.fori_loop(0, substeps, lambda _, v: _rk4(v, h), w)
    return w_next, w_next

  _, ws = jax.lax.scan(sample, w0, None, length=samples)
  return jnp.concatenate([w0[None], ws])


def gradient_flow_trajectories(
    starts: jax.Array, dt: float, samples: int, substeps: int = 100
) -> Trajectory:
  """Gradient flow of L (no WD) from each start, vmapped, sampled every `dt` time units.

  Integrated with RK4 at time step dt / substeps. Pass dt = eta to put sample k at the time of GD
  step k (GD with LR eta is the Euler scheme of the flow with step eta).

  Args:
    starts: [S, 2] starting points (not the origin).
    dt: time between samples; samples: K, number of samples after the start.
    substeps: RK4 steps per sample. The flow's angular rate is 2 / ||w||^2, so dt / substeps
      should stay well below ||w0||^2 / 2 (the relative error per RK4 step is ~(h 2 / r^2)^5).

  Returns:
    The `Trajectory` at times 0, dt, ..., K dt.
  """
  run = jax.jit(jax.vmap(_gf_path, in_axes=(0, None, None, None)), static_argnums=(2, 3))
  ws = run(jnp.asarray(starts), dt, samples, substeps)
  return _trajectory(jnp.swapaxes(ws, 0, 1))


def gradient_flow_ratio(w0: np.ndarray, t: np.ndarray) -> np.ndarray:
  """Closed form of GF's |x / y| at times t [K] from w0 [2]: |x0/y0| exp(-2 t / ||w0||^2)."""
  w0 = np.asarray(w0, np.float64)
  return np.abs(w0[0] / w0[1]) * np.exp(-2.0 * np.asarray(t) / np.sum(w0 * w0))


def paired_starts(
    key: jax.Array,
    center: tuple[float, float],
    spread: float,
    delta: float,
    num_pairs: int,
    dtype=jnp.float32,
) -> jax.Array:
  """2P nearby starts: P base points around `center`, each followed by a partner at distance delta.

  Base point i is center + spread * ||center|| * u_i and its partner base_i + delta *
  ||center|| * v_i, with u_i, v_i independent uniform random unit vectors (so `spread` and
  `delta` are relative to the scale of the start).

  Returns:
    [2P, 2] starts ordered (base_0, partner_0, base_1, partner_1, ...).
  """
  c = jnp.asarray(center, dtype)
  scale = jnp.linalg.norm(c)
  k_base, k_partner = jax.random.split(key)

  def unit(k):
    angle = jax.random.uniform(k, (num_pairs,), dtype, 0.0, 2 * np.pi)
    return jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=-1)

  base = c + spread * scale * unit(k_base)
  partner = base + delta * scale * unit(k_partner)
  return jnp.stack([base, partner], axis=1).reshape(2 * num_pairs, 2)
