"""Equilibrium of the effective LR on scale-invariant nets (Li, Lyu & Arora 2020, Lemma 5.2).

    python -m analysis.equilibrium stationary WORKDIR [--window START END]
    python -m analysis.equilibrium lr_drop WORKDIR
    python -m analysis.equilibrium mixing WORKDIR [--tol 0.1] [--window-evals 5]
        [--error-tol 0.15] [--error-window-evals 5]

Each command draws one figure into WORKDIR/figures (or --out), as PNG and PDF, and prints numbers:

  stationary  (configs/stationary_lr.py) measured eta / ||w||^2 at equilibrium against the predicted
              sqrt(2 lambda_e) / sigma per lambda_e (figure `stationary_lr`);
  lr_drop     (configs/lr_drop.py) the effective LR right after eta / 10 and after recovery, as
              ratios to its pre-drop level (Lemma 5.2: 0.1, then 1/sqrt(10) = 0.316; figure
              `lr_drop`);
  mixing      (configs/mixing_time.py) steps until the effective LR and the test error return to
              equilibrium after eta / 10, lambda x 10 at once (lambda_e unchanged), against
              1 / lambda_e, with a linear fit and R^2 (figure `mixing_time`).

Which sigma^2 (Lemma 5.2). The whole trainable vector w of the svag_jax models is scale invariant,
so for every batch <grad L(w; B), w> = 0 and one SGD step with coupled WD gives exactly

    ||w_{k+1}||^2 = (1 - lambda_e)^2 ||w_k||^2 + eta^2 ||grad L(w_k; B_k)||^2.

The SDE of the 2020 paper keeps only the noise of the second term (the squared drift is second
order in dt): d||W||^2 = (-2 lambda_e ||W||^2 + eta^2 Tr Sigma_B(W)) dt. As grad L(c w) =
grad L(w) / c, Tr Sigma_B(w) = sigma^2 / ||w||^2 with sigma^2 = Tr Sigma_B(w / ||w||) = ||w||^2 N,
the noise trace of the unit-norm direction at the training batch size B (N = the run's G/N
estimate, metrics.gn_every). Setting the drift to zero: ||w||^4 = eta sigma^2 / (2 lambda), i.e.
eta / ||w||^2 = sqrt(2 lambda_e) / sigma — `theory.stationary_effective_lr`, the "Lemma 5.2"
prediction printed here. The exact discrete-time version keeps the full-batch gradient and the
lambda_e^2 term: eta / ||w||^2 = sqrt(lambda_e (2 - lambda_e)) / sigma_GN with
sigma_GN^2 = ||w||^2 (G + N); it is printed as "discrete". Both use per-trial means over the
equilibrium window of eta / ||w||^2 and of ||w||^2 N (||w||^2 (G + N)) on the rows that carry G/N.

Intervals over trials are mean ± 2 standard errors (printed as [low, high]) unless stated otherwise;
the mixing times of the trial-mean test error use a percentile bootstrap over trials (95%).

Every function reads workdirs only; nothing here trains.
"""

import argparse
import dataclasses
import math
import os
import pathlib
import sys
import warnings
from collections.abc import Sequence

import numpy as np
from matplotlib import ticker
from matplotlib.axes import Axes

from analysis import common
from svag_jax import theory

FIGURE_FORMATS = common.FIGURE_FORMATS
BAND = (0.1, 0.9)            # quantiles of the bands around the trial means


# ---- The equilibrium detector and small statistics (pure NumPy, unit-tested). ----


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
    raise ValueError(f'need tol > 0, ref_window > 0, window >= 0; got {tol}, {ref_window}, '
                     f'{window}')
  before = (steps >= perturb_step - ref_window) & (steps < perturb_step) & np.isfinite(values)
  if not before.any():
    raise ValueError(f'no finite row in the reference window [{perturb_step - ref_window:g}, '
                     f'{perturb_step:g}) steps: widen ref_window or evaluate more often')
  ref = float(values[before].mean())
  if ref == 0:
    raise ValueError('the reference level is 0: a relative tolerance is undefined')
  after = steps >= perturb_step
  if not after.any():
    raise ValueError(f'no row at or after the perturbation step {perturb_step:g}')
  post_steps, post_values = steps[after], values[after]
  smooth = centered_running_mean(post_steps, post_values, window)
  inside = np.abs(smooth - ref) <= tol * abs(ref)   # NaN compares False: not in equilibrium
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


