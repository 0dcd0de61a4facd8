"""2021 Fig. 4: SGD and SVAG l vs effective steps (steps / l), per batch size, with Theorem 5.2's
N/G condition; the same for an adaptive optimizer and its SVAG (2022, `configs/svag_adam.py`).

    python -m svag_jax.analysis.svag_convergence SWEEP_ROOT [--out DIR] [--c2 2]

For each batch size of the sweep and each phase end (the last evaluation before the first LR
decay, and the end), prints every point's test accuracy (mean ± SE over trials), the convergence
in l (|acc_l - acc_2l|) and the gap to SGD (|acc_SGD - acc_lmax|), each with the SE of the
difference of two independent means, and SGD's N/G before the decay next to the threshold
1 / (C^2 - 1) below which Theorem 5.2 says the SDE approximation must fail. For an adaptive
optimizer (config.optim.optimizer) the run without SVAG takes SGD's place under its own name
(Adam, RMSprop, AdamW), and the threshold (a theorem about SGD) is not applied. Draws test accuracy,
train loss and N/G vs effective steps (mean and 95% interval bands, `stats.interval`; log panels:
of the log values) to the figure `svag_convergence` in
SWEEP_ROOT/figures (or DIR), as PNG and PDF.
"""

import dataclasses
import math
import sys

import numpy as np

from svag_jax import theory
from svag_jax.analysis import common, plots, stats


def svag_l(run: common.Run) -> int | None:
  """SVAG's l, or None for plain SGD."""
  o = run.config['optim']
  return int(o.get('svag_l', 1)) if o.get('oracle', 'sgd') == 'svag' else None


NAMES = {'sgd': 'SGD', 'rmsprop': 'RMSprop', 'adam': 'Adam', 'adamw': 'AdamW'}


def optimizer_name(run: common.Run) -> str:
  """The run's optimizer as printed: SGD, RMSprop, Adam or AdamW."""
  return NAMES[run.config['optim'].get('optimizer') or 'sgd']


def label(run: common.Run) -> str:
  l = svag_l(run)
  return optimizer_name(run) if l is None else f'SVAG l={l}'


def batch_size(run: common.Run) -> int:
  return int(run.config['train']['batch_size'])


def decay_epoch(run: common.Run) -> float | None:
  """The epoch of the first LR decay of the run's (first arm's) schedule (None without one)."""
  epochs = next(iter(common.schedule_changes(run.config, ('lr_schedule',)).values()))
  return epochs[0] if epochs else None


def phase_ends(run: common.Run) -> dict[str, int]:
  """{phase name: eval index}: the last eval before (or at) the first decay, and the last eval."""
  ends = {}
  decay, epochs = decay_epoch(run), run.metrics.epochs
  if decay is not None and epochs[0] <= decay:
    ends['before decay'] = int(np.nonzero(epochs <= decay + 1e-9)[0][-1])
  ends['end'] = len(epochs) - 1
  return ends


@dataclasses.dataclass(frozen=True)
class Estimate:
  """Mean and standard error over trials."""

  mean: float
  se: float
  n: int

  @classmethod
  def of(cls, values: np.ndarray) -> 'Estimate':
    return cls(*stats.mean_se(values))

  def minus(self, other: 'Estimate') -> 'Estimate':
    """|self - other| with the SE of the difference of two independent means."""
    return Estimate(
        abs(self.mean - other.mean), math.hypot(self.se, other.se), min(self.n, other.n)
    )

  def __str__(self) -> str:
    return f'{self.mean:.4f} ± {self.se:.4f}'


def by_batch_size(runs: list[common.Run]) -> dict[int, list[common.Run]]:
  """The runs grouped by batch size (ascending), SGD first, then SVAG by l."""
  groups: dict[int, list[common.Run]] = {}
  for run in runs:
    groups.setdefault(batch_size(run), []).append(run)
  return {
      b: sorted(rs, key=lambda r: -1 if svag_l(r) is None else svag_l(r))
      for b, rs in sorted(groups.items())
  }


def summarize(runs: list[common.Run], c2: float = 2.0) -> dict:
  """Per batch size and phase end: accuracies, the l-convergence and the SGD gap (see module doc).

  Returns {B: {'phases': {phase: {'acc': {label: Estimate}, 'l_steps': [(l, 2l, Estimate)],
  'sgd_gap': (lmax, Estimate) or None}}, 'nsr': Estimate (SGD's N/G at the first phase end, or
  None), 'sde_fails': bool or None}} and 'threshold' = 1 / (C^2 - 1).
  """
  threshold = theory.sde_nsr_threshold(c2)
  out = {'threshold': threshold}
  for b, group in by_batch_size(runs).items():
    phases = {}
    for phase, j in phase_ends(group[0]).items():
      acc = {
          label(r): Estimate.of(
              r.metrics.values['test_accuracy'][:, min(j, len(r.metrics.epochs) - 1)]
          )
          for r in group
      }
      ls = sorted(l for r in group if (l := svag_l(r)) is not None)
      l_steps = [
          (l, 2 * l, acc[f'SVAG l={2 * l}'].minus(acc[f'SVAG l={l}'])) for l in ls if 2 * l in ls
      ]
      gap, name = None, optimizer_name(group[0])
      if name in acc and ls:
        gap = (ls[-1], acc[name].minus(acc[f'SVAG l={ls[-1]}']))
      phases[phase] = {'acc': acc, 'l_steps': l_steps, 'sgd_gap': gap}
    sgd = next((r for r in group if svag_l(r) is None), None)
    nsr = None
    if sgd is not None and 'NSR' in sgd.metrics.values:
      j = next(iter(phase_ends(sgd).values()))
      epochs = sgd.metrics.epochs
      window = (epochs <= epochs[j] + 1e-9) & (epochs >= 0.75 * epochs[j])
      per_trial = np.nanmean(np.where(window, sgd.metrics.values['NSR'], np.nan), axis=1)
      if np.isfinite(per_trial).any():
        nsr = Estimate.of(per_trial)
    applies = optimizer_name(group[0]) == 'SGD'  # Theorem 5.2 is about SGD
    out[b] = {
        'phases': phases,
        'nsr': nsr,
        'sde_fails': (
            None
            if nsr is None or not applies
            else bool(theory.sde_approximation_fails(nsr.mean, c2))
        ),
        'optimizer': optimizer_name(group[0]),
    }
  return out


