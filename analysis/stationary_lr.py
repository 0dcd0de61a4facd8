"""Stationary effective LR (Li, Lyu & Arora 2020, Lemma 5.2; configs/stationary_lr.py).

    python -m svag_jax.analysis.stationary_lr WORKDIR [--window START END]

Measured eta / ||w||^2 at equilibrium against the predicted sqrt(2 lambda_e) / sigma per lambda_e;
draws the figure `stationary_lr` into WORKDIR/figures (or --out), as PNG and PDF, and prints the
numbers (intervals: `stats.interval`, 95% over trials).

Which sigma^2 (Lemma 5.2). The whole trainable vector w of the svag_jax models is scale invariant,
so for every batch <grad L(w; B), w> = 0 and one SGD step with coupled WD gives exactly

    ||w_{k+1}||^2 = (1 - lambda_e)^2 ||w_k||^2 + eta^2 ||grad L(w_k; B_k)||^2.

The SDE of the 2020 paper keeps only the noise of the second term (the squared drift is second
order in dt): d||W||^2 = (-2 lambda_e ||W||^2 + eta^2 Tr Sigma_B(W)) dt. As grad L(c w) =
grad L(w) / c, Tr Sigma_B(w) = sigma^2 / ||w||^2 with sigma^2 = Tr Sigma_B(w / ||w||) = ||w||^2 N,
the noise trace of the unit-norm direction at the training batch size B (N = the run's G/N
estimate, metrics.gn_every). Setting the drift to zero: ||w||^4 = eta sigma^2 / (2 lambda), i.e.
eta / ||w||^2 = sqrt(2 lambda_e) / sigma — `theory.stationary_effective_lr`, the "Lemma 5.2"
prediction printed here. The exact discrete-time version keeps the full-batch gradient and the
lambda_e^2 term: eta / ||w||^2 = sqrt(lambda_e (2 - lambda_e)) / sigma_GN with
sigma_GN^2 = ||w||^2 (G + N) (`theory.stationary_effective_lr_discrete`); it is printed as
"discrete". Both use per-trial means over the
equilibrium window of eta / ||w||^2 and of ||w||^2 N (||w||^2 (G + N)) on the rows that carry G/N.

Reads workdirs only; nothing here trains.
"""

import dataclasses
import sys
from collections.abc import Sequence

import numpy as np
from matplotlib import ticker
from matplotlib.axes import Axes

from svag_jax import theory
from svag_jax.analysis import common, plots, stats

BAND = common.BAND


# ---- Item 3: stationary effective LR. ----


@dataclasses.dataclass(frozen=True)
class StationaryArm:
  """Per-trial equilibrium numbers of one arm (arrays [T]) and their summary.

  Attributes:
    arm: arm name; intrinsic_lr: lambda_e; window: (first, last) step of the equilibrium window.
    measured: eta / ||w||^2 averaged over the window, per trial.
    sigma2: ||w||^2 N averaged over the window's G/N rows (noise trace at unit norm).
    sigma2_gn: ||w||^2 (G + N) likewise.
    predicted: sqrt(2 lambda_e / sigma2) (Lemma 5.2); predicted_discrete:
      sqrt(lambda_e (2 - lambda_e) / sigma2_gn).
    nsr: N / G of the window (ratio of the window means), per trial.
  """

  arm: str
  intrinsic_lr: float
  window: tuple[float, float]
  measured: np.ndarray
  sigma2: np.ndarray
  sigma2_gn: np.ndarray
  predicted: np.ndarray
  predicted_discrete: np.ndarray
  nsr: np.ndarray


def stationary(
    run: common.RunLike,
    window: tuple[float, float] | None = None,
    last_fraction: float = 1 / 3,
) -> list[StationaryArm]:
  """Measured vs predicted stationary effective LR of every arm of a stationary_lr run.

  Args:
    run: the run, or its workdir (needs metrics.gn_every > 0).
    window: (start, end) of the equilibrium window in epochs; default the last `last_fraction`
      of each arm's evaluations.
  """
  run = common.as_run(run)
  result = []
  for arm, m in run.arms.items():
    steps = m.effective_steps
    spe = steps[-1] / m.epochs[-1]  # steps per epoch
    if window is None:
      lo, hi = steps[-1] * (1 - last_fraction), steps[-1]
    else:
      lo, hi = window[0] * spe, window[1] * spe
    mask = stats.window_mask(steps, lo, hi)
    v = m.values
    if 'N' not in v or not np.isfinite(v['N'][:, mask]).any():
      raise ValueError(
          f'{run.path}: arm {arm} has no G/N rows in steps [{lo:g}, {hi:g}]; '
          'run with config.metrics.gn_every > 0'
      )
    le = m.constant('intrinsic_lr', int(np.flatnonzero(mask)[0]))
    measured = stats.nanmean(v['effective_lr'][:, mask], 1)
    sigma2 = stats.nanmean((v['w_norm_sq'] * v['N'])[:, mask], 1)
    sigma2_gn = stats.nanmean((v['w_norm_sq'] * (v['G'] + v['N']))[:, mask], 1)
    nsr = stats.nanmean(v['N'][:, mask], 1) / stats.nanmean(v['G'][:, mask], 1)
    result.append(
        StationaryArm(
            arm,
            le,
            (float(lo), float(hi)),
            measured,
            sigma2,
            sigma2_gn,
            np.asarray(theory.stationary_effective_lr(le, sigma2)),
            np.asarray(theory.stationary_effective_lr_discrete(le, sigma2_gn)),
            nsr,
        )
    )
  return sorted(result, key=lambda a: a.intrinsic_lr)