def mean_interval(values: np.ndarray, num_se: float = 2.0) -> tuple[float, float, float]:
  """(mean, low, high) of the finite entries: mean ± num_se standard errors (NaN bounds for < 2)."""
  x = np.asarray(values, float)
  x = x[np.isfinite(x)]
  if x.size == 0:
    return math.nan, math.nan, math.nan
  if x.size < 2:
    return float(x[0]), math.nan, math.nan
  half = num_se * x.std(ddof=1) / math.sqrt(x.size)
  return float(x.mean()), float(x.mean() - half), float(x.mean() + half)


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


# ---- Reading the runs. ----


def _steps(m: common.ArmMetrics) -> np.ndarray:
  """float [E]: the optimizer step of each evaluation of an arm."""
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', RuntimeWarning)
    return np.nanmedian(m.values['effective_step'], axis=0)


def _arm_constant(m: common.ArmMetrics, name: str, col: int = 0) -> float:
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', RuntimeWarning)
    return float(np.nanmedian(m.values[name][:, col]))


def change_step(m: common.ArmMetrics) -> float | None:
  """The step of an arm's first LR or WD change (the first row whose lr or wd differs from the
  first row's; rows carry the values the next step uses), or None if they never change."""
  steps = _steps(m)
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', RuntimeWarning)
    lr, wd = np.nanmedian(m.values['lr'], 0), np.nanmedian(m.values['wd'], 0)
  changed = ~np.isclose(lr, lr[0], rtol=1e-6) | ~np.isclose(wd, wd[0], rtol=1e-6, atol=0)
  idx = np.flatnonzero(changed)
  return float(steps[idx[0]]) if idx.size else None


def _window_mask(steps: np.ndarray, lo: float, hi: float) -> np.ndarray:
  return (steps >= lo) & (steps <= hi)


def _nanmean(x: np.ndarray, axis: int) -> np.ndarray:
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', RuntimeWarning)
    return np.nanmean(x, axis=axis)


# ---- Item 3: stationary effective LR. ----


@dataclasses.dataclass(frozen=True)
class StationaryArm:
  """Per-trial equilibrium numbers of one arm (arrays [T]) and their summary.

  Attributes:
    arm: arm name; intrinsic_lr: lambda_e; window: (first, last) step of the equilibrium window.
    measured: eta / ||w||^2 averaged over the window, per trial.
    sigma2: ||w||^2 N averaged over the window's G/N rows (noise trace at unit norm).
    sigma2_gn: ||w||^2 (G + N) likewise.
    predicted: sqrt(2 lambda_e / sigma2) (Lemma 5.2); predicted_discrete:
      sqrt(lambda_e (2 - lambda_e) / sigma2_gn).
    nsr: N / G of the window (ratio of the window means), per trial.
  """

  arm: str
  intrinsic_lr: float
  window: tuple[float, float]
  measured: np.ndarray
  sigma2: np.ndarray
  sigma2_gn: np.ndarray
  predicted: np.ndarray
  predicted_discrete: np.ndarray
  nsr: np.ndarray


def stationary(workdir: str | os.PathLike, window: tuple[float, float] | None = None,
               last_fraction: float = 1 / 3) -> list[StationaryArm]:
  """Measured vs predicted stationary effective LR of every arm of a stationary_lr run.

  Args:
    workdir: the run's workdir (needs metrics.gn_every > 0).
    window: (start, end) of the equilibrium window in epochs; default the last `last_fraction`
      of each arm's evaluations.
  """
  result = []
  for arm, m in common.load_metrics(workdir).items():
    steps = _steps(m)
    spe = steps[-1] / m.epochs[-1]     # steps per epoch
    if window is None:
      lo, hi = steps[-1] * (1 - last_fraction), steps[-1]
    else:
      lo, hi = window[0] * spe, window[1] * spe
    mask = _window_mask(steps, lo, hi)
    v = m.values
    if 'N' not in v or not np.isfinite(v['N'][:, mask]).any():
      raise ValueError(f'{workdir}: arm {arm} has no G/N rows in steps [{lo:g}, {hi:g}]; '
                       'run with config.metrics.gn_every > 0')
    le = _arm_constant(m, 'intrinsic_lr', int(np.flatnonzero(mask)[0]))
    measured = _nanmean(v['effective_lr'][:, mask], 1)
    sigma2 = _nanmean((v['w_norm_sq'] * v['N'])[:, mask], 1)
    sigma2_gn = _nanmean((v['w_norm_sq'] * (v['G'] + v['N']))[:, mask], 1)
    nsr = _nanmean(v['N'][:, mask], 1) / _nanmean(v['G'][:, mask], 1)
    result.append(StationaryArm(
        arm, le, (float(lo), float(hi)), measured, sigma2, sigma2_gn,
        np.asarray(theory.stationary_effective_lr(le, sigma2)),
        np.sqrt(le * (2 - le) / sigma2_gn), nsr))
  return sorted(result, key=lambda a: a.intrinsic_lr)


