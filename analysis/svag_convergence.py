"""2021 Fig. 4: SGD and SVAG(l) against effective steps, and the equilibrium values against l; the
same for an adaptive optimizer and its SVAG (2022, `configs/svag_adam.py`).

    python -m svag_jax.analysis.svag_convergence SWEEP_ROOT [--also ROOT ...] [--out DIR] [--c2 2]

The sweep's points are SGD and SVAG with several l at one or more batch sizes (configs/
svag_convergence.py). For each batch size and two phases, every point's value per trial is

- the equilibrium phase: the mean over the evaluations of the last mixing time 1 / (eta lambda)
  effective steps before the first LR decay (not a single noisy evaluation), and
- the end: the last evaluation,

and over the trials its mean with the 95% interval (`stats.interval`: mean ± t SE). Printed per
batch size and phase, for test accuracy (the paper's axis), train loss and ||w||^2:

- convergence in l: acc_lmax - acc_lmax/2 with its interval (Welch, `stats.difference_interval`);
- the SDE limit: a + b / l fitted over the SVAG l (Theorem 4.3's O(1/l) weak error), a with its
  interval (bootstrap over each point's trials), and SGD - a;
- SGD on the limit: acc_SGD - acc_lmax with its interval, and the train-loss ratio SGD / lmax;
- SGD's N/G in the equilibrium window against 1 / (C^2 - 1), below which Theorem 5.2 says SGD's
  and the SDE's equilibria are not C-close;
- Definition 5.1's three ratios SGD / lmax in the equilibrium window (R = ||w||^2, G and N, all
  measured at the training batch size, so eta N / N_bar is N's ratio), the C they make the two
  equilibria close for, and the smallest C Theorem 5.2 allows at SGD's N/G, sqrt(1 + G/N).

The figure `svag_convergence` (SWEEP_ROOT/figures, or DIR) has one row per batch size: test
accuracy, train loss and N/G against effective steps (mean and 95% band; the log panels: geometric
mean), then the equilibrium test accuracy and ||w||^2 against 1/l with the a + b/l fit (SGD drawn
at 1/l = 1).

For an adaptive optimizer (config.optim.optimizer) the run without SVAG takes SGD's place under its
own name (Adam, RMSprop, AdamW); N/G's threshold and the smallest C (Theorem 5.2 is about SGD)
are not applied, Definition 5.1's ratios are printed for it as for SGD. Its
equilibrium window: for AdamW, whose intrinsic LR is eta lambda as for SGD (`svag_jax.theory`), the
same 1 / (eta lambda) steps; for RMSprop and Adam with coupled L2 the intrinsic LR depends on the
preconditioner (no closed form from the config), so the last quarter of the phase before the decay.
"""

import dataclasses
import sys

import numpy as np

from svag_jax import theory
from svag_jax.analysis import common, plots, stats

METRICS = (('test_accuracy', 'test accuracy'), ('train_loss', 'train loss'), ('w_norm_sq', '‖w‖²'))
LOG_METRICS = ('train_loss', 'NSR')  # drawn on log axes: geometric mean, band from log values
# Definition 5.1 (C-closeness): R, G and N of SGD against the SDE's (here: the largest l)
CLOSENESS = ('w_norm_sq', 'G', 'N')
BOOTSTRAP = 2000  # resamples of the limit fit
NAMES = {'sgd': 'SGD', 'rmsprop': 'RMSprop', 'adam': 'Adam', 'adamw': 'AdamW'}
# Adam / RMSprop with coupled L2: the equilibrium window is this fraction of the pre-decay phase.
COUPLED_WINDOW = 0.25


def optimizer_name(run: common.Run) -> str:
  """The run's optimizer as printed: SGD, RMSprop, Adam or AdamW."""
  return NAMES[run.config['optim'].get('optimizer') or 'sgd']


def svag_l(run: common.Run) -> int | None:
  """SVAG's l, or None for the plain optimizer (SGD, or the adaptive one)."""
  o = run.config['optim']
  return int(o.get('svag_l', 1)) if o.get('oracle', 'sgd') == 'svag' else None


