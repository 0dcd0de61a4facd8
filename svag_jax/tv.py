"""Total variation between the prediction distributions of two groups of trained nets.

The Fast Equilibrium estimator (Li, Lyu & Arora 2020, Fig. 3b; DESIGN.md §2). Each group ("arm")
is T independently trained nets, summarised by their predicted classes on the same n test inputs:
uint8 [T, n]. For each input x, D_x and D'_x are the empirical distributions of the predicted class
over the trials of each arm, and

    TV = mean_x  1/2 sum_c |D_x(c) - D'_x(c)|                                    (in [0, 1]).

With finitely many trials the estimate is biased upwards: even two samples of the same distribution
differ, by ~ 1/sqrt(t) per input for t trials each. `tv_vs_trials` therefore reports TV as a
function of the number of trials t together with two baselines:
  - the sum of the two arms' mean test errors (the paper's dashed line: the TV two nets that agree
    on every correctly classified input could have at most);
  - the split-half TV of the first arm with itself: two *disjoint* t-trial subsets of it (only where
    2t <= T_a). It is the finite-sample floor (what TV reads when the distributions are equal);
    the papers do not have it.

Diverged trials: a row that is DIVERGED_PREDICTION (255, `svag_jax.record`) for every input is a
trial that diverged, not a net that predicts one class; every function here leaves such rows out
(`record.live_trials`: where 255 cannot be a class, i.e. num_classes <= 255), so T_a, T_b below
count live trials only.

Everything is vectorised over inputs (one `np.bincount` per histogram); loops run only over trial
counts and resamples.
"""

import dataclasses
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from svag_jax.record import DIVERGED_PREDICTION, live_trials

# Trial counts t at which `tv_vs_trials` evaluates TV by default (capped at what exists).
DEFAULT_TRIAL_COUNTS = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


@dataclasses.dataclass(frozen=True)
class PermutationTest:
  """TV between two arms against its permutation null (trials shuffled between the arms).

  Attributes:
    tv: the TV of the two arms with all their live trials (`tv_distance`).
    null_mean: the mean TV over the permutations: what TV reads when the two arms are one
      distribution, at the arms' own trial counts T_a and T_b.
    null_q95: the 95% quantile of the null.
    p_value: (1 + #{null >= tv}) / (1 + permutations), the one-sided p-value of "the arms'
      prediction distributions are equal".
    num_permutations: the number of shuffles.
  """

  tv: float
  null_mean: float
  null_q95: float
  p_value: float
  num_permutations: int


@dataclasses.dataclass(frozen=True)
class TVCurve:
  """TV between two arms as a function of the number of trials used from each.

  Attributes:
    trials: int [K], the trial counts t, increasing.
    tv: float [K], mean over resamples of the TV between a t-trial subset of each arm.
    tv_std: float [K], standard deviation of that TV over the resamples (0 when t uses every
      trial of both arms).
    floor: float [K], mean split-half TV of arm A with itself at t (two disjoint t-trial subsets);
      NaN where 2t > T_a.
    error_a, error_b: mean test error (fraction in [0, 1]) of each arm over all its trials; NaN
      when no labels were given.
    num_trials_a, num_trials_b: T_a, T_b, the live (not diverged) trials of each arm.
    permutation: the `permutation_test` of the two arms at T_a and T_b trials, where the caller
      ran it (`tv_vs_trials` does not: None).
  """

  trials: np.ndarray
  tv: np.ndarray
  tv_std: np.ndarray
  floor: np.ndarray
  error_a: float
  error_b: float
  num_trials_a: int
  num_trials_b: int
  permutation: PermutationTest | None = None

  @property
  def error_sum(self) -> float:
    """The paper's baseline: error_a + error_b (NaN when the errors are unknown)."""
    return self.error_a + self.error_b


def _check_predictions(name: str, pred: ArrayLike, num_classes: int) -> np.ndarray:
  """The live rows of `pred`: an integer array [T, n] with classes in [0, num_classes) once the
  rows of diverged trials (DIVERGED_PREDICTION everywhere) are dropped; ValueError otherwise."""
  pred = np.asarray(pred)
  if pred.ndim != 2:
    raise ValueError(f'{name} must be a [trials, test inputs] array; got shape {pred.shape}.')
  if not np.issubdtype(pred.dtype, np.integer):
    raise ValueError(f'{name} must hold integer class indices; got dtype {pred.dtype}.')
  if pred.shape[0] < 1 or pred.shape[1] < 1:
    raise ValueError(f'{name} needs at least one trial and one test input; got {pred.shape}.')
  live = live_trials(pred, num_classes)
  if not live.any():
    raise ValueError(
        f'{name}: all {pred.shape[0]} trials diverged (rows of '
        f'{DIVERGED_PREDICTION}); there is nothing to compare.'
    )
  pred = pred[live]
  lo, hi = int(pred.min()), int(pred.max())
  if lo < 0 or hi >= num_classes:
    raise ValueError(
        f'{name} holds class {lo if lo < 0 else hi}, outside [0, num_classes={num_classes}); '
        'pass the number of classes of the data set.'
    )
  return pred


