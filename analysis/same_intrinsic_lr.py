"""Arms at the same intrinsic LR with different eta and lambda: one equilibrium, or not (Li, Lyu &
Arora 2020, eq. 8; configs/init_lr.py, configs/warmup.py).

    python -m svag_jax.analysis.same_intrinsic_lr WORKDIR [--out DIR] [--permutations 200]

Arms are grouped by their intrinsic-LR schedule eta(t) lambda(t) (equal at every evaluation).
Within a group two arms differ only by the scale of the init (eta, lambda, c w) = (eta / c^2,
lambda c^2, w): the reference arm is the one with the median initial LR. Per arm: eta, lambda,
the effective LR eta / ||w||^2 at the first evaluation, the steps (x lambda_e) until each trial's
eta / ||w||^2 is first within 10% of the reference arm's trial mean there and, at the last
evaluation, the test accuracy (mean [95% interval] over trials, `stats.interval`) and its
difference from the reference (`stats.difference_interval`); at every saved prediction epoch the
TV to the reference against its permutation null (`tv.permutation_test`). Draws
`same_intrinsic_lr.png/.pdf` into WORKDIR/figures (or DIR). Reads the workdir only.
"""

import dataclasses
import sys
from collections.abc import Sequence

import numpy as np

from svag_jax import record
from svag_jax import tv as tv_lib
from svag_jax.analysis import common, plots, stats

TOL = 0.1  # "at the reference's effective LR": within 10%


@dataclasses.dataclass(frozen=True)
class Arm:
  """One arm against its group's reference; arrays per trial [T].

  Attributes:
    arm, group: its name and its group (the index of its intrinsic-LR schedule);
      is_reference: whether it is its group's reference.
    lr, wd: its initial eta and lambda; peak_intrinsic_lr: the largest eta lambda it trains at.
    eff_lr0: eta / ||w||^2 at the first evaluation (trial mean).
    settle: steps x peak lambda_e until the trial's eta/||w||^2 is first within TOL of the reference
      arm's trial mean at the same evaluation (NaN: never).
    final: test accuracy at the last evaluation.
    tv: {epoch: (TV, permutation null mean, p-value)} against the reference arm.
  """

  arm: str
  group: int
  is_reference: bool
  lr: float
  wd: float
  peak_intrinsic_lr: float
  eff_lr0: float
  settle: np.ndarray
  final: np.ndarray
  tv: dict[float, tuple[float, float, float]]


def groups(run: common.Run) -> list[list[str]]:
  """The arms grouped by equal intrinsic LR at every evaluation, in the order of the trials."""
  result: list[list[str]] = []
  for arm, m in run.arms.items():
    le = np.nanmedian(m.values['intrinsic_lr'], 0)
    for g in result:
      other = np.nanmedian(run.arms[g[0]].values['intrinsic_lr'], 0)
      if other.shape == le.shape and np.allclose(other, le, rtol=1e-5, atol=1e-12):
        g.append(arm)
        break
    else:
      result.append([arm])
  return result


