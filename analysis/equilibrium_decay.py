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
import warnings
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
    before: test accuracy at E, or at the last evaluation before it (NaN where none is);
    at: {delta: test accuracy at E + delta} (deltas the run reaches), read at the first
    evaluation at or after E + delta; offsets: {delta: the epochs after E of that evaluation}
    (delta itself where the evaluations fall on E + delta), and None for `before`'s;
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
  offsets: dict[float | None, float] = dataclasses.field(default_factory=dict)

  @property
  def decay_time(self) -> float:
    """The decay epoch in units of 1 / lambda_e (steps x lambda_e)."""
    return self.decay * self.steps_per_epoch * self.intrinsic_lr


def _first_change(run: common.Run, arm: str) -> tuple[float, float] | None:
  """(epoch, LR factor x WD factor) of the arm's first LR or WD change in the recorded config
  (config.json's resolved arms), or None where the record has no schedule for the arm."""
  spec = run.config.get('arms', {}).get(arm) if isinstance(run.config, dict) else None
  if not spec or 'lr_schedule' not in spec:
    return None
  changes = [(float(e), float(f)) for e, f in spec.get('lr_schedule') or () if f != 1]
  changes += [(float(e), float(f)) for e, f in spec.get('wd_schedule') or () if f != 1]
  if not changes:
    return (np.inf, 1.0)
  first = min(e for e, _ in changes)
  return first, float(np.prod([f for e, f in changes if e == first]))


def decays(run: common.RunLike, deltas: Sequence[float] = DELTAS) -> list[Decay]:
  """The `Decay` of every arm whose LR or WD changes, ordered by decay epoch, then lambda_e.

  The decay step is the recorded config's (round(epoch x steps per epoch), the trainer's rule)
  where config.json has the arm's schedules, else the first evaluation whose LR or WD differs
  (`ArmMetrics.change_step`: exact only where an evaluation falls on the decay). Evaluations need
  not fall on the decay or on E + delta (eval_every = 0.5 epoch of 125 steps evaluates every 62
  steps): each reading is taken at the first evaluation at or after its epoch and its actual
  offset is kept.
  """
  run = common.as_run(run)
  result = []
  for arm, m in run.arms.items():
    steps = m.effective_steps
    per_epoch = float(steps[-1] / m.epochs[-1])
    change = _first_change(run, arm)
    if change is None:
      if (b := m.change_step()) is None:
        continue
      factor = None
    elif np.isfinite(change[0]):
      b, factor = float(round(change[0] * per_epoch)), change[1]
    else:
      continue
    after_rows = np.flatnonzero(steps >= b - 1e-9)
    if not after_rows.size:
      continue
    i = int(after_rows[0])  # the first evaluation at or after the decay: it carries eta / 10
    acc = m.values['test_accuracy']
    after = m.constant('intrinsic_lr', i)
    if i > 0:
      intrinsic_lr = m.constant('intrinsic_lr', i - 1)
    else:  # no evaluation before the decay: lambda_e before it from the recorded factors
      intrinsic_lr = after / factor if factor else np.nan
    decay = b / per_epoch
    offsets: dict[float | None, float] = {}
    if np.isclose(steps[i], b):
      before, offsets[None] = acc[:, i], 0.0  # the weights after b steps at the old LR
    elif i > 0:
      before, offsets[None] = acc[:, i - 1], float((steps[i - 1] - b) / per_epoch)
    else:
      before = np.full(len(acc), np.nan)
    at = {}
    for d in deltas:
      j = np.flatnonzero(steps >= b + d * per_epoch - 1e-6)
      if j.size:
        at[float(d)] = acc[:, int(j[0])]
        offsets[float(d)] = float((steps[int(j[0])] - b) / per_epoch)
    later = steps > b + 1e-9
    with np.errstate(all='ignore'), warnings.catch_warnings():
      warnings.simplefilter('ignore', RuntimeWarning)
      best = np.nanmax(acc[:, later], axis=1) if later.any() else np.full(len(acc), np.nan)
    result.append(Decay(arm, decay, per_epoch, intrinsic_lr, after, before, at, best, offsets))
  return sorted(result, key=lambda d: (d.decay, d.intrinsic_lr))


def _when(a: Decay, d: float | None) -> str:
  """'' where `a` was read at E + d itself, else ' (read at E+x)'."""
  off = a.offsets.get(d)
  if off is None or np.isclose(off, d or 0.0, atol=1e-6):
    return ''
  return f' (read at E{off:+.3g})'


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
    parts = [f'at E{_when(a, None)} {stats.fmt_interval(a.before)}']
    parts += [f'E+{d:g}{_when(a, d)} {stats.fmt_interval(v)}' for d, v in a.at.items()]
    parts.append(f'best after E {stats.fmt_interval(a.best)}')
    return (
        f'  {a.arm}: lambda_e {a.intrinsic_lr:.4g} -> {a.after:.4g}, E = {a.decay:g} '
        f'({a.decay_time:.3g} / lambda_e), {np.isfinite(a.best).sum()} trials: ' + '; '.join(parts)
    )

  lines.append('Equilibria decayed at the same epoch (Fig. 2d):')
  lines += [row(a) for a in eq]
  for d in eq[0].at if eq else ():
    ref = eq[0]
    for a in (a for a in eq[1:] if d in a.at):
      diff = stats.difference_interval(a.at[d], ref.at[d])
      lines.append(f'  E+{d:g}: {a.arm} - {ref.arm} {stats.format_interval(*diff, "+.4f")}')
  if early:
    lines.append('LR / 10 before the equilibrium, against the equilibrium arm (reviewer 1, Q3):')
    lines += [row(a) for a in early]
    ref = early[-1]
    for a in early[:-1]:
      parts = [
          f'E+{d:g} {stats.format_interval(*stats.difference_interval(a.at[d], ref.at[d]), "+.4f")}'
          + (
              f' (read at E{a.offsets[d]:+.3g} vs E{ref.offsets[d]:+.3g})'
              if not np.isclose(a.offsets.get(d, d), ref.offsets.get(d, d), atol=1e-6)
              else ''
          )
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
      ax.set_xticks(x, [f'{v:.3g}' for v in x])
      ax.minorticks_off()
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
