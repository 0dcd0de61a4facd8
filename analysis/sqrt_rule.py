"""2022 paper, Sec. 5: final test error against B under the none / linear / square-root rules, the
break of each rule, and the noise scale of the base runs.

    python -m svag_jax.analysis.sqrt_rule SWEEP_ROOT [--c2 2] [--out DIR]

Reads a `configs/sqrt_rule.py` sweep (points `<model>_<rule>_b<B>`, the base point
`<model>_base_b<B0>` shared by every rule). Per model and rule: the final test error (after the
decay) per B, mean and 95% interval over trials (`stats.interval`), and the rule's break with the
2021 paper's criterion: the smallest B whose error exceeds 1.2 x the lowest error of the model (any
rule, any B); the rule holds up to the B before it. Noise scale: N/G per trial averaged over the
equilibrium window before the decay (`analysis.lsr.lsr_summary`) at the base and at the sqrt
rule's points that estimate it. The 2022 paper's SDEs assume that the noise dominates the
gradient's second moment (v ~ diag Sigma_B, dropping grad f^2): under the sqrt rule the weights'
distribution is B's, so N/G falls as 1/B, and N/G reaches 1 at B_1 = B N/G of each baseline (a
reading derived here from that assumption, not a bound of the paper); the 2021 LSR bound C^2 (1 +
N/G) B of SGD is printed beside it for comparison. Figure `sqrt_rule` (one error panel per
model, and N/G vs B) into SWEEP_ROOT/figures (or DIR), as PNG and PDF.
"""

import re
import sys

import numpy as np

from svag_jax import theory
from svag_jax.analysis import common, lsr, stats

FAIL_FACTOR = lsr.FAIL_FACTOR
RULES = ('none', 'linear', 'sqrt')
_NAME = re.compile(r'^(?P<model>\w+?)_(?P<rule>base|none|linear|sqrt)_b(?P<batch>\d+)$')
COLORS = {'none': 'tab:grey', 'linear': 'tab:red', 'sqrt': 'tab:blue'}
TITLES = {'adam': 'Adam + L2', 'adamw': 'AdamW', 'rmsprop': 'RMSprop + L2', 'sgd': 'SGD'}
MODEL_TITLES = {'si': 'SI MLP (BatchNorm)', 'plain': 'plain MLP (no norm)'}


def parse(name: str) -> tuple[str, str, int] | None:
  """(model, rule or 'base', B) of a sweep point's name, or None for another name."""
  m = _NAME.match(name)
  return (m['model'], m['rule'], int(m['batch'])) if m else None


def _interval(values) -> tuple[float, float, float]:
  return stats.interval(np.asarray(values, float))


def summarize(runs: list[common.Run], c2: float = 2.0) -> dict:
  """{model: {'rules': {rule: {'B', 'error', 'interval', 'trials'}} (the base point in every rule),
  'best', 'threshold', 'breaks': {rule: (break B or None, last B within)}, 'noise': [{'B', 'nsr',
  'nsr_interval', 'B1', 'B1_interval', 'B*', 'B*_interval'}]}, 'optimizer': str}."""
  out: dict = {}
  optimizer = None
  by_model: dict[str, dict] = {}
  for run in runs:
    parsed = parse(run.name)
    if parsed is None:
      continue
    model, rule, b = parsed
    optimizer = run.config.get('optim', {}).get('optimizer', 'sgd')
    by_model.setdefault(model, {})[(rule, b)] = run
  for model, points in by_model.items():
    base = [(b, r) for (rule, b), r in points.items() if rule == 'base']
    rules = {}
    for rule in RULES:
      entries = sorted([(b, r) for (ru, b), r in points.items() if ru == rule] + base)
      errs = [1 - r.metrics.values['test_accuracy'][:, -1] for _, r in entries]
      ivs = [_interval(e) for e in errs]
      rules[rule] = {
          'B': [b for b, _ in entries],
          'error': [m for m, _, _ in ivs],
          'interval': [(lo, hi) for _, lo, hi in ivs],
          'trials': [int(np.sum(np.isfinite(e))) for e in errs],
      }
    best = float(np.nanmin([e for r in rules.values() for e in r['error']]))
    threshold = FAIL_FACTOR * best
    breaks = {}
    for rule, r in rules.items():
      failed = [b for b, e in zip(r['B'], r['error']) if not e <= threshold]
      brk = failed[0] if failed else None
      ok = [b for b in r['B'] if brk is None or b < brk]
      breaks[rule] = (brk, ok[-1] if ok else None)
    noise = []
    for (rule, b), run in sorted(points.items(), key=lambda kv: kv[0][1]):
      if rule not in ('base', 'sqrt'):
        continue
      try:
        s = lsr.lsr_summary(run, c2=c2)
      except ValueError:
        continue
      nsr = [t['NSR'] for t in s['trials']]
      m, lo, hi = _interval(nsr)
      b1 = _interval([b * x for x in nsr])
      bstar = _interval([theory.lsr_critical_batch(x, b, c2) for x in nsr])
      noise.append(
          {
              'B': b,
              'nsr': m,
              'nsr_interval': (lo, hi),
              'B1': b1[0],
              'B1_interval': b1[1:],
              'B*': bstar[0],
              'B*_interval': bstar[1:],
          }
      )
    out[model] = {
        'rules': rules,
        'best': best,
        'threshold': threshold,
        'breaks': breaks,
        'noise': noise,
    }
  if not out:
    raise ValueError('no point named <model>_<rule>_b<B>: is it a sqrt_rule sweep root?')
  out['optimizer'] = optimizer
  out['c2'] = c2
  return out


