"""Mixing time in weight space and in function space (Li, Lyu & Arora 2020, Fig. 11;
configs/mixing_time.py).

    python -m svag_jax.analysis.mixing_time WORKDIR [--out DIR] [--permutations 200]

After eta / 10 and lambda x 10 at once (lambda_e unchanged), two relaxation times per lambda_e,
each fitted without a smoothing window or a tolerance:
  - weight space: ||w||^4 relaxes exactly exponentially at constant sigma (time constant
    1 / (4 lambda_e)); fitted per trial (`analysis.relaxation`), interval over trials;
  - function space: the trial-mean test error of the changed arm minus that of its unchanged
    control `ctl_<arm>` (the equilibrium at the same lambda_e) dips and comes back; from the
    bottom of the dip on it is fitted as A exp(-(t - t_dip) / tau_f) (least squares, asymptote 0:
    the control), with the fit's R^2; tau_f's interval is the jackknife over trials
    (`stats.jackknife_interval`: trial i of both arms left out together).
Each against 1 / lambda_e with a linear fit and its R^2. TV(changed arm, control) at the saved
prediction epochs is set against its permutation null (`tv.permutation_test`: both arms' trials
pooled and shuffled), so "the change is resolved" is a p-value. Draws the figure `mixing_time`
into WORKDIR/figures (or --out), as PNG and PDF, and prints the numbers. Reads workdirs only.
"""

import dataclasses
import math
import sys
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from scipy import optimize

from svag_jax import theory
from svag_jax.analysis import common, plots, relaxation, stats

CONTROL_PREFIX = 'ctl_'  # configs/mixing_time.py: the unchanged arm of `arm` is ctl_<arm>
DIP_WINDOW = 3  # evaluations in the running mean that locates the bottom of the dip
MIN_FIT_POINTS = 4  # evaluations after the dip needed for a fit


@dataclasses.dataclass(frozen=True)
class ErrorRelaxation:
  """The test error of one changed arm against its control after the change.

  Attributes:
    arm, intrinsic_lr: the changed arm.
    dt: float [E], steps after the change (0: the evaluation at the change).
    changed, control: float [T, E] and [Tc, E], the per-trial test errors (fractions).
    t_dip: dt of the bottom of the dip of the trial-mean difference (the fit starts there).
    amplitude, tau, r2: the fit A exp(-(dt - t_dip) / tau) to the trial-mean difference
      changed - control on dt >= t_dip (NaN when it fails), and its R^2 there.
    tau_interval: (low, high), the jackknife interval over trials of tau.
  """

  arm: str
  intrinsic_lr: float
  dt: np.ndarray
  changed: np.ndarray
  control: np.ndarray
  t_dip: float
  amplitude: float
  tau: float
  r2: float
  tau_interval: tuple[float, float]

  @property
  def difference(self) -> np.ndarray:
    """float [E]: trial-mean test error, changed arm minus control."""
    return stats.nanmean(self.changed, 0) - stats.nanmean(self.control, 0)


def fit_decay(dt: np.ndarray, d: np.ndarray, t0: float) -> tuple[float, float, float]:
  """(A, tau, R^2) of the least-squares fit d = A exp(-(dt - t0) / tau) on dt >= t0 (NaN when
  fewer than MIN_FIT_POINTS evaluations are there or the fit fails)."""
  keep = (dt >= t0) & np.isfinite(d)
  x, y = dt[keep] - t0, d[keep]
  if x.size < MIN_FIT_POINTS or not np.any(y):
    return math.nan, math.nan, math.nan
  a0 = float(y[0]) if y[0] else float(y[np.argmax(np.abs(y))])
  # a first guess: where |d| first falls below |A| / e
  below = np.flatnonzero(np.abs(y) < abs(a0) / math.e)
  tau0 = float(x[below[0]]) if below.size and x[below[0]] > 0 else float(x[-1]) / 3
  try:
    (a, tau), _ = optimize.curve_fit(
        lambda t, a, tau: a * np.exp(-t / tau),
        x,
        y,
        p0=(a0, max(tau0, 1e-3)),
        bounds=((-np.inf, 1e-6), (np.inf, np.inf)),
    )
  except (RuntimeError, ValueError):
    return math.nan, math.nan, math.nan
  resid = y - a * np.exp(-x / tau)
  ss_tot = float(np.sum((y - y.mean()) ** 2))
  return float(a), float(tau), 1 - float(np.sum(resid**2)) / ss_tot if ss_tot > 0 else math.nan


def dip_step(dt: np.ndarray, d: np.ndarray) -> float:
  """dt of the largest |running mean over DIP_WINDOW evaluations| of d: where the fit starts."""
  kernel = np.ones(DIP_WINDOW) / DIP_WINDOW
  smooth = np.convolve(np.nan_to_num(d), kernel, mode='same')
  return float(dt[int(np.argmax(np.abs(smooth)))])


