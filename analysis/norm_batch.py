"""Norm type and batch size at fixed intrinsic LR, and the linear scaling rule (Li, Lyu & Arora
2020, Sec. 5.3; reviewer 2, Q1 and Q3; configs/norm_batch.py).

    python -m svag_jax.analysis.norm_batch ROOT [--out DIR] [--permutations 200]

Reads a norm x batch-size sweep whose points each train arms `a` (eta_B, lambda), `b` (4 eta_B,
lambda) and `b_eq` (16 eta_B, lambda / 4), eta_B proportional to B. Per norm, with the smaller
batch size B and the larger kB:
  - lambda_e alone: b vs b_eq at each B (same eta lambda, eta 4x apart);
  - the linear scaling rule: a vs a and b vs b across B (eta and B both x k, lambda fixed);
  - batch size at fixed lambda_e: b at B vs a at kB (eta lambda equal, B k x apart);
each as the difference of the final test accuracies (`stats.difference_interval`, 95%) and the TV
of the final predictions against its permutation null (`tv.permutation_test`, p-value). Draws
`norm_batch.png/.pdf` into ROOT/figures (or DIR) and prints the numbers. Reads workdirs only.
"""

import sys
from collections.abc import Sequence

import numpy as np

from svag_jax import record
from svag_jax import tv as tv_lib
from svag_jax.analysis import common, stats

ARMS = ('a', 'b', 'b_eq')


def points(runs: list[common.Run]) -> dict[str, dict[int, common.Run]]:
  """{norm: {batch size: run}} of a sweep root, norms in the sweep's order."""
  result: dict[str, dict[int, common.Run]] = {}
  for run in runs:
    norm, batch = run.config['model']['norm'], int(run.config['train']['batch_size'])
    result.setdefault(norm, {})[batch] = run
  return result


def final(run: common.Run, arm: str) -> tuple[np.ndarray, np.ndarray | None]:
  """(test accuracy at the last evaluation [T], predictions at the last saved epoch [T, n] or
  None) of one arm."""
  acc = run.arms[arm].values['test_accuracy'][:, -1]
  if not (run.path / 'predictions' / 'trials.json').exists():
    return acc, None
  predictions, trial_arms = record.read_predictions(run.path)
  last = predictions[max(predictions)]
  return acc, last[np.asarray(trial_arms) == arm]


def comparisons(runs: list[common.Run], num_permutations: int = 200) -> dict[str, list[dict]]:
  """{norm: [{'what', 'left', 'right', 'diff': (d, low, high), 'tv': PermutationTest | None}]}."""
  result = {}
  for norm, by_batch in points(runs).items():
    small, large = sorted(by_batch)[0], sorted(by_batch)[-1]
    pairs = [
        ('lambda_e alone', (small, 'b'), (small, 'b_eq')),
        ('lambda_e alone', (large, 'b'), (large, 'b_eq')),
        ('LSR', (small, 'a'), (large, 'a')),
        ('LSR', (small, 'b'), (large, 'b')),
        ('batch at fixed lambda_e', (small, 'b'), (large, 'a')),
    ]
    rows = []
    for what, left, right in pairs:
      if small == large and what != 'lambda_e alone':
        continue
      (acc_l, pred_l), (acc_r, pred_r) = (final(by_batch[b], arm) for b, arm in (left, right))
      test = None
      if pred_l is not None and pred_r is not None:
        n = int(max(p[p != record.DIVERGED_PREDICTION].max() for p in (pred_l, pred_r))) + 1
        test = tv_lib.permutation_test(pred_l, pred_r, n, num_permutations)
      diff = stats.difference_interval(acc_l, acc_r)
      rows.append(dict(what=what, left=left, right=right, diff=diff, tv=test))
    result[norm] = rows
  return result