def _fmt_interval(values: np.ndarray, digits: int = 4) -> str:
  mean, lo, hi = mean_interval(values)
  return f'{mean:.{digits}g} [{lo:.{digits}g}, {hi:.{digits}g}]'


def stationary_summary(arms: list[StationaryArm]) -> list[str]:
  lines = [f'Stationary effective LR eta/||w||^2 (mean over trials [± 2 SE]), window steps '
           f'{arms[0].window[0]:g}-{arms[0].window[1]:g}',
           f'{"lambda_e":>9} {"trials":>6} {"measured":>26} {"Lemma 5.2 sqrt(2le)/sigma":>26} '
           f'{"meas/pred":>9} {"discrete (G+N)":>26} {"meas/disc":>9} {"sigma^2":>8} {"N/G":>6}']
  for a in arms:
    ratio = a.measured / a.predicted
    ratio_d = a.measured / a.predicted_discrete
    lines.append(
        f'{a.intrinsic_lr:>9.4g} {np.isfinite(a.measured).sum():>6} '
        f'{_fmt_interval(a.measured):>26} {_fmt_interval(a.predicted):>26} '
        f'{np.nanmean(ratio):>9.3f} {_fmt_interval(a.predicted_discrete):>26} '
        f'{np.nanmean(ratio_d):>9.3f} {np.nanmean(a.sigma2):>8.3g} {np.nanmean(a.nsr):>6.2f}')
  le = np.array([a.intrinsic_lr for a in arms])
  meas = np.array([np.nanmean(a.measured) for a in arms])
  if len(arms) >= 2 and np.all(meas > 0):
    fit = linear_fit(np.log(le), np.log(meas))
    lines.append(f'log-log slope of measured vs lambda_e: {fit.slope:.3f} (Lemma 5.2: 0.5 at '
                 f'constant sigma), R^2 {fit.r2:.4f}')
  return lines


def _plot_mean_band(ax: Axes, x: np.ndarray, values: np.ndarray, color: str, label: str) -> None:
  mean, low, high = common.mean_and_band(values, BAND)
  ax.plot(x, mean, color=color, label=label)
  ax.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0)


def plot_stationary(workdir: str | os.PathLike, arms: list[StationaryArm] | None = None,
                    axes: Sequence[Axes] | None = None) -> np.ndarray:
  """Two panels: eta/||w||^2 vs epoch per lambda_e (mean, 10-90% band) with the predicted
  stationary levels over the window; measured vs predicted stationary values vs lambda_e."""
  axes = common.check_axes(axes, 2, 'plot_stationary')
  arms = stationary(workdir) if arms is None else arms
  metrics = common.load_metrics(workdir)
  ax = axes[0]
  for i, a in enumerate(arms):
    m, color = metrics[a.arm], f'C{i % 10}'
    _plot_mean_band(ax, m.epochs, m.values['effective_lr'], color,
                    f'λe={a.intrinsic_lr:g}')
    spe = _steps(m)[-1] / m.epochs[-1]
    span = [a.window[0] / spe, a.window[1] / spe]
    ax.plot(span, [np.nanmean(a.predicted)] * 2, color=color, linestyle='--', linewidth=1.2)
    ax.plot(span, [np.nanmean(a.predicted_discrete)] * 2, color=color, linestyle=':',
            linewidth=1.2)
  ax.set_yscale('log')
  ax.set_xlabel('epoch')
  ax.set_ylabel('effective LR η/‖w‖²')
  ax.set_title('η/‖w‖² (mean, 10–90% band); -- √(2λe)/σ, ·· discrete', fontsize='medium')
  ax.legend(fontsize='x-small', ncol=3, loc='lower right')
  ax = axes[1]
  le = np.array([a.intrinsic_lr for a in arms])
  for values, label, marker in ((lambda a: a.measured, 'measured', 'o'),
                                (lambda a: a.predicted, 'Lemma 5.2 √(2λe)/σ', 's'),
                                (lambda a: a.predicted_discrete, 'discrete √(λe(2−λe))/σ_GN',
                                 '^')):
    stats = np.array([mean_interval(values(a)) for a in arms])
    ax.errorbar(le, stats[:, 0], yerr=[stats[:, 0] - stats[:, 1], stats[:, 2] - stats[:, 0]],
                marker=marker, linestyle='-' if label == 'measured' else '--', capsize=3,
                label=label)
  ax.set_xscale('log')
  ax.set_yscale('log')
  ax.set_xticks(le, [f'{x:g}' for x in le])
  ax.xaxis.set_minor_formatter(ticker.NullFormatter())
  ax.set_xlabel('intrinsic LR λe = ηλ')
  ax.set_ylabel('stationary η/‖w‖²')
  ax.set_title('Stationary effective LR (mean ± 2 SE over trials)', fontsize='medium')
  ax.legend(fontsize='small')
  return axes