def label(run: common.Run) -> str:
  l = svag_l(run)
  return optimizer_name(run) if l is None else f'SVAG l={l}'


def batch_size(run: common.Run) -> int:
  return int(run.config['train']['batch_size'])


def decay_epoch(run: common.Run) -> float | None:
  """The epoch of the first LR decay of the run's (first arm's) schedule (None without one)."""
  epochs = next(iter(common.schedule_changes(run.config, ('lr_schedule',)).values()))
  return epochs[0] if epochs else None


def mixing_epochs(run: common.Run) -> float:
  """One mixing time 1 / (eta lambda) of the equilibrium phase, in epochs (SGD time)."""
  arm = next(iter(run.config['arms'].values()))
  steps_per_epoch = run.metrics.steps[-1] / run.metrics.epochs[-1] / (svag_l(run) or 1)
  return 1.0 / (arm['lr'] * arm['wd']) / steps_per_epoch


def phase_windows(run: common.Run) -> dict[str, np.ndarray]:
  """{phase: bool [E]}: 'equilibrium' = the evaluations in the last mixing time before (and at)
  the first decay, 'end' = the last evaluation."""
  epochs = run.metrics.epochs
  windows = {}
  decay = decay_epoch(run)
  if decay is not None and epochs[0] <= decay:
    if optimizer_name(run) in ('SGD', 'AdamW'):
      start = decay - mixing_epochs(run)
    else:
      start = (1 - COUPLED_WINDOW) * decay
    windows['equilibrium'] = (epochs <= decay + 1e-9) & (epochs >= start - 1e-9)
  windows['end'] = np.arange(len(epochs)) == len(epochs) - 1
  return windows


def per_trial(run: common.Run, metric: str, window: np.ndarray) -> np.ndarray:
  """float [T]: each trial's mean of `metric` over the evaluations in `window` (NaN if none)."""
  values = run.metrics.values.get(metric)
  if values is None:
    return np.full(len(run.metrics.trials), np.nan)
  return stats.nanmean(values[:, window], axis=1)


@dataclasses.dataclass(frozen=True)
class LimitFit:
  """y(l) = a + b / l over the SVAG points: a (the l -> infinity limit) with its interval."""

  a: float
  a_low: float
  a_high: float
  b: float


def fit_limit(ls: list[int], samples: list[np.ndarray], seed: int = 0) -> LimitFit | None:
  """Least squares of the trial means on (1, 1/l); the interval of a from `BOOTSTRAP` resamples of
  each point's trials (percentiles at the `stats.LEVEL` level). None with fewer than two l."""
  samples = [np.asarray(s, float)[np.isfinite(s)] for s in samples]
  keep = [i for i, s in enumerate(samples) if s.size]
  if len({ls[i] for i in keep}) < 2:
    return None
  x = np.stack([np.ones(len(keep)), 1.0 / np.asarray([ls[i] for i in keep], float)], axis=1)
  pinv = np.linalg.pinv(x)
  a, b = pinv @ np.array([samples[i].mean() for i in keep])
  rng = np.random.default_rng(seed)
  means = np.stack(
      [rng.choice(samples[i], (BOOTSTRAP, samples[i].size)).mean(axis=1) for i in keep], axis=1
  )
  boot = means @ pinv[0]
  tail = 50 * (1 - stats.LEVEL)
  low, high = np.percentile(boot, [tail, 100 - tail])
  return LimitFit(float(a), float(low), float(high), float(b))


def _logged(run: common.Run, metric: str) -> bool:
  return bool(np.isfinite(run.metrics.values.get(metric, np.nan)).any())


def by_batch_size(runs: list[common.Run]) -> dict[int, list[common.Run]]:
  """The runs grouped by batch size (ascending), SGD first, then SVAG by l."""
  groups: dict[int, list[common.Run]] = {}
  for run in runs:
    groups.setdefault(batch_size(run), []).append(run)
  return {
      b: sorted(rs, key=lambda r: -1 if svag_l(r) is None else svag_l(r))
      for b, rs in sorted(groups.items())
  }


