"""Loading a workdir's metrics into per-arm arrays, and the summary statistics the figures draw.

analysis/ only reads workdirs (through the readers of `svag_jax.workdir`); it never trains.
"""

import argparse
import dataclasses
import math
import os
import pathlib
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from svag_jax import workdir as workdir_lib


@dataclasses.dataclass(frozen=True)
class ArmMetrics:
  """The metric rows of one arm as arrays.

  Attributes:
    trials: int [T], the global trial index of each row of the arrays (the row of this trial in
      the predictions files).
    epochs: float [E], the evaluation epochs, increasing.
    values: {metric name: float64 [T, E]}; NaN where a trial had diverged (null in the file) or
      was not evaluated at that epoch.
    diverged: bool [T, E], whether the trial had diverged by that evaluation.
  """

  trials: np.ndarray
  epochs: np.ndarray
  values: dict[str, np.ndarray]
  diverged: np.ndarray

  def at_epoch(self, name: str, epoch: float) -> np.ndarray:
    """float [T]: metric `name` at the evaluation nearest to `epoch` (NaN for diverged trials)."""
    return self.values[name][:, int(np.argmin(np.abs(self.epochs - epoch)))]

  def diverged_at(self, epoch: float) -> np.ndarray:
    """bool [T]: the trials that had diverged by the evaluation nearest to `epoch`."""
    return self.diverged[:, int(np.argmin(np.abs(self.epochs - epoch)))]


_NON_METRICS = ('step', 'epoch', 'trial', 'arm', 'diverged')


def load_metrics(workdir: str | os.PathLike) -> dict[str, ArmMetrics]:
  """Metrics of every arm of a workdir, in the order of the trials (the first arm first).

  Returns:
    {arm name: ArmMetrics}; the first key is the arm of trial 0 (the reference arm).
  """
  rows = workdir_lib.read_metrics(workdir)
  if not rows:
    raise ValueError(f'{workdir}/metrics.jsonl has no rows yet: nothing to analyse.')
  names = [k for k in rows[0] if k not in _NON_METRICS]
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
    result[arm] = ArmMetrics(trials, epochs, values, diverged)
  return result


