"""What every analysis shares: the one loader of a run record, the figure style, the command line.

Every module of analysis/ has the same shape. It reads the run record only through
`svag_jax.record` (the reader; never `svag_jax.workdir`, the writer) and the loader below
(`load_run`, `load_sweep`: per-arm arrays [trials, evaluations] indexed by step and by epoch),
computes with `analysis/stats.py` and `svag_jax/theory.py`, draws into `new_axes` (a matplotlib
Figure on the Agg canvas: no pyplot state, so it works the same from the command line, a test or
a notebook; `analysis/plots.py` draws the statistics) and its `main` is `figure_parser` +
`run_figure`:

    def main(argv=None) -> int:
      args = common.figure_parser('NAME', __doc__).parse_args(argv)

      def make():
        run = common.load_run(args.workdir)
        return plot(run), summary(run)  # the axes (or {figure name: axes}) and printed lines

      return common.run_figure(args, make)

tests/test_analysis_shape.py holds every module to it. Nothing in analysis/ trains.
"""

import argparse
import dataclasses
import json
import math
import os
import pathlib
import sys
import warnings
from collections.abc import Callable, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from svag_jax import record

# ---- The loader: a run record as per-arm arrays. ----


@dataclasses.dataclass(frozen=True)
class ArmMetrics:
  """The metric rows of one arm as arrays, one row per trial and one column per evaluation.

  Attributes:
    trials: int [T], the global trial index of each row of the arrays (the row of this trial in
      the predictions and params files).
    epochs: float [E], the evaluation epochs, increasing.
    steps: int [E], the optimizer step of each evaluation.
    effective_steps: float [E], steps / SVAG's l (the steps themselves without SVAG).
    values: {metric name: float64 [T, E]}; NaN where a trial had diverged (null in the file), was
      not evaluated at that epoch, or the metric was not computed there (G/N between estimates).
    diverged: bool [T, E], whether the trial had diverged by that evaluation.
  """

  trials: np.ndarray
  epochs: np.ndarray
  steps: np.ndarray
  effective_steps: np.ndarray
  values: dict[str, np.ndarray]
  diverged: np.ndarray

  def column(self, epoch: float) -> int:
    """The index of the evaluation nearest to `epoch`."""
    return int(np.argmin(np.abs(self.epochs - epoch)))

  def at_epoch(self, name: str, epoch: float) -> np.ndarray:
    """float [T]: metric `name` at the evaluation nearest to `epoch` (NaN for diverged trials)."""
    return self.values[name][:, self.column(epoch)]

  def diverged_at(self, epoch: float) -> np.ndarray:
    """bool [T]: the trials that had diverged by the evaluation nearest to `epoch`."""
    return self.diverged[:, self.column(epoch)]

  def constant(self, name: str, col: int = 0) -> float:
    """The median over trials of metric `name` at evaluation `col` (a per-arm constant: lr, wd,
    intrinsic_lr, ...)."""
    with warnings.catch_warnings():
      warnings.simplefilter('ignore', RuntimeWarning)
      return float(np.nanmedian(self.values[name][:, col]))

  def change_step(self) -> float | None:
    """The (effective) step of the arm's first LR or WD change: the first evaluation whose lr or
    wd differs from the first one's (rows carry the values the next step uses); None if they
    never change."""
    with warnings.catch_warnings():
      warnings.simplefilter('ignore', RuntimeWarning)
      lr, wd = np.nanmedian(self.values['lr'], 0), np.nanmedian(self.values['wd'], 0)
    changed = ~np.isclose(lr, lr[0], rtol=1e-6) | ~np.isclose(wd, wd[0], rtol=1e-6, atol=0)
    idx = np.flatnonzero(changed)
    return float(self.effective_steps[idx[0]]) if idx.size else None


_NOT_METRICS = ('step', 'effective_step', 'svag_l', 'epoch', 'trial', 'arm', 'diverged')