def models(s: dict) -> list[str]:
  return [k for k in s if k not in ('optimizer', 'c2')]


def summary(s: dict) -> list[str]:
  """The error table per model and rule, each rule's break, and the noise-scale reading."""
  lines = [f'optimizer: {s["optimizer"]}; final test error, mean [95% interval over trials]']
  for model in models(s):
    m = s[model]
    lines.append(
        f'{model}: lowest error {m["best"]:.4f}; a rule fails where the error > '
        f'{FAIL_FACTOR:g} x lowest = {m["threshold"]:.4f}'
    )
    for rule in RULES:
      r = m['rules'][rule]
      cells = ', '.join(
          f'{b}: {stats.format_interval(e, *iv, ".4f")}'
          for b, e, iv in zip(r['B'], r['error'], r['interval'])
      )
      brk, ok = m['breaks'][rule]
      verdict = 'holds at every B' if brk is None else f'fails at B = {brk} (holds to {ok})'
      lines.append(f'  {rule:>6}: {verdict}; {cells}')
    for x in m['noise']:
      lines.append(
          f'  N/G at B = {x["B"]}: {stats.format_interval(x["nsr"], *x["nsr_interval"], ".3f")}; '
          f'N/G = 1 at B N/G = {stats.format_interval(x["B1"], *x["B1_interval"], ".0f")}; '
          f'(SGD LSR bound C^2 (1 + N/G) B = '
          f'{stats.format_interval(x["B*"], *x["B*_interval"], ".0f")})'
      )
  return lines


def plot(s: dict) -> np.ndarray:
  """One panel per model (final test error vs B per rule, the 20% band), and N/G vs B."""
  names = models(s)
  axes = common.new_axes(len(names) + 1, len(names) + 1, panel_size=(4.6, 3.6), layout=None)
  for ax, model in zip(axes, names):
    m = s[model]
    for rule in RULES:
      r = m['rules'][rule]
      b, e, iv = np.asarray(r['B'], float), np.asarray(r['error']), np.asarray(r['interval'])
      yerr = np.nan_to_num(np.abs(np.stack([e - iv[:, 0], iv[:, 1] - e])))
      brk, ok = m['breaks'][rule]
      tag = 'holds throughout' if brk is None else f'fails at B = {brk}'
      ax.errorbar(b, e, yerr=yerr, fmt='o-', color=COLORS[rule], label=f'{rule} ({tag})')
    ax.axhspan(m['best'], m['threshold'], color='g', alpha=0.15, label='within 20% of the lowest')
    ax.set_xscale('log', base=2)
    ax.set_yscale('log')
    ax.set_xlabel('batch size B')
    ax.set_ylabel('final test error')
    ax.set_title(f'{TITLES.get(s["optimizer"], s["optimizer"])}, {MODEL_TITLES.get(model, model)}')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  ax = axes[-1]
  for i, model in enumerate(names):
    noise, color = s[model]['noise'], f'C{i}'
    if not noise:
      continue
    b = np.asarray([x['B'] for x in noise], float)
    v = np.asarray([x['nsr'] for x in noise])
    iv = np.asarray([x['nsr_interval'] for x in noise])
    yerr = np.nan_to_num(np.abs(np.stack([v - iv[:, 0], iv[:, 1] - v])))
    ax.errorbar(b, v, yerr=yerr, fmt='o', color=color, label=f'{model}: measured')
    grid = np.geomspace(b.min(), 4000, 20)
    ax.plot(grid, v[-1] * b[-1] / grid, ls=':', color=color, label=f'{model}: N/G x B fixed')
    brk, ok = s[model]['breaks']['sqrt']
    if brk is not None:
      ax.axvspan(
          ok, brk, color=color, alpha=0.12, label=f'{model}: sqrt holds at {ok}, fails at {brk}'
      )
  ax.axhline(1.0, color='r', lw=1, label='N/G = 1')
  ax.set_xscale('log', base=2)
  ax.set_yscale('log')
  ax.set_xlabel('batch size B (sqrt rule)')
  ax.set_ylabel('N/G before the decay')
  ax.set_title('noise scale of the sqrt-rule runs')
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  fig = axes[0].figure
  fig.suptitle('square-root scaling rule and its break (Malladi et al. 2022, Sec. 5)', fontsize=10)
  fig.tight_layout()
  return axes


def main(argv: list[str] | None = None) -> int:
  parser = common.figure_parser('sqrt_rule', __doc__, source='root')
  parser.add_argument('--c2', type=float, default=2.0, help='C^2 of the printed SGD LSR bound')
  args = parser.parse_args(argv)

  def make():
    s = summarize(common.load_sweep(args.root), args.c2)
    return plot(s), summary(s)

  return common.run_figure(args, make)


if __name__ == '__main__':
  sys.exit(main())