def summarize(runs: list[common.Run], c2: float = 2.0) -> dict:
  """Per batch size and phase, the numbers of the module docstring.

  Returns {'threshold': 1 / (C^2 - 1), B: {'optimizer': the plain run's name (SGD, Adam, ...),
  'nsr': its N/G interval in the equilibrium window (or None), 'sde_fails': bool (SGD only) or
  None, 'phases': {phase: {metric: {'points': {label: per-trial values}, 'l_step': (l, 2l,
  difference interval) or None, 'sgd_gap': (lmax, difference interval) or None, 'ratio': plain /
  lmax mean ratio or None, 'limit': LimitFit or None}}}}}.
  """
  out = {'threshold': theory.sde_nsr_threshold(c2)}
  for b, group in by_batch_size(runs).items():
    svag = [r for r in group if svag_l(r) is not None]
    sgd = next((r for r in group if svag_l(r) is None), None)
    ls = [svag_l(r) for r in svag]
    phases = {}
    for phase in phase_windows(group[0]):
      phases[phase] = {}
      for metric, _ in METRICS:
        points = {label(r): per_trial(r, metric, phase_windows(r)[phase]) for r in group}
        entry = {'points': points, 'l_step': None, 'sgd_gap': None, 'ratio': None, 'limit': None}
        if len(ls) >= 2 and ls[-1] == 2 * ls[-2]:
          entry['l_step'] = (
              ls[-2],
              ls[-1],
              stats.difference_interval(points[label(svag[-1])], points[label(svag[-2])]),
          )
        if sgd is not None and svag:
          top, base = points[label(svag[-1])], points[label(sgd)]
          entry['sgd_gap'] = (ls[-1], stats.difference_interval(base, top))
          entry['ratio'] = float(np.nanmean(base) / np.nanmean(top))
        entry['limit'] = fit_limit(ls, [points[label(r)] for r in svag])
        phases[phase][metric] = entry
    nsr = None
    if sgd is not None and 'equilibrium' in phases:
      values = per_trial(sgd, 'NSR', phase_windows(sgd)['equilibrium'])
      if np.isfinite(values).sum() > 1:
        nsr = stats.interval(values)
    name = optimizer_name(group[0])
    applies = name == 'SGD'  # Theorem 5.2 is about SGD
    closeness = None
    logged = sgd is not None and svag and all(_logged(sgd, m) for m in CLOSENESS)
    if logged and 'equilibrium' in phases:
      ratios = {
          m: float(
              np.nanmean(per_trial(sgd, m, phase_windows(sgd)['equilibrium']))
              / np.nanmean(per_trial(svag[-1], m, phase_windows(svag[-1])['equilibrium']))
          )
          for m in CLOSENESS
      }
      if all(np.isfinite(list(ratios.values()))):
        closeness = {
            'l': ls[-1],
            'ratios': ratios,
            'c': max(max(r, 1 / r) for r in ratios.values()),
        }
    out[b] = {
        'phases': phases,
        'closeness': closeness,
        'nsr': nsr,
        'sde_fails': (
            None if nsr is None or not applies else bool(theory.sde_approximation_fails(nsr[0], c2))
        ),
        'optimizer': name,
    }
  return out


