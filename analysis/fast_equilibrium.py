"""Figures and summary of a Fast Equilibrium run (Li, Lyu & Arora 2020, Fig. 3).

    python -m svag_jax.analysis.fast_equilibrium WORKDIR [--out DIR] [--resamples 5] [--seed 0]

writes into WORKDIR/figures (or DIR), each as PNG and PDF:
  errors.*  train and test error vs epoch per arm: mean over trials, 10-90% quantile band;
  norms.*   ||w||^2 and effective LR eta / ||w||^2 vs epoch per arm (log scale), same statistics;
  tv.*      TV between the reference arm (the first arm) and each other arm vs the number of trials
            per arm, one panel per saved prediction epoch, with both baselines of DESIGN.md §2;
and prints where they are and a summary: final test error per arm (mean ± std over trials) and, for
each other arm and every prediction epoch, TV vs the split-half floor at the same number of
trials, TV at the most trials and the error-sum baseline.

Where the error baseline comes from: the mean `test_accuracy` of each arm's trials in
metrics.jsonl at the prediction epoch (a prediction epoch is always an evaluation), i.e. exactly the
error of the saved predictions, without reloading the data set (which may not be at hand where the
analysis runs, e.g. a full tfds MNIST in Colab). Trials that had diverged by a prediction epoch are
left out of its TV and of its baselines: those the metrics mark diverged, and those whose saved
predictions are the diverged sentinel (`svag_jax.record.live_trials`).

Every function reads the workdir only; nothing here trains. Figures are drawn on the Agg canvas
(no pyplot state), so the functions work the same from the CLI, a test or a notebook; pass `axes`
to draw into your own (e.g. pyplot inline) figure.
"""

import dataclasses
import os
import sys
from collections.abc import Sequence

import numpy as np
from matplotlib import ticker
from matplotlib.axes import Axes

from svag_jax import record
from svag_jax import tv as tv_lib
from svag_jax.analysis import common, plots, stats, weights

BAND = common.BAND  # quantiles of the bands drawn around the means


def _colors(arms: Sequence[str]) -> dict[str, str]:
  """A fixed colour per arm, in arm order (matplotlib's default cycle)."""
  return {arm: f'C{i % 10}' for i, arm in enumerate(arms)}


def _schedule_epochs(run: common.Run) -> list[float]:
  """Epochs at which any arm's LR or WD changes (config.json), within the evaluated epochs."""
  last = max(float(m.epochs[-1]) for m in run.arms.values())
  changes = {e for epochs in common.schedule_changes(run.config).values() for e in epochs}
  return sorted(e for e in changes if e <= last)


class _PlainLogFormatter(ticker.LogFormatter):
  """Labels the ticks LogFormatter would label, as plain numbers (20, 0.3) not powers of ten."""

  def __call__(self, x: float, pos: int | None = None) -> str:
    return f'{x:.3g}' if super().__call__(x, pos) else ''


def _plain_log_ticks(axis) -> None:
  axis.set_major_formatter(_PlainLogFormatter())
  axis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def _mark_schedule(ax: Axes, epochs: Sequence[float]) -> None:
  for e in epochs:
    ax.axvline(e, color='0.8', linewidth=0.8, zorder=0)


def _band_text() -> str:
  return f'mean over trials, {BAND[0]:.0%}–{BAND[1]:.0%} band'


def plot_errors(run: common.RunLike, axes: Sequence[Axes] | None = None) -> np.ndarray:
  """Train and test error (%) vs epoch per arm: mean over trials with a quantile band.

  Args:
    run: a run, or its workdir (reads metrics.jsonl and config.json).
    axes: two Axes (train, test) to draw into; default a new Agg figure.

  Returns:
    The two Axes (object array [2]); `axes[0].figure` is the figure.
  """
  axes = common.check_axes(axes, 2, 'plot_errors')
  run = common.as_run(run)
  metrics = run.arms
  colors, changes = _colors(list(metrics)), _schedule_epochs(run)
  for ax, split in zip(axes, ('train', 'test'), strict=True):
    for arm, m in metrics.items():
      error = 100 * (1 - m.values[f'{split}_accuracy'])
      plots.plot_mean_band(ax, m.epochs, error, colors[arm], arm)
    _mark_schedule(ax, changes)
    ax.set_yscale('log')
    _plain_log_ticks(ax.yaxis)
    ax.set_xlabel('epoch')
    ax.set_ylabel(f'{split} error (%)')
    ax.set_title(f'{split.capitalize()} error per arm ({_band_text()})', fontsize='medium')
    ax.legend(fontsize='small')
  return axes


