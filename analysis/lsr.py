"""2021 Fig. 3: where the linear scaling rule breaks, against the prediction from the smallest B.

    python -m analysis.lsr SWEEP_ROOT [--c2 2] [--out PREFIX]

For each batch size B (runs with eta proportional to B): N/G averaged over the equilibrium window
(`svag_jax.theory.lsr_summary`, default window) and the final test error. The prediction
B* = C^2 (1 + N/G) B comes from the smallest-B run (Theorem 5.6); the observed break is the
smallest B whose final test error exceeds 1.2 x the best ("LSR failed"). Left panel: N/G vs B with
the Theorem 5.2 threshold N/G = 1/(C^2 - 1) (= 1 for C^2 = 2; below it the SDE view fails) and B*;
right: test error vs B with the failed region shaded. Prints the table and writes
PREFIX.png/.pdf (default SWEEP_ROOT/lsr).
"""

import argparse
import math
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from analysis import sde  # noqa: E402
from svag_jax import theory  # noqa: E402

FAIL_FACTOR = 1.2


def summarize(root: str, c2: float = 2.0) -> dict:
  """{'B': [..], 'nsr': [..], 'test_error': [..], 'B*': float, 'B*_interval', 'observed_break'}."""
  runs = sorted(sde.load_sweep(root), key=lambda r: r.config['train']['batch_size'])
  batches, nsr, err, err_std = [], [], [], []
  for run in runs:
    batches.append(run.config['train']['batch_size'])
    try:
      nsr.append(theory.lsr_summary(f'{root}/{run.name}', c2=c2)['mean_NSR'])
    except ValueError:
      nsr.append(float('nan'))
    m, s, _ = run.final('test_accuracy')
    err.append(1 - m)
    err_std.append(s)
  base = theory.lsr_summary(f'{root}/{runs[0].name}', c2=c2)
  best = np.nanmin(err)
  failed = [b for b, e in zip(batches, err) if not e <= FAIL_FACTOR * best]
  return {'B': batches, 'nsr': nsr, 'test_error': err, 'test_error_std': err_std, 'c2': c2,
          'B*': base['mean_B*'], 'B*_interval': base['interval_B*'], 'base_B': batches[0],
          'base_nsr': base['mean_NSR'], 'best_error': best,
          'observed_break': failed[0] if failed else None}


def figure(s: dict):
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
  b = np.asarray(s['B'], float)
  ax = axes[0]
  ax.plot(b, s['nsr'], 'o-', label='measured N/G')
  ax.axhline(1 / (s['c2'] - 1), color='r', ls=':', label=f'N/G = 1/(C²-1), C² = {s["c2"]:g}')
  ax.set_ylabel('N/G at equilibrium')
  ax = axes[1]
  ax.errorbar(b, s['test_error'], yerr=s['test_error_std'], fmt='o-', label='final test error')
  ax.axhline(FAIL_FACTOR * s['best_error'], color='gray', ls=':', lw=1)
  if s['observed_break'] is not None:
    ax.axvspan(s['observed_break'], b.max() * 1.5, color='r', alpha=0.1,
               label=f'LSR failed (> {FAIL_FACTOR} x best)')
  ax.set_ylabel('test error')
  for ax in axes:
    ax.axvline(s['B*'], color='k', ls='--', label=f'predicted B* = {s["B*"]:.0f}')
    ax.set_xscale('log', base=2)
    ax.set_xlabel('batch size B (eta proportional to B)')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  fig.suptitle('LSR: predicted vs observed break (Li, Malladi & Arora 2021, Fig. 3)')
  fig.tight_layout()
  return fig


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('root')
  p.add_argument('--c2', type=float, default=2.0)
  p.add_argument('--out', default=None)
  a = p.parse_args(argv)
  s = summarize(a.root, a.c2)
  print(f'{"B":>6} {"N/G":>8} {"test err":>9}')
  for b, r, e in zip(s['B'], s['nsr'], s['test_error']):
    print(f'{b:>6} {r:>8.3f} {e:>9.4f}')
  lo, hi = s['B*_interval']
  iv = '' if math.isnan(lo) else f' (95% interval [{lo:.0f}, {hi:.0f}])'
  print(f'baseline B = {s["base_B"]}: N/G = {s["base_nsr"]:.3f}, predicted B* = {s["B*"]:.0f}{iv}')
  print(f'observed break (test error > {FAIL_FACTOR} x best = {FAIL_FACTOR * s["best_error"]:.4f}):'
        f' B = {s["observed_break"]}')
  for path in sde.save(figure(s), a.out or f'{a.root}/lsr'):
    print('wrote', path)
  return 0


if __name__ == '__main__':
  sys.exit(main())
