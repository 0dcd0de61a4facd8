"""The statistics of the analyses (NumPy, unit-tested): summaries over trials (means, bands,
intervals), the equilibrium detector and linear fits.

Every interval over trials is `interval`: the mean ± t × SE of the trials' values, SE = sample
standard deviation (ddof 1) / sqrt(n) over the n trials with a value (diverged trials are NaN and
left out) and t = t_{(1 + LEVEL) / 2, n - 1} the Student t quantile at LEVEL = 95% (2.36 for 8
trials, 2.13 for 16, 1.96 for many). A difference of two independent arms is
`difference_interval` (the same t × SE, Welch's SE and degrees of freedom); a paired difference
(trial i against trial i, e.g. the same init) is `interval` of the differences. Other summaries
say what they are: quantile bands of the spread of the trials (`mean_and_band`), standard errors
(`mean_se`), percentile bootstrap intervals (analysis/mixing_time.py, analysis/relaxation.py).
"""

import dataclasses
import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats as scipy_stats

# ---- Summaries over trials. ----


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


LEVEL = 0.95  # the confidence level of every interval over trials
INTERVAL = f'{LEVEL:.0%} interval'  # how figures and tables name it


def t_quantile(dof: np.ndarray | float, level: float = LEVEL) -> np.ndarray:
  """t_{(1 + level) / 2, dof}: the two-sided Student t quantile (NaN where dof < 1)."""
  dof = np.asarray(dof, float)
  return np.where(dof >= 1, scipy_stats.t.ppf((1 + level) / 2, np.maximum(dof, 1)), np.nan)


def mean_se(values: np.ndarray) -> tuple[float, float, int]:
  """Mean, standard error (sample std, ddof 1, / sqrt(n); NaN for n < 2) and count n of the finite
  entries of `values` (any shape)."""
  x = np.asarray(values, float)
  x = x[np.isfinite(x)]
  mean = float(x.mean()) if x.size else math.nan
  se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan
  return mean, se, int(x.size)


def interval(values: np.ndarray, axis: int | None = None, level: float = LEVEL):
  """The interval of the mean over trials: (mean, low, high), mean ± t_{(1+level)/2, n-1} SE.

  Args:
    values: one value per trial; NaN (a diverged trial) is left out.
    axis: the trial axis of `values` (e.g. 0 for [T, E]: one interval per evaluation); None: all
      entries are trials and the result is three floats.
    level: the confidence level (module docstring: the one convention, LEVEL).

  Returns:
    (mean, low, high), floats or arrays over the other axes; NaN bounds where fewer than two
    trials have a value, NaN mean where none has.
  """
  x = np.asarray(values, float)
  if axis is None:
    mean, se, n = mean_se(x)
    half = float(t_quantile(n - 1, level)) * se if n > 1 else math.nan
    return mean, mean - half, mean + half
  with np.errstate(invalid='ignore', divide='ignore'), warnings.catch_warnings():
    warnings.simplefilter('ignore', RuntimeWarning)  # all-NaN or one-value columns: NaN
    n = np.sum(np.isfinite(x), axis=axis)
    mean = np.nanmean(x, axis=axis)
    half = t_quantile(n - 1, level) * np.nanstd(x, axis=axis, ddof=1) / np.sqrt(n)
  return mean, mean - half, mean + half


def difference_interval(
    a: np.ndarray, b: np.ndarray, level: float = LEVEL
) -> tuple[float, float, float]:
  """(mean(a) - mean(b), low, high) for two independent samples (two arms): ± t SE with Welch's
  SE = sqrt(s_a^2 / n_a + s_b^2 / n_b) and degrees of freedom (finite entries only; NaN bounds
  when either has fewer than two)."""
  a, b = np.asarray(a, float), np.asarray(b, float)
  a, b = a[np.isfinite(a)], b[np.isfinite(b)]
  d = float(a.mean() - b.mean()) if a.size and b.size else math.nan
  if a.size < 2 or b.size < 2:
    return d, math.nan, math.nan
  va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
  var = va + vb
  dof = var**2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1)) if var > 0 else a.size + b.size - 2
  half = float(t_quantile(dof, level)) * math.sqrt(var)
  return d, d - half, d + half