def reference(run: common.Run, group: list[str]) -> str:
  """The arm of `group` with the median initial LR (the lower one of an even count)."""
  lrs = [run.arms[a].constant('lr') for a in group]
  return group[int(np.argsort(lrs)[(len(lrs) - 1) // 2])]


def arms(run: common.RunLike, num_permutations: int = 200) -> list[Arm]:
  run = common.as_run(run)
  saved = (run.path / 'predictions' / 'trials.json').exists()
  predictions, trial_arms = record.read_predictions(run.path) if saved else ({}, [])
  trial_arms = np.asarray(trial_arms)
  result = []
  for k, group in enumerate(groups(run)):
    ref = reference(run, group)
    r = run.arms[ref]
    ref_eff = stats.nanmean(r.values['effective_lr'], 0)
    for arm in group:
      m = run.arms[arm]
      le = np.nanmedian(m.values['intrinsic_lr'], 0)
      inside = np.abs(m.values['effective_lr'] / ref_eff - 1) <= TOL
      first = np.where(inside.any(1), np.argmax(inside, 1), -1)
      settle = np.where(first >= 0, m.effective_steps[first] * np.nanmax(le), np.nan)
      tvs = {}
      for epoch, pred in predictions.items():
        a, b = pred[trial_arms == arm], pred[trial_arms == ref]
        n = int(max(p[p != record.DIVERGED_PREDICTION].max() for p in (a, b))) + 1
        t = tv_lib.permutation_test(a, b, n, num_permutations)
        tvs[float(epoch)] = (t.tv, t.null_mean, t.p_value)
      result.append(
          Arm(
              arm,
              k,
              arm == ref,
              m.constant('lr'),
              m.constant('wd'),
              float(np.nanmax(le)),
              float(np.nanmean(m.values['effective_lr'][:, 0])),
              settle,
              m.values['test_accuracy'][:, -1],
              tvs,
          )
      )
  return result


def summary(arms: list[Arm]) -> list[str]:
  lines = [
      f'Arms grouped by eta(t) lambda(t); reference: the median initial eta of the group; '
      f'mean [{stats.INTERVAL}] over trials; TV to the reference / permutation null (p)'
  ]
  for k in sorted({a.group for a in arms}):
    group = [a for a in arms if a.group == k]
    ref = next(a for a in group if a.is_reference)
    lines.append(f'group {k}: peak lambda_e {group[0].peak_intrinsic_lr:.4g}, reference {ref.arm}')
    for a in group:
      line = (
          f'  {a.arm}: eta {a.lr:g}, lambda {a.wd:g}; eta/||w||^2 at the first eval '
          f'{a.eff_lr0:.3g} ({a.eff_lr0 / ref.eff_lr0:.3g}x); within {TOL:.0%} of the '
          f"reference's after {stats.fmt_interval(a.settle, 3)} / lambda_e "
          f'({np.isfinite(a.settle).sum()}/{a.settle.size}); final test accuracy '
          f'{stats.fmt_interval(a.final)}'
      )
      if a is not ref:
        diff = stats.difference_interval(a.final, ref.final)
        line += f', - reference {stats.format_interval(*diff, "+.4f")}'
        line += ''.join(
            f'; TV at {e:g}: {t:.4f} / {null:.4f} (p = {p:.3g})' for e, (t, null, p) in a.tv.items()
        )
      lines.append(line)
  return lines


def plot(run: common.RunLike, arms: list[Arm], axes=None) -> np.ndarray:
  """Four panels: eta/||w||^2 and test accuracy vs epoch per arm (mean, 10-90% band); TV to the
  reference over its permutation null vs epoch (filled: p < 0.05); final test accuracy per arm."""
  axes = common.check_axes(axes, 4, 'same_intrinsic_lr.plot', max_cols=2)
  run = common.as_run(run)
  styles = ('-', '--', ':', '-.')
  for i, a in enumerate(arms):
    m, color = run.arms[a.arm], f'C{i % 10}'
    ls = styles[a.group % len(styles)]
    for ax, key in zip(axes[:2], ('effective_lr', 'test_accuracy'), strict=True):
      plots.plot_mean_band(ax, m.epochs, m.values[key], color, a.arm, linestyle=ls)
    if a.tv and not a.is_reference:
      epochs = np.array(list(a.tv))
      t, null, p = (np.array([v[j] for v in a.tv.values()]) for j in range(3))
      axes[2].plot(epochs, t / null, color=color, ls=ls, label=a.arm)
      axes[2].plot(epochs[p < 0.05], (t / null)[p < 0.05], 'o', color=color)
    plots.plot_intervals(axes[3], [i], [a.final], fmt='o', color=color)
  plots.label_epoch_panel(axes[0], 'η/‖w‖² (mean, 10–90% band)', log=True)
  plots.label_epoch_panel(axes[1], 'test accuracy (mean, 10–90% band)')
  lo = np.nanmin([np.nanmean(a.final) for a in arms])
  axes[1].set_ylim(max(0.0, lo - 0.05), None)
  axes[0].legend(fontsize='x-small', ncol=2)
  plots.label_epoch_panel(axes[2], 'TV to the reference ÷ permutation null')
  axes[2].axhline(1, color='k', linewidth=0.8)
  axes[2].set_title('● p < 0.05', fontsize='medium')
  if axes[2].get_legend_handles_labels()[0]:
    axes[2].legend(fontsize='x-small')
  axes[3].set_xticks(range(len(arms)), [a.arm for a in arms], rotation=60, fontsize='small')
  axes[3].set_ylabel(f'final test accuracy (mean, {stats.INTERVAL})')
  axes[3].grid(alpha=0.3)
  return axes


def main(argv: Sequence[str] | None = None) -> int:
  parser = common.figure_parser('same_intrinsic_lr', __doc__)
  parser.add_argument('--permutations', type=int, default=200, help='shuffles per TV test')
  args = parser.parse_args(argv)

  def make():
    run = common.load_run(args.workdir)
    result = arms(run, args.permutations)
    return plot(run, result), summary(result)

  return common.run_figure(args, make)


if __name__ == '__main__':
  sys.exit(main())
