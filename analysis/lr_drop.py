"""The LR drop (Li, Lyu & Arora 2020, Lemma 5.2; configs/lr_drop.py).

    python -m svag_jax.analysis.lr_drop WORKDIR

The effective LR eta / ||w||^2 right after eta / 10 and after recovery, as ratios to its pre-drop
level (Lemma 5.2: 0.1 at once, then 1/sqrt(10) = 0.316); draws the figure `lr_drop` into
WORKDIR/figures (or --out), as PNG and PDF, and prints the numbers (intervals: `stats.interval`,
95% over trials). Reads workdirs only; nothing here trains.
"""

import dataclasses
import math
import sys
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes

from svag_jax import theory
from svag_jax.analysis import common, plots, stats

BAND = common.BAND


# ---- Item 4: LR drop. ----


@dataclasses.dataclass(frozen=True)
class LRDropArm:
  """Ratios of the effective LR to its pre-drop level, per trial (arrays [T]).

  Attributes:
    arm: name; drop_step: step of the LR change; lr_factor: new LR / old LR.
    pre_window, post_window: (first, last) steps of the two averaging windows.
    immediate: eta'/||w||^2 at the drop row (new LR, weights not yet stepped) / pre level.
    next_eval: the same at the first row after the drop.
    recovered: mean over the post window / pre level.
    predicted: sqrt(lr_factor) (Lemma 5.2 at equal sigma); predicted_sigma: sqrt(lr_factor)
      sigma_pre / sigma_post with sigma^2 = ||w||^2 N of each window (NaN without G/N);
      predicted_discrete: the discrete-time ratio sqrt(le' (2 - le') / (le (2 - le)))
      sigma_GN,pre / sigma_GN,post with sigma_GN^2 = ||w||^2 (G + N) (NaN without G/N).
  """

  arm: str
  drop_step: float
  lr_factor: float
  pre_window: tuple[float, float]
  post_window: tuple[float, float]
  immediate: np.ndarray
  next_eval: np.ndarray
  recovered: np.ndarray
  predicted: float
  predicted_sigma: np.ndarray
  predicted_discrete: np.ndarray


def lr_drop(run: common.RunLike, window_fraction: float = 1 / 3) -> list[LRDropArm]:
  """The LR-drop ratios of every arm whose LR changes once (arms without a change are controls).

  The pre window is the last `window_fraction` of the steps before the drop; the post window the
  last `window_fraction` of the steps after it.
  """
  run = common.as_run(run)
  result = []
  for arm, m, drop in common.changing_arms(run, 'lr_drop'):
    steps, v = m.effective_steps, m.values
    i = int(np.flatnonzero(steps == drop)[0])
    lr_before, lr_after = m.constant('lr', i - 1), m.constant('lr', i)
    pre = (drop - window_fraction * drop, drop - 1)
    post = (steps[-1] - window_fraction * (steps[-1] - drop), steps[-1])
    pre_mask, post_mask = stats.window_mask(steps, *pre), stats.window_mask(steps, *post)
    eff = v['effective_lr']
    level = stats.nanmean(eff[:, pre_mask], 1)
    sigma_ratio = sigma_gn_ratio = np.full(len(m.trials), np.nan)
    if (
        'N' in v
        and np.isfinite(v['N'][:, pre_mask]).any()
        and np.isfinite(v['N'][:, post_mask]).any()
    ):
      s2 = v['w_norm_sq'] * v['N']
      sigma_ratio = np.sqrt(stats.nanmean(s2[:, pre_mask], 1) / stats.nanmean(s2[:, post_mask], 1))
      s2 = v['w_norm_sq'] * (v['G'] + v['N'])
      sigma_gn_ratio = np.sqrt(
          stats.nanmean(s2[:, pre_mask], 1) / stats.nanmean(s2[:, post_mask], 1)
      )
    factor = lr_after / lr_before
    le = m.constant('intrinsic_lr', i - 1)
    le_after = m.constant('intrinsic_lr', i)
    discrete = sigma_gn_ratio * (
        theory.stationary_effective_lr_discrete(le_after, 1.0)
        / theory.stationary_effective_lr_discrete(le, 1.0)
    )
    result.append(
        LRDropArm(
            arm,
            drop,
            factor,
            pre,
            post,
            eff[:, i] / level,
            eff[:, i + 1] / level,
            stats.nanmean(eff[:, post_mask], 1) / level,
            math.sqrt(factor),
            math.sqrt(factor) * sigma_ratio,
            discrete,
        )
    )
  return result


