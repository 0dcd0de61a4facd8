"""Per-group norms, effective LR and angular update, against rotational equilibrium.

    python -m svag_jax.analysis.groups WORKDIR|ROOT [--out DIR]

For every scale-invariant group S of a run (WORKDIR/groups.json: declared by a built-in model or
found at the start, `svag_jax.invariance`; its columns 'group.<name>/<metric>' of metrics.jsonl,
`svag_jax.record.group_key`), against the effective step (SGD time: SGD and SVAG runs line up):

  - ||w_S||^2;
  - the effective LR in SGD time, l eta / ||w_S||^2 (eta: the row's per-step LR; l: SVAG's
    amplification, 1 for the other oracles);
  - the angular update, the angle between w_S at the evaluated step and after the next one,
    divided by its equilibrium value (`predicted_angle`: `theory.rotational_angular_update` of
    the run's optimizer at the row's eta and lambda; SGD: sqrt(2 eta lambda / (1 + beta)), exact
    in mean square with coupled WD on a scale-invariant loss; AdamW: sqrt(2 eta lambda (1 -
    beta1) / (1 + beta1)); Adam + L2 and RMSprop: the same with the group's own lambda_e): 1 at
    rotational equilibrium. Left out where lambda = 0.

Curves: the mean over the live trials with its 95% interval (`stats.interval`). WORKDIR: one row of
panels per arm; ROOT (a sweep root): one per point and arm. Prints, per group at the last
evaluation, the angular update and its ratio to the equilibrium value. Reads workdirs only.
"""

import pathlib
import sys
from collections.abc import Sequence

import numpy as np

from svag_jax import record, theory
from svag_jax.analysis import common, plots, stats

PANELS = ('‖w_S‖²', 'effective LR l·η/‖w_S‖² (SGD time)', 'angular update / its equilibrium value')


def load(source: str | pathlib.Path) -> list[common.Run]:
  """The run at `source`, or every point of the sweep root `source`."""
  path = pathlib.Path(source)
  return [common.load_run(path)] if (path / 'metrics.jsonl').exists() else common.load_sweep(path)


def group_names(metrics: common.ArmMetrics) -> list[str]:
  """The groups with columns in an arm's metrics, sorted."""
  return sorted({s[0] for k in metrics.values if (s := record.split_group_key(k))})


def predicted_angle(run: common.Run, metrics: common.ArmMetrics, group: str) -> np.ndarray:
  """[T, E]: the RMS angular update per step of `group` at rotational equilibrium, at each row's
  eta and lambda, for the run's optimizer (`theory.rotational_angular_update`; Adam + L2 and
  RMSprop: the group's logged lambda_e, else (a run from before the per-group column) the net's)."""
  optim = run.config.get('optim') or {}
  optimizer = optim.get('optimizer') or 'sgd'
  beta1 = optim.get('beta1')  # null where the optimizer has none (config.json)
  intrinsic = metrics.values.get(record.group_key(group, 'intrinsic_lr_adaptive'))
  if intrinsic is None:
    intrinsic = metrics.values.get('intrinsic_lr_adaptive')
  return theory.rotational_angular_update(
      optimizer, metrics.values['lr'], metrics.values['wd'],
      momentum=float(optim.get('momentum') or 0.0), beta1=0.9 if beta1 is None else float(beta1),
      intrinsic_lr=intrinsic,
  )  # fmt: skip


def curves(run: common.Run, metrics: common.ArmMetrics, group: str) -> dict[str, np.ndarray]:
  """{panel: values [T, E]} of one group of one arm (`PANELS`, in order)."""
  col = lambda metric: metrics.values[record.group_key(group, metric)]
  l = float(run.config.get('optim', {}).get('svag_l') or 1)
  with np.errstate(invalid='ignore', divide='ignore'):
    equilibrium = predicted_angle(run, metrics, group)
    ratio = np.where(equilibrium > 0, col('angular_update') / equilibrium, np.nan)
  return dict(zip(PANELS, (col('w_norm_sq'), l * col('effective_lr'), ratio)))


def rows_of(runs: Sequence[common.Run]) -> list[tuple[str, common.Run, common.ArmMetrics]]:
  """(label, run, arm metrics) of every arm of every run that has per-group columns."""
  found = []
  for run in runs:
    for arm, metrics in run.arms.items():
      if group_names(metrics):
        label = arm if len(runs) == 1 else (run.name if len(run.arms) == 1 else f'{run.name}/{arm}')
        found.append((label, run, metrics))
  if not found:
    names = ', '.join(r.name for r in runs)
    raise ValueError(f'{names}: no per-group columns (a run with config.metrics.groups = "none"?)')
  return found


def plot(runs: Sequence[common.Run]) -> np.ndarray:
  rows = rows_of(runs)
  axes = common.new_axes(len(rows) * len(PANELS), max_cols=len(PANELS)).reshape(len(rows), -1)
  for (label, run, metrics), row in zip(rows, axes):
    for g, group in enumerate(group_names(metrics)):
      values = curves(run, metrics, group)
      for ax, panel in zip(row, PANELS):
        plots.plot_mean_interval(
            ax, metrics.effective_steps, values[panel], log=panel == PANELS[0], color=f'C{g % 10}',
            label=group,
        )  # fmt: skip
    for ax, panel in zip(row, PANELS):
      ax.set_title(f'{label}: {panel}', fontsize='medium')
      ax.set_xlabel('effective step (SGD time)')
      ax.grid(alpha=0.3)
    row[-1].axhline(1.0, color='k', linestyle='--', linewidth=1, label='equilibrium')
    row[-1].legend(fontsize='x-small')
  return axes.ravel()


def summary(runs: Sequence[common.Run]) -> list[str]:
  lines = [f'angular update per step at the last evaluation (mean, {stats.INTERVAL} over trials):']
  for label, run, metrics in rows_of(runs):
    for group in group_names(metrics):
      angle = metrics.values[record.group_key(group, 'angular_update')][:, -1]
      ratio = curves(run, metrics, group)[PANELS[2]][:, -1]
      lines.append(
          f'  {label} {group}: {stats.fmt_interval(angle)} rad, '
          f'/ equilibrium {stats.fmt_interval(ratio, 3)}'
      )
  return lines


def main(argv: Sequence[str] | None = None) -> int:
  args = common.figure_parser('groups', __doc__).parse_args(argv)

  def make():
    runs = load(args.workdir)
    return plot(runs), summary(runs)

  return common.run_figure(args, make)


if __name__ == '__main__':
  sys.exit(main())
