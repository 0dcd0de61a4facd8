"""2020 Fig. 5b/c: full-batch GD with WD on a small subset keeps falling from 100% train accuracy.

    python -m svag_jax.analysis.gd_subset WORKDIR [--out DIR] [--reach 0.99] [--below 0.9 0.97]

Reads WORKDIR/metrics.jsonl and config.json of a `configs/gd_subset.py` run (arms `wd` and
`wd_off`; full batch, so one epoch = one GD step), prints per arm and trial: the maximum train
accuracy, the first step at which it reaches `reach`, the number of drops (separate runs of
evaluations) below each `below` level after that, the minimum train accuracy in the last quarter
of the run, and the final train / test accuracy; and draws the figure `gd_subset` into
WORKDIR/figures (or DIR), as PNG and PDF: train accuracy, ||w||^2 and the training loss vs step,
with the step at which the wd_off arm drops WD marked.
"""

import sys
from collections.abc import Sequence

import numpy as np

from svag_jax.analysis import common


def first_reach(acc: np.ndarray, reach: float) -> int | None:
  """Index of the first evaluation with accuracy >= reach (None if never). acc: float [E]."""
  hits = np.nonzero(np.asarray(acc) >= reach)[0]
  return int(hits[0]) if hits.size else None


def count_drops(acc: np.ndarray, reach: float = 0.99, below: float = 0.9) -> int:
  """Number of drops: maximal runs of consecutive evaluations with accuracy < `below`, counted
  after the first evaluation with accuracy >= `reach` (0 if it is never reached).

  Args:
    acc: float [E], train accuracy at successive evaluations (NaN counts as not below).
  """
  start = first_reach(acc, reach)
  if start is None:
    return 0
  low = np.nan_to_num(np.asarray(acc[start:], float), nan=1.0) < below
  return int(np.sum(low[1:] & ~low[:-1]) + low[0])


def wd_off_step(config: dict) -> float | None:
  """The epoch (= step here) at which the wd_off arm's WD schedule sets WD to 0 (None if none)."""
  arm = config.get('arms', {}).get('wd_off', {})
  for epoch, factor in arm.get('wd_schedule', ()):
    if factor == 0:
      return float(epoch)
  return None


def plot(arms: dict[str, common.ArmMetrics], off: float | None) -> np.ndarray:
  """Train accuracy, ||w||^2 and the training loss vs step, one line per trial, colour per arm."""
  axes = common.new_axes(3, panel_size=(5.0, 4.0), layout=None)
  for (name, m), color in zip(arms.items(), ('C0', 'C1', 'C2', 'C3')):
    for t in range(len(m.trials)):
      label = name if t == 0 else None
      axes[0].plot(m.epochs, m.values['train_accuracy'][t], lw=0.7, color=color, label=label)
      axes[1].semilogy(m.epochs, m.values['w_norm_sq'][t], lw=0.9, color=color, label=label)
      axes[2].semilogy(m.epochs, m.values['train_step_loss'][t], lw=0.7, color=color, label=label)
  for ax, ylabel in zip(axes, ('train accuracy', '||w||²', 'train loss (GD, training mode)')):
    ax.set_xlabel('GD step (= epoch: full batch)')
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if off is not None:
      ax.axvline(off, color='k', ls=':', lw=1, label='wd_off: WD -> 0')
  # y range: what happens after the first 5% of the run (the initial fit would squash it)
  late = [m.values['train_accuracy'][:, m.epochs >= 0.05 * m.epochs[-1]] for m in arms.values()]
  axes[0].set_ylim(max(0.0, min(float(np.nanmin(v)) for v in late) - 0.02), 1.005)
  axes[0].legend(loc='lower right')
  fig = axes[0].figure
  fig.suptitle(
      'Full-batch GD with WD on a fixed subset: train accuracy keeps falling; without '
      'WD it converges (Li, Lyu & Arora 2020, Fig. 5b/c)'
  )
  fig.tight_layout()
  return axes


def summary(
    run: common.Run, reach: float = 0.99, below: Sequence[float] = (0.9, 0.97)
) -> list[str]:
  """The run's settings, then per arm and trial: max train accuracy, the first step at `reach`,
  the drops below each `below` level, the minimum over the last quarter, the final accuracies."""
  config = run.config
  off = wd_off_step(config)
  first_arm = next(iter(config['arms'].values()))  # the record resolves every arm
  lr, wd = first_arm['lr'], first_arm['wd']
  head = ' '.join(f'{"drops<" + format(b, "g"):>9}' for b in below)
  lines = [
      f'{run.path}: status {run.status}; {config["model"]["name"]} '
      f'{tuple(config["model"]["widths"])}, batch {config["train"]["batch_size"]} (full: '
      f'data.num_train = {config["data"]["num_train"]}), '
      f'eta = {lr:g}, lambda = {wd:g}; wd_off drops WD at step {off}',
      f'{"arm":<7} {"trial":>5} {"max acc":>8} {"reach@":>7} {head} {"min last25%":>11} '
      f'{"final train":>11} {"final test":>10}',
  ]
  for name, m in run.arms.items():
    acc_all = m.values['train_accuracy']
    quarter = m.epochs >= m.epochs[-1] * 0.75
    for t in range(len(m.trials)):
      acc = acc_all[t]
      first = first_reach(acc, reach)
      drops = ' '.join(f'{count_drops(acc, reach, b):>9d}' for b in below)
      lines.append(
          f'{name:<7} {int(m.trials[t]):>5} {np.nanmax(acc):>8.4f} '
          f'{"never" if first is None else int(m.epochs[first]):>7} {drops} '
          f'{np.nanmin(acc[quarter]):>11.4f} {acc[-1]:>11.4f} '
          f'{m.values["test_accuracy"][t, -1]:>10.4f}'
      )
    if off is not None and name == 'wd_off':
      after = m.epochs > off + 0.1 * (m.epochs[-1] - off)
      lines.append(
          f'{"":<7} after WD off (from step {int(m.epochs[after][0])}): min train acc '
          f'{np.nanmin(acc_all[:, after]):.4f}, drops<{below[0]:g} '
          f'{sum(count_drops(r[after], 0.0, below[0]) for r in acc_all)}'
      )
  return lines


def main(argv: Sequence[str] | None = None) -> int:
  parser = common.figure_parser('gd_subset', __doc__)
  parser.add_argument('--reach', type=float, default=0.99)
  parser.add_argument('--below', type=float, nargs='+', default=[0.9, 0.97])
  args = parser.parse_args(argv)

  def make():
    run = common.load_run(args.workdir)
    return plot(run.arms, wd_off_step(run.config)), summary(run, args.reach, args.below)

  return common.run_figure(args, make)


if __name__ == '__main__':
  sys.exit(main())