# ---- Item 4: LR drop. ----


@dataclasses.dataclass(frozen=True)
class LRDropArm:
  """Ratios of the effective LR to its pre-drop level, per trial (arrays [T]).

  Attributes:
    arm: name; drop_step: step of the LR change; lr_factor: new LR / old LR.
    pre_window, post_window: (first, last) steps of the two averaging windows.
    immediate: eta'/||w||^2 at the drop row (new LR, weights not yet stepped) / pre level.
    next_eval: the same at the first row after the drop.
    recovered: mean over the post window / pre level.
    predicted: sqrt(lr_factor) (Lemma 5.2 at equal sigma); predicted_sigma: sqrt(lr_factor)
      sigma_pre / sigma_post with sigma^2 = ||w||^2 N of each window (NaN without G/N);
      predicted_discrete: the discrete-time ratio sqrt(le' (2 - le') / (le (2 - le)))
      sigma_GN,pre / sigma_GN,post with sigma_GN^2 = ||w||^2 (G + N) (NaN without G/N).
  """

  arm: str
  drop_step: float
  lr_factor: float
  pre_window: tuple[float, float]
  post_window: tuple[float, float]
  immediate: np.ndarray
  next_eval: np.ndarray
  recovered: np.ndarray
  predicted: float
  predicted_sigma: np.ndarray
  predicted_discrete: np.ndarray


def lr_drop(workdir: str | os.PathLike, window_fraction: float = 1 / 3) -> list[LRDropArm]:
  """The LR-drop ratios of every arm whose LR changes once (arms without a change are controls).

  The pre window is the last `window_fraction` of the steps before the drop; the post window the
  last `window_fraction` of the steps after it.
  """
  result = []
  for arm, m in common.load_metrics(workdir).items():
    drop = change_step(m)
    if drop is None:
      continue
    steps, v = _steps(m), m.values
    i = int(np.flatnonzero(steps == drop)[0])
    lr_before, lr_after = _arm_constant(m, 'lr', i - 1), _arm_constant(m, 'lr', i)
    pre = (drop - window_fraction * drop, drop - 1)
    post = (steps[-1] - window_fraction * (steps[-1] - drop), steps[-1])
    pre_mask, post_mask = _window_mask(steps, *pre), _window_mask(steps, *post)
    eff = v['effective_lr']
    level = _nanmean(eff[:, pre_mask], 1)
    sigma_ratio = sigma_gn_ratio = np.full(len(m.trials), np.nan)
    if 'N' in v and np.isfinite(v['N'][:, pre_mask]).any() and np.isfinite(
        v['N'][:, post_mask]).any():
      s2 = v['w_norm_sq'] * v['N']
      sigma_ratio = np.sqrt(_nanmean(s2[:, pre_mask], 1) / _nanmean(s2[:, post_mask], 1))
      s2 = v['w_norm_sq'] * (v['G'] + v['N'])
      sigma_gn_ratio = np.sqrt(_nanmean(s2[:, pre_mask], 1) / _nanmean(s2[:, post_mask], 1))
    factor = lr_after / lr_before
    le, le_after = _arm_constant(m, 'intrinsic_lr', i - 1), _arm_constant(m, 'intrinsic_lr', i)
    discrete = math.sqrt(le_after * (2 - le_after) / (le * (2 - le))) * sigma_gn_ratio
    result.append(LRDropArm(
        arm, drop, factor, pre, post, eff[:, i] / level, eff[:, i + 1] / level,
        _nanmean(eff[:, post_mask], 1) / level, math.sqrt(factor),
        math.sqrt(factor) * sigma_ratio, discrete))
  if not result:
    raise ValueError(f'{workdir}: no arm changes its LR; is it an lr_drop run?')
  return result


