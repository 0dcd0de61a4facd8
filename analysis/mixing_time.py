"""Mixing time (Li, Lyu & Arora 2020; configs/mixing_time.py).

    python -m svag_jax.analysis.mixing_time WORKDIR [--tol 0.1] [--window-evals 5]
        [--error-tol 0.15] [--error-window-evals 5]

Steps until the effective LR and the test error return to equilibrium after eta / 10, lambda x 10
at once (lambda_e unchanged), against 1 / lambda_e, with a linear fit and R^2
(`stats.steps_to_equilibrium` is the detector). Draws the figure `mixing_time` into
WORKDIR/figures (or --out), as PNG and PDF: the detector's three panels and, beside them, the two
of `analysis.relaxation` (the fitted relaxation of ||w||^4 and TV to the unchanged control); prints
the numbers of both. Intervals over trials are `stats.interval` (95%); the mixing times of the
trial-mean test error use a percentile bootstrap over trials (95%). Reads workdirs only; nothing
here trains.
"""

import dataclasses
import math
import sys
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes

from svag_jax import theory
from svag_jax.analysis import common, plots, relaxation, stats

BAND = common.BAND


@dataclasses.dataclass(frozen=True)
class MixingArm:
  """Mixing times of one arm after eta / 10, lambda x 10 at `perturb_step`.

  Attributes:
    arm, intrinsic_lr, perturb_step: as named.
    eff_steps: per trial [T], steps until eta/||w||^2 is back (NaN where it never is).
    error_steps: steps until the trial-mean test error is back (None: never).
    error_interval: 95% percentile bootstrap interval over trials of `error_steps` (NaN bounds
      when more than 5% of the resamples never return).
  """

  arm: str
  intrinsic_lr: float
  perturb_step: float
  eff_steps: np.ndarray
  error_steps: float | None
  error_interval: tuple[float, float]


def mixing(
    run: common.RunLike,
    tol: float = 0.1,
    window_evals: int = 5,
    error_tol: float = 0.15,
    error_window_evals: int = 5,
    ref_fraction: float = 0.25,
    num_resamples: int = 200,
    seed: int = 0,
) -> list[MixingArm]:
  """Steps to equilibrium per arm of a mixing_time run (`steps_to_equilibrium`, stay=True).

  Args:
    run: the run, or its workdir.
    tol, window_evals: relative tolerance and running-mean window (in evaluation intervals) of
      the detector on each trial's eta / ||w||^2.
    error_tol, error_window_evals: the same for the trial-mean test error. It is noisier (a few
      test examples flip per eval: on the CPU run ~±0.5% absolute on 6-14% for a mean of 8
      trials), hence the wider default band: at 10% one arm's curve left the band again late
      in the run (no return detected) and the bootstrap intervals of three arms were open.
    ref_fraction: the reference window is the last `ref_fraction` of the steps before the change.
    num_resamples, seed: of the bootstrap over trials for the test error.
  """
  run = common.as_run(run)
  rng = np.random.default_rng(seed)
  result = []
  for arm, m, change in common.changing_arms(run, 'mixing_time'):
    steps = m.effective_steps
    every = float(np.median(np.diff(steps)))
    eff_kw = dict(ref_window=ref_fraction * change, window=window_evals * every, tol=tol)
    err_kw = dict(
        ref_window=ref_fraction * change, window=error_window_evals * every, tol=error_tol
    )

    def detect(values, kw):
      t = stats.steps_to_equilibrium(steps, values, change, **kw)
      return np.nan if t is None else t

    eff = np.array([detect(row, eff_kw) for row in m.values['effective_lr']])
    error = 1 - m.values['test_accuracy']
    main = stats.steps_to_equilibrium(steps, stats.nanmean(error, 0), change, **err_kw)
    boot = np.array(
        [
            detect(stats.nanmean(error[rng.integers(0, len(error), len(error))], 0), err_kw)
            for _ in range(num_resamples)
        ]
    )
    if np.isnan(boot).mean() > 0.05:
      interval = (math.nan, math.nan)
    else:
      interval = tuple(float(q) for q in np.nanpercentile(boot, [2.5, 97.5]))
    row = int(np.flatnonzero(steps >= change)[0])
    result.append(MixingArm(arm, m.constant('intrinsic_lr', row), change, eff, main, interval))
  return sorted(result, key=lambda a: a.intrinsic_lr)


