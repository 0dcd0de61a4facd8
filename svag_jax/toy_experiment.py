"""The toy experiment of configs/toy_chaos.py (run by launch/toy.py): its config schema, checks,
the simulation of both dynamics from paired starts and the summary numbers of the run record.

The dynamics are `svag_jax.toy`, the chaos measurements `svag_jax.chaos`; neither imports this
module.
"""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from scipy import stats as scipy_stats

from svag_jax import chaos, toy
from svag_jax.checks import ConfigError, choice, fail, positive
from svag_jax.config import check_keys

DTYPES = ('float32', 'float64')


def defaults() -> ml_collections.ConfigDict:
  """Every field of a toy-chaos config, with its default (the schema `validate` checks)."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.lr = 0.1  # eta
  c.wd = 0.1  # lambda (coupled WD)
  c.steps = 3000  # GD steps K; GF is sampled at times k * lr, k = 0..K
  c.center = (1.0, 1.0)  # the starts lie around this point (x, y)
  c.spread = 0.05  # base starts: center + spread * ||center|| * random unit vector
  c.delta = 1e-13  # partner of each base start at delta * ||center|| (relative)
  c.num_pairs = 16  # P pairs, 2P trajectories of each dynamics (vmapped)
  c.gf_substeps = 20  # RK4 steps of the gradient flow per GD step (time lr each)
  c.saturation = 0.1  # direction distance where the exponential separation is over
  # 'float64' (launch/toy.py enables x64 for the run) or 'float32'. float32 is for smoke tests
  # only: GD's first approach to the minimum takes |x/y| to ~1e-54, x underflows to 0 and GD + WD
  # then just shrinks w to the origin (no chaos).
  c.dtype = 'float64'
  return c


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks a toy-chaos config; raises ConfigError naming the field and the fix (with the
  checks of svag_jax/config.py)."""
  check_keys(config, defaults(), '')
  positive('lr', config.lr)
  positive('wd', config.wd, allow_zero=True)
  if config.lr * config.wd >= 1:
    fail(
        'wd',
        config.wd,
        f'lr * wd = {config.lr * config.wd:g} must be < 1 (else WD flips or '
        'zeroes w every step)',
    )
  positive('steps', config.steps, integer=True)
  positive('num_pairs', config.num_pairs, integer=True)
  positive('gf_substeps', config.gf_substeps, integer=True)
  positive('spread', config.spread, allow_zero=True)
  positive('delta', config.delta)
  positive('saturation', config.saturation)
  if config.saturation >= 2:
    fail(
        'saturation',
        config.saturation,
        'direction distances are at most 2; use a level well ' 'below, e.g. 0.1',
    )
  center = tuple(config.center)
  if len(center) != 2 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in center):
    fail('center', config.center, 'must be a pair of finite numbers (x, y)')
  if center[0] ** 2 + center[1] ** 2 == 0:
    fail('center', (0, 0), 'the loss is undefined at the origin; start elsewhere, e.g. (1.0, 1.0)')
  choice('dtype', config.dtype, DTYPES)


def simulate(config: ml_collections.ConfigDict) -> dict[str, np.ndarray]:
  """GD + WD and gradient flow from the same 2P paired starts, and the divergence fit.

  The caller enables jax_enable_x64 for dtype 'float64' before calling.

  Returns:
    Arrays: 'starts' [2P, 2]; 'step' [K + 1]; 'gf_time' [K + 1] (= step * lr); 'gd_w', 'gf_w'
    [K + 1, 2P, 2]; 'gd_norm_sq', 'gf_norm_sq', 'gd_ratio', 'gf_ratio', 'gd_loss' [K + 1, 2P];
    'distance' [K + 1, P] (direction distance of each GD pair); 'rate', 'fit_start', 'fit_stop'
    [P] (`divergence_rates` from the later `chaos_onset` of the two); 'tangent_exponent' [P]
    (`tangent_exponents` from each pair's base start, burn-in = the median onset, at most K - 1).
  """
  validate(config)
  dtype = jnp.float64 if config.dtype == 'float64' else jnp.float32
  if config.dtype == 'float64' and not jax.config.read('jax_enable_x64'):
    raise ConfigError(
        "config.dtype = 'float64' needs x64: call inside `with "
        "jax.enable_x64(True):` (launch/toy.py does), or use 'float32'"
    )
  starts = toy.paired_starts(
      jax.random.key(config.seed),
      tuple(config.center),
      config.spread,
      config.delta,
      config.num_pairs,
      dtype,
  )
  gd = toy.gd_trajectories(starts, config.lr, config.wd, config.steps)
  gf = toy.gradient_flow_trajectories(starts, config.lr, config.steps, config.gf_substeps)
  distance = chaos.direction_distance(gd.w)
  onset = chaos.chaos_onset(gd.norm_sq)
  pair_onset = np.maximum(onset[0::2], onset[1::2])
  fit = chaos.divergence_rates(distance, pair_onset, config.saturation)
  burn_in = min(int(np.median(pair_onset)), config.steps - 1)
  tangent = chaos.tangent_exponents(starts[0::2], config.lr, config.wd, config.steps, burn_in)
  steps = np.arange(config.steps + 1)
  return {
      'starts': np.asarray(starts),
      'step': steps,
      'gf_time': steps * config.lr,
      'gd_w': gd.w,
      'gf_w': gf.w,
      'gd_norm_sq': gd.norm_sq,
      'gf_norm_sq': gf.norm_sq,
      'gd_ratio': gd.ratio,
      'gf_ratio': gf.ratio,
      'gd_loss': gd.loss,
      'distance': distance,
      'rate': fit.rate,
      'fit_start': fit.start,
      'fit_stop': fit.stop,
      'tangent_exponent': tangent,
  }


def _t975(dof: int) -> float:
  """The two-sided 95% Student t quantile t_{0.975, dof} (NaN for dof < 1)."""
  return float(scipy_stats.t.ppf(0.975, dof)) if dof >= 1 else float('nan')


def summary(result: dict[str, np.ndarray]) -> dict[str, float]:
  """The numbers of a `simulate` result: divergence rate (mean, std, 95% interval over pairs),
  and the count of |x/y| increases of GD + WD and of gradient flow (mean per trajectory)."""
  rate = result['rate'][np.isfinite(result['rate'])]
  n = len(rate)
  sem = float(np.std(rate, ddof=1) / np.sqrt(n)) if n > 1 else float('nan')
  mean = float(np.mean(rate)) if n else float('nan')
  return {
      'rate_mean': mean,
      'rate_std': float(np.std(rate, ddof=1)) if n > 1 else float('nan'),
      # the project's interval convention (analysis/stats.py): mean ± t_{0.975, n-1} SE
      'rate_ci95_low': mean - _t975(n - 1) * sem,
      'rate_ci95_high': mean + _t975(n - 1) * sem,
      'rate_min': float(np.min(rate)) if n else float('nan'),
      'rate_max': float(np.max(rate)) if n else float('nan'),
      'num_pairs_fitted': n,
      'tangent_exponent_mean': float(np.mean(result['tangent_exponent'])),
      'tangent_exponent_std': float(np.std(result['tangent_exponent'], ddof=1)),
      'gd_ratio_increases': float(np.mean(chaos.ratio_increases(result['gd_ratio']))),
      'gf_ratio_increases': float(np.mean(chaos.ratio_increases(result['gf_ratio']))),
  }
