"""Relaxation after a schedule change, in weight space and in function space (Li, Lyu & Arora
2020; configs/mixing_time.py).

    python -m svag_jax.analysis.relaxation WORKDIR [--out DIR]

After eta / 10, lambda x 10 at once (lambda_e unchanged), ||w||^4 relaxes exactly exponentially
at constant sigma, with time constant `theory.norm4_relaxation_time` = 1 / (4 lambda_e): fitted per
trial (no smoothing window, no tolerance), then tau against 1 / lambda_e with a 95% percentile
bootstrap over trials of the fit. In function space: TV between each changed arm and its
unchanged control (same lambda_e) at the saved prediction epochs, against its permutation null
(`tv.permutation_test`). Draws the figure `relaxation` into WORKDIR/figures (or --out), as PNG and
PDF, and prints the numbers; `analysis.mixing_time` draws the same two panels beside its own.
Intervals over trials are `stats.interval` (95%). Reads workdirs only; nothing here trains.
"""

import dataclasses
import math
import sys
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes

from svag_jax import record, theory
from svag_jax import tv as tv_lib
from svag_jax.analysis import common, plots, stats

RELAX_RANGE = (0.1, 0.9)  # the part of the relaxation y = (Q - Q_end) / (Q_0 - Q_end) fitted
END_FRACTION = 0.25  # Q_end: the mean of Q over the last quarter of the evals after the change


def trial_relaxation_time(dt: np.ndarray, q: np.ndarray) -> float:
  """1 / rate of one trial's relaxation: q [E] at dt [E] >= 0 steps after the change (q[0] at
  the change); least-squares slope of log y vs dt over the evals with y in RELAX_RANGE, where
  y = (q - q_end) / (q[0] - q_end). NaN when fewer than 3 evals are in range."""
  n_end = max(1, int(round(END_FRACTION * len(q))))
  q_end = float(np.mean(q[-n_end:]))
  y = (q - q_end) / (q[0] - q_end)
  keep = (y > RELAX_RANGE[0]) & (y < RELAX_RANGE[1]) & np.isfinite(y)
  if keep.sum() < 3:
    return math.nan
  slope = np.polyfit(dt[keep], np.log(y[keep]), 1)[0]
  return -1.0 / slope if slope < 0 else math.nan


@dataclasses.dataclass(frozen=True)
class RelaxationArm:
  """||w||^4 relaxing after the change: per-trial time constants [T] (steps)."""

  arm: str
  intrinsic_lr: float
  taus: np.ndarray


def relaxation(run: common.RunLike) -> list[RelaxationArm]:
  """The time constant of ||w||^4 after eta / 10, lambda x 10, per trial of every changing arm.

  With a constant sigma ||w||^4 relaxes exactly exponentially with time constant
  `theory.norm4_relaxation_time` = 1 / (4 lambda_e): fitting it needs no smoothing window and no
  tolerance.
  """
  run = common.as_run(run)
  result = []
  for arm, m, change in common.changing_arms(run, 'mixing_time'):
    steps = m.effective_steps
    post = steps >= change
    dt = steps[post] - steps[post][0]
    q = m.values['w_norm_sq'][:, post] ** 2
    taus = np.array([trial_relaxation_time(dt, row) for row in q])
    row = int(np.flatnonzero(post)[0])
    result.append(RelaxationArm(arm, m.constant('intrinsic_lr', row), taus))
  return sorted(result, key=lambda a: a.intrinsic_lr)