def _fit_line(x: np.ndarray, y: np.ndarray) -> stats.LinearFit | None:
  ok = np.isfinite(y)
  return stats.linear_fit(x[ok], y[ok]) if ok.sum() >= 2 and np.ptp(x[ok]) > 0 else None


def mixing_fits(arms: list[MixingArm]) -> dict[str, stats.LinearFit | None]:
  """Linear fits of steps-to-equilibrium vs 1 / lambda_e: 'effective_lr' (per-arm mean over
  trials that return) and 'test_error' (trial-mean curve)."""
  inv = np.array([1 / a.intrinsic_lr for a in arms])
  eff = np.array(
      [np.nanmean(a.eff_steps) if np.isfinite(a.eff_steps).any() else np.nan for a in arms]
  )
  err = np.array([np.nan if a.error_steps is None else a.error_steps for a in arms])
  return {'effective_lr': _fit_line(inv, eff), 'test_error': _fit_line(inv, err)}


def mixing_summary(
    arms: list[MixingArm], tol: float, window_evals: int, error_tol: float, error_window_evals: int
) -> list[str]:
  lines = [
      f'Steps to equilibrium after eta/10, lambda x10 (detector: first step from which the '
      f'centred running mean stays within tol of the pre-change mean; eff. LR per trial: '
      f'{window_evals} evals, tol {tol:.0%}; trial-mean test error: {error_window_evals} '
      f'evals, tol {error_tol:.0%})',
      f'{"lambda_e":>9} {"1/lambda_e":>10} {"eff. LR: steps, mean [" + stats.INTERVAL + "]":>32} '
      f'{"returned":>8} {"test error: steps [95% bootstrap]":>36}',
  ]
  for a in arms:
    n_ok = int(np.isfinite(a.eff_steps).sum())
    err = 'never' if a.error_steps is None else f'{a.error_steps:g}'
    lines.append(
        f'{a.intrinsic_lr:>9.4g} {1 / a.intrinsic_lr:>10.1f} '
        f'{stats.fmt_interval(a.eff_steps):>32} {n_ok:>4}/{len(a.eff_steps):<3} '
        f'{err + f" [{a.error_interval[0]:g}, {a.error_interval[1]:g}]":>36}'
    )
  for name, fit in mixing_fits(arms).items():
    if fit is None:
      lines.append(f'fit {name}: too few arms returned')
    else:
      lines.append(
          f'fit {name}: steps = {fit.slope:.3f} / lambda_e + {fit.intercept:.1f}, '
          f'R^2 = {fit.r2:.4f}'
      )
  lines.append(
      f'SDE at constant sigma (theory.mixing_time_slope): eta/||w||^2 returns within '
      f'{tol:.0%} after {theory.mixing_time_slope(tol):.3f} / lambda_e steps'
  )
  return lines