def lr_drop_summary(arms: list[LRDropArm]) -> list[str]:
  lines = ['Effective LR after the LR drop, as a ratio to its pre-drop level '
           '(mean over trials [± 2 SE])']
  for a in arms:
    lines += [
        f'{a.arm}: LR x {a.lr_factor:g} at step {a.drop_step:g}; pre window steps '
        f'{a.pre_window[0]:g}-{a.pre_window[1]:g}, post window {a.post_window[0]:g}-'
        f'{a.post_window[1]:g}; {np.isfinite(a.recovered).sum()} trials',
        f'  at the drop (new LR, old weights): {_fmt_interval(a.immediate)} '
        f'(Lemma 5.2: {a.lr_factor:g}); next eval: {_fmt_interval(a.next_eval)}',
        f'  recovered: {_fmt_interval(a.recovered)}; predicted sqrt({a.lr_factor:g}) = '
        f'{a.predicted:.4f}' + (f'; with the measured sigma_pre/sigma_post: '
                                f'{_fmt_interval(a.predicted_sigma)}; discrete (G+N, '
                                f'2 - lambda_e): {_fmt_interval(a.predicted_discrete)}'
                                if np.isfinite(a.predicted_sigma).any() else ''),
    ]
  return lines


def plot_lr_drop(workdir: str | os.PathLike, arms: list[LRDropArm] | None = None,
                 axes: Sequence[Axes] | None = None) -> np.ndarray:
  """Two panels: eta/||w||^2 vs epoch per arm (controls included) with the pre level, /10 and
  /sqrt(10) marked; eta/||w||^2 over the pre level vs steps after the drop (log-log)."""
  axes = common.check_axes(axes, 2, 'plot_lr_drop')
  arms = lr_drop(workdir) if arms is None else arms
  metrics = common.load_metrics(workdir)
  for i, (arm, m) in enumerate(metrics.items()):
    _plot_mean_band(axes[0], m.epochs, m.values['effective_lr'], f'C{i % 10}',
                    f'{arm} ({len(m.trials)} trials)')
  for i, a in enumerate(arms):
    m = metrics[a.arm]
    steps, color = _steps(m), f'C{list(metrics).index(a.arm) % 10}'
    level = _nanmean(_nanmean(m.values['effective_lr'][:, _window_mask(steps, *a.pre_window)],
                              1), 0)
    for factor, style in ((1.0, '-'), (a.lr_factor, ':'), (a.predicted, '--')):
      axes[0].axhline(level * factor, color=color, linestyle=style, linewidth=0.8, alpha=0.7)
    after = steps >= a.drop_step
    ratio = m.values['effective_lr'][:, after] / level
    _plot_mean_band(axes[1], steps[after] - a.drop_step + 1, ratio, color, a.arm)
    axes[1].axhline(a.predicted, color='k', linestyle='--', linewidth=0.8,
                    label=f'√{a.lr_factor:g} = {a.predicted:.3f}' if i == 0 else None)
    axes[1].axhline(a.lr_factor, color='k', linestyle=':', linewidth=0.8,
                    label=f'{a.lr_factor:g}' if i == 0 else None)
  axes[0].set_yscale('log')
  axes[0].set_xlabel('epoch')
  axes[0].set_ylabel('effective LR η/‖w‖²')
  axes[0].set_title('η/‖w‖²: pre level (—), ×0.1 (··), ×1/√10 (--)', fontsize='medium')
  axes[0].legend(fontsize='small')
  axes[1].set_xscale('log')
  axes[1].set_yscale('log')
  axes[1].set_xlabel('steps after the LR drop + 1')
  axes[1].set_ylabel('η/‖w‖² ÷ pre-drop level')
  axes[1].set_title('Recovery after LR/10 (mean, 10–90% band)', fontsize='medium')
  axes[1].legend(fontsize='small')
  return axes


# ---- Item 5: mixing time. ----


@dataclasses.dataclass(frozen=True)
class MixingArm:
  """Mixing times of one arm after eta / 10, lambda x 10 at `perturb_step`.

  Attributes:
    arm, intrinsic_lr, perturb_step: as named.
    eff_steps: per trial [T], steps until eta/||w||^2 is back (NaN where it never is).
    error_steps: steps until the trial-mean test error is back (None: never).
    error_interval: 95% percentile bootstrap interval over trials of `error_steps` (NaN bounds
      when more than 5% of the resamples never return).
  """

  arm: str
  intrinsic_lr: float
  perturb_step: float
  eff_steps: np.ndarray
  error_steps: float | None
  error_interval: tuple[float, float]


