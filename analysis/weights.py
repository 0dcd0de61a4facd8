"""Weights as pytrees: averages, norms and distances, one trial's slice, and the saved snapshots of
a run (`svag_jax.record.read_params`), distances along each trial's trajectory and their panel.
Host-side NumPy; nothing here evaluates a network (analysis/weight_distance.py does, for its SWA
panel)."""

import os
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from matplotlib.axes import Axes

from svag_jax import record
from svag_jax.analysis import common, plots, stats

Tree = Any


# ---- Pytree helpers (nested dicts of arrays; numpy, host side). ----


def average(trees: Sequence[Tree]) -> Tree:
  """The leafwise mean of trees of equal structure (accumulated in float64, returned in the
  first tree's dtypes)."""
  if not trees:
    raise ValueError('average of no trees')
  return jax.tree.map(
      lambda *xs: np.mean(np.stack([np.asarray(x, np.float64) for x in xs]), axis=0).astype(
          np.asarray(xs[0]).dtype
      ),
      *trees,
  )


def sq_norm(tree: Tree, batch_dims: int = 0) -> np.ndarray:
  """Sum of squares of every entry of every leaf, over all but the first `batch_dims` axes.

  Returns:
    float64 [*leaf.shape[:batch_dims]] (a scalar array for batch_dims = 0).
  """

  def leaf(x):
    x = np.asarray(x, np.float64)
    return np.sum(x * x, axis=tuple(range(batch_dims, x.ndim)))

  return sum(jax.tree.leaves(jax.tree.map(leaf, tree)), np.zeros(()))


def distance(a: Tree, b: Tree, batch_dims: int = 0) -> np.ndarray:
  """Euclidean distance ||a - b|| of two trees of equal structure, seen as one flat vector each;
  over all but the first `batch_dims` axes (e.g. 1 for per-trial distances of [T, ...] leaves)."""
  return np.sqrt(
      sq_norm(jax.tree.map(lambda x, y: np.asarray(x, np.float64) - y, a, b), batch_dims)
  )


def trial_vectors(tree: Tree) -> np.ndarray:
  """float64 [T, D]: each trial's entries of a tree of [T, ...] leaves as one flat vector."""
  leaves = jax.tree.leaves(tree)
  return np.concatenate([np.asarray(x, np.float64).reshape(len(x), -1) for x in leaves], axis=1)


def relative_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """The relative distance of weights: ||a - b|| / sqrt((||a||^2 + ||b||^2) / 2).

  Over the last axis of flat weight vectors float [..., D] (e.g. rows of `trial_vectors`),
  broadcast over the others. 0 for equal weights and sqrt(2) for any two orthogonal ones whatever
  their norms (two independent directions in high dimension); symmetric in a and b, and unchanged
  when both are scaled alike (the loss of a scale-invariant net sees the direction only). The one
  relative distance of the analyses (fast_equilibrium, weight_distance).
  """
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  mean_sq = (np.sum(a * a, axis=-1) + np.sum(b * b, axis=-1)) / 2
  return np.sqrt(np.sum((a - b) ** 2, axis=-1) / mean_sq)


def trial(tree: Tree, index: int) -> Tree:
  """The tree of trial `index` of a tree of [T, ...] leaves."""
  return jax.tree.map(lambda x: x[index], tree)


# ---- The saved weights of a run. ----


class Snapshots:
  """The saved weights of a run, loaded on first use: `snapshots[epoch]` -> variables [T, ...]."""

  def __init__(self, workdir: str | os.PathLike):
    self.workdir = workdir
    self.epochs = record.params_epochs(workdir)
    if not self.epochs:
      raise ValueError(
          f'{workdir} has no saved weights (params/): set train.params_at, e.g. '
          'configs/weight_distance.py.'
      )
    self._cache: dict[float, dict] = {}
    _, self.arms = record.read_params(workdir, self.epochs[0])

  def __getitem__(self, epoch: float) -> dict:
    if epoch not in self._cache:
      self._cache[epoch], _ = record.read_params(self.workdir, epoch)
    return self._cache[epoch]

  def window(self, start: float, delta: float) -> list[float]:
    """Saved epochs in [start, start + delta]."""
    return [e for e in self.epochs if start - 1e-9 <= e <= start + delta + 1e-9]


