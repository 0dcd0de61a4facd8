"""2021 Fig. 3: where the linear scaling rule breaks, against the prediction from the smallest B.

    python -m svag_jax.analysis.lsr SWEEP_ROOT [--c2 2] [--out PREFIX]
    python -m svag_jax.analysis.lsr --baseline WORKDIR [--window START END] [--c2 2]

For each batch size B (runs with eta proportional to B): N/G averaged over the equilibrium window
(`lsr_summary` below, default window) and the final test error. The prediction
B* = C^2 (1 + N/G) B comes from the smallest-B run (Theorem 5.6); the observed break is the
smallest B whose final test error exceeds 1.2 x the best ("LSR failed"). Left panel: N/G vs B with
the Theorem 5.2 threshold N/G = 1/(C^2 - 1) (= 1 for C^2 = 2; below it the SDE view fails) and B*;
right: test error vs B with the failed region shaded. Prints the table and writes
PREFIX.png/.pdf (default SWEEP_ROOT/lsr).

With `--baseline WORKDIR` (one run, e.g. the smallest-B point of the sweep): prints B* =
C^2 (1 + N/G) B per trial and its mean (`lsr_summary`), from G and N averaged over `--window`
(default `equilibrium_window`: the last 25% of the G/N evals before the first LR change).
"""

import argparse
import math
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from svag_jax import theory  # noqa: E402
from svag_jax import workdir as workdir_lib  # noqa: E402
from svag_jax.analysis import sde  # noqa: E402

FAIL_FACTOR = 1.2


# ---- One baseline run: B* from its G and N. ----


def equilibrium_window(rows: list[dict]) -> tuple[float, float]:
  """The default averaging window (in epochs) of a run's G/N rows: the last 25% of the evals that
  carry G/N before the first LR change (or of all such evals if the LR never changes)."""
  epochs = sorted({r['epoch'] for r in rows if r.get('N') is not None})
  if not epochs:
    raise ValueError('no metric row has G and N: run with config.metrics.gn_every > 0')
  lrs = {}
  for r in rows:
    if r.get('lr') is not None:
      lrs.setdefault(r['epoch'], r['lr'])
  first_lr = lrs[min(lrs)] if lrs else None
  changed = [e for e in sorted(lrs) if first_lr is not None and lrs[e] != first_lr]
  if changed:
    epochs = [e for e in epochs if e < changed[0]] or epochs
  start = epochs[int(len(epochs) * 0.75)] if len(epochs) > 1 else epochs[0]
  return start, epochs[-1]


def lsr_summary(workdir: str, window: tuple[float, float] | None = None, c2: float = 2.0) -> dict:
  """B* = C^2 (1 + N/G) B per trial of a baseline run, from G and N averaged over `window`.

  N/G of a trial is (mean N) / (mean G) over its rows in the window (a ratio of means: a single
  Ĝ can be near 0). Returns {'window', 'batch_size', 'trials': [{trial, G, N, NSR, B*}], 'mean_NSR',
  'mean_B*', 'interval_B*'} where the interval is mean ± 1.96 standard errors over trials
  (NaN for one trial).
  """
  rows = [r for r in workdir_lib.read_metrics(workdir) if not r.get('diverged')]
  batch = workdir_lib.read_config(workdir)['train']['batch_size']
  window = tuple(window) if window is not None else equilibrium_window(rows)
  lo, hi = window
  per_trial = {}
  for r in rows:
    if r.get('N') is not None and r.get('G') is not None and lo <= r['epoch'] <= hi:
      per_trial.setdefault(r['trial'], []).append((r['G'], r['N']))
  if not per_trial:
    raise ValueError(f'no G/N rows between epochs {lo:g} and {hi:g} in {workdir}')
  trials = []
  for t, values in sorted(per_trial.items()):
    g = float(np.mean([v[0] for v in values]))
    n = float(np.mean([v[1] for v in values]))
    nsr = n / g
    trials.append(
        {
            'trial': t,
            'G': g,
            'N': n,
            'NSR': nsr,
            'rows': len(values),
            'B*': float(theory.lsr_critical_batch(nsr, batch, c2)),
        }
    )
  bstar = np.array([t['B*'] for t in trials])
  half = 1.96 * bstar.std(ddof=1) / math.sqrt(len(bstar)) if len(bstar) > 1 else float('nan')
  return {
      'window': window,
      'batch_size': batch,
      'c2': c2,
      'trials': trials,
      'mean_NSR': float(np.mean([t['NSR'] for t in trials])),
      'mean_B*': float(bstar.mean()),
      'interval_B*': (bstar.mean() - half, bstar.mean() + half),
  }


