"""Small initial LR vs step decay (configs/small_lr.py; Li, Lyu & Arora 2020, Fig. 2a-c).

    python -m svag_jax.analysis.small_lr WORKDIR [--out DIR]

Every arm of the run ends with the same final phase (its last LR change, at the same epoch for all
arms). Per arm it prints the intrinsic LR of the phase before the final decay (lambda_e =
eta lambda / (1 - beta), the metric `intrinsic_lr_momentum`), ||w||^2 and the effective LR
eta / ||w||^2 over the last `WINDOW` of that phase (its last evaluation, at the final decay,
included) (is it the same equilibrium?), the test accuracy just before the final decay and at the
end, and the final test accuracy minus the reference arm's (`REFERENCE`, the step decay;
--reference); intervals are `stats.interval`, 95% over trials (for a difference of two
independent arms: `stats.difference_interval`). Draws `small_lr.png/.pdf` into WORKDIR/figures
(or DIR): test accuracy, ||w||^2 and eta / ||w||^2 vs epoch (mean over trials, 10-90% band), and
the final test accuracy against the final test accuracy of every arm.

Reads the workdir only (metrics.jsonl, config.json); nothing here trains.
"""

import dataclasses
import sys
from collections.abc import Sequence

import numpy as np

from svag_jax.analysis import common, plots, stats

REFERENCE = 'step_decay'  # the arm the others are compared with (if present; else the first)
WINDOW = 0.25  # the last quarter of the phase before the final decay: the equilibrium window
CURVES = (
    ('test_accuracy', 'test accuracy', False),
    ('w_norm_sq', r'$\|w\|^2$', True),
    ('effective_lr', r'effective LR  $\eta / \|w\|^2$', True),
)


@dataclasses.dataclass(frozen=True)
class ArmResult:
  """One arm's numbers; arrays are per trial [T].

  Attributes:
    arm: name. lr0: initial LR. final_decay: epoch of the arm's last LR/WD change.
    intrinsic_lr: lambda_e = eta lambda / (1 - beta) of the phase before the final decay.
    final_intrinsic_lr: lambda_e after it.
    window: (first, last) epoch of the equilibrium window before the final decay.
    w_norm_sq, effective_lr: means over the window.
    acc_before: test accuracy at the final decay (weights before its first step).
    acc_final: test accuracy at the last evaluation.
  """

  arm: str
  lr0: float
  final_decay: float
  intrinsic_lr: float
  final_intrinsic_lr: float
  window: tuple[float, float]
  w_norm_sq: np.ndarray
  effective_lr: np.ndarray
  acc_before: np.ndarray
  acc_final: np.ndarray


def results(
    run: common.RunLike, window: float = WINDOW, reference: str = REFERENCE
) -> list[ArmResult]:
  """The `ArmResult` of every arm: `reference` first (if the run has it), then the others in the
  order of the trials."""
  run = common.as_run(run)
  changes = common.schedule_changes(run.config)
  order = sorted(run.arms, key=lambda a: a != reference)
  out = []
  for arm in order:
    m = run.arms[arm]
    if not changes.get(arm):
      raise ValueError(f'{run.path}: arm {arm} has no LR/WD change; is it a small_lr run?')
    decay = changes[arm][-1]
    at_decay = np.flatnonzero(np.isclose(m.epochs, decay))
    if not at_decay.size or at_decay[0] == 0:
      raise ValueError(
          f'{run.path}: arm {arm} has no evaluation at its final decay (epoch {decay:g})'
      )
    i = int(at_decay[0])  # this row: the weights before the first step of the final phase
    # the phase before the final decay starts at the arm's previous change (or 0)
    start = max([e for e in changes[arm] if e < decay], default=0.0)
    lo = decay - window * (decay - start)
    mask = (m.epochs >= lo) & (m.epochs <= decay)
    v = m.values
    out.append(
        ArmResult(
            arm=arm,
            lr0=float(run.config['arms'][arm]['lr']),
            final_decay=decay,
            intrinsic_lr=m.constant('intrinsic_lr_momentum', i - 1),
            final_intrinsic_lr=m.constant('intrinsic_lr_momentum', i),
            window=(float(m.epochs[mask][0]), float(m.epochs[mask][-1])),
            w_norm_sq=stats.nanmean(v['w_norm_sq'][:, mask], 1),
            effective_lr=stats.nanmean(v['effective_lr'][:, mask], 1),
            acc_before=v['test_accuracy'][:, i],
            acc_final=v['test_accuracy'][:, -1],
        )
    )
  return out


