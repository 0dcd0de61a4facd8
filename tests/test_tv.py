"""The total-variation estimator of svag_jax.tv (DESIGN.md §2): exact cases, its 1/sqrt(t) bias
for equal distributions, the split-half floor, and input checks."""

import numpy as np
import pytest

from svag_jax import tv

NUM_INPUTS = 1000
NUM_CLASSES = 3


def _class_probs(seed: int = 0) -> np.ndarray:
  """float [n, C]: a fixed random class distribution per test input (no class very rare)."""
  return np.random.default_rng(seed).dirichlet([4.0] * NUM_CLASSES, size=NUM_INPUTS)


def _sample(probs: np.ndarray, num_trials: int, seed: int) -> np.ndarray:
  """uint8 [T, n]: T independent trials, each predicting class c on input x w.p. probs[x, c]."""
  u = np.random.default_rng(seed).random((num_trials, probs.shape[0], 1))
  return (u > np.cumsum(probs, axis=1)[None]).sum(-1).astype(np.uint8)


def _expected_tv(probs: np.ndarray, t: int) -> float:
  """E[TV] of two independent t-trial samples of the same distributions, to leading order in t:
  1/2 sum_c E|p_hat - p_hat'| with p_hat - p_hat' ~ N(0, 2 p (1 - p) / t)."""
  return float(np.mean(np.sum(np.sqrt(probs * (1 - probs) / (np.pi * t)), axis=1)))


def test_class_histograms_counts_each_input():
  pred = np.array([[0, 1, 2], [0, 2, 2]], np.uint8)
  np.testing.assert_allclose(tv.class_histograms(pred, 3), [[1, 0, 0], [0, 0.5, 0.5], [0, 0, 1]])


def test_hand_computed_case():
  # Input 0: A predicts (0, 0) -> D = (1, 0, 0); B predicts (1, 0, 0, 0) -> D' = (3/4, 1/4, 0);
  #   TV_0 = 1/2 (1/4 + 1/4 + 0) = 1/4.
  # Input 1: A predicts (1, 2) -> D = (0, 1/2, 1/2); B predicts (2, 2, 2, 0) -> D' = (1/4, 0, 3/4);
  #   TV_1 = 1/2 (1/4 + 1/2 + 1/4) = 1/2.
  # TV = mean(1/4, 1/2) = 3/8.
  pred_a = np.array([[0, 1], [0, 2]], np.uint8)
  pred_b = np.array([[1, 2], [0, 2], [0, 2], [0, 0]], np.uint8)
  assert tv.tv_distance(pred_a, pred_b, 3) == pytest.approx(3 / 8, abs=1e-12)
  assert tv.tv_distance(pred_b, pred_a, 3) == pytest.approx(3 / 8, abs=1e-12)
  # t = T_a = T_b = 2 uses every trial, so every resample gives the same TV.
  curve = tv.tv_vs_trials(pred_a, pred_b[:2], None, 3, trial_counts=(2,))
  # B[:2]: input 0 -> (1/2, 1/2, 0): TV_0 = 1/2; input 1 -> (0, 0, 1): TV_1 = 1/2.
  np.testing.assert_allclose(curve.tv, [0.5], atol=1e-12)
  np.testing.assert_allclose(curve.tv_std, [0.0], atol=1e-12)


def test_disjoint_predictions_have_tv_one():
  rng = np.random.default_rng(0)
  pred_a = rng.integers(0, 2, size=(40, 30)).astype(np.uint8)  # classes 0, 1
  pred_b = rng.integers(2, 5, size=(60, 30)).astype(np.uint8)  # classes 2, 3, 4
  assert tv.tv_distance(pred_a, pred_b, 5) == 1.0
  curve = tv.tv_vs_trials(pred_a, pred_b, None, 5, num_resamples=3)
  np.testing.assert_array_equal(curve.tv, 1.0)
  np.testing.assert_array_equal(curve.tv_std, 0.0)


def test_identical_predictions_have_tv_zero():
  pred = np.random.default_rng(0).integers(0, 4, size=(8, 50)).astype(np.uint8)
  assert tv.tv_distance(pred, pred, 4) == 0.0
  assert tv.tv_distance(pred, pred[::-1], 4) == 0.0  # trial order does not matter


def test_equal_distributions_tv_shrinks_like_one_over_sqrt_t():
  probs = _class_probs()
  pred_a, pred_b = _sample(probs, 400, seed=1), _sample(probs, 400, seed=2)
  curve = tv.tv_vs_trials(pred_a, pred_b, None, NUM_CLASSES, trial_counts=(10, 50, 200))
  assert np.all(np.diff(curve.tv) < 0)
  # 4x the trials halves the TV; measured 1.99-2.01 over seeds, so +-7.5% is ~5 sigma.
  assert curve.tv[1] / curve.tv[2] == pytest.approx(2.0, rel=0.075)
  # and its value is the sampling bias the normal approximation predicts (within 5% at t >= 50).
  for t, value in zip((50, 200), curve.tv[1:], strict=True):
    assert value == pytest.approx(_expected_tv(probs, t), rel=0.05)


def test_split_half_floor():
  probs = _class_probs()
  pred_a, pred_b = _sample(probs, 400, seed=3), _sample(probs, 300, seed=4)
  curve = tv.tv_vs_trials(pred_a, pred_b, None, NUM_CLASSES, trial_counts=(20, 200, 300))
  # The floor needs two disjoint t-trial halves of A: defined for 2t <= T_a = 400 only.
  assert np.all(np.isfinite(curve.floor[:2])) and np.isnan(curve.floor[2])
  # For equal distributions the floor is what TV reads (both are two independent t-samples).
  np.testing.assert_allclose(curve.floor[:2], curve.tv[:2], rtol=0.05)
  # An arm whose trials all agree has no finite-sample floor.
  same = np.tile(pred_a[:1], (40, 1))
  np.testing.assert_array_equal(tv.tv_vs_trials(same, same, None, 3).floor[:1], 0.0)


