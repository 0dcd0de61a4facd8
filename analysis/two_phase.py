"""The two-phase paradigm vs a classical step decay (configs/two_phase.py): curves and numbers.

    python -m svag_jax.analysis.two_phase WORKDIR [--out DIR]

writes WORKDIR/figures/two_phase.png/.pdf (or into DIR): train loss (log), test accuracy and
effective LR eta / ||w||^2 (log) vs epoch, one colour per arm, mean over trials with a 10-90%
quantile band, grey lines where any arm's LR or WD changes; and prints per arm the final train
loss, train and test accuracy (mean ± the half-width of its 95% interval over trials,
`stats.interval`, and the std), the first epoch at which the mean train loss is below 0.05 and
0.01, and the effective LR just before and after each schedule change and at the end.

Reads the workdir only (metrics.jsonl, config.json); nothing here trains.
"""

import math
import sys
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes

from svag_jax.analysis import common, plots, stats

BAND = common.BAND
LOSS_LEVELS = (0.05, 0.01)
PANELS = (
    ('train_loss', 'train loss (whole split, eval mode)', True),
    ('test_accuracy', 'test accuracy', False),
    ('effective_lr', r'effective LR  $\eta / \|w\|^2$', True),
)


def change_epochs(run: common.RunLike) -> list[float]:
  """Epochs at which any arm's LR or WD schedule changes (config.json), sorted."""
  run = common.as_run(run)
  return sorted({e for epochs in common.schedule_changes(run.config).values() for e in epochs})


def first_epoch_below(m: common.ArmMetrics, level: float, name: str = 'train_loss') -> float:
  """The first evaluated epoch at which the mean over trials of `name` is below `level` (NaN if
  never)."""
  mean, _, _ = stats.mean_and_band(m.values[name], BAND)
  below = np.flatnonzero(mean < level)
  return float(m.epochs[below[0]]) if below.size else float('nan')


def plot(run: common.RunLike, axes: Sequence[Axes] | None = None) -> np.ndarray:
  """The three panels of `PANELS` vs epoch, one colour per arm (mean and 10-90% band).

  Args:
    run: a two-arm (or any-arm) run, or its workdir.
    axes: three Axes to draw into; default a new Agg figure.

  Returns:
    The Axes (object array [3]).
  """
  axes = common.check_axes(axes, len(PANELS), 'two_phase.plot', panel_size=(5.0, 3.8))
  run = common.as_run(run)
  changes = change_epochs(run)
  for ax, (key, label, log) in zip(axes, PANELS, strict=True):
    for c, (arm, m) in enumerate(run.arms.items()):
      trials = m.values[key].shape[0]
      plots.plot_mean_band(ax, m.epochs, m.values[key], f'C{c}', f'{arm} ({trials} trials)', BAND)
    for e in changes:
      ax.axvline(e, color='0.8', linewidth=0.8, zorder=0)
    plots.label_epoch_panel(ax, label, log)
    ax.legend(fontsize='small')
  axes[0].set_title(
      f'Two-phase vs step decay (mean, {BAND[0]:.0%}–{BAND[1]:.0%} band)', fontsize='medium'
  )
  return axes


def summary(run: common.RunLike) -> list[str]:
  """The printed numbers, one block of lines per arm."""
  run = common.as_run(run)
  changes = change_epochs(run)
  lines = []
  for arm, m in run.arms.items():
    last = m.epochs[-1]
    parts = []
    for key in ('train_loss', 'train_accuracy', 'test_accuracy'):
      values = m.values[key][:, -1]
      mean, _, high = stats.interval(values)
      _, se, n = stats.mean_se(values)
      half, std = high - mean, se * math.sqrt(n)
      parts.append(f'{key} {mean:.4f} ± {half:.4f} (std {std:.4f})')
    lines.append(f'{arm}: epoch {last:g}, {n} trials: ' + '; '.join(parts))
    reach = ', '.join(f'< {lv:g} at epoch {first_epoch_below(m, lv):g}' for lv in LOSS_LEVELS)
    lines.append(f'  mean train loss {reach}')
    eff = []
    values = m.values['effective_lr']
    for e in changes:  # the last eval before the change and the first at or after it
      i = int(np.searchsorted(m.epochs, e - 1e-9))
      if 0 < i < len(m.epochs):
        eff.append(
            f'{np.nanmean(values[:, i - 1]):.2e} at {m.epochs[i - 1]:g}, '
            f'{np.nanmean(values[:, i]):.2e} at {m.epochs[i]:g}'
        )
    eff.append(f'{np.nanmean(m.values["effective_lr"][:, -1]):.2e} at the end')
    lines.append('  effective LR (mean): ' + '; '.join(eff))
  return lines


def main(argv: Sequence[str] | None = None) -> int:
  args = common.figure_parser('two_phase', __doc__).parse_args(argv)

  def make():
    run = common.load_run(args.workdir)
    return plot(run), summary(run)

  return common.run_figure(args, make)


if __name__ == '__main__':
  sys.exit(main())
