"""2020 Fig. 5a: GD + WD vs gradient flow on the toy L(x, y) = x^2 / (x^2 + y^2).

    python -m svag_jax.analysis.toy_chaos WORKDIR [--out DIR] [--saturation 0.1] [--show 4]

Reads WORKDIR/trajectories.npz and config.json (written by `python -m svag_jax.launch.toy`), prints
the Lyapunov-like divergence rate of nearby GD + WD trajectories (slope of ln distance vs step, per
pair, with its mean, std and 95% interval over pairs) and the monotonicity counts of |x/y|, and
draws the figure `toy_chaos` into WORKDIR/figures (or DIR), as PNG and PDF: |x/y| of GD + WD and
of GF from the same starts, ||w||^2 (effective LR eta / ||w||^2), and ln distance of each pair
with its fit.
"""

import pathlib
import sys
from collections.abc import Sequence

import matplotlib
import numpy as np

from svag_jax import chaos, record
from svag_jax.analysis import common, stats


def load(workdir: str | pathlib.Path) -> tuple[dict[str, np.ndarray], dict]:
  """The arrays of `toy.simulate` and the config (dict) of a toy workdir."""
  path = pathlib.Path(workdir)
  if not (path / 'trajectories.npz').exists():
    raise FileNotFoundError(
        f'{path}/trajectories.npz not found: run `python -m svag_jax.launch.toy '
        f'--config=toy_chaos --workdir={path}` first'
    )
  with np.load(path / 'trajectories.npz') as f:
    result = {k: f[k] for k in f.files}
  return result, record.read_config(path)


def plot(
    result: dict[str, np.ndarray], config: dict, fit: chaos.DivergenceFit, show: int = 4
) -> np.ndarray:
  """Three panels: |x/y| (log) of `show` GD + WD and GF runs; ||w||^2; ln distance of pairs."""
  step = result['step']
  axes = common.new_axes(3, panel_size=(5.0, 4.0), layout=None)
  colors = matplotlib.rcParams['axes.prop_cycle'].by_key()['color']
  ax = axes[0]
  for i in range(show):
    j = 2 * i  # the base start of pair i
    ax.semilogy(
        step,
        result['gd_ratio'][:, j],
        lw=0.6,
        color=colors[i % len(colors)],
        label='GD + WD' if i == 0 else None,
    )
    ax.semilogy(
        step,
        result['gf_ratio'][:, j],
        lw=1.5,
        ls='--',
        color=colors[i % len(colors)],
        label='gradient flow (t = k eta)' if i == 0 else None,
    )
  ax.set_xlabel('GD step k')
  ax.set_ylabel('|x / y|')
  ax.set_title(f'{show} starts: GD + WD erratic, GF monotone')
  ax.legend(loc='lower left')
  ax = axes[1]
  for i in range(show):
    ax.semilogy(step, result['gd_norm_sq'][:, 2 * i], lw=0.8, color=colors[i % len(colors)])
  ax.semilogy(step, result['gf_norm_sq'][:, 0], 'k--', lw=1, label='GF (conserved)')
  ax.axhline(config['lr'], color='gray', lw=0.8, ls=':', label='||w||² = eta (eff. LR 1)')
  ax.set_xlabel('GD step k')
  ax.set_ylabel('||w||²')
  ax.set_title('norm: WD shrinks it until eta/||w||² ~ 1')
  ax.legend(loc='upper right')
  ax = axes[2]
  dist = result['distance']
  with np.errstate(divide='ignore'):
    log_d = np.log(dist)
  for p in range(dist.shape[1]):
    ax.plot(step, log_d[:, p], lw=0.5, color='gray', alpha=0.6)
    if np.isfinite(fit.rate[p]):
      window = step[fit.start[p] : fit.stop[p] + 1]
      intercept = np.mean(log_d[window, p] - fit.rate[p] * window)
      ax.plot(window, intercept + fit.rate[p] * window, lw=1, color='C3', alpha=0.8)
  s = _rate_stats(fit.rate)
  ax.axhline(np.log(config['saturation']), color='k', lw=0.8, ls=':', label='saturation')
  ax.set_xlabel('GD step k')
  ax.set_ylabel("ln ||u - u'|| (unit directions of a pair)")
  ax.set_title(
      f'rate {stats.format_interval(s["mean"], s["low"], s["high"], ".3f")} nats/step '
      f'({s["n"]} pairs)'
  )
  ax.legend(loc='lower right')
  fig = axes[0].figure
  fig.suptitle(
      f'L = x²/(x²+y²): GD with WD (eta = {config["lr"]:g}, lambda = {config["wd"]:g}) '
      'vs gradient flow (Li, Lyu & Arora 2020, Fig. 5a)'
  )
  fig.tight_layout()
  return axes


