"""2021 Fig. 4: SGD and SVAG l vs effective steps (steps / l), per batch size, with Theorem 5.2's
N/G condition.

    python -m svag_jax.analysis.svag_convergence SWEEP_ROOT [--out PREFIX] [--c2 2]

For each batch size of the sweep and each phase end (the last evaluation before the first LR
decay, and the end), prints every point's test accuracy (mean ± SE over trials), the convergence
in l (|acc_l - acc_2l|) and the gap to SGD (|acc_SGD - acc_lmax|), each with the SE of the
difference of two independent means, and SGD's N/G before the decay next to the threshold
1 / (C^2 - 1) below which Theorem 5.2 says the SDE approximation must fail. Draws test accuracy,
train loss and N/G vs effective steps (mean ± 2 SE bands) to PREFIX.png/.pdf (default
SWEEP_ROOT/svag_convergence).
"""

import argparse
import dataclasses
import math
import sys

import matplotlib
import numpy as np

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from svag_jax.analysis import common, sde  # noqa: E402


def svag_l(run: sde.Run) -> int | None:
  """SVAG's l, or None for plain SGD."""
  o = run.config['optim']
  return int(o.get('svag_l', 1)) if o.get('oracle', 'sgd') == 'svag' else None


def label(run: sde.Run) -> str:
  l = svag_l(run)
  return 'SGD' if l is None else f'SVAG l={l}'


def batch_size(run: sde.Run) -> int:
  return int(run.config['train']['batch_size'])


def decay_epoch(run: sde.Run) -> float | None:
  """The epoch of the first LR decay of the run's (first arm's) schedule (None without one)."""
  arms = run.config.get('arms') or {}
  schedule = next(iter(arms.values()))['lr_schedule'] if arms else None
  schedule = schedule or run.config['optim'].get('lr_schedule') or ()
  return float(schedule[0][0]) if schedule else None


def phase_ends(run: sde.Run) -> dict[str, int]:
  """{phase name: eval index}: the last eval before (or at) the first decay, and the last eval."""
  ends = {}
  decay = decay_epoch(run)
  if decay is not None and run.epochs[0] <= decay:
    ends['before decay'] = int(np.nonzero(run.epochs <= decay + 1e-9)[0][-1])
  ends['end'] = len(run.epochs) - 1
  return ends


@dataclasses.dataclass(frozen=True)
class Estimate:
  """Mean and standard error over trials."""

  mean: float
  se: float
  n: int

  @classmethod
  def of(cls, values: np.ndarray) -> 'Estimate':
    x = np.asarray(values, float)
    x = x[np.isfinite(x)]
    se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan
    return cls(float(x.mean()) if x.size else math.nan, se, int(x.size))

  def minus(self, other: 'Estimate') -> 'Estimate':
    """|self - other| with the SE of the difference of two independent means."""
    return Estimate(
        abs(self.mean - other.mean), math.hypot(self.se, other.se), min(self.n, other.n)
    )

  def __str__(self) -> str:
    return f'{self.mean:.4f} ± {self.se:.4f}'


def by_batch_size(runs: list[sde.Run]) -> dict[int, list[sde.Run]]:
  """The runs grouped by batch size (ascending), SGD first, then SVAG by l."""
  groups: dict[int, list[sde.Run]] = {}
  for run in runs:
    groups.setdefault(batch_size(run), []).append(run)
  return {
      b: sorted(rs, key=lambda r: -1 if svag_l(r) is None else svag_l(r))
      for b, rs in sorted(groups.items())
  }


def summarize(runs: list[sde.Run], c2: float = 2.0) -> dict:
  """Per batch size and phase end: accuracies, the l-convergence and the SGD gap (see module doc).

  Returns {B: {'phases': {phase: {'acc': {label: Estimate}, 'l_steps': [(l, 2l, Estimate)],
  'sgd_gap': (lmax, Estimate) or None}}, 'nsr': Estimate (SGD's N/G at the first phase end, or
  None), 'sde_fails': bool or None}} and 'threshold' = 1 / (C^2 - 1).
  """
  threshold = 1.0 / (c2 - 1.0)
  out = {'threshold': threshold}
  for b, group in by_batch_size(runs).items():
    phases = {}
    for phase, j in phase_ends(group[0]).items():
      acc = {
          label(r): Estimate.of(r.values['test_accuracy'][:, min(j, len(r.epochs) - 1)])
          for r in group
      }
      ls = sorted(l for r in group if (l := svag_l(r)) is not None)
      l_steps = [
          (l, 2 * l, acc[f'SVAG l={2 * l}'].minus(acc[f'SVAG l={l}'])) for l in ls if 2 * l in ls
      ]
      gap = None
      if 'SGD' in acc and ls:
        gap = (ls[-1], acc['SGD'].minus(acc[f'SVAG l={ls[-1]}']))
      phases[phase] = {'acc': acc, 'l_steps': l_steps, 'sgd_gap': gap}
    sgd = next((r for r in group if svag_l(r) is None), None)
    nsr = None
    if sgd is not None and 'NSR' in sgd.values:
      j = next(iter(phase_ends(sgd).values()))
      window = (sgd.epochs <= sgd.epochs[j] + 1e-9) & (sgd.epochs >= 0.75 * sgd.epochs[j])
      per_trial = np.nanmean(np.where(window, sgd.values['NSR'], np.nan), axis=1)
      if np.isfinite(per_trial).any():
        nsr = Estimate.of(per_trial)
    out[b] = {
        'phases': phases,
        'nsr': nsr,
        'sde_fails': None if nsr is None else bool(nsr.mean < threshold),
    }
  return out


