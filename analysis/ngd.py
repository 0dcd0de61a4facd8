"""2021 Fig. 1: train/test accuracy of SGD, NGD (covariance-matched noise) and GD vs steps.

    python -m svag_jax.analysis.ngd SWEEP_ROOT [--out DIR]

Prints the final accuracies (mean and 95% interval over trials, `stats.interval`), for each
oracle whether its final test accuracy lies inside SGD's interval, and the paired differences
NGD − SGD, GD − SGD and NGD − GD (trial i of every oracle starts from the same init, so each is
taken trial by trial: the interval of acc_A,i − acc_B,i) with the difference the trials detect at
80% power; draws the accuracy and effective-LR curves with their
interval bands to the figure `ngd` in SWEEP_ROOT/figures (or DIR), as PNG and PDF.
"""

import sys

import numpy as np

from svag_jax.analysis import common, plots, stats


def label(run: common.Run) -> str:
  return run.config['optim'].get('oracle', 'sgd').upper()


def final_intervals(runs: list[common.Run]) -> dict[str, dict[str, tuple[float, float, float]]]:
  """{oracle: {split: (mean, low, high)}}: the final accuracy, `stats.interval` over trials."""
  return {
      label(r): {
          split: stats.interval(r.metrics.values[f'{split}_accuracy'][:, -1])
          for split in ('train', 'test')
      }
      for r in runs
  }


def inside_sgd_band(finals: dict) -> dict[str, bool]:
  """{oracle: whether its final test mean lies in SGD's interval} (no SGD: {})."""
  if 'SGD' not in finals:
    return {}
  _, lo, hi = finals['SGD']['test']
  return {k: bool(lo <= v['test'][0] <= hi) for k, v in finals.items() if k != 'SGD'}


PAIRS = (('NGD', 'SGD'), ('GD', 'SGD'), ('NGD', 'GD'))


def paired_differences(
    runs: list[common.Run], pairs=PAIRS
) -> dict[str, tuple[float, float, float, float]]:
  """{'A − B': (mean, low, high, detectable)} of the final test accuracy of oracle A minus B's,
  trial by trial, for the `pairs` whose two oracles ran; `detectable` is the difference these
  trials detect with 80% power (`stats.detectable_difference`).

  Trial i of each oracle shares its init with trial i of the others; runs with different numbers
  of live trials are compared on the first min(n) trials."""
  final = {label(r): r.metrics.values['test_accuracy'][:, -1] for r in runs}
  out = {}
  for a, b in pairs:
    if a in final and b in final:
      n = min(final[a].size, final[b].size)
      d = final[a][:n] - final[b][:n]
      out[f'{a} − {b}'] = (*stats.interval(d), stats.detectable_difference(d))
  return out


def plot(runs: list[common.Run]) -> np.ndarray:
  """Train and test accuracy and, where logged, the effective LR eta / ||w||^2 vs steps."""
  panels = [('train_accuracy', 'train accuracy'), ('test_accuracy', 'test accuracy')]
  if all('effective_lr' in r.metrics.values for r in runs):
    panels.append(('effective_lr', 'effective LR η/‖w‖²'))
  axes = common.new_axes(len(panels), panel_size=(5.0, 3.8), sharex=True, layout=None)
  for run in runs:
    m = run.metrics
    for ax, (key, _) in zip(axes, panels):
      plots.plot_mean_interval(ax, m.steps.astype(float), m.values[key], label=label(run))
  for ax, (key, name) in zip(axes, panels):
    ax.set_xlabel('steps')
    ax.set_ylabel(f'{name} (mean, {stats.INTERVAL})')
    if key == 'effective_lr':
      ax.set_yscale('log')
    ax.grid(alpha=0.3)
  axes[1].legend()
  fig = axes[0].figure
  fig.suptitle('SGD vs NGD vs GD, same LR/WD/steps (Li, Malladi & Arora 2021, Fig. 1)')
  fig.tight_layout()
  return axes


def summary(runs: list[common.Run]) -> list[str]:
  """The final accuracies per oracle, the SGD-band verdicts and the paired differences."""
  finals = final_intervals(runs)
  lines = [
      f'{"run":<5} {"status":<8} {"steps":>6} {"trials":>6} {"train acc":>26} {"test acc":>26}'
  ]
  for run in runs:
    cells = [stats.format_interval(*finals[label(run)][s], '.4f') for s in ('train', 'test')]
    n = int(np.isfinite(run.metrics.values['test_accuracy'][:, -1]).sum())
    lines.append(
        f'{label(run):<5} {run.status:<8} {run.metrics.steps[-1]:>6d} {n:>6d} {cells[0]:>26} '
        f'{cells[1]:>26}'
    )
  for oracle, inside in inside_sgd_band(finals).items():
    where = 'inside' if inside else 'outside'
    lines.append(f'{oracle}: final test accuracy {where} the SGD {stats.INTERVAL}')
  for pair, (m, lo, hi, detectable) in paired_differences(runs).items():
    diff = stats.format_interval(m, lo, hi, '+.4f')
    lines.append(
        f'{pair}, paired by init: {diff} (mean [{stats.INTERVAL}]); detectable with 80% power: '
        f'{detectable:.4f}'
    )
  return lines


def main(argv=None) -> int:
  args = common.figure_parser('ngd', __doc__, source='root').parse_args(argv)

  def make():
    runs = common.load_sweep(args.root)
    return plot(runs), summary(runs)

  return common.run_figure(args, make)


if __name__ == '__main__':
  sys.exit(main())
