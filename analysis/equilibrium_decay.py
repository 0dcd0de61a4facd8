"""Test accuracy after an LR decay by 10, from equilibria of different intrinsic LRs and from
before the equilibrium (Li, Lyu & Arora 2020, Fig. 2d; reviewer 1, Q3 and Q4;
configs/equilibrium_decay.py).

    python -m svag_jax.analysis.equilibrium_decay WORKDIR [--out DIR] [--deltas 1 2 4 8]

Every arm divides its LR by 10 once (its decay epoch E) and keeps its WD. Per arm: lambda_e before
and after the decay, and the test accuracy at E (just before the first step at eta / 10), at
E + delta for each delta (epochs), and the best of each trial's post-decay evaluations; means with
their 95% interval over trials (`stats.interval`). The arms that decay at the latest epoch are the
equilibrium arms (Fig. 2d: accuracy vs their lambda_e); the arms that decay earlier at one lambda_e
are the drops before equilibrium, set against the equilibrium arm of the same lambda_e (accuracy
vs the decay time in units of 1 / lambda_e). Draws `equilibrium_decay.png/.pdf` into
WORKDIR/figures (or DIR). Reads the workdir only; nothing here trains.
"""

import dataclasses
import sys
from collections.abc import Sequence

import numpy as np

from svag_jax.analysis import common, plots, stats

DELTAS = (1.0, 2.0, 4.0, 8.0)  # epochs after the decay at which the test accuracy is read


@dataclasses.dataclass(frozen=True)
class Decay:
  """One arm's decay; arrays are per trial [T].

  Attributes:
    arm: name; decay: its decay epoch E; steps_per_epoch: SGD steps per epoch.
    intrinsic_lr, after: lambda_e before and after the decay.
    before: test accuracy at E; at: {delta: test accuracy at E + delta} (deltas the run reaches);
    best: each trial's highest post-decay test accuracy.
  """

  arm: str
  decay: float
  steps_per_epoch: float
  intrinsic_lr: float
  after: float
  before: np.ndarray
  at: dict[float, np.ndarray]
  best: np.ndarray

  @property
  def decay_time(self) -> float:
    """The decay epoch in units of 1 / lambda_e (steps x lambda_e)."""
    return self.decay * self.steps_per_epoch * self.intrinsic_lr


def decays(run: common.RunLike, deltas: Sequence[float] = DELTAS) -> list[Decay]:
  """The `Decay` of every arm whose LR changes, ordered by decay epoch, then lambda_e."""
  run = common.as_run(run)
  result = []
  for arm, m, change in common.changing_arms(run, 'equilibrium_decay'):
    i = int(np.flatnonzero(m.effective_steps >= change)[0])  # the row at the decay
    decay = float(m.epochs[i])
    acc = m.values['test_accuracy']
    at = {}
    for d in deltas:
      j = np.flatnonzero(np.isclose(m.epochs, decay + d))
      if j.size:
        at[float(d)] = acc[:, int(j[0])]
    with np.errstate(all='ignore'):
      best = (
          np.nanmax(acc[:, i + 1 :], axis=1) if acc.shape[1] > i + 1 else np.full(len(acc), np.nan)
      )
    result.append(
        Decay(
            arm,
            decay,
            float(m.effective_steps[-1] / m.epochs[-1]),
            m.constant('intrinsic_lr', i - 1),
            m.constant('intrinsic_lr', i),
            acc[:, i],
            at,
            best,
        )
    )
  return sorted(result, key=lambda d: (d.decay, d.intrinsic_lr))


def split(arms: list[Decay]) -> tuple[list[Decay], list[Decay]]:
  """(equilibrium arms: those decaying at the latest epoch, by lambda_e; early drops: the others
  whose lambda_e is one of an equilibrium arm's, with that arm last, by decay epoch)."""
  last = max(a.decay for a in arms)
  eq = sorted((a for a in arms if np.isclose(a.decay, last)), key=lambda a: a.intrinsic_lr)
  early = [a for a in arms if not np.isclose(a.decay, last)]
  les = {round(a.intrinsic_lr, 12) for a in early}
  early += [a for a in eq if round(a.intrinsic_lr, 12) in les]
  return eq, sorted(early, key=lambda a: (a.intrinsic_lr, a.decay))


