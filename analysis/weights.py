"""Weights as pytrees: averages, norms and distances, one trial's slice, the saved snapshots of a
run and the evaluation of any weights as the run evaluated its own (analysis/weight_distance.py)."""

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import jax
import ml_collections
import numpy as np

from svag_jax import data as data_lib
from svag_jax import evaluate
from svag_jax import workdir as workdir_lib

DEFAULT_BN_BATCHES = 50  # 0.9^50 < 0.6% of the starting statistics remain

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


def trial(tree: Tree, index: int) -> Tree:
  """The tree of trial `index` of a tree of [T, ...] leaves."""
  return jax.tree.map(lambda x: x[index], tree)


# ---- Evaluating saved weights (forward passes only). ----


def config_of(workdir: str | os.PathLike) -> ml_collections.ConfigDict:
  """The run's config (config.json) as a ConfigDict."""
  return ml_collections.ConfigDict(workdir_lib.read_config(workdir))


@dataclasses.dataclass
class Evaluator:
  """Test loss and accuracy of networks given by their variables, as the run evaluated them.

  Attributes:
    evaluation: the run's evaluation (`svag_jax.evaluate.Evaluator.from_config`), with bn_batches
      the number of BatchNorm refresh batches used here.
    data: the training split (for the BatchNorm refresh and the normalisation statistics).
    test: the test split in evaluation batches.
  """

  evaluation: evaluate.Evaluator
  data: data_lib.TrainData
  test: data_lib.EvalSplit

  @classmethod
  def from_workdir(cls, workdir: str | os.PathLike, bn_batches: int | None = None) -> 'Evaluator':
    """Rebuilds the run's data and model from config.json. `bn_batches`: BatchNorm refresh
    batches (None: the run's train.eval_bn_batches, or DEFAULT_BN_BATCHES if that is 0)."""
    cfg = config_of(workdir)
    ds = data_lib.load(cfg.data)
    k = bn_batches if bn_batches is not None else (cfg.train.eval_bn_batches or DEFAULT_BN_BATCHES)
    evaluation = evaluate.Evaluator.from_config(cfg, ds.num_classes, bn_batches=k)
    data = data_lib.TrainData(ds.train_images, ds.train_labels, ds.mean, ds.std)
    test = data_lib.make_eval_split(ds.test_images, ds.test_labels, cfg.train.eval_batch_size)
    return cls(evaluation, data, test)

  @property
  def bn_batches(self) -> int:
    """The BatchNorm refresh batches of every evaluation."""
    return self.evaluation.bn_batches

  def __call__(self, variables: dict) -> dict[str, np.ndarray]:
    """Evaluates T networks at once.

    Args:
      variables: {'params', 'batch_stats', 'frozen'} with leaves [T, ...] (as `read_params`).

    Returns:
      {'test_loss': float [T], 'test_accuracy': float [T]}.
    """
    result, _ = self.evaluation(variables, {'test': self.test}, self.data)
    return result


# ---- The experiment: distances and averages from a workdir's snapshots. ----


class Snapshots:
  """The saved weights of a run, loaded on first use: `snapshots[epoch]` -> variables [T, ...]."""

  def __init__(self, workdir: str | os.PathLike):
    self.workdir = workdir
    self.epochs = workdir_lib.params_epochs(workdir)
    if not self.epochs:
      raise ValueError(
          f'{workdir} has no saved weights (params/): set train.params_at, e.g. '
          'configs/weight_distance.py.'
      )
    self._cache: dict[float, dict] = {}
    _, self.arms = workdir_lib.read_params(workdir, self.epochs[0])

  def __getitem__(self, epoch: float) -> dict:
    if epoch not in self._cache:
      self._cache[epoch], _ = workdir_lib.read_params(self.workdir, epoch)
    return self._cache[epoch]

  def window(self, start: float, delta: float) -> list[float]:
    """Saved epochs in [start, start + delta]."""
    return [e for e in self.epochs if start - 1e-9 <= e <= start + delta + 1e-9]
