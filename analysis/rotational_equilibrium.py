"""Rotational equilibrium per layer (Kosson, Messmer & Jaggi 2024) across optimizers.

    python -m svag_jax.analysis.rotational_equilibrium ROOT [--out DIR] [--window 0.33]

ROOT: a sweep root of configs/rotational_equilibrium.py (one point per optimizer; any sweep whose
runs log per-group angular updates works). For every point and scale-invariant layer (group) S:

  - the measured angular update: per trial the RMS over the evaluations of the last `--window`
    fraction of the run of the one-step angle between w_S and its next value (the theory's
    quantity is E||w_{k+1} - w_k||^2 / ||w_k||^2, an RMS);
  - the predicted one (`analysis.groups.predicted_angle`: `theory.rotational_angular_update` of
    the run's optimizer, with the layer's own lambda_e under Adam + L2), the same RMS;
  - their ratio per trial, mean [95% interval] over trials (`stats.interval`);
  - the balance: per trial the ratio of the largest to the smallest layer's RMS angle (1 when
    every layer rotates alike, as SGD and AdamW predict), measured and predicted;
  - the relaxation: the intrinsic time tau = step x lambda_e (lambda_e: eta lambda, with momentum
    eta lambda / (1 - beta), under Adam + L2 the layer's own, its mean over the window) after which
    the trial-mean ratio, smoothed over `SMOOTH` evaluations, stays within 10% of its window value.

Figure: one column per optimizer; top, each layer's angle per step against the step (trial mean
and 95% interval) with its prediction dashed; bottom, angle / prediction against tau (log axis).
Reads workdirs only.
"""

import sys
from collections.abc import Sequence

import numpy as np

from svag_jax import record, theory
from svag_jax.analysis import common, groups, plots, stats

WINDOW = 1 / 3  # the equilibrium window: this last fraction of the evaluations
SMOOTH = 5  # evaluations in the running mean of the relaxation curve
SETTLED = 0.1  # the relaxation criterion: within this fraction of the window value


def intrinsic_rate(run: common.Run, metrics: common.ArmMetrics, group: str) -> np.ndarray:
  """[T, E]: the rate lambda_e per step of the group's norm dynamics (module docstring)."""
  key = record.group_key(group, 'intrinsic_lr_adaptive')
  if key in metrics.values:
    return metrics.values[key]
  momentum = float((run.config.get('optim') or {}).get('momentum') or 0.0)
  return theory.intrinsic_lr(metrics.values['lr'], metrics.values['wd'], momentum)


def rms(values: np.ndarray, window: np.ndarray) -> np.ndarray:
  """[T]: the root mean square over the evaluations `window` (bool [E]) of `values` [T, E]."""
  with np.errstate(invalid='ignore'):
    return np.sqrt(stats.nanmean(np.square(values[:, window]), axis=1))