LOG_METRICS = ('train_loss', 'NSR')  # drawn on log axes: geometric mean, band from log values


def plot(runs: list[common.Run], c2: float = 2.0) -> np.ndarray:
  """One row per batch size: test accuracy, train loss and N/G vs effective steps (mean and
  interval bands; the log panels: geometric mean), SGD dashed black."""
  groups = by_batch_size(runs)
  metrics = [('test_accuracy', 'test accuracy'), ('train_loss', 'train loss'), ('NSR', 'N/G')]
  metrics = [m for m in metrics if any(m[0] in r.metrics.values for r in runs)]
  axes = common.new_axes(
      len(groups) * len(metrics), len(metrics), panel_size=(4.2, 3.4), layout=None
  )
  for row, (b, group) in zip(axes.reshape(len(groups), len(metrics)), groups.items()):
    for run in group:
      style = dict(ls='--', color='k', zorder=5) if svag_l(run) is None else {}
      for ax, (metric, _) in zip(row, metrics):
        if metric in run.metrics.values:
          x, v = run.metrics.effective_steps, run.metrics.values[metric]
          keep = np.isfinite(v).any(axis=0)
          log = metric in LOG_METRICS
          plots.plot_mean_interval(ax, x[keep], v[:, keep], log, label=label(run), **style)
    decay = decay_epoch(group[0])
    for ax, (metric, name) in zip(row, metrics):
      if decay is not None:
        m = group[0].metrics
        spe = m.steps[-1] / m.epochs[-1] / (svag_l(group[0]) or 1)
        ax.axvline(decay * spe, color='grey', lw=0.8, ls=':')
      ax.set_title(f'B = {b}: {name}' + (' (geometric mean)' if metric in LOG_METRICS else ''))
      ax.set_xlabel('effective steps (steps / l)')
      ax.grid(alpha=0.3)
      if metric in LOG_METRICS:
        ax.set_yscale('log')
      if metric == 'NSR' and optimizer_name(group[0]) == 'SGD':
        ax.axhline(theory.sde_nsr_threshold(c2), color='r', lw=1, label=f'1/(C²−1), C² = {c2:g}')
    row[0].legend(fontsize=7)
    row[-1].legend(fontsize=7)
  fig = axes[0].figure
  name = optimizer_name(runs[0])
  fig.suptitle(
      'SVAG converges in l; it matches SGD only where N/G is large (2021, Fig. 4)'
      if name == 'SGD'
      else f'SVAG-{name} converges in l; {name} on or off its limit (Malladi et al. 2022)'
  )
  fig.tight_layout()
  return axes


def summary(runs: list[common.Run], c2: float = 2.0) -> list[str]:
  """The printed numbers of `summarize`, per batch size and phase end."""
  s = summarize(runs, c2)
  lines = []
  for b, entry in s.items():
    if b == 'threshold':
      continue
    lines.append(f'B = {b}')
    for phase, p in entry['phases'].items():
      accs = ', '.join(f'{k} {v}' for k, v in p['acc'].items())
      lines.append(f'  {phase}: test acc (mean ± SE) {accs}')
      for l, l2, d in p['l_steps']:
        lines.append(f'    |acc_{l2} - acc_{l}| = {d}')
      if p['sgd_gap']:
        lmax, d = p['sgd_gap']
        lines.append(f'    |acc_{entry["optimizer"]} - acc_{lmax}| = {d}')
    if entry['nsr'] is not None and entry['sde_fails'] is None:
      lines.append(f'  {entry["optimizer"]} N/G before the decay {entry["nsr"]}')
    elif entry['nsr'] is not None:
      verdict = 'below: the SDE approximation must fail' if entry['sde_fails'] else 'above'
      lines.append(
          f'  SGD N/G before the decay {entry["nsr"]} (trials {entry["nsr"].n}); threshold '
          f'1/(C^2 - 1) = {s["threshold"]:g}: {verdict}'
      )
  return lines


def main(argv=None) -> int:
  parser = common.figure_parser('svag_convergence', __doc__, source='root')
  parser.add_argument('--c2', type=float, default=2.0, help="Theorem 5.2's C^2 (the paper: 2)")
  args = parser.parse_args(argv)

  def make():
    runs = common.load_sweep(args.root)
    return plot(runs, args.c2), summary(runs, args.c2)

  return common.run_figure(args, make)


if __name__ == '__main__':
  sys.exit(main())