def load_metrics(workdir: str | os.PathLike) -> dict[str, ArmMetrics]:
  """Metrics of every arm of a workdir (`record.read_metrics`), in the order of the trials.

  Returns:
    {arm name: ArmMetrics}; the first key is the arm of trial 0 (the reference arm).

  Raises:
    FileNotFoundError: no metrics.jsonl; ValueError: it has no rows yet.
  """
  rows = record.read_metrics(workdir)
  if not rows:
    raise ValueError(f'{workdir}/metrics.jsonl has no rows yet: nothing to analyse.')
  names = list(dict.fromkeys(k for r in rows for k in r if k not in _NOT_METRICS))
  by_arm: dict[str, list[dict]] = {}
  for row in sorted(rows, key=lambda r: r['trial']):
    by_arm.setdefault(row['arm'], []).append(row)
  result = {}
  for arm, arm_rows in by_arm.items():
    trials = np.unique([r['trial'] for r in arm_rows])
    epochs = np.unique([r['epoch'] for r in arm_rows])
    t_index = np.searchsorted(trials, [r['trial'] for r in arm_rows])
    e_index = np.searchsorted(epochs, [r['epoch'] for r in arm_rows])
    values = {}
    for name in names:
      table = np.full((len(trials), len(epochs)), np.nan)
      table[t_index, e_index] = [np.nan if r.get(name) is None else r[name] for r in arm_rows]
      values[name] = table
    diverged = np.zeros((len(trials), len(epochs)), bool)
    diverged[t_index, e_index] = [bool(r['diverged']) for r in arm_rows]
    steps = np.zeros(len(epochs), int)
    steps[e_index] = [r['step'] for r in arm_rows]
    effective = np.zeros(len(epochs))
    effective[e_index] = [r.get('effective_step', r['step']) for r in arm_rows]
    result[arm] = ArmMetrics(trials, epochs, steps, effective, values, diverged)
  return result


@dataclasses.dataclass(frozen=True)
class Run:
  """One workdir: its name, config, final status and the metrics of each arm.

  Attributes:
    name: the workdir's folder name (a sweep point's name).
    path: the workdir.
    config: config.json as a dict ({} where the record has none).
    status: status.json's status ('done', 'running', ...; 'unknown' where it has none).
    arms: `load_metrics(path)`.
  """

  name: str
  path: pathlib.Path
  config: dict
  status: str
  arms: dict[str, ArmMetrics]

  @property
  def metrics(self) -> ArmMetrics:
    """The metrics of the run's one arm (a sweep point of the SDE figures trains one arm)."""
    if len(self.arms) != 1:
      arms = ', '.join(self.arms)
      raise ValueError(f'{self.path} has {len(self.arms)} arms ({arms}); one was expected.')
    return next(iter(self.arms.values()))


def read_status(workdir: str | os.PathLike) -> str:
  """The record's status ('done', 'running', ...), or 'unknown' if it has no readable one."""
  try:
    return record.read_status(workdir)['status']
  except (OSError, ValueError, KeyError):
    return 'unknown'


def load_run(workdir: str | os.PathLike, name: str | None = None) -> Run:
  """A workdir's metrics (`load_metrics`), config and status; `name` defaults to its folder's."""
  path = pathlib.Path(workdir)
  arms = load_metrics(path)
  config = record.read_config(path) if (path / 'config.json').exists() else {}
  return Run(name or path.name, path, config, read_status(path), arms)


def changing_arms(run: Run, analysis: str | None = None) -> list[tuple[str, ArmMetrics, float]]:
  """(arm, its metrics, the step of its first LR or WD change) of every arm whose LR or WD changes
  (the others are controls), in the order of the trials.

  Raises:
    ValueError: no arm changes, and `analysis` names the analysis that needs one.
  """
  found = [(arm, m, step) for arm, m in run.arms.items() if (step := m.change_step()) is not None]
  if not found and analysis:
    raise ValueError(f'{run.path}: no arm changes its LR or WD; is it a {analysis} run?')
  return found