# ---- Distances along each trial's trajectory. ----


def trajectory_distances(
    snapshots: Snapshots, lambda_e: dict[str, np.ndarray], starts: Sequence[float]
) -> dict[str, dict[float, tuple[np.ndarray, np.ndarray, float]]]:
  """How far each trial's weights move along its own trajectory at a constant intrinsic LR.

  Args:
    snapshots: the run's saved weights (rows in the order of the global trials).
    lambda_e: {arm: (epochs [E], intrinsic LR [E], trials int [T_arm])}: the arm's evaluation
      epochs, its intrinsic LR there (the value the next step uses) and its global trial indices.
    starts: the start epochs T (those not saved are skipped).

  Returns:
    {arm: {T: (deltas float [K] epochs, rel float [T_arm, K], lambda_e)}}: `relative_distance`
    of W_i(T) and W_i(T + delta) for every saved T + delta > T up to which the arm's intrinsic LR
    stays its value at T (evaluations in [T, T + delta)); starts without such a T + delta are
    left out.
  """
  result: dict[str, dict[float, tuple[np.ndarray, np.ndarray, float]]] = {}
  saved = [e for e in snapshots.epochs]
  for arm, (epochs, values, trials) in lambda_e.items():
    for start in (s for s in starts if s in saved):
      at_start = float(values[int(np.argmin(np.abs(epochs - start)))])
      later = []
      for end in (e for e in saved if e > start):
        during = values[(epochs >= start - 1e-9) & (epochs < end - 1e-9)]
        if not np.allclose(during, at_start, rtol=1e-6):
          break
        later.append(end)
      if not later:
        continue
      v0 = trial_vectors(snapshots[start]['params'])[trials]
      rel = np.stack(
          [relative_distance(v0, trial_vectors(snapshots[e]['params'])[trials]) for e in later],
          axis=1,
      )
      result.setdefault(arm, {})[float(start)] = (np.asarray(later) - start, rel, at_start)
  return result


def trajectory_lines(distances: dict[str, dict[float, tuple]]) -> list[str]:
  """Per arm and start T: the relative distance at each delta, mean [95% interval] over trials."""
  lines = []
  for arm, by_start in distances.items():
    for start, (deltas, rel, le) in by_start.items():
      parts = [
          f'{d:g} {stats.format_interval(*stats.interval(rel[:, k]), ".3f")}'
          for k, d in enumerate(deltas)
      ]
      lines.append(
          f'weights, {arm} from epoch {start:g} (lambda_e {le:g}): ||W_i(T) - W_i(T+delta)|| / '
          f'||W|| at delta (epochs) ' + '; '.join(parts)
      )
  return lines


def plot_trajectory(
    distances: dict[str, dict[float, tuple]],
    steps_per_epoch: float,
    axes: Sequence[Axes] | None = None,
) -> np.ndarray:
  """The relative distance along each trajectory vs delta in units of 1 / lambda_e (log x), one
  line per arm and start T with lambda_e > 0 (mean and interval over trials; a marker where there
  is one delta), and sqrt(2), independent directions."""
  (ax,) = common.check_axes(axes, 1, 'plot_trajectory')
  colors = {arm: f'C{i % 10}' for i, arm in enumerate(distances)}
  for arm, by_start in distances.items():
    for k, (start, (deltas, rel, le)) in enumerate(by_start.items()):
      if le <= 0:  # no intrinsic time scale (lambda = 0): listed in the summary only
        continue
      x = deltas * steps_per_epoch * le
      style = dict(color=colors[arm], ls=('-', '--', ':')[k % 3], label=f'{arm}, T = {start:g}')
      plots.plot_mean_interval(ax, x, rel, marker='o' if x.size == 1 else None, **style)
  ax.axhline(np.sqrt(2), color='0.5', linestyle=':', label='√2: independent directions')
  ax.set_xscale('log')
  ax.set_xlabel('Δ in units of 1/λe (steps × λe)')
  ax.set_ylabel('‖W_i(T) − W_i(T+Δ)‖ / ‖W‖')
  ax.set_title(
      f'Weights along one trajectory at constant λe (mean, {stats.INTERVAL})', fontsize='medium'
  )
  ax.legend(fontsize='small')
  ax.grid(alpha=0.3)
  return np.asarray([ax])