def mean_and_band(
    values: np.ndarray, quantiles: Sequence[float] = (0.1, 0.9)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Mean over trials and a quantile band, ignoring NaN (diverged trials).

  Args:
    values: float [T, E], one row per trial.
    quantiles: (low, high) quantiles of the band, in [0, 1].

  Returns:
    (mean, low, high), each float [E]; NaN at epochs where every trial is NaN.
  """
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', RuntimeWarning)  # all-NaN columns give NaN, as documented
    mean = np.nanmean(values, axis=0)
    low, high = np.nanquantile(values, quantiles, axis=0)
  return mean, low, high


def mean_and_std(values: np.ndarray) -> tuple[float, float, int]:
  """Mean, standard deviation and count of the finite entries of `values` (any shape)."""
  finite = np.asarray(values, float)[np.isfinite(values)]
  if finite.size == 0:
    return float('nan'), float('nan'), 0
  return float(finite.mean()), float(finite.std()), int(finite.size)


FIGURE_FORMATS = ('png', 'pdf')
BAND = (0.1, 0.9)  # quantiles of the bands around the trial means (every analysis figure)


def save_figure(fig, out_prefix: str | os.PathLike) -> list[pathlib.Path]:
  """Writes the matplotlib figure to `out_prefix`.png and .pdf (creating the folder); returns the
  paths."""
  paths = [pathlib.Path(f'{out_prefix}.{fmt}') for fmt in FIGURE_FORMATS]
  paths[0].parent.mkdir(parents=True, exist_ok=True)
  for p in paths:
    fig.savefig(p, dpi=120, bbox_inches='tight')
  return paths


PANEL_SIZE = (5.0, 3.6)  # inches, one panel


def new_axes(num: int, max_cols: int = 3) -> np.ndarray:
  """`num` axes on a fresh Agg figure (no pyplot state), at most `max_cols` per row; object
  array [num]."""
  cols = min(num, max_cols)
  rows = math.ceil(num / cols)
  fig = Figure(figsize=(PANEL_SIZE[0] * cols, PANEL_SIZE[1] * rows), layout='constrained')
  FigureCanvasAgg(fig)
  axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
  for ax in axes[num:]:
    ax.set_visible(False)
  return axes[:num]


def check_axes(axes: Sequence[Axes] | None, num: int, what: str) -> np.ndarray:
  """The `num` axes a plot function `what` draws into: the caller's, or fresh ones if None."""
  if axes is None:
    return new_axes(num)
  axes = np.atleast_1d(np.asarray(axes, dtype=object)).ravel()
  if len(axes) != num:
    raise ValueError(f'{what} draws {num} panel(s); got {len(axes)} axes.')
  return axes


def save_axes(axes: np.ndarray, out: str | os.PathLike, name: str) -> list[pathlib.Path]:
  """Saves the figure of `axes` as out/name.png and .pdf (`save_figure`); returns the paths."""
  return save_figure(np.asarray(axes).flat[0].figure, pathlib.Path(out) / name)


def plot_mean_band(
    ax: Axes,
    x: np.ndarray,
    values: np.ndarray,
    color: str,
    label: str,
    quantiles: Sequence[float] = BAND,
    linestyle: str = '-',
    alpha: float = 0.2,
) -> None:
  """The trial mean of `values` [T, E] against x [E] as a line, and its quantile band."""
  mean, low, high = mean_and_band(values, quantiles)
  ax.plot(x, mean, color=color, label=label, linestyle=linestyle)
  ax.fill_between(x, low, high, color=color, alpha=alpha, linewidth=0)


def plot_mean_se_band(
    ax: Axes, x: np.ndarray, values: np.ndarray, log: bool = False, **style
) -> None:
  """The trial mean of `values` [T, E] (NaN-aware) against x [E] as a line (matplotlib `style`),
  and its mean ± 2 standard errors band where at least two trials have a value.

  log: for a positive quantity on a log axis, the mean and band of log(values) mapped back (the
  geometric mean, times/divided by exp(2 SE)), so the band stays positive; entries <= 0 count as
  missing."""
  values = np.asarray(values, float)
  back = np.exp if log else np.asarray
  with np.errstate(invalid='ignore', divide='ignore'):
    if log:
      values = np.log(np.where(values > 0, values, np.nan))
    n = np.sum(np.isfinite(values), axis=0)
    mean = np.nanmean(values, axis=0)
    se = np.nanstd(values, axis=0, ddof=1) / np.sqrt(n)
  (line,) = ax.plot(x, back(mean), **style)
  ok = n > 1
  low, high = back(mean - 2 * se)[ok], back(mean + 2 * se)[ok]
  ax.fill_between(x[ok], low, high, color=line.get_color(), alpha=0.2)


def figure_parser(name: str, doc: str) -> argparse.ArgumentParser:
  """The command line `python -m svag_jax.analysis.<name> WORKDIR [--out DIR]`; add options."""
  parser = argparse.ArgumentParser(
      prog=f'python -m svag_jax.analysis.{name}', description=doc.split('\n\n')[0]
  )
  parser.add_argument('workdir')
  parser.add_argument('--out', default=None, help='figure folder (default: WORKDIR/figures)')
  return parser


def run_figure(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    name: str,
    make: Callable[[], tuple[Any, list[str]]],
) -> int:
  """Draws one analysis figure: `make()` returns (its axes, summary lines); saves the axes as
  `<out>/<name>.{png,pdf}` and prints where and the summary. Returns the exit code (2 when the
  workdir cannot be analysed, with the reason on stderr)."""
  if not (pathlib.Path(args.workdir) / 'metrics.jsonl').exists():
    parser.error(f'{args.workdir} has no metrics.jsonl: is it the workdir of a run?')
  out = pathlib.Path(args.workdir) / 'figures' if args.out is None else pathlib.Path(args.out)
  try:
    axes, lines = make()
    paths = save_axes(axes, out, name)
  except ValueError as e:
    print(f'analysis.{name}: {e}', file=sys.stderr)
    return 2
  print(f'Figure {paths[0].stem} ({"/".join(FIGURE_FORMATS)}) in {paths[0].parent}')
  print('\n'.join(lines))
  return 0