def plot_mixing(
    run: common.RunLike,
    arms: list[MixingArm] | None = None,
    axes: Sequence[Axes] | None = None,
    tol: float | None = None,
) -> np.ndarray:
  """Three panels: eta/||w||^2 over its pre-change level and the trial-mean test error vs steps
  after the change, per lambda_e (detected times marked); steps to equilibrium vs 1/lambda_e
  with the linear fits and the constant-sigma SDE line for the eta/||w||^2 tolerance `tol`
  (default 0.1, the detector's default)."""
  axes = common.check_axes(axes, 3, 'plot_mixing')
  run = common.as_run(run)
  arms = mixing(run) if arms is None else arms
  metrics = run.arms
  for i, a in enumerate(arms):
    m, color = metrics[a.arm], f'C{i % 10}'
    steps = m.effective_steps
    pre = (steps < a.perturb_step) & (steps >= 0.75 * a.perturb_step)
    eff = m.values['effective_lr']
    level = stats.nanmean(eff[:, pre], 1)[:, None]
    x = steps - a.perturb_step
    plots.plot_mean_band(axes[0], x, eff / level, color, f'λe={a.intrinsic_lr:g}')
    axes[1].plot(
        x,
        100 * stats.nanmean(1 - m.values['test_accuracy'], 0),
        color=color,
        label=f'λe={a.intrinsic_lr:g}',
    )
    if np.isfinite(a.eff_steps).any():
      axes[0].axvline(np.nanmean(a.eff_steps), color=color, linestyle=':', linewidth=0.8)
    if a.error_steps is not None:
      axes[1].axvline(a.error_steps, color=color, linestyle=':', linewidth=0.8)
  span = max(float(metrics[a.arm].effective_steps[-1] - a.perturb_step) for a in arms)
  for ax in axes[:2]:
    ax.set_xlim(-0.15 * span, span)
  axes[0].set_yscale('log')
  axes[0].set_xlabel('steps after the change')
  axes[0].set_ylabel('η/‖w‖² ÷ pre-change level')
  axes[0].set_title('Effective LR after η/10, λ×10 (·· detected)', fontsize='medium')
  axes[0].legend(fontsize='small')
  axes[1].set_xlabel('steps after the change')
  axes[1].set_ylabel('test error (%), mean over trials')
  axes[1].set_title('Test error (·· detected)', fontsize='medium')
  ax = axes[2]
  inv = np.array([1 / a.intrinsic_lr for a in arms])
  fits = mixing_fits(arms)
  eff = plots.plot_intervals(
      ax,
      inv,
      [a.eff_steps for a in arms],
      marker='o',
      linestyle='none',
      color='C0',
      label=f'η/‖w‖² (mean, {stats.INTERVAL})',
  )
  err = np.array([np.nan if a.error_steps is None else a.error_steps for a in arms])
  lo = np.array([a.error_interval[0] for a in arms])
  hi = np.array([a.error_interval[1] for a in arms])
  ax.errorbar(
      inv,
      err,
      yerr=[np.nan_to_num(err - lo), np.nan_to_num(hi - err)],
      marker='s',
      linestyle='none',
      capsize=3,
      color='C3',
      label='test error (95% bootstrap)',
  )
  xs = np.linspace(0, inv.max() * 1.05, 50)
  tol = 0.1 if tol is None else tol
  ax.plot(
      xs,
      theory.mixing_time_slope(tol) * xs,
      color='k',
      linestyle=':',
      linewidth=1,
      label=f'SDE, constant σ, tol {tol:.0%}: {theory.mixing_time_slope(tol):.2f}/λe',
  )
  for (name, fit), color in zip(fits.items(), ('C0', 'C3'), strict=True):
    if fit is not None:
      ax.plot(
          xs,
          fit.slope * xs + fit.intercept,
          color=color,
          linestyle='--',
          linewidth=1,
          label=f'{name}: {fit.slope:.2f}/λe {fit.intercept:+.0f}, R²={fit.r2:.3f}',
      )
  points = np.concatenate([eff[:, 0], err])
  if np.isfinite(points).any():  # open-ended bootstrap bars would squash the points
    ax.set_ylim(0, 1.4 * np.nanmax(points))
  ax.set_xlabel('1 / λe (steps)')
  ax.set_ylabel('steps to equilibrium')
  ax.set_title('Mixing time vs 1/λe', fontsize='medium')
  ax.legend(fontsize='small')
  return axes


def main(argv: Sequence[str] | None = None) -> int:
  parser = common.figure_parser('mixing_time', __doc__)
  parser.add_argument('--tol', type=float, default=0.1, help='detector tolerance for eta/||w||^2')
  parser.add_argument(
      '--window-evals',
      type=int,
      default=5,
      help='detector running-mean window for eta/||w||^2, in evals',
  )
  parser.add_argument(
      '--error-tol',
      type=float,
      default=0.15,
      help='detector tolerance for the trial-mean test error',
  )
  parser.add_argument(
      '--error-window-evals',
      type=int,
      default=5,
      help='detector running-mean window for the test error, in evals',
  )
  args = parser.parse_args(argv)

  def make():
    detector = (args.tol, args.window_evals, args.error_tol, args.error_window_evals)
    run = common.load_run(args.workdir)
    arms = mixing(run, *detector)
    relax, tvs = relaxation.relaxation(run), relaxation.tv_after_change(run)
    axes = common.new_axes(5)
    plot_mixing(run, arms, axes[:3], tol=args.tol)
    relaxation.plot_relaxation(relax, tvs, axes[3:])
    lines = mixing_summary(arms, *detector) + relaxation.relaxation_summary(relax, tvs)
    return axes, lines

  return common.run_figure(args, make)


if __name__ == '__main__':
  sys.exit(main())