def detectable_difference(
    differences: np.ndarray, power: float = 0.8, level: float = LEVEL
) -> float:
  """The true mean difference that a paired comparison of these trials detects (its `level`
  interval excludes 0) with probability `power`: (t_{(1+level)/2} + t_{power}) SD / sqrt(n) with
  n - 1 degrees of freedom (the normal-approximation power of a paired t test); NaN for n < 2."""
  x = np.asarray(differences, float)
  x = x[np.isfinite(x)]
  if x.size < 2:
    return math.nan
  dof = x.size - 1
  t_power = float(scipy_stats.t.ppf(power, dof))
  return float((t_quantile(dof, level) + t_power) * x.std(ddof=1) / math.sqrt(x.size))


def format_interval(mean: float, low: float, high: float, spec: str = '.4g') -> str:
  """'mean [low, high]', each number in the format `spec` (e.g. '.4g', '+.4f', '>8.3f')."""
  return f'{mean:{spec}} [{low:{spec}}, {high:{spec}}]'


def fmt_interval(values: np.ndarray, digits: int = 4) -> str:
  """'mean [low, high]' of `interval` over the trials' values, `digits` significant digits."""
  return format_interval(*interval(values), f'.{digits}g')


# ---- The equilibrium detector. ----


def centered_running_mean(steps: np.ndarray, values: np.ndarray, window: float) -> np.ndarray:
  """Mean of `values` over the rows with |step - s| <= window / 2, for every row step s.

  The window is truncated at both ends of the series (fewer rows there); NaN values are ignored
  (a row whose window holds only NaN gives NaN).

  Args:
    steps: float [E], increasing (optimizer steps).
    values: float [E].
    window: width of the window, in steps (>= 0; 0 = the values themselves).

  Returns:
    float [E].
  """
  steps, values = np.asarray(steps, float), np.asarray(values, float)
  finite = np.isfinite(values)
  sums = np.concatenate([[0.0], np.cumsum(np.where(finite, values, 0.0))])
  counts = np.concatenate([[0], np.cumsum(finite)])
  lo = np.searchsorted(steps, steps - window / 2, side='left')
  hi = np.searchsorted(steps, steps + window / 2, side='right')
  n = counts[hi] - counts[lo]
  with np.errstate(invalid='ignore', divide='ignore'):
    return np.where(n > 0, (sums[hi] - sums[lo]) / np.maximum(n, 1), np.nan)


