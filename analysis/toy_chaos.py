"""2020 Fig. 5a: GD + WD vs gradient flow on the toy L(x, y) = x^2 / (x^2 + y^2).

    python -m svag_jax.analysis.toy_chaos WORKDIR [--out PREFIX] [--saturation 0.1] [--show 4]

Reads WORKDIR/trajectories.npz and config.json (written by `python -m svag_jax.launch.toy`), prints
the Lyapunov-like divergence rate of nearby GD + WD trajectories (slope of ln distance vs step, per
pair, with its mean, std and 95% interval over pairs) and the monotonicity counts of |x/y|, and
writes PREFIX.png/.pdf (default WORKDIR/figures/toy_chaos): |x/y| of GD + WD and of GF from the same
starts, ||w||^2 (effective LR eta / ||w||^2), and ln distance of each pair with its fit.
"""

import argparse
import json
import pathlib
import sys

import matplotlib
import numpy as np

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from svag_jax import chaos  # noqa: E402
from svag_jax.analysis import common  # noqa: E402


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
  return result, json.loads((path / 'config.json').read_text())


def figure(result: dict[str, np.ndarray], config: dict, fit: chaos.DivergenceFit, show: int = 4):
  """Three panels: |x/y| (log) of `show` GD + WD and GF runs; ||w||^2; ln distance of pairs."""
  step = result['step']
  fig, axes = plt.subplots(1, 3, figsize=(15, 4))
  colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
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
      f'rate {s["mean"]:.3f} [{s["low"]:.3f}, {s["high"]:.3f}] nats/step ' f'({s["n"]} pairs)'
  )
  ax.legend(loc='lower right')
  fig.suptitle(
      f'L = x²/(x²+y²): GD with WD (eta = {config["lr"]:g}, lambda = {config["wd"]:g}) '
      'vs gradient flow (Li, Lyu & Arora 2020, Fig. 5a)'
  )
  fig.tight_layout()
  return fig


def _rate_stats(rate: np.ndarray) -> dict[str, float]:
  """Mean, std and 95% interval (mean +- 1.96 SE) over the finite rates of the pairs."""
  r = rate[np.isfinite(rate)]
  n = len(r)
  mean = float(r.mean()) if n else float('nan')
  std = float(r.std(ddof=1)) if n > 1 else float('nan')
  half = 1.96 * std / np.sqrt(n) if n > 1 else float('nan')
  return {'mean': mean, 'std': std, 'low': mean - half, 'high': mean + half, 'n': n}


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('workdir')
  p.add_argument('--out', default=None, help='output prefix (default WORKDIR/figures/toy_chaos)')
  p.add_argument(
      '--saturation',
      type=float,
      default=None,
      help="distance that ends each fit (default: the config's)",
  )
  p.add_argument('--show', type=int, default=4, help='trajectories drawn in the first panels')
  a = p.parse_args(argv)
  result, config = load(a.workdir)
  saturation = a.saturation if a.saturation is not None else config['saturation']
  config = {**config, 'saturation': saturation}
  fit = chaos.divergence_rates(result['distance'], result['fit_start'], saturation)
  s = _rate_stats(fit.rate)
  gd_up = chaos.ratio_increases(result['gd_ratio'])
  gf_up = chaos.ratio_increases(result['gf_ratio'])
  k = len(result['step']) - 1
  eta, lam = config['lr'], config['wd']
  print(
      f'GD + WD, eta = {eta:g}, lambda = {lam:g} (eta lambda = {eta * lam:g}), {k} steps, '
      f'{len(fit.rate)} pairs at relative distance {config["delta"]:g}'
  )
  print(
      f'Lyapunov-like rate (slope of ln distance vs step, chaos onset -> distance '
      f'{saturation:g}): {s["mean"]:.4f} nats/step, std {s["std"]:.4f}, 95% interval '
      f'[{s["low"]:.4f}, {s["high"]:.4f}], range [{np.nanmin(fit.rate):.4f}, '
      f'{np.nanmax(fit.rate):.4f}] over {s["n"]} pairs'
  )
  if 'tangent_exponent' in result:
    te = result['tangent_exponent']
    print(
        f'cross-check, largest Lyapunov exponent of the GD + WD map (tangent vector, steps '
        f'{int(np.median(fit.start))}..{k}): {te.mean():.4f} nats/step, std {te.std(ddof=1):.4f}'
        f' over {len(te)} starts'
    )
  print(
      f'fit windows: start step median {np.median(fit.start):.0f}, stop step median '
      f'{np.median(fit.stop):.0f}'
  )
  print(
      f'|x/y| increases per trajectory (of {k} steps): GD + WD mean {gd_up.mean():.1f} '
      f'(min {gd_up.min()}), gradient flow max {gf_up.max()}'
  )
  print(
      f'||w||^2: start {result["gd_norm_sq"][0].mean():.3g}, GD + WD last 20% of steps mean '
      f'{result["gd_norm_sq"][-(k // 5):].mean():.3g} (eta = {eta:g}); GF relative drift '
      f'{np.max(np.abs(result["gf_norm_sq"] / result["gf_norm_sq"][0] - 1)):.1e}'
  )
  prefix = a.out or str(pathlib.Path(a.workdir) / 'figures' / 'toy_chaos')
  for path in common.save_figure(figure(result, config, fit, a.show), prefix):
    print('wrote', path)
  return 0


if __name__ == '__main__':
  sys.exit(main())