def plot_norms(run: common.RunLike, axes: Sequence[Axes] | None = None) -> np.ndarray:
  """||w||^2 and effective LR eta / ||w||^2 vs epoch per arm (log y): mean and quantile band.

  Args:
    run: a run, or its workdir.
    axes: two Axes (norm, effective LR) to draw into; default a new Agg figure.

  Returns:
    The two Axes (object array [2]).
  """
  axes = common.check_axes(axes, 2, 'plot_norms')
  run = common.as_run(run)
  metrics = run.arms
  colors, changes = _colors(list(metrics)), _schedule_epochs(run)
  panels = (
      ('w_norm_sq', r'$\|w\|^2$ of the scale-invariant weights', 'Squared weight norm'),
      ('effective_lr', r'effective LR  $\eta / \|w\|^2$', 'Effective LR'),
  )
  for ax, (key, ylabel, title) in zip(axes, panels, strict=True):
    for arm, m in metrics.items():
      plots.plot_mean_band(ax, m.epochs, m.values[key], colors[arm], arm)
    _mark_schedule(ax, changes)
    ax.set_yscale('log')
    _plain_log_ticks(ax.yaxis)
    ax.set_xlabel('epoch')
    ax.set_ylabel(ylabel)
    ax.set_title(f'{title} per arm ({_band_text()})', fontsize='medium')
    ax.legend(fontsize='small')
  return axes


def tv_curves(
    run: common.RunLike, num_resamples: int = 5, seed: int = 0
) -> dict[float, dict[str, tv_lib.TVCurve]]:
  """TV vs trials between the reference arm and every other arm, at each saved prediction epoch.

  The reference arm is the arm of trial 0 (the first arm of the config). Trials that had diverged
  by an epoch (in metrics.jsonl, or rows of DIVERGED_PREDICTION in the predictions) are left out
  there; the error baselines (`error_a`: reference, `error_b`: other arm)
  are 1 - the mean test accuracy of the same trials from metrics.jsonl.

  Returns:
    {epoch: {other arm: TVCurve}}, epochs increasing; empty if no predictions were saved.
  """
  run = common.as_run(run)
  if not (run.path / 'predictions' / 'trials.json').exists():
    return {}
  predictions, trial_arms = record.read_predictions(run.path)
  metrics = run.arms
  arms = list(metrics)
  if len(arms) < 2:
    return {}
  result = {}
  for epoch, pred in predictions.items():
    if pred.shape[0] != len(trial_arms):
      raise ValueError(
          f'{run.path}: predictions at epoch {epoch:g} have {pred.shape[0]} trials, '
          f'predictions/trials.json lists {len(trial_arms)}.'
      )
    kept, errors = {}, {}
    live = record.live_trials(pred)
    for arm, m in metrics.items():
      ok = ~m.diverged_at(epoch) & live[m.trials]
      kept[arm] = np.asarray(pred[np.sort(m.trials[ok])])
      accuracy = m.at_epoch('test_accuracy', epoch)[ok]
      errors[arm] = 1 - float(accuracy.mean()) if accuracy.size else float('nan')
    ref = arms[0]
    num_classes = int(max((p.max() for p in kept.values() if p.size), default=0)) + 1
    curves = {}
    for arm in arms[1:]:
      if kept[ref].shape[0] and kept[arm].shape[0]:
        curve = tv_lib.tv_vs_trials(
            kept[ref], kept[arm], None, num_classes, num_resamples=num_resamples, seed=seed
        )
        test = tv_lib.permutation_test(kept[ref], kept[arm], num_classes, seed=seed)
        curves[arm] = dataclasses.replace(
            curve, error_a=errors[ref], error_b=errors[arm], permutation=test
        )
    result[epoch] = curves
  return result