def _plot_against_l(ax, group: list[common.Run], entry: dict, name: str) -> None:
  """The equilibrium values of `entry` against 1/l (SGD at 1/l = 1) with the a + b/l fit."""
  ls = [svag_l(r) or 1 for r in group]
  samples = [entry['points'][label(r)] for r in group]
  is_sgd = [svag_l(r) is None for r in group]
  for sgd_point in (False, True):
    idx = [i for i, s in enumerate(is_sgd) if s == sgd_point]
    if idx:
      plain = dict(fmt='s', color='k', label=optimizer_name(group[0]))
      style = plain if sgd_point else dict(fmt='o', label='SVAG')
      plots.plot_intervals(
          ax, 1.0 / np.array([ls[i] for i in idx]), [samples[i] for i in idx], **style
      )
  fit = entry['limit']
  if fit is not None:
    x = np.linspace(0, 1, 50)
    ax.plot(x, fit.a + fit.b * x, color='C1', lw=1, label='a + b/l')
    ax.errorbar(
        [0],
        [fit.a],
        yerr=[[fit.a - fit.a_low], [fit.a_high - fit.a]],
        fmt='D',
        color='C1',
        capsize=3,
        label='limit a (95%)',
    )
  ax.set_xlabel('1 / l')
  ax.set_title(f'equilibrium {name} vs 1/l')
  ax.grid(alpha=0.3)


def plot(runs: list[common.Run], c2: float = 2.0) -> np.ndarray:
  """One row per batch size: test accuracy, train loss and N/G vs effective steps (mean and 95%
  bands; log panels: geometric mean), SGD dashed black; equilibrium accuracy and ||w||^2 vs 1/l."""
  groups = by_batch_size(runs)
  summary_ = summarize(runs, c2)
  curves = [('test_accuracy', 'test accuracy'), ('train_loss', 'train loss'), ('NSR', 'N/G')]
  cols = len(curves) + 2
  axes = common.new_axes(len(groups) * cols, cols, panel_size=(4.0, 3.3), layout=None)
  for row, (b, group) in zip(axes.reshape(len(groups), cols), groups.items()):
    for run in group:
      style = dict(ls='--', color='k', zorder=5) if svag_l(run) is None else {}
      for ax, (metric, _) in zip(row, curves):
        if _logged(run, metric):
          x, v = run.metrics.effective_steps, run.metrics.values[metric]
          keep = np.isfinite(v).any(axis=0)
          plots.plot_mean_interval(
              ax, x[keep], v[:, keep], metric in LOG_METRICS, label=label(run), **style
          )
    decay = decay_epoch(group[0])
    nsr = summary_[b]['nsr']
    for ax, (metric, name) in zip(row, curves):
      if decay is not None:
        m = group[0].metrics
        spe = m.steps[-1] / m.epochs[-1] / (svag_l(group[0]) or 1)
        ax.axvline(decay * spe, color='grey', lw=0.8, ls=':')
      ax.set_title(f'B = {b}: {name}' + (' (geometric mean)' if metric in LOG_METRICS else ''))
      ax.set_xlabel('effective steps (steps / l)')
      ax.grid(alpha=0.3)
      if metric in LOG_METRICS:
        ax.set_yscale('log')
      if metric == 'NSR':
        name = summary_[b]['optimizer']
        if name == 'SGD':  # Theorem 5.2 is about SGD
          ax.axhline(summary_['threshold'], color='r', lw=1, label=f'1/(C²−1), C² = {c2:g}')
        if nsr is not None:
          ax.set_title(f'B = {b}: N/G ({name} {nsr[0]:.2g} at equilibrium)')
        if not any(_logged(r, 'NSR') for r in group):  # metrics.gn_every = 0
          ax.set_yscale('linear')
          ax.text(0.5, 0.5, 'G/N not logged', transform=ax.transAxes, ha='center')
    phases = summary_[b]['phases']
    if 'equilibrium' in phases:
      _plot_against_l(row[-2], group, phases['equilibrium']['test_accuracy'], 'test accuracy')
      _plot_against_l(row[-1], group, phases['equilibrium']['w_norm_sq'], '‖w‖²')
    row[0].legend(fontsize=7)
    row[2].legend(fontsize=7)
    row[-2].legend(fontsize=7)
  fig = axes[0].figure
  name = optimizer_name(runs[0])
  fig.suptitle(
      (
          'SGD and SVAG(l) vs effective steps (mean, 95% band); equilibrium values vs 1/l with '
          'the a + b/l fit (2021 Fig. 4).\nN/G is drawn against 1/(C²−1): below it Theorem 5.2 '
          'says SGD and the SDE are not C-close.'
      )
      if name == 'SGD'
      else (
          f'{name} and SVAG-{name}(l) vs effective steps (mean, 95% band); equilibrium values vs '
          f'1/l with the a + b/l fit.\nSVAG-{name} converges in l; {name} on or off its limit '
          '(Malladi et al. 2022).'
      ),
      fontsize=9,
  )
  fig.tight_layout()
  return axes