def _check_num_classes(num_classes: int) -> None:
  if (
      isinstance(num_classes, bool)
      or not isinstance(num_classes, (int, np.integer))
      or (num_classes < 1)
  ):
    raise ValueError(f'num_classes must be a positive integer; got {num_classes!r}.')


def _check_pair(
    pred_a: ArrayLike, pred_b: ArrayLike, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
  _check_num_classes(num_classes)
  pred_a = _check_predictions('pred_a', pred_a, num_classes)
  pred_b = _check_predictions('pred_b', pred_b, num_classes)
  if pred_a.shape[1] != pred_b.shape[1]:
    raise ValueError(
        f'pred_a and pred_b must cover the same test inputs: pred_a has {pred_a.shape[1]}, '
        f'pred_b has {pred_b.shape[1]} (shapes {pred_a.shape} and {pred_b.shape}).'
    )
  return pred_a, pred_b


def class_histograms(pred: ArrayLike, num_classes: int) -> np.ndarray:
  """Empirical distribution of the predicted class of each test input over the trials.

  Args:
    pred: integer [T, n], the predicted class of trial i on test input x.
    num_classes: C; every entry of `pred` must lie in [0, C), except rows of diverged trials.

  Returns:
    float64 [n, C]; row x is D_x, the fraction of the live trials that predict each class (rows
    sum to 1).
  """
  _check_num_classes(num_classes)
  return _histograms(_check_predictions('pred', pred, num_classes), num_classes)


def _histograms(pred: np.ndarray, num_classes: int) -> np.ndarray:
  """`class_histograms` without the input checks (for validated arrays)."""
  num_trials, n = pred.shape
  flat = np.arange(n, dtype=np.int64) * num_classes + pred.astype(np.int64)  # [T, n]
  counts = np.bincount(flat.ravel(), minlength=n * num_classes).reshape(n, num_classes)
  return counts / num_trials


def _tv(hist_a: np.ndarray, hist_b: np.ndarray) -> float:
  """mean_x 1/2 sum_c |D_x(c) - D'_x(c)| of two histograms [n, C]."""
  return float(0.5 * np.abs(hist_a - hist_b).sum(axis=1).mean())


def tv_distance(pred_a: ArrayLike, pred_b: ArrayLike, num_classes: int) -> float:
  """TV between the prediction distributions of two arms, using every trial of each.

  Args:
    pred_a: integer [T_a, n], predicted classes of arm A's trials on n test inputs.
    pred_b: integer [T_b, n], the same for arm B (T_b may differ from T_a).
    num_classes: C, the number of classes (an upper bound on every prediction + 1).

  Returns:
    mean_x 1/2 sum_c |D_x(c) - D'_x(c)|, a float in [0, 1].
  """
  pred_a, pred_b = _check_pair(pred_a, pred_b, num_classes)
  return _tv(_histograms(pred_a, num_classes), _histograms(pred_b, num_classes))


def mean_error(pred: ArrayLike, labels: ArrayLike) -> float:
  """Mean over live trials and inputs of the test error: `pred` [T, n] against `labels` [n]
  (rows of diverged trials are left out unless DIVERGED_PREDICTION is a label)."""
  pred, labels = np.asarray(pred), np.asarray(labels)
  if pred.ndim != 2 or labels.shape != pred.shape[1:]:
    raise ValueError(
        f'labels must have one entry per test input: shape {labels.shape}, predictions '
        f'{pred.shape}.'
    )
  if not np.any(labels == DIVERGED_PREDICTION):
    pred = pred[live_trials(pred)]
  return float(np.mean(pred != labels[None, :])) if pred.size else float('nan')


def default_trial_counts(num_trials_a: int, num_trials_b: int) -> tuple[int, ...]:
  """10, 20, 50, 100, ... below min(T_a, T_b), plus T_a // 2 (the largest t with a split-half
  floor) and min(T_a, T_b) itself (the most trials a TV estimate can use)."""
  t_max = min(num_trials_a, num_trials_b)
  counts = {t for t in DEFAULT_TRIAL_COUNTS if t < t_max} | {t_max}
  if 1 <= num_trials_a // 2 <= t_max:
    counts.add(num_trials_a // 2)
  return tuple(sorted(counts))


def tv_vs_trials(
    pred_a: ArrayLike,
    pred_b: ArrayLike,
    labels: ArrayLike | None,
    num_classes: int,
    trial_counts: Sequence[int] | None = None,
    num_resamples: int = 5,
    seed: int = 0,
) -> TVCurve:
  """TV between arms A and B as a function of the number of trials, with both baselines.

  For each t, `num_resamples` times: draw t of the T_a trials of A and t of the T_b trials of B
  without replacement and compute the TV of their histograms; and, where 2t <= T_a, split a random
  permutation of A's trials into two disjoint t-trial halves and compute their TV (the floor).

  Args:
    pred_a: integer [T_a, n], predicted classes of arm A (the reference arm) on n test inputs;
      rows of diverged trials (DIVERGED_PREDICTION everywhere) are left out first.
    pred_b: integer [T_b, n], the same for arm B.
    labels: integer [n], the true test labels, used for the error baseline; or None, in which
      case `error_a` and `error_b` are NaN (fill them from elsewhere, e.g. the metrics).
    num_classes: C; every prediction must lie in [0, C).
    trial_counts: the t to evaluate, each in [1, min(T_a, T_b)]; default
      `default_trial_counts(T_a, T_b)`.
    num_resamples: resamples averaged at each t (>= 1).
    seed: seed of the subsampling (numpy Generator), so the curve is reproducible.

  Returns:
    A `TVCurve`.
  """
  pred_a, pred_b = _check_pair(pred_a, pred_b, num_classes)
  ta, tb = pred_a.shape[0], pred_b.shape[0]
  if trial_counts is None:
    trial_counts = default_trial_counts(ta, tb)
  counts = np.asarray(sorted(set(int(t) for t in trial_counts)), dtype=np.int64)
  if counts.size == 0 or counts[0] < 1 or counts[-1] > min(ta, tb):
    raise ValueError(
        f'trial_counts {tuple(trial_counts)} must be non-empty and each in [1, '
        f'min(T_a, T_b) = {min(ta, tb)}] (T_a = {ta}, T_b = {tb}).'
    )
  if num_resamples < 1:
    raise ValueError(f'num_resamples must be >= 1; got {num_resamples}.')

  rng = np.random.default_rng(seed)
  tv = np.zeros((len(counts), num_resamples))
  floor = np.full((len(counts), num_resamples), np.nan)
  for i, t in enumerate(counts):
    for r in range(num_resamples):
      idx_a, idx_b = rng.permutation(ta)[:t], rng.permutation(tb)[:t]
      hist_a = _histograms(pred_a[np.sort(idx_a)], num_classes)
      tv[i, r] = _tv(hist_a, _histograms(pred_b[np.sort(idx_b)], num_classes))
      if 2 * t <= ta:
        halves = np.sort(rng.permutation(ta)[: 2 * t].reshape(2, t), axis=1)
        floor[i, r] = _tv(
            _histograms(pred_a[halves[0]], num_classes), _histograms(pred_a[halves[1]], num_classes)
        )

  if labels is None:
    error_a = error_b = float('nan')
  else:
    error_a, error_b = mean_error(pred_a, labels), mean_error(pred_b, labels)
  return TVCurve(
      trials=counts,
      tv=tv.mean(axis=1),
      tv_std=tv.std(axis=1),
      floor=floor.mean(axis=1),
      error_a=error_a,
      error_b=error_b,
      num_trials_a=ta,
      num_trials_b=tb,
  )


def permutation_test(
    pred_a: ArrayLike,
    pred_b: ArrayLike,
    num_classes: int,
    num_permutations: int = 200,
    seed: int = 0,
) -> PermutationTest:
  """Is TV(A, B) larger than it would be if the two arms were one distribution?

  Pools the live trials of both arms, and `num_permutations` times splits a random permutation of
  the pool into groups of T_a and T_b trials and computes their TV: the null distribution of the
  estimator at exactly these trial counts (unlike the split-half floor of one arm, which uses
  t <= T_a / 2 trials per side and only arm A's spread). The trials of the two arms are independent
  nets, so under equality they are exchangeable and the test is exact.

  Args:
    pred_a, pred_b: integer [T_a, n] and [T_b, n], the arms' predicted classes on the same n test
      inputs (diverged rows left out).
    num_classes: C; every prediction must lie in [0, C).
    num_permutations: shuffles (>= 1); the smallest possible p-value is 1 / (1 + num_permutations).
    seed: seed of the shuffles (numpy Generator).

  Returns:
    A `PermutationTest`.
  """
  pred_a, pred_b = _check_pair(pred_a, pred_b, num_classes)
  if num_permutations < 1:
    raise ValueError(f'num_permutations must be >= 1; got {num_permutations}.')
  observed = _tv(_histograms(pred_a, num_classes), _histograms(pred_b, num_classes))
  pool, ta = np.concatenate([pred_a, pred_b]), pred_a.shape[0]
  rng = np.random.default_rng(seed)
  null = np.empty(num_permutations)
  for i in range(num_permutations):
    order = rng.permutation(pool.shape[0])
    null[i] = _tv(
        _histograms(pool[order[:ta]], num_classes), _histograms(pool[order[ta:]], num_classes)
    )
  return PermutationTest(
      tv=observed,
      null_mean=float(null.mean()),
      null_q95=float(np.quantile(null, 0.95)),
      p_value=float((1 + np.sum(null >= observed)) / (1 + num_permutations)),
      num_permutations=num_permutations,
  )