def plot_tv(
    run: common.RunLike,
    axes: Sequence[Axes] | None = None,
    curves: dict[float, dict[str, tv_lib.TVCurve]] | None = None,
) -> np.ndarray:
  """TV vs number of trials per arm (log-log), one panel per saved prediction epoch.

  Each panel shows, for every non-reference arm (its colour): TV(reference, arm) with ±1 std over
  resamples (solid), and the sum of the two arms' mean test errors (dashed, the paper's baseline);
  and the split-half TV of the reference arm with itself (grey dotted, the finite-sample floor),
  measured up to t = T_ref / 2 and extended to the largest t by its 1/sqrt(t) law (thin line).

  Args:
    run: a run with saved predictions, or its workdir.
    axes: one Axes per prediction epoch; default a new Agg figure.
    curves: the output of `tv_curves(run)`, to reuse it; computed if None.

  Returns:
    The Axes (object array [number of prediction epochs]).
  """
  run = common.as_run(run)
  curves = tv_curves(run) if curves is None else curves
  if not curves:
    raise ValueError(
        f'{run.path} has no saved predictions of two or more arms: set '
        'train.predictions_at and several config.arms to get TV curves.'
    )
  arms = list(run.arms)
  colors = _colors(arms)
  axes = common.check_axes(axes, len(curves), 'plot_tv')
  for ax, (epoch, by_arm) in zip(axes, curves.items(), strict=True):
    floor_drawn = False
    for arm, c in by_arm.items():
      ax.errorbar(
          c.trials,
          c.tv,
          yerr=c.tv_std,
          color=colors[arm],
          marker='o',
          markersize=4,
          capsize=2,
          label=f'TV({arms[0]}, {arm})',
      )
      ax.axhline(
          c.error_sum,
          color=colors[arm],
          linestyle='--',
          linewidth=1,
          label=f'test error {arms[0]} + {arm}',
      )
      if not floor_drawn and np.isfinite(c.floor).any():
        ax.plot(
            c.trials,
            c.floor,
            color='0.45',
            linestyle=':',
            marker='s',
            markersize=3,
            label=f'split-half floor, {arms[0]} vs itself (thin: ∝ 1/√t)',
        )
        i = int(np.flatnonzero(np.isfinite(c.floor))[-1])
        t = np.geomspace(c.trials[i], c.trials[-1], 20)
        ax.plot(
            t, c.floor[i] * np.sqrt(c.trials[i] / t), color='0.45', linestyle=':', linewidth=0.8
        )
        floor_drawn = True
    ax.set_xscale('log')
    ax.set_yscale('log', nonpositive='mask')
    _plain_log_ticks(ax.yaxis)
    trials = sorted({int(t) for c in by_arm.values() for t in c.trials})
    ax.xaxis.set_major_locator(ticker.FixedLocator(trials))
    ax.xaxis.set_major_formatter(ticker.FormatStrFormatter('%d'))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_xlabel('trials per arm t')
    ax.set_ylabel('TV, mean over test inputs')
    ax.set_title(f'TV of prediction distributions vs trials, epoch {epoch:g}', fontsize='medium')
    ax.legend(fontsize='small', loc='upper center', bbox_to_anchor=(0.5, -0.16), ncol=2)
  return axes


def figures(
    run: common.RunLike, curves: dict[float, dict[str, tv_lib.TVCurve]] | None = None
) -> dict[str, np.ndarray]:
  """{figure name: its axes}: errors, norms and, if predictions of 2+ arms were saved, tv.

  Args:
    run: a run, or its workdir.
    curves: `tv_curves(run, ...)`, to reuse them; computed (default resamples and seed) if None.
  """
  run = common.as_run(run)
  result = {'errors': plot_errors(run), 'norms': plot_norms(run)}
  curves = tv_curves(run) if curves is None else curves
  if curves:
    result['tv'] = plot_tv(run, curves=curves)
  return result


def _percent(mean: float, std: float) -> str:
  return f'{100 * mean:.2f}% ± {100 * std:.2f}%'