def print_baseline(workdir: str, s: dict) -> None:
  """Prints an `lsr_summary`: one line per trial and the mean B* with its interval."""
  lo, hi = s['window']
  print(
      f'{workdir}: baseline B = {s["batch_size"]}, C^2 = {s["c2"]:g}, '
      f'G and N averaged over epochs [{lo:g}, {hi:g}]'
  )
  print(f'{"trial":>5} {"evals":>5} {"G":>11} {"N":>11} {"N/G":>9} {"B*":>9}')
  for t in s['trials']:
    print(
        f'{t["trial"]:>5} {t["rows"]:>5} {t["G"]:>11.4g} {t["N"]:>11.4g} {t["NSR"]:>9.3f} '
        f'{t["B*"]:>9.1f}'
    )
  a, b = s['interval_B*']
  print(
      f'mean N/G = {s["mean_NSR"]:.3f}; B* = {s["mean_B*"]:.1f} '
      f'(95% interval over {len(s["trials"])} trials: [{a:.1f}, {b:.1f}])'
  )


# ---- The sweep: N/G and test error vs B. ----


def summarize(root: str, c2: float = 2.0) -> dict:
  """{'B': [..], 'nsr': [..], 'test_error': [..], 'B*': float, 'B*_interval', 'observed_break'}."""
  runs = sorted(sde.load_sweep(root), key=lambda r: r.config['train']['batch_size'])
  batches, nsr, err, err_std = [], [], [], []
  for run in runs:
    batches.append(run.config['train']['batch_size'])
    try:
      nsr.append(lsr_summary(f'{root}/{run.name}', c2=c2)['mean_NSR'])
    except ValueError:
      nsr.append(float('nan'))
    m, s, _ = run.final('test_accuracy')
    err.append(1 - m)
    err_std.append(s)
  base = lsr_summary(f'{root}/{runs[0].name}', c2=c2)
  best = np.nanmin(err)
  failed = [b for b, e in zip(batches, err) if not e <= FAIL_FACTOR * best]
  return {
      'B': batches,
      'nsr': nsr,
      'test_error': err,
      'test_error_std': err_std,
      'c2': c2,
      'B*': base['mean_B*'],
      'B*_interval': base['interval_B*'],
      'base_B': batches[0],
      'base_nsr': base['mean_NSR'],
      'best_error': best,
      'observed_break': failed[0] if failed else None,
  }


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
    ax.axvspan(
        s['observed_break'],
        b.max() * 1.5,
        color='r',
        alpha=0.1,
        label=f'LSR failed (> {FAIL_FACTOR} x best)',
    )
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


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(
      prog='python -m svag_jax.analysis.lsr', description=__doc__.splitlines()[0]
  )
  p.add_argument('root', nargs='?', help='sweep root (one run per batch size)')
  p.add_argument('--baseline', metavar='WORKDIR', help='print B* of one baseline run instead')
  p.add_argument(
      '--window',
      nargs=2,
      type=float,
      metavar=('START', 'END'),
      help='--baseline: epochs over which G and N are averaged (default: the last 25%% '
      'of the G/N evals before the first LR change)',
  )
  p.add_argument('--c2', type=float, default=2.0, help="C^2 (default 2, the paper's)")
  p.add_argument('--out', default=None)
  a = p.parse_args(argv)
  if a.baseline is not None:
    try:
      s = lsr_summary(a.baseline, a.window, a.c2)
    except (OSError, ValueError, KeyError) as e:
      print(f'analysis.lsr: {e}')
      return 2
    print_baseline(a.baseline, s)
    return 0
  if a.root is None:
    p.error('give a SWEEP_ROOT, or --baseline WORKDIR')
  s = summarize(a.root, a.c2)
  print(f'{"B":>6} {"N/G":>8} {"test err":>9}')
  for b, r, e in zip(s['B'], s['nsr'], s['test_error']):
    print(f'{b:>6} {r:>8.3f} {e:>9.4f}')
  lo, hi = s['B*_interval']
  iv = '' if math.isnan(lo) else f' (95% interval [{lo:.0f}, {hi:.0f}])'
  print(f'baseline B = {s["base_B"]}: N/G = {s["base_nsr"]:.3f}, predicted B* = {s["B*"]:.0f}{iv}')
  print(
      f'observed break (test error > {FAIL_FACTOR} x best = {FAIL_FACTOR * s["best_error"]:.4f}):'
      f' B = {s["observed_break"]}'
  )
  for path in sde.save(figure(s), a.out or f'{a.root}/lsr'):
    print('wrote', path)
  return 0


if __name__ == '__main__':
  sys.exit(main())