RunLike = Run | str | os.PathLike  # a loaded run, or the path of its workdir


def as_run(run: RunLike) -> Run:
  """`run` itself, or the run of the workdir at path `run` (`load_run`)."""
  return run if isinstance(run, Run) else load_run(run)


def load_sweep(root: str | os.PathLike) -> list[Run]:
  """The runs of a sweep root (launch/sweep.py: one workdir per point), in the sweep's order
  (sweep.json), or by name for a plain folder of workdirs; points without metrics yet are
  skipped.

  Raises:
    FileNotFoundError: no point of `root` has metrics.
  """
  root = pathlib.Path(root)
  index = root / 'sweep.json'
  if index.exists():
    names = list(json.loads(index.read_text())['points'])
  else:
    names = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
  runs = [load_run(root / n, n) for n in names if (root / n / 'metrics.jsonl').exists()]
  if not runs:
    raise FileNotFoundError(f'no run with metrics under {root}: is it a sweep root?')
  return runs


def schedule_changes(
    config: dict, keys: Sequence[str] = ('lr_schedule', 'wd_schedule')
) -> dict[str, list[float]]:
  """{arm: the epochs, increasing, at which the arm's schedules `keys` change} of a run's
  config.json (an arm's own schedule, else optim's; a record without arms has one arm,
  'default')."""
  optim = config.get('optim') or {}
  result = {}
  for arm, spec in (config.get('arms') or {'default': {}}).items():
    spec = spec if isinstance(spec, dict) else {}
    epochs = set()
    for key in keys:
      for change in spec.get(key, optim.get(key, ())) or ():
        if isinstance(change, (list, tuple)) and len(change) == 2:
          epochs.add(float(change[0]))
    result[arm] = sorted(epochs)
  return result


# ---- The figure style. ----

FIGURE_FORMATS = ('png', 'pdf')
BAND = (0.1, 0.9)  # quantiles of the spread bands around the trial means
PANEL_SIZE = (5.0, 3.6)  # inches, one panel


def new_axes(
    num: int,
    max_cols: int = 3,
    panel_size: tuple[float, float] = PANEL_SIZE,
    *,
    sharex: bool = False,
    layout: str | None = 'constrained',
) -> np.ndarray:
  """`num` axes on a fresh Agg figure (no pyplot state), at most `max_cols` per row, each panel
  `panel_size` inches; object array [num]. `layout=None` for a figure that calls
  `tight_layout()` itself once its suptitle is set."""
  cols = min(num, max_cols)
  rows = math.ceil(num / cols)
  fig = Figure(figsize=(panel_size[0] * cols, panel_size[1] * rows), layout=layout)
  FigureCanvasAgg(fig)
  axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False, sharex=sharex).ravel())
  for ax in axes[num:]:
    ax.set_visible(False)
  return axes[:num]


def check_axes(axes: Sequence[Axes] | None, num: int, what: str, **style) -> np.ndarray:
  """The `num` axes a plot function `what` draws into: the caller's, or fresh ones if None
  (`new_axes(num, **style)`)."""
  if axes is None:
    return new_axes(num, **style)
  axes = np.atleast_1d(np.asarray(axes, dtype=object)).ravel()
  if len(axes) != num:
    raise ValueError(f'{what} draws {num} panel(s); got {len(axes)} axes.')
  return axes


def save_figure(fig: Figure, out_prefix: str | os.PathLike) -> list[pathlib.Path]:
  """Writes the figure to `out_prefix`.png and .pdf (creating the folder); returns the paths.

  Each file is written atomically (a temporary file beside it, then renamed): an interrupt or a
  full disk leaves the earlier figure, never a truncated one.
  """
  paths = [pathlib.Path(f'{out_prefix}.{fmt}') for fmt in FIGURE_FORMATS]
  paths[0].parent.mkdir(parents=True, exist_ok=True)
  for p in paths:
    tmp = p.with_name(f'.{p.name}.tmp-{os.getpid()}')
    try:
      fig.savefig(tmp, format=p.suffix[1:], dpi=120, bbox_inches='tight')
      os.replace(tmp, p)
    finally:
      tmp.unlink(missing_ok=True)
  return paths