def summary(
    run: common.RunLike,
    curves: dict[float, dict[str, tv_lib.TVCurve]] | None = None,
    num_epochs: int | None = None,
) -> list[str]:
  """One line per arm (final test error, mean ± std over trials) and one per non-reference arm:
  at each of the last `num_epochs` prediction epochs (default: all), TV against the split-half
  floor at the SAME number of trials t (the largest t with two disjoint halves of the reference
  arm, t <= T_ref / 2), TV at the most trials, and the error-sum baseline.

  Where the arms' distributions differ (before their intrinsic LRs agree) TV stands well above
  the floor at the same t; where they are equal it reads as the floor (finite-sample noise).
  Each TV at the most trials comes with its permutation test (`tv.permutation_test`: the trials
  of both arms pooled and shuffled between them), the null's mean and the p-value.
  """
  run = common.as_run(run)
  metrics = run.arms
  lines = []
  for arm, m in metrics.items():
    error = 1 - m.values['test_accuracy'][:, -1]
    mean, std, n = stats.mean_and_std(error)
    diverged = int(m.diverged[:, -1].sum())
    lines.append(
        f'{arm}: final test error (epoch {m.epochs[-1]:g}) {_percent(mean, std)} over '
        f'{n} trials' + (f' ({diverged} diverged)' if diverged else '')
    )
  curves = tv_curves(run) if curves is None else curves
  if not curves:
    lines.append('TV: no predictions of two or more arms saved (train.predictions_at).')
    return lines
  epochs = list(curves) if num_epochs is None else list(curves)[-num_epochs:]
  ref = list(metrics)[0]
  for arm in list(metrics)[1:]:
    parts = []
    for epoch in epochs:
      c = curves[epoch].get(arm)
      if c is None:
        continue
      part = f'epoch {epoch:g}: '
      has_floor = np.isfinite(c.floor)
      if has_floor.any():
        i = int(np.flatnonzero(has_floor)[-1])
        ratio = f' ({c.tv[i] / c.floor[i]:.1f}x)' if c.floor[i] > 0 else ''
        part += f'{c.tv[i]:.4f} vs floor {c.floor[i]:.4f} at t={c.trials[i]}{ratio}, '
      part += f'{c.tv[-1]:.4f} at t={c.trials[-1]} [error sum {c.error_sum:.4f}]'
      if c.permutation is not None:  # the arms pooled: TV's null at their own trial counts
        p = c.permutation
        part += f', permutation null {p.null_mean:.4f}, p = {p.p_value:.3g}'
      parts.append(part)
    lines.append(f'TV({ref}, {arm}): ' + ('; '.join(parts) if parts else 'no surviving trials'))
  return lines


def weight_distances(workdir: str | os.PathLike) -> dict[float, dict[tuple[str, str], np.ndarray]]:
  """Relative distances between trials' trained weights at each saved epoch (train.params_at).

  For trials i, j: `weights.relative_distance` ||w_i - w_j|| / sqrt((||w_i||^2 + ||w_j||^2) / 2)
  over all trained parameters (`params`; the frozen head and BatchNorm statistics left out). Two
  trials with independent directions read sqrt(2), equal weights 0. Returns {epoch: {(arm_a,
  arm_b): distances of every pair (i < j when the arms are the same)}}; empty when the run saved
  no weights.
  """
  if not record.params_epochs(workdir):
    return {}
  snapshots = weights.Snapshots(workdir)
  arms = np.asarray(snapshots.arms)
  names = list(dict.fromkeys(snapshots.arms))
  result = {}
  for epoch in snapshots.epochs:
    flat = weights.trial_vectors(snapshots[epoch]['params'])
    rel = np.stack([weights.relative_distance(row, flat) for row in flat])  # [T, T]
    pairs = {}
    for ia, a in enumerate(names):
      for b in names[ia:]:
        ta, tb = np.flatnonzero(arms == a), np.flatnonzero(arms == b)
        block = rel[np.ix_(ta, tb)]
        pairs[(a, b)] = block[np.triu_indices(len(ta), 1)] if a == b else block.ravel()
    result[float(epoch)] = pairs
  return result


def weight_distance_lines(distances: dict[float, dict[tuple[str, str], np.ndarray]]) -> list[str]:
  """One line per saved epoch: the mean [10%, 90% of pairs] relative distance within each arm and
  across each pair of arms (pairs share trials, so no standard error is given)."""
  lines = []
  for epoch, pairs in distances.items():
    parts = [
        f'{a if a == b else a + "-" + b} {d.mean():.3f} [{np.quantile(d, 0.1):.3f}, '
        f'{np.quantile(d, 0.9):.3f}]'
        for (a, b), d in pairs.items()
        if d.size
    ]
    lines.append(f'weights, epoch {epoch:g}: ||w_i - w_j|| / ||w||: ' + '; '.join(parts))
  return lines


def main(argv: Sequence[str] | None = None) -> int:
  parser = common.figure_parser('fast_equilibrium', __doc__)
  parser.add_argument('--resamples', type=int, default=5, help='TV resamples per trial count')
  parser.add_argument('--seed', type=int, default=0, help='seed of the TV subsampling')
  args = parser.parse_args(argv)

  def make():
    run = common.load_run(args.workdir)
    curves = tv_curves(run, args.resamples, args.seed)
    return figures(run, curves), summary(run, curves) + weight_distance_lines(
        weight_distances(args.workdir)
    )

  return common.run_figure(args, make)


if __name__ == '__main__':
  sys.exit(main())
