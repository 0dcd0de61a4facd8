"""Early large LR / WD vs extreme init scale (configs/scale_rescue.py; Li, Lyu & Arora 2020 Fig. 8).

    python -m svag_jax.analysis.scale_rescue ROOT [--out DIR]

ROOT is the sweep root (one sub-workdir per initial scale, e.g. init_x1 and init_x30, each with
the same arms). The first point is the normal initialisation and its first arm the reference.
Prints, per point and arm, the test accuracy at `EPOCHS` and at the end (mean [95% interval] over
trials), ||w||^2 and eta / ||w||^2 at the same epochs (means), and the first epoch at which each
trial's test accuracy reaches the reference's final mean minus `TARGET_GAP` (median over trials,
and how many trials never do). Draws `scale_rescue.png/.pdf` into ROOT/figures (or DIR): test
accuracy, ||w||^2 and eta / ||w||^2 vs epoch, colour = arm, line style = point.

Reads workdirs only (metrics.jsonl); nothing here trains.
"""

import os
import sys
from collections.abc import Sequence

import numpy as np

from svag_jax.analysis import common, plots, stats

EPOCHS = (1, 2, 4, 8, 16)
TARGET_GAP = 0.01
STYLES = ('-', '--', ':', '-.')
PANELS = (
    ('test_accuracy', 'test accuracy', False),
    ('w_norm_sq', r'$\|w\|^2$', True),
    ('effective_lr', r'effective LR  $\eta / \|w\|^2$', True),
)


def points(root: str | os.PathLike) -> dict[str, dict[str, common.ArmMetrics]]:
  """{point name: {arm: ArmMetrics}} of the sub-workdirs of `root` that hold metrics
  (`common.load_sweep`), sorted by the init factor in the name, else by name."""

  def key(run):
    digits = ''.join(ch for ch in run.name.split('x')[-1] if ch.isdigit() or ch == '.')
    try:
      return (0, float(digits), run.name)
    except ValueError:
      return (1, 0.0, run.name)

  return {run.name: run.arms for run in sorted(common.load_sweep(root), key=key)}


def first_epoch_reaching(m: common.ArmMetrics, level: float) -> np.ndarray:
  """float [T]: per trial, the first evaluated epoch with test accuracy >= `level` (NaN: never)."""
  acc = m.values['test_accuracy']
  reached = acc >= level
  first = np.argmax(reached, axis=1)
  return np.where(reached.any(axis=1), m.epochs[first], np.nan)


def target(runs: dict[str, dict[str, common.ArmMetrics]]) -> float:
  """The reference's final mean test accuracy minus TARGET_GAP (first point, first arm)."""
  ref = next(iter(next(iter(runs.values())).values()))
  return float(np.nanmean(ref.values['test_accuracy'][:, -1])) - TARGET_GAP


def summary(runs: dict[str, dict[str, common.ArmMetrics]]) -> list[str]:
  level = target(runs)
  lines = [
      f'Test accuracy (mean [{stats.INTERVAL}] over trials); target {level:.4f} = final mean of '
      f'the reference - {TARGET_GAP:g}'
  ]
  for point, arms in runs.items():
    for arm, m in arms.items():
      at = [e for e in EPOCHS if e <= m.epochs[-1]]
      acc = ', '.join(f'{e:g}: {stats.fmt_interval(m.at_epoch("test_accuracy", e), 3)}' for e in at)
      first = first_epoch_reaching(m, level)
      never = int(np.isnan(first).sum())
      reach = f'{np.nanmedian(first):g}' if never < len(first) else 'never'
      lines += [
          f'{point}/{arm} ({len(m.trials)} trials): final (epoch {m.epochs[-1]:g}) '
          f'{stats.fmt_interval(m.values["test_accuracy"][:, -1])}; reaches the target at epoch '
          f'{reach} (median){f", {never} trial(s) never" if never else ""}',
          f'  at epochs {acc}',
          '  ||w||^2: '
          + ', '.join(f'{e:g}: {np.nanmean(m.at_epoch("w_norm_sq", e)):.3g}' for e in at)
          + f', end: {np.nanmean(m.values["w_norm_sq"][:, -1]):.3g}; eta/||w||^2 at 1: '
          f'{np.nanmean(m.at_epoch("effective_lr", 1)):.2e}, end: '
          f'{np.nanmean(m.values["effective_lr"][:, -1]):.2e}',
      ]
  return lines


def plot(runs: dict[str, dict[str, common.ArmMetrics]], axes=None) -> np.ndarray:
  axes = common.check_axes(axes, len(PANELS), 'scale_rescue.plot')
  arm_names = list(dict.fromkeys(a for arms in runs.values() for a in arms))
  for ax, (key, label, log) in zip(axes, PANELS, strict=True):
    for p, (point, arms) in enumerate(runs.items()):
      for arm, m in arms.items():
        c = f'C{arm_names.index(arm) % 10}'
        style = dict(linestyle=STYLES[p % len(STYLES)], alpha=0.15)
        plots.plot_mean_band(ax, m.epochs, m.values[key], c, f'{point}/{arm}', **style)
    plots.label_epoch_panel(ax, label, log)
  axes[0].set_ylim(0.0, 1.0)
  axes[0].axhline(target(runs), color='k', linewidth=0.6, linestyle=':')
  axes[0].legend(fontsize='small')
  axes[0].set_title('mean over trials, 10–90% band', fontsize='medium')
  return axes


def main(argv: Sequence[str] | None = None) -> int:
  args = common.figure_parser('scale_rescue', __doc__, source='root').parse_args(argv)

  def make():
    runs = points(args.root)
    return plot(runs), summary(runs)

  return common.run_figure(args, make)


if __name__ == '__main__':
  sys.exit(main())