def save_axes(axes: np.ndarray, out: str | os.PathLike, name: str) -> list[pathlib.Path]:
  """Saves the figure of `axes` as out/name.png and .pdf (`save_figure`); returns the paths."""
  return save_figure(np.asarray(axes).flat[0].figure, pathlib.Path(out) / name)


# ---- The command line: `python -m svag_jax.analysis.NAME SOURCE [--out DIR] [options]`. ----

SOURCES = {
    'workdir': 'the workdir of a run',
    'root': 'a sweep root (launch/sweep.py: one workdir per point)',
}


def figure_parser(
    name: str, doc: str, source: str = 'workdir', required: bool = True
) -> argparse.ArgumentParser:
  """The command line `python -m svag_jax.analysis.<name> WORKDIR|ROOT [--out DIR]`; add options.

  Args:
    name: the analysis (its module's name; the figure's name unless `make` names several).
    doc: the module's docstring (its first paragraph is the description).
    source: 'workdir' (one run) or 'root' (a sweep root): the positional argument, args.<source>.
    required: False where an option replaces the source (analysis.lsr --baseline RUN).
  """
  parser = argparse.ArgumentParser(
      prog=f'python -m svag_jax.analysis.{name}', description=doc.split('\n\n')[0]
  )
  parser.add_argument(source, nargs=None if required else '?', help=SOURCES[source])
  parser.add_argument(
      '--out', default=None, help=f'figure folder (default: {source.upper()}/figures)'
  )
  parser.set_defaults(analysis=name)
  return parser


Figures = np.ndarray | dict[str, np.ndarray]


def run_figure(args: argparse.Namespace, make: Callable[[], tuple[Figures, list[str]]]) -> int:
  """Draws an analysis: `make()` returns (its axes, or {figure name: axes}, and the summary
  lines); saves each figure as `<out>/<name>.{png,pdf}` (a single one under the analysis's name)
  and prints where, the run's status where it has one, and the summary.

  Returns:
    The exit code: 0, 2 when the source cannot be analysed (the reason, naming the file, on
    stderr), 130 when interrupted (figures already written stay whole: `save_figure`).
  """
  name = args.analysis
  source = pathlib.Path(getattr(args, 'workdir', None) or args.root)
  out = source / 'figures' if args.out is None else pathlib.Path(args.out)
  try:
    figures, lines = make()
    if not isinstance(figures, dict):
      figures = {name: figures}
    for figure, axes in figures.items():
      save_axes(axes, out, figure)
  except (OSError, ValueError, record.WorkdirError) as e:
    where = f'{e.strerror}: {e.filename}' if isinstance(e, OSError) and e.filename else e
    print(f'analysis.{name}: {" ".join(str(where).split())}', file=sys.stderr)
    return 2
  except KeyError as e:  # a record without a field this analysis reads
    message = f'{source} has no {e} in its record: not a run of this analysis?'
    print(f'analysis.{name}: {message}', file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print(f'analysis.{name}: interrupted; no figure was left half-written.', file=sys.stderr)
    return 130
  formats = '/'.join(FIGURE_FORMATS)
  names = list(figures)
  head = (
      f'Figure {names[0]} ({formats})'
      if len(names) == 1
      else f'Figures ({", ".join(names)}; {formats})'
  )
  status = read_status(source) if (source / 'status.json').exists() else None
  print(f'{head} in {out}' + (f' (run status: {status})' if status else ''))
  if lines:
    print('\n'.join(lines))
  return 0