def mixing(workdir: str | os.PathLike, tol: float = 0.1, window_evals: int = 5,
           error_tol: float = 0.15, error_window_evals: int = 5, ref_fraction: float = 0.25,
           num_resamples: int = 200, seed: int = 0) -> list[MixingArm]:
  """Steps to equilibrium per arm of a mixing_time run (`steps_to_equilibrium`, stay=True).

  Args:
    workdir: the run's workdir.
    tol, window_evals: relative tolerance and running-mean window (in evaluation intervals) of
      the detector on each trial's eta / ||w||^2.
    error_tol, error_window_evals: the same for the trial-mean test error. It is noisier (a few
      test examples flip per eval: on the CPU run ~±0.5% absolute on 6-14% for a mean of 8
      trials), hence the wider default band: at 10% one arm's curve left the band again late
      in the run (no return detected) and the bootstrap intervals of three arms were open.
    ref_fraction: the reference window is the last `ref_fraction` of the steps before the change.
    num_resamples, seed: of the bootstrap over trials for the test error.
  """
  rng = np.random.default_rng(seed)
  result = []
  for arm, m in common.load_metrics(workdir).items():
    change = change_step(m)
    if change is None:
      continue
    steps = _steps(m)
    every = float(np.median(np.diff(steps)))
    eff_kw = dict(ref_window=ref_fraction * change, window=window_evals * every, tol=tol)
    err_kw = dict(ref_window=ref_fraction * change, window=error_window_evals * every,
                  tol=error_tol)

    def detect(values, kw):
      t = steps_to_equilibrium(steps, values, change, **kw)
      return np.nan if t is None else t

    eff = np.array([detect(row, eff_kw) for row in m.values['effective_lr']])
    error = 1 - m.values['test_accuracy']
    main = steps_to_equilibrium(steps, _nanmean(error, 0), change, **err_kw)
    boot = np.array([detect(_nanmean(error[rng.integers(0, len(error), len(error))], 0), err_kw)
                     for _ in range(num_resamples)])
    if np.isnan(boot).mean() > 0.05:
      interval = (math.nan, math.nan)
    else:
      interval = tuple(float(q) for q in np.nanpercentile(boot, [2.5, 97.5]))
    row = int(np.flatnonzero(steps >= change)[0])
    result.append(MixingArm(arm, _arm_constant(m, 'intrinsic_lr', row), change, eff, main,
                            interval))
  if not result:
    raise ValueError(f'{workdir}: no arm changes its LR or WD; is it a mixing_time run?')
  return sorted(result, key=lambda a: a.intrinsic_lr)


def predicted_mixing_slope(tol: float, factor: float = 10.0) -> float:
  """c in "steps = c / lambda_e" for eta/||w||^2 to return within `tol` of its level after
  eta / factor, lambda x factor at equilibrium, at constant sigma (the SDE of Lemma 5.2).

  With y = ||w||^4: dy/dt = 2 ||w||^2 d||w||^2/dt = -4 lambda_e y + 2 eta^2 sigma^2, so y relaxes to
  y* = eta^2 sigma^2 / (2 lambda_e) at rate 4 lambda_e. The change leaves y = factor^2 y*' (the new
  y*' = y* / factor^2), and eta/||w||^2 over its level is sqrt(y*' / y): it is within `tol` once
  y / y*' - 1 <= (1 - tol)^-2 - 1, i.e. after ln((factor^2 - 1) / ((1 - tol)^-2 - 1)) / 4 / lambda_e
  steps (1.51 / lambda_e for tol = 0.1, factor = 10; no intercept).
  """
  return math.log((factor ** 2 - 1) / ((1 - tol) ** -2 - 1)) / 4


def _fit_line(x: np.ndarray, y: np.ndarray) -> LinearFit | None:
  ok = np.isfinite(y)
  return linear_fit(x[ok], y[ok]) if ok.sum() >= 2 and np.ptp(x[ok]) > 0 else None


def mixing_fits(arms: list[MixingArm]) -> dict[str, LinearFit | None]:
  """Linear fits of steps-to-equilibrium vs 1 / lambda_e: 'effective_lr' (per-arm mean over
  trials that return) and 'test_error' (trial-mean curve)."""
  inv = np.array([1 / a.intrinsic_lr for a in arms])
  eff = np.array([np.nanmean(a.eff_steps) if np.isfinite(a.eff_steps).any() else np.nan
                  for a in arms])
  err = np.array([np.nan if a.error_steps is None else a.error_steps for a in arms])
  return {'effective_lr': _fit_line(inv, eff), 'test_error': _fit_line(inv, err)}