def summary(arms: list[Decay]) -> list[str]:
  eq, early = split(arms)
  lines = [f'Test accuracy after LR / 10 (mean [{stats.INTERVAL}] over trials):']

  def row(a: Decay) -> str:
    parts = [f'at E {stats.fmt_interval(a.before)}']
    parts += [f'E+{d:g} {stats.fmt_interval(v)}' for d, v in a.at.items()]
    parts.append(f'best after E {stats.fmt_interval(a.best)}')
    return (
        f'  {a.arm}: lambda_e {a.intrinsic_lr:.4g} -> {a.after:.4g}, E = {a.decay:g} '
        f'({a.decay_time:.3g} / lambda_e), {np.isfinite(a.before).sum()} trials: '
        + '; '.join(parts)
    )

  lines.append('Equilibria decayed at the same epoch (Fig. 2d):')
  lines += [row(a) for a in eq]
  for d in eq[0].at if eq else ():
    ref = eq[0]
    for a in eq[1:]:
      diff = stats.difference_interval(a.at[d], ref.at[d])
      lines.append(f'  E+{d:g}: {a.arm} - {ref.arm} {stats.format_interval(*diff, "+.4f")}')
  if early:
    lines.append('LR / 10 before the equilibrium, against the equilibrium arm (reviewer 1, Q3):')
    lines += [row(a) for a in early]
    ref = early[-1]
    for a in early[:-1]:
      parts = [
          f'E+{d:g} {stats.format_interval(*stats.difference_interval(a.at[d], ref.at[d]), "+.4f")}'
          for d in a.at
          if d in ref.at
      ]
      lines.append(f'  {a.arm} - {ref.arm}: ' + '; '.join(parts))
  return lines


def plot(run: common.RunLike, arms: list[Decay], axes=None) -> np.ndarray:
  """Four panels: test and train accuracy vs epochs after the decay (equilibrium arms); test
  accuracy at E + delta vs lambda_e (equilibrium arms) and vs the decay time x lambda_e (drops)."""
  axes = common.check_axes(axes, 4, 'equilibrium_decay.plot', max_cols=2)
  run = common.as_run(run)
  eq, early = split(arms)
  for k, a in enumerate(eq):
    m = run.arms[a.arm]
    after = m.epochs >= a.decay - 2
    for ax, key in zip(axes[:2], ('test_accuracy', 'train_accuracy'), strict=True):
      if key in m.values:
        label = f'λe={a.intrinsic_lr:g}'
        x, v = m.epochs[after] - a.decay, m.values[key][:, after]
        plots.plot_mean_interval(ax, x, v, color=f'C{k % 10}', label=label)
  for ax, name in zip(axes[:2], ('test', 'train'), strict=True):
    ax.axvline(0, color='0.7', linewidth=0.8)
    ax.set_xlabel('epochs after η/10')
    ax.set_ylabel(f'{name} accuracy')
    ax.set_title(f'{name} accuracy, equilibria decayed (mean, {stats.INTERVAL})', fontsize='medium')
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize='small')
    ax.grid(alpha=0.3)
  for ax, group, x_of, xlabel in (
      (axes[2], eq, lambda a: a.intrinsic_lr, 'λe of the equilibrium before η/10'),
      (axes[3], early, lambda a: a.decay_time, 'η/10 after (steps × λe)'),
  ):
    x = np.array([x_of(a) for a in group])
    deltas = sorted(set.intersection(*(set(a.at) for a in group))) if group else []
    for k, d in enumerate(deltas):
      plots.plot_intervals(
          ax, x, [a.at[d] for a in group], fmt='o-', color=f'C{k}', label=f'{d:g} epochs after'
      )
    if group:
      ax.set_xscale('log')
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f'test accuracy (mean, {stats.INTERVAL})')
    ax.legend(fontsize='small')
    ax.grid(alpha=0.3)
  axes[2].set_title('Fig. 2d: which equilibrium before η/10', fontsize='medium')
  le = f' at λe = {early[0].intrinsic_lr:g}' if early else ''
  axes[3].set_title(f'η/10 before the equilibrium{le}', fontsize='medium')
  return axes


def main(argv: Sequence[str] | None = None) -> int:
  parser = common.figure_parser('equilibrium_decay', __doc__)
  parser.add_argument(
      '--deltas', type=float, nargs='*', default=list(DELTAS), help='epochs after the decay'
  )
  args = parser.parse_args(argv)

  def make():
    run = common.load_run(args.workdir)
    arms = decays(run, args.deltas)
    return plot(run, arms), summary(arms)

  return common.run_figure(args, make)


if __name__ == '__main__':
  sys.exit(main())