LOG_METRICS = ('train_loss', 'NSR')  # drawn on log axes: geometric mean, band from log values


def figure(runs: list[sde.Run], c2: float = 2.0):
  groups = by_batch_size(runs)
  metrics = [('test_accuracy', 'test accuracy'), ('train_loss', 'train loss'), ('NSR', 'N/G')]
  metrics = [m for m in metrics if any(m[0] in r.values for r in runs)]
  fig, axes = plt.subplots(
      len(groups), len(metrics), figsize=(4.2 * len(metrics), 3.4 * len(groups)), squeeze=False
  )
  for row, (b, group) in zip(axes, groups.items()):
    for run in group:
      style = dict(ls='--', color='k', zorder=5) if svag_l(run) is None else {}
      for ax, (metric, _) in zip(row, metrics):
        if metric in run.values:
          x, v = run.effective_steps, run.values[metric]
          keep = np.isfinite(v).any(axis=0)
          log = metric in LOG_METRICS
          common.plot_mean_se_band(ax, x[keep], v[:, keep], log, label=label(run), **style)
    decay = decay_epoch(group[0])
    for ax, (metric, name) in zip(row, metrics):
      if decay is not None:
        spe = group[0].steps[-1] / group[0].epochs[-1] / (svag_l(group[0]) or 1)
        ax.axvline(decay * spe, color='grey', lw=0.8, ls=':')
      ax.set_title(f'B = {b}: {name}' + (' (geometric mean)' if metric in LOG_METRICS else ''))
      ax.set_xlabel('effective steps (steps / l)')
      ax.grid(alpha=0.3)
      if metric in LOG_METRICS:
        ax.set_yscale('log')
      if metric == 'NSR':
        ax.axhline(1 / (c2 - 1), color='r', lw=1, label=f'1/(C²−1), C² = {c2:g}')
    row[0].legend(fontsize=7)
    row[-1].legend(fontsize=7)
  fig.suptitle('SVAG converges in l; it matches SGD only where N/G is large (2021, Fig. 4)')
  fig.tight_layout()
  return fig


def print_summary(runs: list[sde.Run], c2: float) -> None:
  s = summarize(runs, c2)
  for b, entry in s.items():
    if b == 'threshold':
      continue
    print(f'B = {b}')
    for phase, p in entry['phases'].items():
      accs = ', '.join(f'{k} {v}' for k, v in p['acc'].items())
      print(f'  {phase}: test acc (mean ± SE) {accs}')
      for l, l2, d in p['l_steps']:
        print(f'    |acc_{l2} - acc_{l}| = {d}')
      if p['sgd_gap']:
        lmax, d = p['sgd_gap']
        print(f'    |acc_SGD - acc_{lmax}| = {d}')
    if entry['nsr'] is not None:
      verdict = 'below: the SDE approximation must fail' if entry['sde_fails'] else 'above'
      print(
          f'  SGD N/G before the decay {entry["nsr"]} (trials {entry["nsr"].n}); threshold '
          f'1/(C^2 - 1) = {s["threshold"]:g}: {verdict}'
      )


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('root')
  p.add_argument('--out', default=None)
  p.add_argument('--c2', type=float, default=2.0, help="Theorem 5.2's C^2 (the paper: 2)")
  a = p.parse_args(argv)
  runs = sde.load_sweep(a.root)
  print_summary(runs, a.c2)
  for path in sde.save(figure(runs, a.c2), a.out or f'{a.root}/svag_convergence'):
    print('wrote', path)
  return 0


if __name__ == '__main__':
  sys.exit(main())