def error_relaxation(run: common.RunLike) -> list[ErrorRelaxation]:
  """The function-space relaxation of every changing arm that has its control, by lambda_e."""
  run = common.as_run(run)
  result = []
  for arm, m, change in common.changing_arms(run, 'mixing_time'):
    control = run.arms.get(CONTROL_PREFIX + arm)
    if control is None:
      continue
    post = m.effective_steps >= change
    dt = m.effective_steps[post] - change
    changed = 1 - m.values['test_accuracy'][:, post]
    ctl = 1 - control.values['test_accuracy'][:, post]  # one run: the arms share evaluations
    n = min(len(changed), len(ctl))

    def diff(keep, changed=changed, ctl=ctl, n=n):
      return stats.nanmean(changed[:n][keep], 0) - stats.nanmean(ctl[:n][keep], 0)

    t_dip = dip_step(dt, diff(np.ones(n, bool)))
    a, tau, r2 = fit_decay(dt, diff(np.ones(n, bool)), t_dip)
    _, lo, hi = stats.jackknife_interval(lambda keep: fit_decay(dt, diff(keep), t_dip)[1], n)
    row = int(np.flatnonzero(post)[0])
    le = m.constant('intrinsic_lr', row)
    result.append(ErrorRelaxation(arm, le, dt, changed, ctl, t_dip, a, tau, r2, (lo, hi)))
  return sorted(result, key=lambda r: r.intrinsic_lr)


def tau_line(
    arms: list[ErrorRelaxation],
) -> tuple[stats.LinearFit, tuple[float, float]] | None:
  """tau_f = slope / lambda_e + intercept over the arms' fitted tau_f, and the jackknife interval
  of the slope (trial i of every arm left out together); None with fewer than two fitted arms."""
  arms = [a for a in arms if np.isfinite(a.tau)]
  if len(arms) < 2:
    return None
  inv = np.array([1 / a.intrinsic_lr for a in arms])
  fit = stats.linear_fit(inv, np.array([a.tau for a in arms]))
  n = min(min(len(a.changed), len(a.control)) for a in arms)

  def slope(keep):
    taus = []
    for a in arms:
      d = stats.nanmean(a.changed[:n][keep], 0) - stats.nanmean(a.control[:n][keep], 0)
      taus.append(fit_decay(a.dt, d, a.t_dip)[1])
    return stats.linear_fit(inv, np.array(taus)).slope if np.isfinite(taus).all() else math.nan

  _, lo, hi = stats.jackknife_interval(slope, n)
  return fit, (lo, hi)


def summary(
    errors: list[ErrorRelaxation],
    norms: list[relaxation.RelaxationArm],
    tvs: list[relaxation.TVAfterChange],
) -> list[str]:
  lines = relaxation.relaxation_summary(norms, [])
  lines += [
      'Function space: trial-mean test error, changed arm minus its control, fitted as '
      'A exp(-(t - t_dip) / tau_f) from the bottom of the dip (jackknife 95% interval over '
      'trials):',
      f'{"lambda_e":>9} {"trials":>7} {"t_dip":>6} {"A (%)":>7} {"tau_f [95%]":>22} {"R^2":>6} '
      f'{"tau_f * 4 lambda_e":>18}',
  ]
  for a in errors:
    iv = f'{a.tau:.1f} [{a.tau_interval[0]:.1f}, {a.tau_interval[1]:.1f}]'
    lines.append(
        f'{a.intrinsic_lr:>9.4g} {len(a.changed):>3}/{len(a.control):<3} {a.t_dip:>6.0f} '
        f'{100 * a.amplitude:>7.3f} {iv:>22} {a.r2:>6.3f} {4 * a.intrinsic_lr * a.tau:>18.2f}'
    )
  line = tau_line(errors)
  if line is None:
    lines.append('fit tau_f: fewer than two arms fitted')
  else:
    fit, (lo, hi) = line
    lines.append(
        f'fit tau_f = {fit.slope:.3f} [{lo:.3f}, {hi:.3f}] / lambda_e {fit.intercept:+.1f}, '
        f'R^2 = {fit.r2:.4f} (slope: jackknife 95% interval)'
    )
  lines += relaxation.tv_summary(tvs)
  lines.append(
      f'SDE at constant sigma: ||w||^4 relaxes with tau = 0.25 / lambda_e; eta/||w||^2 is back '
      f'within 10% after {theory.mixing_time_slope(0.1):.2f} / lambda_e steps'
  )
  return lines