def test_default_trial_counts_are_capped():
  assert tv.default_trial_counts(500, 500) == (10, 20, 50, 100, 200, 250, 500)
  assert tv.default_trial_counts(64, 100) == (10, 20, 32, 50, 64)
  assert tv.default_trial_counts(3, 3) == (1, 3)
  curve = tv.tv_vs_trials(np.zeros((64, 5), np.uint8), np.zeros((70, 5), np.uint8), None, 2)
  np.testing.assert_array_equal(curve.trials, (10, 20, 32, 50, 64))
  assert (curve.num_trials_a, curve.num_trials_b) == (64, 70)


def test_error_baseline_from_labels():
  labels = np.array([0, 1, 2, 0])
  pred_a = np.array([[0, 1, 2, 0], [0, 1, 2, 1]], np.uint8)  # 1 error in 8
  pred_b = np.array([[1, 1, 1, 1], [0, 1, 2, 0]], np.uint8)  # 3 errors in 8
  curve = tv.tv_vs_trials(pred_a, pred_b, labels, 3)
  assert (curve.error_a, curve.error_b, curve.error_sum) == (1 / 8, 3 / 8, 0.5)
  assert np.isnan(tv.tv_vs_trials(pred_a, pred_b, None, 3).error_sum)


def test_resampling_is_reproducible():
  probs = _class_probs()
  pred_a, pred_b = _sample(probs, 50, seed=5), _sample(probs, 50, seed=6)
  c1 = tv.tv_vs_trials(pred_a, pred_b, None, 3, seed=7)
  c2 = tv.tv_vs_trials(pred_a, pred_b, None, 3, seed=7)
  np.testing.assert_array_equal(c1.tv, c2.tv)
  np.testing.assert_array_equal(c1.floor, c2.floor)


@pytest.mark.parametrize(
    'pred_a, pred_b, num_classes, match',
    [
        (np.zeros((3, 5), np.uint8), np.zeros((3, 6), np.uint8), 2, 'same test inputs'),
        (np.zeros((3, 5), np.uint8), np.full((3, 5), 2, np.uint8), 2, 'class 2, outside'),
        (np.zeros((3, 5), np.int32), np.full((3, 5), -1, np.int32), 2, 'class -1, outside'),
        (np.zeros(5, np.uint8), np.zeros((3, 5), np.uint8), 2, r'\[trials, test inputs\]'),
        (np.zeros((3, 5), np.float32), np.zeros((3, 5), np.uint8), 2, 'integer class'),
        (np.zeros((0, 5), np.uint8), np.zeros((3, 5), np.uint8), 2, 'at least one trial'),
        (np.zeros((3, 5), np.uint8), np.zeros((3, 5), np.uint8), 0, 'num_classes'),
    ],
)
def test_bad_inputs_raise(pred_a, pred_b, num_classes, match):
  with pytest.raises(ValueError, match=match):
    tv.tv_distance(pred_a, pred_b, num_classes)
  with pytest.raises(ValueError, match=match):
    tv.tv_vs_trials(pred_a, pred_b, None, num_classes)


def test_bad_counts_and_labels_raise():
  pred = np.zeros((4, 5), np.uint8)
  with pytest.raises(ValueError, match=r'min\(T_a, T_b\) = 4'):
    tv.tv_vs_trials(pred, pred, None, 2, trial_counts=(2, 5))
  with pytest.raises(ValueError, match='num_resamples'):
    tv.tv_vs_trials(pred, pred, None, 2, num_resamples=0)
  with pytest.raises(ValueError, match='one entry per test input'):
    tv.tv_vs_trials(pred, pred, np.zeros(4, np.int32), 2)


def test_permutation_test_keeps_its_level_and_detects_a_shift():
  """Two arms of one distribution: p-values over 40 independent pairs are roughly uniform (at
  most 5 of 40 below 0.05 with 40 x 0.05 = 2 expected) and the null's mean is the observed TV's
  (the estimator's bias at these trial counts). A shift of 40% of the mass of every input (TV of
  the distributions 0.1) is rejected (p = the smallest possible)."""
  probs = _class_probs()
  ps, ratios = [], []
  for seed in range(40):
    a, b = _sample(probs, 24, 2 * seed + 1), _sample(probs, 24, 2 * seed + 2)
    test = tv.permutation_test(a, b, NUM_CLASSES, num_permutations=99, seed=seed)
    assert test.tv == pytest.approx(tv.tv_distance(a, b, NUM_CLASSES))
    ps.append(test.p_value)
    ratios.append(test.tv / test.null_mean)
  assert sum(p < 0.05 for p in ps) <= 5 and np.mean(ps) == pytest.approx(0.5, abs=0.12)
  assert np.mean(ratios) == pytest.approx(1.0, abs=0.03)
  shifted = 0.6 * probs + 0.4 * np.roll(probs, 1, axis=1)
  test = tv.permutation_test(_sample(probs, 24, 1), _sample(shifted, 24, 2), NUM_CLASSES, 99)
  assert test.p_value == pytest.approx(1 / 100) and test.tv > test.null_q95
  with pytest.raises(ValueError, match='num_permutations'):
    tv.permutation_test(_sample(probs, 4, 1), _sample(probs, 4, 2), NUM_CLASSES, 0)