def mixing_summary(arms: list[MixingArm], tol: float, window_evals: int, error_tol: float,
                   error_window_evals: int) -> list[str]:
  lines = [f'Steps to equilibrium after eta/10, lambda x10 (detector: first step from which the '
           f'centred running mean stays within tol of the pre-change mean; eff. LR per trial: '
           f'{window_evals} evals, tol {tol:.0%}; trial-mean test error: {error_window_evals} '
           f'evals, tol {error_tol:.0%})',
           f'{"lambda_e":>9} {"1/lambda_e":>10} {"eff. LR: steps, mean [± 2 SE]":>32} '
           f'{"returned":>8} {"test error: steps [95% bootstrap]":>36}']
  for a in arms:
    n_ok = int(np.isfinite(a.eff_steps).sum())
    err = 'never' if a.error_steps is None else f'{a.error_steps:g}'
    lines.append(f'{a.intrinsic_lr:>9.4g} {1 / a.intrinsic_lr:>10.1f} '
                 f'{_fmt_interval(a.eff_steps):>32} {n_ok:>4}/{len(a.eff_steps):<3} '
                 f'{err + f" [{a.error_interval[0]:g}, {a.error_interval[1]:g}]":>36}')
  for name, fit in mixing_fits(arms).items():
    if fit is None:
      lines.append(f'fit {name}: too few arms returned')
    else:
      lines.append(f'fit {name}: steps = {fit.slope:.3f} / lambda_e + {fit.intercept:.1f}, '
                   f'R^2 = {fit.r2:.4f}')
  lines.append(f'SDE at constant sigma (predicted_mixing_slope): eta/||w||^2 returns within '
               f'{tol:.0%} after {predicted_mixing_slope(tol):.3f} / lambda_e steps')
  return lines


def plot_mixing(workdir: str | os.PathLike, arms: list[MixingArm] | None = None,
                axes: Sequence[Axes] | None = None, tol: float | None = None) -> np.ndarray:
  """Three panels: eta/||w||^2 over its pre-change level and the trial-mean test error vs steps
  after the change, per lambda_e (detected times marked); steps to equilibrium vs 1/lambda_e
  with the linear fits and the constant-sigma SDE line for the eta/||w||^2 tolerance `tol`
  (default 0.1, the detector's default)."""
  axes = common.check_axes(axes, 3, 'plot_mixing')
  arms = mixing(workdir) if arms is None else arms
  metrics = common.load_metrics(workdir)
  for i, a in enumerate(arms):
    m, color = metrics[a.arm], f'C{i % 10}'
    steps = _steps(m)
    pre = (steps < a.perturb_step) & (steps >= 0.75 * a.perturb_step)
    eff = m.values['effective_lr']
    level = _nanmean(eff[:, pre], 1)[:, None]
    x = steps - a.perturb_step
    _plot_mean_band(axes[0], x, eff / level, color, f'λe={a.intrinsic_lr:g}')
    axes[1].plot(x, 100 * _nanmean(1 - m.values['test_accuracy'], 0), color=color,
                 label=f'λe={a.intrinsic_lr:g}')
    if np.isfinite(a.eff_steps).any():
      axes[0].axvline(np.nanmean(a.eff_steps), color=color, linestyle=':', linewidth=0.8)
    if a.error_steps is not None:
      axes[1].axvline(a.error_steps, color=color, linestyle=':', linewidth=0.8)
  span = max(float(_steps(metrics[a.arm])[-1] - a.perturb_step) for a in arms)
  for ax in axes[:2]:
    ax.set_xlim(-0.15 * span, span)
  axes[0].set_yscale('log')
  axes[0].set_xlabel('steps after the change')
  axes[0].set_ylabel('η/‖w‖² ÷ pre-change level')
  axes[0].set_title('Effective LR after η/10, λ×10 (·· detected)', fontsize='medium')
  axes[0].legend(fontsize='small')
  axes[1].set_xlabel('steps after the change')
  axes[1].set_ylabel('test error (%), mean over trials')
  axes[1].set_title('Test error (·· detected)', fontsize='medium')
  ax = axes[2]
  inv = np.array([1 / a.intrinsic_lr for a in arms])
  fits = mixing_fits(arms)
  eff = np.array([mean_interval(a.eff_steps) for a in arms])
  ax.errorbar(inv, eff[:, 0], yerr=[eff[:, 0] - eff[:, 1], eff[:, 2] - eff[:, 0]], marker='o',
              linestyle='none', capsize=3, color='C0', label='η/‖w‖² (mean ± 2 SE)')
  err = np.array([np.nan if a.error_steps is None else a.error_steps for a in arms])
  lo = np.array([a.error_interval[0] for a in arms])
  hi = np.array([a.error_interval[1] for a in arms])
  ax.errorbar(inv, err, yerr=[np.nan_to_num(err - lo), np.nan_to_num(hi - err)], marker='s',
              linestyle='none', capsize=3, color='C3', label='test error (95% bootstrap)')
  xs = np.linspace(0, inv.max() * 1.05, 50)
  tol = 0.1 if tol is None else tol
  ax.plot(xs, predicted_mixing_slope(tol) * xs, color='k', linestyle=':', linewidth=1,
          label=f'SDE, constant σ, tol {tol:.0%}: {predicted_mixing_slope(tol):.2f}/λe')
  for (name, fit), color in zip(fits.items(), ('C0', 'C3'), strict=True):
    if fit is not None:
      ax.plot(xs, fit.slope * xs + fit.intercept, color=color, linestyle='--', linewidth=1,
              label=f'{name}: {fit.slope:.2f}/λe {fit.intercept:+.0f}, R²={fit.r2:.3f}')
  points = np.concatenate([eff[:, 0], err])
  if np.isfinite(points).any():   # open-ended bootstrap bars would squash the points
    ax.set_ylim(0, 1.4 * np.nanmax(points))
  ax.set_xlabel('1 / λe (steps)')
  ax.set_ylabel('steps to equilibrium')
  ax.set_title('Mixing time vs 1/λe', fontsize='medium')
  ax.legend(fontsize='small')
  return axes


