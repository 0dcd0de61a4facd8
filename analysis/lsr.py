"""2021 Fig. 3: where the linear scaling rule breaks, against the B* predicted from baseline runs.

    python -m svag_jax.analysis.lsr SWEEP_ROOT [--c2 2] [--baselines B1,B2,..] [--out DIR]
    python -m svag_jax.analysis.lsr --baseline WORKDIR [--window START END] [--c2 2]

For each batch size B (runs with eta proportional to B): N/G of each trial averaged over the
equilibrium window before the LR decay (`lsr_summary` below, default window) and the final test
error (after the decay), mean and 95% interval over trials (`stats.interval`). From each baseline
(default: the 3 smallest B) the prediction of Theorem 5.6 in both forms: the exact bound
B* = C^2 (1 + N/G) B and the paper's figure's approximation B* ~ C^2 B N/G; the predicted interval
is [min, max] over the baselines. The observed break (the paper's criterion) is the smallest B whose
final test error exceeds the lowest final test error by more than 20% of it. Top panel: G/N vs B
with the threshold G/N = C^2 (under the LSR N scales as 1/B, so a run at the approximate B* of a
baseline has G/N = C^2) and the predicted interval; bottom: final test error vs B with the 20%
band above the lowest error and the failed B shaded. Prints the table and draws the figure `lsr`
into SWEEP_ROOT/figures (or DIR), as PNG and PDF.

With `--baseline WORKDIR` (one run, e.g. the smallest-B point of the sweep): prints B* =
C^2 (1 + N/G) B per trial and its mean (`lsr_summary`), from G and N averaged over `--window`
(default `equilibrium_window`: the last 25% of the G/N evals before the first LR change).
"""

import os
import sys

import numpy as np

from svag_jax import theory
from svag_jax.analysis import common, stats

FAIL_FACTOR = 1.2


# ---- One baseline run: B* from its G and N. ----


def equilibrium_window(m: common.ArmMetrics) -> tuple[float, float]:
  """The default averaging window (in epochs) of a run's G/N evaluations: the last 25% of the
  evaluations that carry G/N before the first LR change (or of all of them if the LR never
  changes); diverged trials are left out."""
  live, missing = ~m.diverged, np.full(m.diverged.shape, np.nan)
  has_gn = (np.isfinite(m.values.get('N', missing)) & live).any(axis=0)
  epochs = [float(e) for e in m.epochs[has_gn]]
  if not epochs:
    raise ValueError('no metric row has G and N: run with config.metrics.gn_every > 0')
  lr = np.where(live, m.values.get('lr', missing), np.nan)
  has_lr = np.isfinite(lr).any(axis=0)
  lr = lr[np.argmax(np.isfinite(lr), axis=0), np.arange(len(m.epochs))][has_lr]  # first trial's
  changed = m.epochs[has_lr][lr != lr[0]] if lr.size else []
  if len(changed):
    epochs = [e for e in epochs if e < changed[0]] or epochs
  start = epochs[int(len(epochs) * 0.75)] if len(epochs) > 1 else epochs[0]
  return start, epochs[-1]


def lsr_summary(
    run: common.RunLike, window: tuple[float, float] | None = None, c2: float = 2.0
) -> dict:
  """B* = C^2 (1 + N/G) B per trial of a baseline run, from G and N averaged over `window`.

  N/G of a trial is (mean N) / (mean G) over its evaluations in the window that carry both (a
  ratio of means: a single Ĝ can be near 0); diverged trials are left out. Returns {'window',
  'batch_size', 'trials': [{trial, G, N, NSR, B*}], 'mean_NSR', 'mean_B*', 'interval_B*'} where
  the interval is `stats.interval` over trials (NaN for one trial).
  """
  run = common.as_run(run)
  m = run.metrics
  batch = run.config['train']['batch_size']
  window = tuple(window) if window is not None else equilibrium_window(m)
  lo, hi = window
  missing = np.full(m.diverged.shape, np.nan)
  g_values, n_values = m.values.get('G', missing), m.values.get('N', missing)
  rows = np.isfinite(g_values) & np.isfinite(n_values) & ~m.diverged
  rows &= (m.epochs >= lo) & (m.epochs <= hi)
  if not rows.any():
    raise ValueError(f'no G/N rows between epochs {lo:g} and {hi:g} in {run.path}')
  trials = []
  for t in np.flatnonzero(rows.any(axis=1)):
    g = float(np.mean(g_values[t][rows[t]]))
    n = float(np.mean(n_values[t][rows[t]]))
    nsr = n / g
    trials.append(
        {
            'trial': int(m.trials[t]),
            'G': g,
            'N': n,
            'NSR': nsr,
            'rows': int(rows[t].sum()),
            'B*': float(theory.lsr_critical_batch(nsr, batch, c2)),
            'B*_approx': float(theory.lsr_critical_batch_approx(nsr, batch, c2)),
        }
    )
  out = {'window': window, 'batch_size': batch, 'c2': c2, 'trials': trials}
  for key, name in (('NSR', 'NSR'), ('B*', 'B*'), ('B*_approx', 'B*_approx')):
    mean, lo, hi = stats.interval([t[key] for t in trials])
    out[f'mean_{name}'], out[f'interval_{name}'] = mean, (lo, hi)
  return out


