"""Measuring the chaos of the 2-d toy's GD + WD (`svag_jax.toy`): how nearby runs separate.

Numpy on the arrays `toy.gd_trajectories` returns (paired starts: runs 2p and 2p + 1 start
delta apart), except `tangent_exponents`, which runs the JAX map `toy.gd_step` itself:
  - `direction_distance`: the distance of the two directions of each pair (the loss depends on
    the direction only);
  - `chaos_onset`: the first step at which ||w|| grows (the first overshoot);
  - `divergence_rates`: the slope of ln(distance) per GD step from the onset to saturation;
  - `tangent_exponents`: the largest Lyapunov exponent (Benettin's method, JVPs of `gd_step`);
  - `ratio_increases`: how often |x / y| increases (never for gradient flow).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from svag_jax import toy


def direction_distance(ws: np.ndarray) -> np.ndarray:
  """||w/||w|| - w'/||w'|||| of each pair: ws [K + 1, 2P, 2] (paired) -> [K + 1, P] in [0, 2].

  The loss depends on the direction only, so this is the distance that can grow; ||w|| itself
  shrinks under WD and would hide the separation.
  """
  ws = np.asarray(ws, np.float64)
  unit = ws / np.linalg.norm(ws, axis=-1, keepdims=True)
  return np.linalg.norm(unit[:, 0::2] - unit[:, 1::2], axis=-1)


def chaos_onset(norm_sq: np.ndarray) -> np.ndarray:
  """The first step k at which a GD + WD run's ||w||^2 grows (||w_{k+1}|| > ||w_k||), per run.

  Before it WD only shrinks w while the angle converges to the minimum (contraction); the first
  growth is the first overshoot at a large effective LR eta / ||w||^2, where the chaos starts.

  Args:
    norm_sq: [K + 1, S] ||w||^2 of S runs.

  Returns:
    int [S]: the onset step (K if ||w|| never grows).
  """
  grows = np.diff(np.asarray(norm_sq, np.float64), axis=0) > 0  # [K, S]
  return np.where(grows.any(axis=0), np.argmax(grows, axis=0), grows.shape[0])


class DivergenceFit(NamedTuple):
  """Per pair: the fitted rate and the window of the fit.

  Attributes:
    rate: [P] slope of ln(distance) vs step (nats per GD step) on [start, stop] (NaN if the
      window is too short).
    start: [P] first step of the fit (the chaos onset of the pair).
    stop: [P] the first step after `start` whose distance exceeds the saturation level (or the
      last step).
  """

  rate: np.ndarray
  start: np.ndarray
  stop: np.ndarray


def divergence_rates(
    distance: np.ndarray, onset: np.ndarray, saturation: float = 0.1, min_window: int = 20
) -> DivergenceFit:
  """The Lyapunov-like rate of each pair: least-squares slope of ln(distance) against the step.

  Each fit runs from the pair's chaos onset (`chaos_onset`; before it GD contracts the directions
  while converging to the minimum, and then expands them again as that minimum turns unstable,
  which is not the chaos) to the first step at which the distance exceeds `saturation` (where the
  exponential growth is over). The distance oscillates (contraction while the angle converges,
  expansion at each overshoot), so the slope is the mean rate over those cycles.

  Args:
    distance: [K + 1, P] distances of P pairs at steps 0..K (`direction_distance`).
    onset: int [P], first step of each pair's fit.
    saturation: the level where the exponential growth is over (direction distances are <= 2).
    min_window: pairs whose window has fewer steps get rate NaN.

  Returns:
    A `DivergenceFit`.
  """
  distance = np.asarray(distance, np.float64)
  onset = np.broadcast_to(np.asarray(onset, int), distance.shape[1:])
  steps = np.arange(distance.shape[0])
  rates, stops = [], []
  for d, start in zip(distance.T, onset):
    above = np.nonzero(d[start:] > saturation)[0]
    stop = int(start + above[0]) if above.size else len(d) - 1
    window = slice(start, stop + 1)
    ok = d[window] > 0
    if stop - start < min_window or ok.sum() < 2:
      rates.append(np.nan)
    else:
      rates.append(np.polyfit(steps[window][ok], np.log(d[window][ok]), 1)[0])
    stops.append(stop)
  return DivergenceFit(np.asarray(rates), np.asarray(onset), np.asarray(stops))


def _tangent_log_growth(
    w0: jax.Array, v0: jax.Array, lr: float, wd: float, steps: int
) -> jax.Array:
  """[steps] ln ||J_k v_k|| of the renormalised tangent vector along one GD + WD path."""

  def body(carry, _):
    w, v = carry
    w_next, jv = jax.jvp(lambda u: toy.gd_step(u, lr, wd), (w,), (v,))
    growth = jnp.linalg.norm(jv)
    return (w_next, jv / growth), jnp.log(growth)

  _, logs = jax.lax.scan(body, (w0, v0 / jnp.linalg.norm(v0)), None, length=steps)
  return logs


def tangent_exponents(
    starts: jax.Array, lr: float, wd: float, steps: int, burn_in: int
) -> np.ndarray:
  """Largest Lyapunov exponent of the GD + WD map from each start (Benettin's method), vmapped.

  A tangent vector is carried along the path by the Jacobian of `gd_step` (a JVP) and
  renormalised every step; the exponent is the mean of ln(growth) over steps burn_in..steps - 1
  (nats per GD step). Unlike the slope of the distance of two trajectories it never saturates, so
  it averages over many expansion/contraction cycles; the two agree up to finite-time scatter.

  Args:
    starts: [S, 2] starting points. lr, wd: eta, lambda. steps: path length.
    burn_in: leading steps left out (the contraction before the chaos starts).

  Returns:
    [S] exponents.
  """
  if not 0 <= burn_in < steps:
    raise ValueError(f'burn_in = {burn_in} must be in [0, steps = {steps})')
  starts = jnp.asarray(starts)
  v0 = jnp.ones_like(starts)
  run = jax.jit(
      jax.vmap(_tangent_log_growth, in_axes=(0, 0, None, None, None)), static_argnums=(4,)
  )
  logs = np.asarray(run(starts, v0, lr, wd, steps))  # [S, steps]
  return logs[:, burn_in:].mean(axis=1)


def ratio_increases(ratio: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
  """Number of steps where |x / y| increases (by more than rtol relative) per run: [K+1, S] -> [S].

  Zero for a monotone non-increasing path (gradient flow); GD + WD in its chaotic phase has many.
  """
  r = np.asarray(ratio, np.float64)
  return np.sum(r[1:] > r[:-1] * (1 + rtol), axis=0)