def stationary_summary(arms: list[StationaryArm]) -> list[str]:
  lines = [
      f'Stationary effective LR eta/||w||^2 (mean over trials [{stats.INTERVAL}]), window steps '
      f'{arms[0].window[0]:g}-{arms[0].window[1]:g}',
      f'{"lambda_e":>9} {"trials":>6} {"measured":>26} {"Lemma 5.2 sqrt(2le)/sigma":>26} '
      f'{"meas/pred":>9} {"discrete (G+N)":>26} {"meas/disc":>9} {"sigma^2":>8} {"N/G":>6}',
  ]
  for a in arms:
    ratio = a.measured / a.predicted
    ratio_d = a.measured / a.predicted_discrete
    lines.append(
        f'{a.intrinsic_lr:>9.4g} {np.isfinite(a.measured).sum():>6} '
        f'{stats.fmt_interval(a.measured):>26} {stats.fmt_interval(a.predicted):>26} '
        f'{np.nanmean(ratio):>9.3f} {stats.fmt_interval(a.predicted_discrete):>26} '
        f'{np.nanmean(ratio_d):>9.3f} {np.nanmean(a.sigma2):>8.3g} {np.nanmean(a.nsr):>6.2f}'
    )
  le = np.array([a.intrinsic_lr for a in arms])
  meas = np.array([np.nanmean(a.measured) for a in arms])
  if len(arms) >= 2 and np.all(meas > 0):
    fit = stats.linear_fit(np.log(le), np.log(meas))
    lines.append(
        f'log-log slope of measured vs lambda_e: {fit.slope:.3f} (Lemma 5.2: 0.5 at '
        f'constant sigma), R^2 {fit.r2:.4f}'
    )
  return lines


def plot_stationary(
    run: common.RunLike,
    arms: list[StationaryArm] | None = None,
    axes: Sequence[Axes] | None = None,
) -> np.ndarray:
  """Two panels: eta/||w||^2 vs epoch per lambda_e (mean, 10-90% band) with the predicted
  stationary levels over the window; measured vs predicted stationary values vs lambda_e."""
  axes = common.check_axes(axes, 2, 'plot_stationary')
  run = common.as_run(run)
  arms = stationary(run) if arms is None else arms
  metrics = run.arms
  ax = axes[0]
  for i, a in enumerate(arms):
    m, color = metrics[a.arm], f'C{i % 10}'
    plots.plot_mean_band(ax, m.epochs, m.values['effective_lr'], color, f'λe={a.intrinsic_lr:g}')
    spe = m.effective_steps[-1] / m.epochs[-1]
    span = [a.window[0] / spe, a.window[1] / spe]
    ax.plot(span, [np.nanmean(a.predicted)] * 2, color=color, linestyle='--', linewidth=1.2)
    ax.plot(span, [np.nanmean(a.predicted_discrete)] * 2, color=color, linestyle=':', linewidth=1.2)
  ax.set_yscale('log')
  ax.set_xlabel('epoch')
  ax.set_ylabel('effective LR η/‖w‖²')
  ax.set_title('η/‖w‖² (mean, 10–90% band); -- √(2λe)/σ, ·· discrete', fontsize='medium')
  ax.legend(fontsize='x-small', ncol=3, loc='lower right')
  ax = axes[1]
  le = np.array([a.intrinsic_lr for a in arms])
  for values, label, marker in (
      (lambda a: a.measured, 'measured', 'o'),
      (lambda a: a.predicted, 'Lemma 5.2 √(2λe)/σ', 's'),
      (lambda a: a.predicted_discrete, 'discrete √(λe(2−λe))/σ_GN', '^'),
  ):
    plots.plot_intervals(
        ax,
        le,
        [values(a) for a in arms],
        marker=marker,
        linestyle='-' if label == 'measured' else '--',
        label=label,
    )
  ax.set_xscale('log')
  ax.set_yscale('log')
  ax.set_xticks(le, [f'{x:g}' for x in le])
  ax.xaxis.set_minor_formatter(ticker.NullFormatter())
  ax.set_xlabel('intrinsic LR λe = ηλ')
  ax.set_ylabel('stationary η/‖w‖²')
  ax.set_title(f'Stationary effective LR (mean, {stats.INTERVAL} over trials)', fontsize='medium')
  ax.legend(fontsize='small')
  return axes


def main(argv: Sequence[str] | None = None) -> int:
  parser = common.figure_parser('stationary_lr', __doc__)
  parser.add_argument(
      '--window',
      nargs=2,
      type=float,
      metavar=('START', 'END'),
      help='equilibrium window in epochs (default: last third)',
  )
  args = parser.parse_args(argv)

  def make():
    run = common.load_run(args.workdir)
    arms = stationary(run, args.window)
    return plot_stationary(run, arms), stationary_summary(arms)

  return common.run_figure(args, make)


if __name__ == '__main__':
  sys.exit(main())