def _fmt(iv, spec='+.4f') -> str:
  return stats.format_interval(*iv, spec)


def summary(runs: list[common.Run], c2: float = 2.0) -> list[str]:
  """The printed numbers of `summarize`, per batch size and phase."""
  s = summarize(runs, c2)
  lines = []
  for b, entry in s.items():
    if b == 'threshold':
      continue
    lines.append(f'B = {b}')
    for phase, metrics in entry['phases'].items():
      lines.append(f'  {phase}:')
      for metric, name in METRICS:
        e = metrics[metric]
        points = ', '.join(
            f'{k} {stats.fmt_interval(v, 4)}'
            for k, v in e['points'].items()
            if np.isfinite(v).any()
        )
        lines.append(f'    {name}: {points}')
        if e['l_step']:
          l, l2, d = e['l_step']
          lines.append(f'      {name}_{l2} - {name}_{l} = {_fmt(d)}')
        if e['limit']:
          f = e['limit']
          sgd = e['points'].get(entry['optimizer'])
          gap = '' if sgd is None else f'; {entry["optimizer"]} - a = {np.nanmean(sgd) - f.a:+.4f}'
          a = _fmt((f.a, f.a_low, f.a_high), '.4f')
          lines.append(f'      limit a + b/l: a = {a}, b = {f.b:+.4f}{gap}')
        if e['sgd_gap']:
          lmax, d = e['sgd_gap']
          n = entry['optimizer']
          lines.append(f'      {n} - l={lmax}: {_fmt(d)} (ratio {n} / l={lmax}: {e["ratio"]:.3f})')
    if entry['nsr'] is not None and entry['sde_fails'] is None:
      lines.append(
          f'  {entry["optimizer"]} N/G in the equilibrium window {_fmt(entry["nsr"], ".3g")}'
      )
    elif entry['nsr'] is not None:
      verdict = 'below: the SDE approximation must fail' if entry['sde_fails'] else 'above'
      lines.append(
          f'  SGD N/G in the equilibrium window {_fmt(entry["nsr"], ".3g")}; threshold '
          f'1/(C^2 - 1) = {s["threshold"]:g}: {verdict}'
      )
    if entry['closeness'] is not None:
      c = entry['closeness']
      ratios = ', '.join(f'{m} {r:.3g}' for m, r in c['ratios'].items())
      n = entry['optimizer']
      line = f'  C-closeness (Def. 5.1), {n} / l={c["l"]} in the equilibrium window: {ratios} -> '
      line += f'C = {c["c"]:.3g}'
      if n == 'SGD':  # Theorem 5.2 is about SGD
        bound = '' if entry['nsr'] is None else f'{theory.min_closeness(entry["nsr"][0]):.3g}'
        line += f"; the smallest C Theorem 5.2 allows at SGD's N/G, sqrt(1 + G/N): {bound}"
      lines.append(line)
  return lines


def main(argv=None) -> int:
  parser = common.figure_parser('svag_convergence', __doc__, source='root')
  parser.add_argument('--c2', type=float, default=2.0, help="Theorem 5.2's C^2 (the paper: 2)")
  parser.add_argument(
      '--also',
      nargs='*',
      default=[],
      help='more sweep roots whose points join (e.g. the :cpu_large_batch variant)',
  )
  args = parser.parse_args(argv)

  def make():
    runs = [r for root in (args.root, *args.also) for r in common.load_sweep(root)]
    return plot(runs, args.c2), summary(runs, args.c2)

  return common.run_figure(args, make)


if __name__ == '__main__':
  sys.exit(main())