def steps_to_equilibrium(
    steps: np.ndarray,
    values: np.ndarray,
    perturb_step: float,
    *,
    ref_window: float,
    window: float,
    tol: float = 0.1,
    stay: bool = True,
) -> float | None:
  """Steps after a perturbation until a curve is back at its pre-perturbation equilibrium level.

  The detector:
    1. reference level ref = mean of `values` over the rows with
       perturb_step - ref_window <= step < perturb_step (the equilibrium before the perturbation);
    2. after it, only the rows with step >= perturb_step are used (the row at the perturbation
       itself counts as "after": metric rows give the LR the *next* step uses); each is smoothed
       by a centred running mean over `window` steps of post-perturbation rows
       (`centered_running_mean`: no lag for a smooth curve, truncated at the perturbation and at
       the end of the run, so no pre-perturbation row leaks in);
    3. a row is "in equilibrium" when |running mean - ref| <= tol |ref|;
    4. stay=True (default): the answer is the first post row from which every later row is in
       equilibrium, provided at least `window` steps of the run follow it (so that the
       return is confirmed, not a last-row accident); stay=False: the first post row in
       equilibrium (first crossing).
  The result is that row's step minus `perturb_step`; 0 if the curve never left the band.

  For an exponential relaxation ref (1 + g exp(-t / tau)) with |g| > tol and noise well below
  tol |ref| / sqrt(rows per window), the answer is ~ tau ln(|g| / tol) (up to the eval spacing
  and a (window / tau)^2 / 24 relative smoothing bias).

  Args:
    steps: float [E], increasing row steps (optimizer steps; NaN values are ignored).
    values: float [E], the quantity (e.g. eta / ||w||^2 of one trial, or a trial-mean test error).
    perturb_step: the step of the perturbation (the schedule change).
    ref_window: steps before the perturbation over which the reference is averaged (> 0).
    window: width in steps of the centred running mean after the perturbation (>= 0).
    tol: relative tolerance x of "within x% of the reference" (> 0).
    stay: require the curve to stay in the band until the end of the run (see above).

  Returns:
    Steps from the perturbation to equilibrium (float), or None when the curve does not return
    (stay=True: the last rows are out of the band, or the return is not followed by `window`
    steps; stay=False: no post row is in the band).

  Raises:
    ValueError: no finite row in the reference window, no row after the perturbation, a
      reference of 0, or bad `tol` / windows.
  """
  steps, values = np.asarray(steps, float), np.asarray(values, float)
  if steps.shape != values.shape or steps.ndim != 1:
    raise ValueError(f'steps {steps.shape} and values {values.shape} must be equal 1-D shapes')
  if not tol > 0 or not ref_window > 0 or not window >= 0:
    raise ValueError(
        f'need tol > 0, ref_window > 0, window >= 0; got {tol}, {ref_window}, ' f'{window}'
    )
  before = (steps >= perturb_step - ref_window) & (steps < perturb_step) & np.isfinite(values)
  if not before.any():
    raise ValueError(
        f'no finite row in the reference window [{perturb_step - ref_window:g}, '
        f'{perturb_step:g}) steps: widen ref_window or evaluate more often'
    )
  ref = float(values[before].mean())
  if ref == 0:
    raise ValueError('the reference level is 0: a relative tolerance is undefined')
  after = steps >= perturb_step
  if not after.any():
    raise ValueError(f'no row at or after the perturbation step {perturb_step:g}')
  post_steps, post_values = steps[after], values[after]
  smooth = centered_running_mean(post_steps, post_values, window)
  inside = np.abs(smooth - ref) <= tol * abs(ref)  # NaN compares False: not in equilibrium
  if not stay:
    hits = np.flatnonzero(inside)
    return float(post_steps[hits[0]] - perturb_step) if hits.size else None
  if not inside[-1]:
    return None
  outside = np.flatnonzero(~inside)
  first = outside[-1] + 1 if outside.size else 0
  if post_steps[-1] - post_steps[first] < window:
    return None
  return float(post_steps[first] - perturb_step)


@dataclasses.dataclass(frozen=True)
class LinearFit:
  """y = slope x + intercept by least squares, with R^2 = 1 - SS_res / SS_tot."""

  slope: float
  intercept: float
  r2: float


def linear_fit(x: np.ndarray, y: np.ndarray) -> LinearFit:
  """Least-squares line through the finite (x, y) pairs; needs >= 2 distinct x."""
  x, y = np.asarray(x, float), np.asarray(y, float)
  ok = np.isfinite(x) & np.isfinite(y)
  x, y = x[ok], y[ok]
  if x.size < 2 or np.ptp(x) == 0:
    raise ValueError(f'a linear fit needs >= 2 points with distinct x; got {x.size}')
  slope, intercept = np.polyfit(x, y, 1)
  ss_res = float(np.sum((y - (slope * x + intercept)) ** 2))
  ss_tot = float(np.sum((y - y.mean()) ** 2))
  return LinearFit(float(slope), float(intercept), 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0)


# ---- Small helpers. ----


def window_mask(steps: np.ndarray, lo: float, hi: float) -> np.ndarray:
  """bool [E]: the evaluations with lo <= step <= hi."""
  return (steps >= lo) & (steps <= hi)


def nanmean(x: np.ndarray, axis: int) -> np.ndarray:
  """np.nanmean without the all-NaN warning (NaN there)."""
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', RuntimeWarning)
    return np.nanmean(x, axis=axis)