def relaxation_fit(
    arms: list[RelaxationArm], num_resamples: int = 500, seed: int = 0
) -> tuple[stats.LinearFit, tuple[float, float], tuple[float, float]] | None:
  """tau = slope / lambda_e + intercept on the arms' trial means, with 95% percentile bootstrap
  intervals of slope and intercept (trials resampled within each arm); None with fewer than two
  arms whose trials were fitted."""
  arms = [a for a in arms if np.isfinite(a.taus).any()]
  if len(arms) < 2:
    return None
  inv = np.array([1 / a.intrinsic_lr for a in arms])
  fit = stats.linear_fit(inv, np.array([np.nanmean(a.taus) for a in arms]))
  rng = np.random.default_rng(seed)
  boot = []
  for _ in range(num_resamples):
    means = [np.nanmean(a.taus[rng.integers(0, len(a.taus), len(a.taus))]) for a in arms]
    if np.isfinite(means).all():
      b = stats.linear_fit(inv, np.array(means))
      boot.append((b.slope, b.intercept))
  lo, hi = np.percentile(np.array(boot), [2.5, 97.5], axis=0)
  return fit, (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


@dataclasses.dataclass(frozen=True)
class TVAfterChange:
  """TV between a changed arm and its unchanged control (same lambda_e) at the saved epochs.

  Attributes:
    arm, intrinsic_lr: the changed arm.
    steps: [P] steps after the change (negative: before it); tv: [P] TV(arm, control) with all
      their trials;
    null: [P] the mean of TV's permutation null at each epoch (`tv.permutation_test`: the two
      arms' trials pooled and shuffled; what TV reads at these trial counts when the two arms are
      one distribution), p_value: [P] its one-sided p-value.
  """

  arm: str
  intrinsic_lr: float
  steps: np.ndarray
  tv: np.ndarray
  null: np.ndarray
  p_value: np.ndarray


def tv_after_change(
    run: common.RunLike, control_prefix: str = 'ctl_', num_permutations: int = 200
) -> list[TVAfterChange]:
  """TV(changed arm, its control `control_prefix + arm`) at every saved prediction epoch, with
  its permutation test there (`num_permutations` shuffles). Empty when no predictions or no
  controls."""
  run = common.as_run(run)
  if not (run.path / 'predictions' / 'trials.json').exists():
    return []
  predictions, trial_arms = record.read_predictions(run.path)
  trial_arms = np.asarray(trial_arms)
  metrics = run.arms
  epochs = np.array(sorted(predictions))
  num_classes = int(max(p[p != record.DIVERGED_PREDICTION].max() for p in predictions.values()))
  result = []
  for arm, m, change in common.changing_arms(run):
    if control_prefix + arm not in metrics:
      continue
    a = np.flatnonzero(trial_arms == arm)
    b = np.flatnonzero(trial_arms == control_prefix + arm)
    steps_per_epoch = float(m.effective_steps[-1] / m.epochs[-1])
    tests = [
        tv_lib.permutation_test(
            predictions[e][a], predictions[e][b], num_classes + 1, num_permutations
        )
        for e in epochs
    ]
    row = int(np.flatnonzero(m.effective_steps >= change)[0])
    result.append(
        TVAfterChange(
            arm,
            m.constant('intrinsic_lr', row),
            epochs * steps_per_epoch - change,
            np.array([t.tv for t in tests]),
            np.array([t.null_mean for t in tests]),
            np.array([t.p_value for t in tests]),
        )
    )
  return sorted(result, key=lambda r: r.intrinsic_lr)


def tv_return_step(r: TVAfterChange, level: float = 0.05) -> float:
  """The saved step after the change that ends the last run of two or more consecutive saved steps
  with p < `level`: from there on TV reads as its null (single later hits are the tests' 5%);
  NaN if no two consecutive steps differ."""
  after = r.steps >= 0
  steps, differs = r.steps[after], r.p_value[after] < level
  runs = np.flatnonzero(differs[:-1] & differs[1:])
  return float(steps[runs[-1] + 1]) if runs.size else math.nan


def tv_summary(tvs: list[TVAfterChange], level: float = 0.05) -> list[str]:
  """Per lambda_e: TV over its permutation null before the change, and after it the first and
  last saved steps with p < `level` and the largest TV / null."""
  if not tvs:
    return []
  lines = [
      'TV(changed arm, unchanged control at the same lambda_e) over its permutation null (the two '
      f'arms pooled and shuffled); "differs": p < {level:g}'
  ]
  for r in tvs:
    before, after = r.steps < 0, r.steps >= 0
    ratio = r.tv / r.null
    hits = r.steps[after][r.p_value[after] < level]
    k = int(np.argmax(ratio[after]))
    differs = (
        f'differs at {hits.size}/{after.sum()} saved steps after it, first {hits[0]:+.0f}, last '
        f'{hits[-1]:+.0f}'
        if hits.size
        else f'differs at none of the {after.sum()} saved steps after it'
    )
    back = tv_return_step(r, level)
    lines.append(
        f'  lambda_e {r.intrinsic_lr:<7.4g} before the change: TV/null {ratio[before].min():.2f}-'
        f'{ratio[before].max():.2f}x, {int(np.sum(r.p_value[before] < level))}/{before.sum()} '
        f'with p < {level:g}; {differs}; largest {ratio[after][k]:.2f}x (p = '
        f'{r.p_value[after][k]:.3g}) at step {r.steps[after][k]:+.0f}; back at the null after '
        f'{back:.0f} steps = {back * r.intrinsic_lr:.2f} / lambda_e'
    )
  backs = np.array([tv_return_step(r, level) for r in tvs])
  inv = np.array([1 / r.intrinsic_lr for r in tvs])
  if np.isfinite(backs).sum() >= 2:
    fit = stats.linear_fit(inv, backs)
    lines.append(
        f'  back at the null (the end of the last run of >= 2 saved steps with p < {level:g}): '
        f'{fit.slope:.3f} / lambda_e {fit.intercept:+.1f} steps, R^2 = {fit.r2:.4f}'
    )
  return lines


def plot_tv(ax: Axes, tvs: list[TVAfterChange], level: float = 0.05) -> None:
  """TV to the control over its permutation null vs steps after the change, one line per
  lambda_e; filled markers where p < `level`."""
  for i, r in enumerate(tvs):
    color = f'C{i % 10}'
    ratio = r.tv / r.null
    ax.plot(r.steps, ratio, color=color, linewidth=0.8, label=f'λe={r.intrinsic_lr:g}')
    hit = r.p_value < level
    ax.plot(r.steps[hit], ratio[hit], 'o', color=color, markersize=3)
  ax.axhline(1.0, color='k', linewidth=0.8)
  ax.axvline(0.0, color='grey', linestyle=':', linewidth=0.8)
  ax.set_xlabel('steps after the change')
  ax.set_ylabel('TV(changed, control) ÷ permutation null')
  ax.set_title(f'Function space: TV to the unchanged arm (● p < {level:g})', fontsize='medium')
  if tvs:
    ax.legend(fontsize='small')


def relaxation_summary(arms: list[RelaxationArm], tvs: list[TVAfterChange]) -> list[str]:
  fitted = relaxation_fit(arms)
  lines = [
      'Relaxation of ||w||^4 after the change (exponential fit per trial over '
      f'{RELAX_RANGE[0]:g} < y < {RELAX_RANGE[1]:g}; predicted time constant 1 / (4 lambda_e)):',
      f'{"lambda_e":>9} {"1/(4 lambda_e)":>14} {"tau, mean [" + stats.INTERVAL + "]":>28} '
      f'{"tau * 4 lambda_e":>16}',
  ]
  for a in arms:
    m, _, _ = stats.interval(a.taus)
    tau = theory.norm4_relaxation_time(a.intrinsic_lr)
    lines.append(
        f'{a.intrinsic_lr:>9.4g} {tau:>14.1f} {stats.fmt_interval(a.taus):>28} {m / tau:>16.3f}'
    )
  if fitted is None:
    lines.append('fit tau: fewer than two arms with a fitted relaxation')
  else:
    fit, slope_iv, intercept_iv = fitted
    lines.append(
        f'fit tau = {fit.slope:.3f} [{slope_iv[0]:.3f}, {slope_iv[1]:.3f}] / lambda_e '
        f'{fit.intercept:+.1f} [{intercept_iv[0]:+.1f}, {intercept_iv[1]:+.1f}], R^2 = '
        f'{fit.r2:.4f} (95% bootstrap over trials; predicted 0.25 / lambda_e + 0)'
    )
  return lines + tv_summary(tvs)


def plot_relaxation(
    arms: list[RelaxationArm], tvs: list[TVAfterChange], axes: Sequence[Axes] | None = None
) -> np.ndarray:
  """Two panels: the fitted time constants vs 1/lambda_e with the fit and 1/(4 lambda_e); TV
  to the control over its pre-change level vs steps after the change."""
  axes = common.check_axes(axes, 2, 'plot_relaxation')
  inv = np.array([1 / a.intrinsic_lr for a in arms])
  ax = axes[0]
  plots.plot_intervals(
      ax,
      inv,
      [a.taus for a in arms],
      marker='o',
      linestyle='none',
      label=f'fitted τ of ‖w‖⁴ (mean, {stats.INTERVAL})',
  )
  fitted = relaxation_fit(arms)
  xs = np.linspace(0, inv.max() * 1.05, 50)
  ax.plot(xs, theory.norm4_relaxation_time(1.0) * xs, 'k:', label='SDE, constant σ: 1/(4λe)')
  if fitted is not None:
    fit = fitted[0]
    label = f'fit {fit.slope:.3f}/λe {fit.intercept:+.1f}'
    ax.plot(xs, fit.slope * xs + fit.intercept, 'C0--', label=label)
  ax.set_xlabel('1 / λe (steps)')
  ax.set_ylabel('relaxation time τ (steps)')
  ax.set_title('‖w‖⁴ relaxation time vs 1/λe', fontsize='medium')
  ax.legend(fontsize='small')
  plot_tv(axes[1], tvs)
  return axes


def main(argv: Sequence[str] | None = None) -> int:
  args = common.figure_parser('relaxation', __doc__).parse_args(argv)

  def make():
    run = common.load_run(args.workdir)
    arms, tvs = relaxation(run), tv_after_change(run)
    return plot_relaxation(arms, tvs), relaxation_summary(arms, tvs)

  return common.run_figure(args, make)


if __name__ == '__main__':
  sys.exit(main())