# ---- CLI. ----


def _save(axes: np.ndarray, out: pathlib.Path, name: str) -> list[pathlib.Path]:
  return common.save_figure(axes.flat[0].figure, out / name)


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog='python -m analysis.equilibrium',
                                   description=__doc__.split('\n\n')[0])
  parser.add_argument('figure', choices=('stationary', 'lr_drop', 'mixing'))
  parser.add_argument('workdir')
  parser.add_argument('--out', default=None, help='figure folder (default: WORKDIR/figures)')
  parser.add_argument('--window', nargs=2, type=float, metavar=('START', 'END'),
                      help='stationary: equilibrium window in epochs (default: last third)')
  parser.add_argument('--tol', type=float, default=0.1,
                      help='mixing: detector tolerance for eta/||w||^2')
  parser.add_argument('--window-evals', type=int, default=5,
                      help='mixing: detector running-mean window for eta/||w||^2, in evals')
  parser.add_argument('--error-tol', type=float, default=0.15,
                      help='mixing: detector tolerance for the trial-mean test error')
  parser.add_argument('--error-window-evals', type=int, default=5,
                      help='mixing: detector running-mean window for the test error, in evals')
  args = parser.parse_args(argv)
  if not (pathlib.Path(args.workdir) / 'metrics.jsonl').exists():
    parser.error(f'{args.workdir} has no metrics.jsonl: is it the workdir of a run?')
  out = pathlib.Path(args.workdir) / 'figures' if args.out is None else pathlib.Path(args.out)
  try:
    if args.figure == 'stationary':
      arms = stationary(args.workdir, args.window)
      paths = _save(plot_stationary(args.workdir, arms), out, 'stationary_lr')
      lines = stationary_summary(arms)
    elif args.figure == 'lr_drop':
      arms = lr_drop(args.workdir)
      paths = _save(plot_lr_drop(args.workdir, arms), out, 'lr_drop')
      lines = lr_drop_summary(arms)
    else:
      arms = mixing(args.workdir, args.tol, args.window_evals, args.error_tol,
                    args.error_window_evals)
      paths = _save(plot_mixing(args.workdir, arms, tol=args.tol), out, 'mixing_time')
      lines = mixing_summary(arms, args.tol, args.window_evals, args.error_tol,
                             args.error_window_evals)
  except ValueError as e:
    print(f'analysis.equilibrium: {e}', file=sys.stderr)
    return 2
  print(f'Figure {paths[0].stem} ({"/".join(FIGURE_FORMATS)}) in '
        f'{paths[0].parent}')
  print('\n'.join(lines))
  return 0


if __name__ == '__main__':
  sys.exit(main())