def summary(arms: list[ArmResult]) -> list[str]:
  ref = arms[0]
  lines = [
      f'Final decay at epoch {ref.final_decay:g}; lambda_e = eta lambda / (1 - beta); '
      f'mean [{stats.INTERVAL}] over trials; reference arm: ' + ref.arm
  ]
  for a in arms:
    lines += [
        f'{a.arm}: eta_0 {a.lr0:g}, {np.isfinite(a.acc_final).sum()} trials; lambda_e before the '
        f'final decay {a.intrinsic_lr:.3g}, after {a.final_intrinsic_lr:.3g}',
        f'  epochs {a.window[0]:g}-{a.window[1]:g}: ||w||^2 {stats.fmt_interval(a.w_norm_sq)}, '
        f'eta/||w||^2 {stats.fmt_interval(a.effective_lr)}',
        f'  test accuracy before the final decay {stats.fmt_interval(a.acc_before)}, final '
        f'{stats.fmt_interval(a.acc_final)}',
    ]
    if a is not ref:
      diff = stats.difference_interval(a.acc_final, ref.acc_final)
      lines.append(f'  final test accuracy - {ref.arm}: {stats.format_interval(*diff, "+.4f")}')
  return lines


def plot(run: common.RunLike, arms: list[ArmResult] | None = None, axes=None) -> np.ndarray:
  """Four panels: test accuracy, ||w||^2, eta/||w||^2 vs epoch per arm; the final test accuracy
  of every arm (mean and interval; hollow: just before the final decay)."""
  axes = common.check_axes(axes, len(CURVES) + 1, 'small_lr.plot')
  run = common.as_run(run)
  arms = results(run) if arms is None else arms
  metrics = run.arms
  for ax, (key, label, log) in zip(axes, CURVES, strict=False):
    for c, a in enumerate(arms):
      m = metrics[a.arm]
      plots.plot_mean_band(ax, m.epochs, m.values[key], f'C{c % 10}', f'{a.arm} ({len(m.trials)})')
    ax.axvline(arms[0].final_decay, color='0.8', linewidth=0.8, zorder=0)
    plots.label_epoch_panel(ax, label, log)
  axes[0].set_ylim(0.85, 1.0)
  axes[0].legend(fontsize='small')
  axes[0].set_title('mean over trials, 10–90% band', fontsize='medium')
  ax = axes[-1]
  for c, a in enumerate(arms):
    for values, fill in ((a.acc_final, True), (a.acc_before, False)):
      plots.plot_intervals(
          ax,
          [c + (0.0 if fill else 0.2)],
          [values],
          fmt='o',
          color=f'C{c % 10}',
          mfc=f'C{c % 10}' if fill else 'none',
          label=a.arm if fill else None,
      )
  ax.set_xticks(range(len(arms)), [a.arm for a in arms], fontsize='small')
  ax.set_ylabel(f'test accuracy (mean, {stats.INTERVAL})')
  ax.set_title('filled: final; hollow: just before the final decay', fontsize='medium')
  ax.grid(alpha=0.3)
  ax.legend(fontsize='small')
  return axes


def main(argv: Sequence[str] | None = None) -> int:
  parser = common.figure_parser('small_lr', __doc__)
  parser.add_argument('--reference', default=REFERENCE, help='the arm the others are compared with')
  args = parser.parse_args(argv)

  def make():
    run = common.load_run(args.workdir)
    arms = results(run, reference=args.reference)
    return plot(run, arms), summary(arms)

  return common.run_figure(args, make)


if __name__ == '__main__':
  sys.exit(main())
