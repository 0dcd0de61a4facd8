"""2021 Fig. 3: where the linear scaling rule breaks, against the B* predicted from baseline runs.

    python -m svag_jax.analysis.lsr SWEEP_ROOT [--c2 2] [--baselines B1,B2,..] [--out PREFIX]
    python -m svag_jax.analysis.lsr --baseline WORKDIR [--window START END] [--c2 2]

For each batch size B (runs with eta proportional to B): N/G of each trial averaged over the
equilibrium window before the LR decay (`lsr_summary` below, default window) and the final test
error (after the decay), mean and 95% interval (mean +- 1.96 SE) over trials. From each baseline
(default: the 3 smallest B) the prediction of Theorem 5.6 in both forms: the exact bound
B* = C^2 (1 + N/G) B and the paper's figure's approximation B* ~ C^2 B N/G; the predicted interval
is [min, max] over the baselines. The observed break (the paper's criterion) is the smallest B whose
final test error exceeds the lowest final test error by more than 20% of it. Top panel: G/N vs B
with the threshold G/N = C^2 (under the LSR N scales as 1/B, so a run at the approximate B* of a
baseline has G/N = C^2) and the predicted interval; bottom: final test error vs B with the 20%
band above the lowest error and the failed B shaded. Prints the table and writes PREFIX.png/.pdf
(default SWEEP_ROOT/lsr).

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
            'B*_approx': float(theory.lsr_critical_batch_approx(nsr, batch, c2)),
        }
    )
  out = {'window': window, 'batch_size': batch, 'c2': c2, 'trials': trials}
  for key, name in (('NSR', 'NSR'), ('B*', 'B*'), ('B*_approx', 'B*_approx')):
    m, iv = mean_interval([t[key] for t in trials])
    out[f'mean_{name}'], out[f'interval_{name}'] = m, iv
  return out


def mean_interval(values) -> tuple[float, tuple[float, float]]:
  """Mean and 95% normal interval (mean ± 1.96 SE, SE = sample std / sqrt(n)) of `values`,
  NaNs dropped; the interval is (NaN, NaN) for fewer than 2 values."""
  v = np.asarray(values, float)
  v = v[~np.isnan(v)]
  if not v.size:
    return float('nan'), (float('nan'), float('nan'))
  m = float(v.mean())
  half = 1.96 * float(v.std(ddof=1)) / math.sqrt(v.size) if v.size > 1 else float('nan')
  return m, (m - half, m + half)


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
  c, d = s['interval_B*_approx']
  print(
      f'mean N/G = {s["mean_NSR"]:.3f}; B* = C^2 (1 + N/G) B = {s["mean_B*"]:.1f} '
      f'(95% interval over {len(s["trials"])} trials: [{a:.1f}, {b:.1f}]); '
      f'C^2 B N/G = {s["mean_B*_approx"]:.1f} [{c:.1f}, {d:.1f}]'
  )


# ---- The sweep: N/G and test error vs B. ----

NUM_BASELINES = 3


def summarize(root: str, c2: float = 2.0, baselines: list[int] | None = None) -> dict:
  """N/G and final test error per B of a sweep root, the B* predicted from each baseline and the
  observed break.

  Returns {'B', 'trials', 'nsr', 'nsr_interval', 'gn', 'gn_interval', 'test_error',
  'test_error_interval' (lists, one entry per B; G/N is the trial mean of 1 / (N/G)), 'c2',
  'baselines': [{'B', 'nsr', 'nsr_interval', 'B*', 'B*_interval', 'B*_approx',
  'B*_approx_interval'}], 'predicted' / 'predicted_approx': (min, max) over the baselines of the
  exact / approximate B*, 'best_error', 'threshold' (1.2 x best), 'observed_break' (the smallest B
  over the threshold, or None), 'last_ok' (the largest B below it)}. Intervals: mean ± 1.96 SE over
  trials. `baselines`: the baseline batch sizes (default: the `NUM_BASELINES` smallest).
  """
  runs = sorted(sde.load_sweep(root), key=lambda r: r.config['train']['batch_size'])
  out = {k: [] for k in ('B', 'trials', 'nsr', 'nsr_interval', 'gn', 'gn_interval')}
  out.update(test_error=[], test_error_interval=[])
  per_batch = {}
  for run in runs:
    b = run.config['train']['batch_size']
    out['B'].append(b)
    try:
      s = lsr_summary(f'{root}/{run.name}', c2=c2)
      per_batch[b] = s
      nsr = [t['NSR'] for t in s['trials']]
    except ValueError:
      nsr = []
    for key, values in (('nsr', nsr), ('gn', [1 / x for x in nsr])):
      m, iv = mean_interval(values)
      out[key].append(m)
      out[f'{key}_interval'].append(iv)
    err = 1 - run.values['test_accuracy'][:, -1]
    m, iv = mean_interval(err)
    out['trials'].append(int(np.sum(~np.isnan(err))))
    out['test_error'].append(m)
    out['test_error_interval'].append(iv)
  chosen = sorted(per_batch)[:NUM_BASELINES] if baselines is None else sorted(baselines)
  missing = [b for b in chosen if b not in per_batch]
  if missing or not chosen:
    raise ValueError(f'no G/N in the runs of baseline B = {missing or chosen} under {root}')
  out['baselines'] = []
  for b in chosen:
    s = per_batch[b]
    out['baselines'].append(
        {
            'B': b,
            'nsr': s['mean_NSR'],
            'nsr_interval': s['interval_NSR'],
            'B*': s['mean_B*'],
            'B*_interval': s['interval_B*'],
            'B*_approx': s['mean_B*_approx'],
            'B*_approx_interval': s['interval_B*_approx'],
        }
    )
  for key, name in (('B*', 'predicted'), ('B*_approx', 'predicted_approx')):
    values = [x[key] for x in out['baselines']]
    out[name] = (min(values), max(values))
  best = float(np.nanmin(out['test_error']))
  failed = [b for b, e in zip(out['B'], out['test_error']) if not e <= FAIL_FACTOR * best]
  brk = failed[0] if failed else None
  ok = [b for b in out['B'] if brk is None or b < brk]
  out.update(
      c2=c2,
      best_error=best,
      threshold=FAIL_FACTOR * best,
      observed_break=brk,
      last_ok=ok[-1] if ok else None,
  )
  return out


def print_summary(s: dict) -> None:
  """The table per B, the B* of each baseline and the predicted interval vs the observed break."""
  print(
      f'{"B":>6} {"trials":>6} {"N/G":>8} {"95% interval":>19} {"test err":>9} {"95% interval":>17}'
  )
  for b, n, r, ri, e, ei in zip(
      s['B'], s['trials'], s['nsr'], s['nsr_interval'], s['test_error'], s['test_error_interval']
  ):
    print(
        f'{b:>6} {n:>6} {r:>8.3f} [{ri[0]:>8.3f}, {ri[1]:>8.3f}] {e:>9.4f} '
        f'[{ei[0]:.4f}, {ei[1]:.4f}]'
    )
  c2 = s['c2']
  print(f'predicted B* from each baseline (C^2 = {c2:g}; 95% intervals over trials):')
  for x in s['baselines']:
    a, b = x['B*_approx_interval']
    c, d = x['B*_interval']
    print(
        f'  B = {x["B"]:>5}: N/G = {x["nsr"]:.3f}; '
        f'C^2 B N/G = {x["B*_approx"]:.0f} [{a:.0f}, {b:.0f}];'
        f' C^2 (1 + N/G) B = {x["B*"]:.0f} [{c:.0f}, {d:.0f}]'
    )
  lo, hi = s['predicted_approx']
  elo, ehi = s['predicted']
  print(
      f'predicted interval (min, max over {len(s["baselines"])} baselines): '
      f'B* ~ C^2 B N/G in [{lo:.0f}, {hi:.0f}]; exact C^2 (1 + N/G) B in [{elo:.0f}, {ehi:.0f}]'
  )
  brk = s['observed_break']
  where = 'none (no B fails)' if brk is None else f'B = {brk} (last B within it: {s["last_ok"]})'
  print(
      f'observed break (final test error > {FAIL_FACTOR:g} x lowest = '
      f'{s["threshold"]:.4f}): {where}'
  )


def figure(s: dict):
  """The paper's layout: top G/N vs B with the threshold C^2, bottom test error vs B with the 20%
  band; the predicted interval (approximate B*, min to max over the baselines) on both."""
  fig, axes = plt.subplots(2, 1, figsize=(6, 6.4), sharex=True)
  b = np.asarray(s['B'], float)
  lo, hi = s['predicted_approx']
  elo, ehi = s['predicted']
  bases = ', '.join(str(x['B']) for x in s['baselines'])

  def err(values, intervals):
    v = np.asarray(values, float)
    iv = np.asarray(intervals, float)
    return np.nan_to_num(np.abs(np.stack([v - iv[:, 0], iv[:, 1] - v])))

  ax = axes[0]
  ax.errorbar(b, s['gn'], yerr=err(s['gn'], s['gn_interval']), fmt='o-', label='measured G/N')
  ax.axhline(s['c2'], color='r', ls=':', label=f'G/N = C² = {s["c2"]:g}')
  ax.set_yscale('log')
  ax.set_ylabel('G/N at equilibrium\n(before the decay)')
  ax = axes[1]
  e = np.asarray(s['test_error'])
  ax.errorbar(b, e, yerr=err(e, s['test_error_interval']), fmt='o-', label='final test error')
  ax.axhspan(
      s['best_error'], s['threshold'], color='g', alpha=0.15, label='within 20% of the lowest'
  )
  if s['observed_break'] is not None:
    ax.axvspan(
        s['observed_break'],
        b.max() * 1.5,
        color='r',
        alpha=0.1,
        label='LSR failed (> 1.2 x lowest)',
    )
  ax.set_ylabel('final test error')
  ax.set_xlabel('batch size B (eta proportional to B)')
  for ax in axes:
    ax.axvspan(lo, hi, color='k', alpha=0.12, label=f'B* ≈ C² B N/G: [{lo:.0f}, {hi:.0f}]')
    for x in (elo, ehi):
      ax.axvline(x, color='k', ls='--', lw=0.8)
    ax.plot([], [], 'k--', lw=0.8, label=f'C² (1+N/G) B: {elo:.0f}, {ehi:.0f}')
    ax.set_xscale('log', base=2)
    ax.set_xlim(b.min() / 1.5, b.max() * 1.5)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.suptitle(
      f'LSR break vs B* from baselines B = {bases} (Li, Malladi & Arora 2021, Fig. 3)', fontsize=9
  )
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
  p.add_argument(
      '--baselines',
      type=lambda v: [int(x) for x in v.split(',')],
      default=None,
      help=f'comma-separated baseline batch sizes (default: the {NUM_BASELINES} smallest)',
  )
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
  try:
    s = summarize(a.root, a.c2, a.baselines)
  except (OSError, ValueError) as e:
    print(f'analysis.lsr: {e}')
    return 2
  print_summary(s)
  for path in sde.save(figure(s), a.out or f'{a.root}/lsr'):
    print('wrote', path)
  return 0


if __name__ == '__main__':
  sys.exit(main())