def _rate_stats(rate: np.ndarray) -> dict[str, float]:
  """Mean, std and interval (`stats.interval`) over the finite rates of the pairs."""
  r = rate[np.isfinite(rate)]
  mean, low, high = stats.interval(r)
  std = float(r.std(ddof=1)) if r.size > 1 else float('nan')
  return {'mean': mean, 'std': std, 'low': low, 'high': high, 'n': r.size}


def summary(result: dict[str, np.ndarray], config: dict, fit: chaos.DivergenceFit) -> list[str]:
  """The divergence rate over pairs, the tangent-vector cross-check, the fit windows, the
  monotonicity counts of |x/y| and the norms."""
  s = _rate_stats(fit.rate)
  gd_up = chaos.ratio_increases(result['gd_ratio'])
  gf_up = chaos.ratio_increases(result['gf_ratio'])
  k = len(result['step']) - 1
  eta, lam = config['lr'], config['wd']
  lines = [
      f'GD + WD, eta = {eta:g}, lambda = {lam:g} (eta lambda = {eta * lam:g}), {k} steps, '
      f'{len(fit.rate)} pairs at relative distance {config["delta"]:g}',
      f'Lyapunov-like rate (slope of ln distance vs step, chaos onset -> distance '
      f'{config["saturation"]:g}): {s["mean"]:.4f} nats/step, std {s["std"]:.4f}, 95% interval '
      f'[{s["low"]:.4f}, {s["high"]:.4f}], range [{np.nanmin(fit.rate):.4f}, '
      f'{np.nanmax(fit.rate):.4f}] over {s["n"]} pairs',
  ]
  if 'tangent_exponent' in result:
    te = result['tangent_exponent']
    lines.append(
        f'cross-check, largest Lyapunov exponent of the GD + WD map (tangent vector, steps '
        f'{int(np.median(fit.start))}..{k}): {te.mean():.4f} nats/step, std {te.std(ddof=1):.4f}'
        f' over {len(te)} starts'
    )
  lines += [
      f'fit windows: start step median {np.median(fit.start):.0f}, stop step median '
      f'{np.median(fit.stop):.0f}',
      f'|x/y| increases per trajectory (of {k} steps): GD + WD mean {gd_up.mean():.1f} '
      f'(min {gd_up.min()}), gradient flow max {gf_up.max()}',
      f'||w||^2: start {result["gd_norm_sq"][0].mean():.3g}, GD + WD last 20% of steps mean '
      f'{result["gd_norm_sq"][-(k // 5):].mean():.3g} (eta = {eta:g}); GF relative drift '
      f'{np.max(np.abs(result["gf_norm_sq"] / result["gf_norm_sq"][0] - 1)):.1e}',
  ]
  return lines


def main(argv: Sequence[str] | None = None) -> int:
  parser = common.figure_parser('toy_chaos', __doc__)
  parser.add_argument(
      '--saturation',
      type=float,
      default=None,
      help="distance that ends each fit (default: the config's)",
  )
  parser.add_argument('--show', type=int, default=4, help='trajectories drawn in the first panels')
  args = parser.parse_args(argv)

  def make():
    result, config = load(args.workdir)
    if args.saturation is not None:
      config = {**config, 'saturation': args.saturation}
    fit = chaos.divergence_rates(result['distance'], result['fit_start'], config['saturation'])
    return plot(result, config, fit, args.show), summary(result, config, fit)

  return common.run_figure(args, make)


if __name__ == '__main__':
  sys.exit(main())