def baseline_lines(workdir: str, s: dict) -> list[str]:
  """An `lsr_summary` as printed lines: one per trial and the mean B* with its interval."""
  lo, hi = s['window']
  lines = [
      f'{workdir}: baseline B = {s["batch_size"]}, C^2 = {s["c2"]:g}, '
      f'G and N averaged over epochs [{lo:g}, {hi:g}]',
      f'{"trial":>5} {"evals":>5} {"G":>11} {"N":>11} {"N/G":>9} {"B*":>9}',
  ]
  for t in s['trials']:
    lines.append(
        f'{t["trial"]:>5} {t["rows"]:>5} {t["G"]:>11.4g} {t["N"]:>11.4g} {t["NSR"]:>9.3f} '
        f'{t["B*"]:>9.1f}'
    )
  a, b = s['interval_B*']
  c, d = s['interval_B*_approx']
  lines.append(
      f'mean N/G = {s["mean_NSR"]:.3f}; B* = C^2 (1 + N/G) B = {s["mean_B*"]:.1f} '
      f'(95% interval over {len(s["trials"])} trials: [{a:.1f}, {b:.1f}]); '
      f'C^2 B N/G = {stats.format_interval(s["mean_B*_approx"], c, d, ".1f")}'
  )
  return lines


# ---- The sweep: N/G and test error vs B. ----

NUM_BASELINES = 3


def summarize(root: str | os.PathLike, c2: float = 2.0, baselines: list[int] | None = None) -> dict:
  """N/G and final test error per B of a sweep root, the B* predicted from each baseline and the
  observed break.

  Returns {'B', 'trials', 'nsr', 'nsr_interval', 'gn', 'gn_interval', 'test_error',
  'test_error_interval' (lists, one entry per B; G/N is the trial mean of 1 / (N/G)), 'c2',
  'baselines': [{'B', 'nsr', 'nsr_interval', 'B*', 'B*_interval', 'B*_approx',
  'B*_approx_interval'}], 'predicted' / 'predicted_approx': (min, max) over the baselines of the
  exact / approximate B*, 'best_error', 'threshold' (1.2 x best), 'observed_break' (the smallest B
  over the threshold, or None), 'last_ok' (the largest B below it)}. Intervals: `stats.interval`
  over trials. `baselines`: the baseline batch sizes (default: the `NUM_BASELINES` smallest).
  """
  runs = sorted(common.load_sweep(root), key=lambda r: r.config['train']['batch_size'])
  out = {k: [] for k in ('B', 'trials', 'nsr', 'nsr_interval', 'gn', 'gn_interval')}
  out.update(test_error=[], test_error_interval=[])
  per_batch = {}
  for run in runs:
    b = run.config['train']['batch_size']
    out['B'].append(b)
    try:
      s = lsr_summary(run, c2=c2)
      per_batch[b] = s
      nsr = [t['NSR'] for t in s['trials']]
    except ValueError:
      nsr = []
    for key, values in (('nsr', nsr), ('gn', [1 / x for x in nsr])):
      m, lo, hi = stats.interval(values)
      out[key].append(m)
      out[f'{key}_interval'].append((lo, hi))
    err = 1 - run.metrics.values['test_accuracy'][:, -1]
    m, lo, hi = stats.interval(err)
    out['trials'].append(int(np.sum(~np.isnan(err))))
    out['test_error'].append(m)
    out['test_error_interval'].append((lo, hi))
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


