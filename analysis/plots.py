"""The drawing of the trials' statistics (analysis/stats.py) into an analysis's axes: the trial
mean with a quantile band of the trials' spread or with its interval, intervals as error bars, and
the panel of a curve vs epoch. Figures come from `common.new_axes`."""

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes

from svag_jax.analysis import common, stats


def plot_mean_band(
    ax: Axes,
    x: np.ndarray,
    values: np.ndarray,
    color: str,
    label: str,
    quantiles: Sequence[float] = common.BAND,
    linestyle: str = '-',
    alpha: float = 0.2,
) -> None:
  """The trial mean of `values` [T, E] against x [E] as a line, and its quantile band."""
  mean, low, high = stats.mean_and_band(values, quantiles)
  ax.plot(x, mean, color=color, label=label, linestyle=linestyle)
  ax.fill_between(x, low, high, color=color, alpha=alpha, linewidth=0)


def plot_intervals(ax: Axes, x: np.ndarray, samples: Sequence[np.ndarray], **style) -> np.ndarray:
  """At each x[i], the mean of samples[i] (one value per trial) with its interval
  (`stats.interval`) as an error bar (matplotlib errorbar `style`, capsize 3 by default).

  Returns:
    float [len(x), 3]: (mean, low, high) of each sample.
  """
  iv = np.array([stats.interval(s) for s in samples], float).reshape(-1, 3)
  yerr = [iv[:, 0] - iv[:, 1], iv[:, 2] - iv[:, 0]]
  ax.errorbar(x, iv[:, 0], yerr=yerr, **{'capsize': 3, **style})
  return iv


def label_epoch_panel(ax: Axes, ylabel: str, log: bool = False) -> None:
  """The axes of a curve vs epoch: 'epoch', `ylabel` (a log y axis if `log`) and a light grid."""
  if log:
    ax.set_yscale('log')
  ax.set_xlabel('epoch')
  ax.set_ylabel(ylabel)
  ax.grid(alpha=0.3)


def plot_mean_interval(
    ax: Axes, x: np.ndarray, values: np.ndarray, log: bool = False, **style
) -> None:
  """The trial mean of `values` [T, E] (NaN-aware) against x [E] as a line (matplotlib `style`),
  and its interval band (`stats.interval` over the trials) where at least two trials have a value.

  log: for a positive quantity on a log axis, the mean and interval of log(values) mapped back
  (the geometric mean, times/divided by exp(t SE)), so the band stays positive; entries <= 0
  count as missing."""
  values = np.asarray(values, float)
  back = np.exp if log else np.asarray
  if log:
    with np.errstate(invalid='ignore', divide='ignore'):
      values = np.log(np.where(values > 0, values, np.nan))
  mean, low, high = stats.interval(values, axis=0)
  (line,) = ax.plot(x, back(mean), **style)
  ok = np.sum(np.isfinite(values), axis=0) > 1
  ax.fill_between(x[ok], back(low)[ok], back(high)[ok], color=line.get_color(), alpha=0.2)