def lr_drop_summary(arms: list[LRDropArm]) -> list[str]:
  lines = [
      'Effective LR after the LR drop, as a ratio to its pre-drop level '
      f'(mean over trials [{stats.INTERVAL}])'
  ]
  for a in arms:
    lines += [
        f'{a.arm}: LR x {a.lr_factor:g} at step {a.drop_step:g}; pre window steps '
        f'{a.pre_window[0]:g}-{a.pre_window[1]:g}, post window {a.post_window[0]:g}-'
        f'{a.post_window[1]:g}; {np.isfinite(a.recovered).sum()} trials',
        f'  at the drop (new LR, old weights): {stats.fmt_interval(a.immediate)} '
        f'(Lemma 5.2: {a.lr_factor:g}); next eval: {stats.fmt_interval(a.next_eval)}',
        f'  recovered: {stats.fmt_interval(a.recovered)}; predicted sqrt({a.lr_factor:g}) = '
        f'{a.predicted:.4f}'
        + (
            f'; with the measured sigma_pre/sigma_post: '
            f'{stats.fmt_interval(a.predicted_sigma)}; discrete (G+N, '
            f'2 - lambda_e): {stats.fmt_interval(a.predicted_discrete)}'
            if np.isfinite(a.predicted_sigma).any()
            else ''
        ),
    ]
  return lines


def plot_lr_drop(
    run: common.RunLike,
    arms: list[LRDropArm] | None = None,
    axes: Sequence[Axes] | None = None,
) -> np.ndarray:
  """Two panels: eta/||w||^2 vs epoch per arm (controls included) with the pre level, /10 and
  /sqrt(10) marked; eta/||w||^2 over the pre level vs steps after the drop (log-log)."""
  axes = common.check_axes(axes, 2, 'plot_lr_drop')
  run = common.as_run(run)
  arms = lr_drop(run) if arms is None else arms
  metrics = run.arms
  for i, (arm, m) in enumerate(metrics.items()):
    plots.plot_mean_band(
        axes[0], m.epochs, m.values['effective_lr'], f'C{i % 10}', f'{arm} ({len(m.trials)} trials)'
    )
  for i, a in enumerate(arms):
    m = metrics[a.arm]
    steps, color = m.effective_steps, f'C{list(metrics).index(a.arm) % 10}'
    pre = stats.window_mask(steps, *a.pre_window)
    level = stats.nanmean(stats.nanmean(m.values['effective_lr'][:, pre], 1), 0)
    for factor, style in ((1.0, '-'), (a.lr_factor, ':'), (a.predicted, '--')):
      axes[0].axhline(level * factor, color=color, linestyle=style, linewidth=0.8, alpha=0.7)
    after = steps >= a.drop_step
    ratio = m.values['effective_lr'][:, after] / level
    plots.plot_mean_band(axes[1], steps[after] - a.drop_step + 1, ratio, color, a.arm)
    for y, style, label in (
        (a.predicted, '--', f'√{a.lr_factor:g} = {a.predicted:.3f}'),
        (a.lr_factor, ':', f'{a.lr_factor:g}'),
    ):
      axes[1].axhline(y, color='k', linestyle=style, linewidth=0.8, label=label if i == 0 else None)
  axes[0].set_yscale('log')
  axes[0].set_xlabel('epoch')
  axes[0].set_ylabel('effective LR η/‖w‖²')
  axes[0].set_title('η/‖w‖²: pre level (—), ×0.1 (··), ×1/√10 (--)', fontsize='medium')
  axes[0].legend(fontsize='small')
  axes[1].set_xscale('log')
  axes[1].set_yscale('log')
  axes[1].set_xlabel('steps after the LR drop + 1')
  axes[1].set_ylabel('η/‖w‖² ÷ pre-drop level')
  axes[1].set_title('Recovery after LR/10 (mean, 10–90% band)', fontsize='medium')
  axes[1].legend(fontsize='small')
  return axes


def main(argv: Sequence[str] | None = None) -> int:
  parser = common.figure_parser('lr_drop', __doc__)
  args = parser.parse_args(argv)

  def make():
    run = common.load_run(args.workdir)
    arms = lr_drop(run)
    return plot_lr_drop(run, arms), lr_drop_summary(arms)

  return common.run_figure(args, make)


if __name__ == '__main__':
  sys.exit(main())