def summary(s: dict) -> list[str]:
  """The table per B, the B* of each baseline and the predicted interval vs the observed break."""
  lines = [
      f'{"B":>6} {"trials":>6} {"N/G":>8} {"95% interval":>19} {"test err":>9} {"95% interval":>17}'
  ]
  for b, n, r, ri, e, ei in zip(
      s['B'], s['trials'], s['nsr'], s['nsr_interval'], s['test_error'], s['test_error_interval']
  ):
    lines.append(
        f'{b:>6} {n:>6} {stats.format_interval(r, *ri, ">8.3f")} {e:>9.4f} '
        f'[{ei[0]:.4f}, {ei[1]:.4f}]'
    )
  c2 = s['c2']
  lines.append(f'predicted B* from each baseline (C^2 = {c2:g}; 95% intervals over trials):')
  for x in s['baselines']:
    approx = stats.format_interval(x['B*_approx'], *x['B*_approx_interval'], '.0f')
    exact = stats.format_interval(x['B*'], *x['B*_interval'], '.0f')
    lines.append(
        f'  B = {x["B"]:>5}: N/G = {x["nsr"]:.3f}; C^2 B N/G = {approx}; C^2 (1 + N/G) B = {exact}'
    )
  lo, hi = s['predicted_approx']
  elo, ehi = s['predicted']
  brk = s['observed_break']
  where = 'none (no B fails)' if brk is None else f'B = {brk} (last B within it: {s["last_ok"]})'
  lines += [
      f'predicted interval (min, max over {len(s["baselines"])} baselines): '
      f'B* ~ C^2 B N/G in [{lo:.0f}, {hi:.0f}]; exact C^2 (1 + N/G) B in [{elo:.0f}, {ehi:.0f}]',
      f'observed break (final test error > {FAIL_FACTOR:g} x lowest = '
      f'{s["threshold"]:.4f}): {where}',
  ]
  return lines


def plot(s: dict) -> np.ndarray:
  """The paper's layout: top G/N vs B with the threshold C^2, bottom test error vs B with the 20%
  band; the predicted interval (approximate B*, min to max over the baselines) on both."""
  axes = common.new_axes(2, 1, panel_size=(6.0, 3.2), sharex=True, layout=None)
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
  fig = axes[0].figure
  fig.suptitle(
      f'LSR break vs B* from baselines B = {bases} (Li, Malladi & Arora 2021, Fig. 3).\n'
      "G/N is drawn against C²: where a baseline's G/N at κB would exceed C², the approximate "
      'Theorem 5.6 says LSR fails (B* ≈ C² B N/G).',
      fontsize=9,
  )
  fig.tight_layout()
  return axes


def main(argv: list[str] | None = None) -> int:
  parser = common.figure_parser('lsr', __doc__, source='root', required=False)
  parser.add_argument('--baseline', metavar='WORKDIR', help='print B* of one baseline run instead')
  parser.add_argument(
      '--window',
      nargs=2,
      type=float,
      metavar=('START', 'END'),
      help='--baseline: epochs over which G and N are averaged (default: the last 25%% '
      'of the G/N evals before the first LR change)',
  )
  parser.add_argument('--c2', type=float, default=2.0, help="C^2 (default 2, the paper's)")
  parser.add_argument(
      '--baselines',
      type=lambda v: [int(x) for x in v.split(',')],
      default=None,
      help=f'comma-separated baseline batch sizes (default: the {NUM_BASELINES} smallest)',
  )
  args = parser.parse_args(argv)
  if args.baseline is not None:
    try:
      print(
          '\n'.join(baseline_lines(args.baseline, lsr_summary(args.baseline, args.window, args.c2)))
      )
    except (OSError, ValueError, KeyError) as e:
      print(f'analysis.lsr: {e}', file=sys.stderr)
      return 2
    return 0
  if args.root is None:
    parser.error('give a SWEEP_ROOT, or --baseline WORKDIR')

  def make():
    s = summarize(args.root, args.c2, args.baselines)
    return plot(s), summary(s)

  return common.run_figure(args, make)


if __name__ == '__main__':
  sys.exit(main())