def summary(runs: list[common.Run], comps: dict[str, list[dict]]) -> list[str]:
  lines = [f'Final test accuracy, mean [{stats.INTERVAL}] over trials:']
  for norm, by_batch in points(runs).items():
    for batch, run in sorted(by_batch.items()):
      parts = []
      for arm in ARMS:
        m = run.arms[arm]
        le = m.constant('intrinsic_lr')
        acc = stats.fmt_interval(m.values['test_accuracy'][:, -1])
        parts.append(f'{arm} (eta {m.constant("lr"):g}, lambda_e {le:g}) {acc}')
      lines.append(f'  {norm} B={batch}: ' + '; '.join(parts))
  lines.append('Comparisons: accuracy difference left - right [95%]; TV / permutation null (p)')
  for norm, rows in comps.items():
    for r in rows:
      (bl, al), (br, ar) = r['left'], r['right']
      line = (
          f'  {norm:5} {r["what"]:23} B={bl} {al} vs B={br} {ar}: '
          f'{stats.format_interval(*r["diff"], "+.4f")}'
      )
      if r['tv'] is not None:
        t = r['tv']
        line += f'; TV {t.tv:.4f} / {t.null_mean:.4f} (p = {t.p_value:.3g})'
      lines.append(line)
  return lines


def plot(runs: list[common.Run], comps: dict[str, list[dict]], axes=None) -> np.ndarray:
  """Two panels: the final test accuracy of every norm, B and arm (mean and interval); TV over its
  permutation null of each comparison, per norm (filled: p < 0.05)."""
  axes = common.check_axes(axes, 2, 'norm_batch.plot')
  ax = axes[0]
  ticks, labels, x = [], [], 0
  for norm, by_batch in points(runs).items():
    for batch, run in sorted(by_batch.items()):
      for k, arm in enumerate(ARMS):
        mean, lo, hi = stats.interval(run.arms[arm].values['test_accuracy'][:, -1])
        label = arm if x == 0 else None
        ax.errorbar(
            x + 0.25 * k,
            mean,
            yerr=[[mean - lo], [hi - mean]],
            fmt='o',
            color=f'C{k}',
            capsize=3,
            label=label,
        )
      ticks.append(x + 0.25)
      labels.append(f'{norm}\nB={batch}')
      x += 1
  ax.set_xticks(ticks, labels, fontsize='small')
  ax.set_ylabel(f'final test accuracy (mean, {stats.INTERVAL})')
  ax.set_title('a: (η_B, λ); b: (4η_B, λ); b_eq: (16η_B, λ/4)', fontsize='medium')
  ax.legend(fontsize='small')
  ax.grid(alpha=0.3)
  ax = axes[1]
  kinds = list(dict.fromkeys(r['what'] for rows in comps.values() for r in rows))
  for i, rows in enumerate(comps.values()):
    for j, r in enumerate(rows):
      if r['tv'] is None:
        continue
      t = r['tv']
      color = f'C{kinds.index(r["what"])}'
      fill = color if t.p_value < 0.05 else 'none'
      label = r['what'] if i == 0 and j == [q['what'] for q in rows].index(r['what']) else None
      ax.plot(i + 0.12 * j, t.tv / t.null_mean, 'o', color=color, mfc=fill, label=label)
  ax.axhline(1, color='k', linewidth=0.8)
  ax.set_xticks(range(len(comps)), list(comps))
  ax.set_ylabel('TV of the final predictions ÷ permutation null')
  ax.set_title('filled: p < 0.05', fontsize='medium')
  if ax.get_legend_handles_labels()[0]:
    ax.legend(fontsize='small')
  ax.grid(alpha=0.3)
  return axes


def main(argv: Sequence[str] | None = None) -> int:
  parser = common.figure_parser('norm_batch', __doc__, source='root')
  parser.add_argument('--permutations', type=int, default=200, help='shuffles per TV test')
  args = parser.parse_args(argv)

  def make():
    runs = common.load_sweep(args.root)
    comps = comparisons(runs, args.permutations)
    return plot(runs, comps), summary(runs, comps)

  return common.run_figure(args, make)


if __name__ == '__main__':
  sys.exit(main())