def settle_time(tau: np.ndarray, ratio: np.ndarray, window: np.ndarray) -> float:
  """The first tau [E] after which the running mean (`SMOOTH` evaluations) of the trial-mean
  `ratio` [T, E] stays within `SETTLED` of its mean over `window`; NaN if it never does."""
  mean = stats.nanmean(ratio, axis=0)
  smooth = np.convolve(mean, np.ones(SMOOTH) / SMOOTH, mode='same')
  target = np.nanmean(mean[window])
  outside = np.flatnonzero(np.abs(smooth[: len(smooth) - SMOOTH // 2] / target - 1) > SETTLED)
  first = 0 if outside.size == 0 else outside[-1] + 1
  return float(tau[first]) if first < len(tau) - SMOOTH // 2 else float('nan')


Tables = list[tuple[common.Run, list[dict]]]


def layer_table(run: common.Run, window_fraction: float = WINDOW) -> list[dict]:
  """One dict per layer of the run's (only) arm: layer; rate, angle, predicted, ratio (each [T]:
  window values); angle_curve, predicted_curve, curve_ratio ([T, E]), tau ([E]); settle (float)."""
  metrics = next(iter(run.arms.values()))
  num = metrics.steps.size
  window = np.arange(num) >= num - max(1, round(window_fraction * num))
  rows = []
  for group in groups.group_names(metrics):
    angle = metrics.values[record.group_key(group, 'angular_update')]
    predicted = groups.predicted_angle(run, metrics, group)
    rate = stats.nanmean(intrinsic_rate(run, metrics, group)[:, window], axis=1)
    tau = metrics.steps * stats.nanmean(rate, axis=0)
    with np.errstate(invalid='ignore', divide='ignore'):
      ratio = angle / predicted
    measured, expected = rms(angle, window), rms(predicted, window)
    rows.append({
        'layer': group, 'rate': rate, 'angle': measured, 'predicted': expected,
        'ratio': measured / expected, 'angle_curve': angle, 'predicted_curve': predicted,
        'curve_ratio': ratio, 'tau': tau, 'settle': settle_time(tau, ratio, window),
    })  # fmt: skip
  return rows


def layer_tables(runs: Sequence[common.Run], window_fraction: float = WINDOW) -> Tables:
  """(run, `layer_table`) of every run: computed once for the summary and the figure."""
  return [(run, layer_table(run, window_fraction)) for run in runs]


def balance(layers: list[dict], key: str) -> np.ndarray:
  """[T]: per trial the largest over the smallest layer's RMS `key` ('angle' or 'predicted')."""
  values = np.stack([row[key] for row in layers])
  return values.max(axis=0) / values.min(axis=0)


def summary(tables: Tables, window_fraction: float = WINDOW) -> list[str]:
  """The per-layer table and the balance lines of `layer_tables(runs, window_fraction)`."""
  pct = round(100 * window_fraction)
  lines = [
      f'angular update per step, RMS over the last {pct}% of the evaluations, mean '
      f'[{stats.INTERVAL}] over trials; tau = lambda_e x steps to settle within '
      f'{round(100 * SETTLED)}% of that:',
      f'{"optimizer":<14}{"layer":<18}{"lambda_e":>10}  {"angle":<28}{"predicted":<28}'
      f'{"ratio":<26}{"tau":>6}',
  ]
  for run, layers in tables:
    for row in layers:
      lines.append(
          f'{run.name:<14}{row["layer"]:<18}{np.nanmean(row["rate"]):>10.3g}  '
          f'{stats.fmt_interval(row["angle"], 3):<28}{stats.fmt_interval(row["predicted"], 3):<28}'
          f'{stats.fmt_interval(row["ratio"], 3):<26}{row["settle"]:>6.2f}'
      )
  lines.append('balance, largest / smallest layer angle per trial (1 = every layer alike):')
  for run, layers in tables:
    if len(layers) > 1:
      lines.append(
          f'  {run.name}: measured {stats.fmt_interval(balance(layers, "angle"), 3)}, '
          f'predicted {stats.fmt_interval(balance(layers, "predicted"), 3)}'
      )
  return lines


def plot(tables: Tables) -> np.ndarray:
  """The figure (module docstring) of `layer_tables(runs, ...)`."""
  axes = common.new_axes(2 * len(tables), max_cols=len(tables)).reshape(2, len(tables))
  for (run, layers), (top, bottom) in zip(tables, axes.T):
    steps = next(iter(run.arms.values())).steps
    for g, row in enumerate(layers):
      color = f'C{g % 10}'
      label = row['layer']
      plots.plot_mean_interval(top, steps, row['angle_curve'], color=color, label=label)
      mean_prediction = stats.nanmean(row['predicted_curve'], axis=0)
      top.plot(steps, mean_prediction, '--', color=color, linewidth=1)
      plots.plot_mean_interval(bottom, row['tau'], row['curve_ratio'], color=color, label=label)
    top.set_title(f'{run.name}: angle per step (dashed: predicted)', fontsize='medium')
    top.set_xlabel('step')
    top.set_ylabel('rad')
    bottom.axhline(1.0, color='k', linestyle='--', linewidth=1)
    bottom.set_xscale('log')
    bottom.set_title(f'{run.name}: angle / predicted', fontsize='medium')
    bottom.set_xlabel('τ = λ_e · step')
    for ax in (top, bottom):
      ax.grid(alpha=0.3)
      ax.legend(fontsize='x-small')
  return axes.ravel()


def main(argv: Sequence[str] | None = None) -> int:
  parser = common.figure_parser('rotational_equilibrium', __doc__, source='root')
  parser.add_argument('--window', type=float, default=WINDOW, help='equilibrium window fraction')
  args = parser.parse_args(argv)
  if not 0 < args.window <= 1:
    parser.error(f'--window {args.window}: a fraction of the evaluations in (0, 1]')

  def make():
    tables = layer_tables(common.load_sweep(args.root), args.window)
    return plot(tables), summary(tables, args.window)

  return common.run_figure(args, make)


if __name__ == '__main__':
  sys.exit(main())