def plot(
    run: common.RunLike,
    errors: list[ErrorRelaxation],
    norms: list[relaxation.RelaxationArm],
    tvs: list[relaxation.TVAfterChange],
    axes: Sequence[Axes] | None = None,
) -> np.ndarray:
  """Four panels: eta/||w||^2 over its pre-change level; the test error difference with its fit;
  both relaxation times vs 1 / lambda_e with their fits; TV to the control over its permutation
  null (filled: p < 0.05)."""
  axes = common.check_axes(axes, 4, 'mixing_time.plot', max_cols=2)
  run = common.as_run(run)
  span = max(float(a.dt[-1]) for a in errors) if errors else 1.0
  for i, a in enumerate(errors):
    m, color = run.arms[a.arm], f'C{i % 10}'
    change = m.change_step()
    pre = (m.effective_steps < change) & (m.effective_steps >= 0.75 * change)
    eff = m.values['effective_lr']
    level = stats.nanmean(eff[:, pre], 1)[:, None]
    plots.plot_mean_band(
        axes[0], m.effective_steps - change, eff / level, color, f'λe={a.intrinsic_lr:g}'
    )
    mean, lo, hi = (100 * x for x in _difference_band(a))
    axes[1].plot(a.dt, mean, color=color, linewidth=0.8, label=f'λe={a.intrinsic_lr:g}')
    axes[1].fill_between(a.dt, lo, hi, color=color, alpha=0.15, linewidth=0)
    if np.isfinite(a.tau):
      t = np.linspace(a.t_dip, a.dt[-1], 200)
      axes[1].plot(t, 100 * a.amplitude * np.exp(-(t - a.t_dip) / a.tau), color=color, ls='--')
  axes[0].set_yscale('log')
  axes[0].set_ylabel('η/‖w‖² ÷ pre-change level')
  axes[0].set_title('Effective LR after η/10, λ×10 (10–90% band)', fontsize='medium')
  axes[1].axhline(0, color='k', linewidth=0.8)
  axes[1].set_ylabel('test error − control (points)')
  axes[1].set_title(f'Function space (mean, {stats.INTERVAL}); -- fit', fontsize='medium')
  for ax in axes[:2]:
    ax.set_xlim(-0.1 * span, span)
    ax.set_xlabel('steps after the change')
    ax.legend(fontsize='small')
  _plot_taus(axes[2], errors, norms)
  relaxation.plot_tv(axes[3], tvs)
  return axes


def _difference_band(a: ErrorRelaxation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """The trial-mean difference and its Welch interval at every evaluation."""
  ivs = np.array(
      [stats.difference_interval(a.changed[:, j], a.control[:, j]) for j in range(a.dt.size)]
  )
  return ivs[:, 0], ivs[:, 1], ivs[:, 2]


def _plot_taus(
    ax: Axes, errors: list[ErrorRelaxation], norms: list[relaxation.RelaxationArm]
) -> None:
  inv_n = np.array([1 / a.intrinsic_lr for a in norms])
  inv_e = np.array([1 / a.intrinsic_lr for a in errors])
  xs = np.linspace(0, max([*inv_n, *inv_e, 1.0]) * 1.05, 50)
  if norms:
    plots.plot_intervals(
        ax, inv_n, [a.taus for a in norms], fmt='o', color='C0', label='‖w‖⁴ (per-trial fits)'
    )
    fitted = relaxation.relaxation_fit(norms)
    if fitted is not None:
      f = fitted[0]
      ax.plot(xs, f.slope * xs + f.intercept, 'C0--', label=f'{f.slope:.3f}/λe, R²={f.r2:.4f}')
  if errors:
    tau = np.array([a.tau for a in errors])
    lo, hi = (np.array([a.tau_interval[k] for a in errors]) for k in (0, 1))
    yerr = [np.nan_to_num(tau - lo), np.nan_to_num(hi - tau)]
    ax.errorbar(
        inv_e, tau, yerr=yerr, fmt='s', color='C3', capsize=3, label='test error (jackknife)'
    )
    line = tau_line(errors)
    if line is not None:
      f = line[0]
      label = f'{f.slope:.3f}/λe {f.intercept:+.0f}, R²={f.r2:.3f}'
      ax.plot(xs, f.slope * xs + f.intercept, 'C3--', label=label)
  ax.plot(xs, theory.norm4_relaxation_time(1.0) * xs, 'k:', linewidth=1, label='SDE: 1/(4λe)')
  ax.set_xlabel('1 / λe (steps)')
  ax.set_ylabel('relaxation time (steps)')
  ax.set_title(f'Relaxation times vs 1/λe (mean, {stats.INTERVAL})', fontsize='medium')
  ax.legend(fontsize='small')


def main(argv: Sequence[str] | None = None) -> int:
  parser = common.figure_parser('mixing_time', __doc__)
  parser.add_argument(
      '--permutations', type=int, default=200, help='shuffles of each TV permutation test'
  )
  args = parser.parse_args(argv)

  def make():
    run = common.load_run(args.workdir)
    errors, norms = error_relaxation(run), relaxation.relaxation(run)
    tvs = relaxation.tv_after_change(run, CONTROL_PREFIX, args.permutations)
    return plot(run, errors, norms, tvs), summary(errors, norms, tvs)

  return common.run_figure(args, make)


if __name__ == '__main__':
  sys.exit(main())
