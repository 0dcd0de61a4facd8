"""Evaluating networks given by their variables: loss, accuracy, predictions, BatchNorm refresh.

A network is `(model, variables)`: a Flax Linen module `(x[, train]) -> logits` and its variables
`{'params', 'batch_stats', 'frozen'}` (the trainable weights, the BatchNorm running statistics,
{} for batch-independent norms, and the variables never trained, e.g. the built-in models' fixed
random head, {} for a model without them). A model's `train` argument, where it has one, gets
True in training mode and False in evaluation (`svag_jax.models.external.train_kwargs`). Nothing
here needs a training state, an optimizer or a schedule, so the training loop (through
`trials.TrialRunner`) and the analyses of saved weights (e.g. analysis/weights.py) evaluate with
the same code:

  - `Evaluator.one(variables, splits, data)`: one network;
  - `Evaluator.trials(variables, splits, data)`: the ONE mapped form, over a leading trial axis of
    every variable leaf (a vmap of `one`; traceable, jitted by its caller; `trials.TrialRunner` in
    mode 'side_by_side' calls `one` per trial instead, unbatched);
  - `Evaluator.__call__`: `trials` jitted, results on the host (for analyses).

Images are uint8 and normalised inside with the training-set statistics of `data`.
"""

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from svag_jax import models, precision
from svag_jax.data import EvalSplit, TrainData, normalize
from svag_jax.models.external import train_kwargs

Variables = dict[str, Any]  # {'params', 'batch_stats', 'frozen'}


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Per-example cross-entropy [B] of logits [B, K] and int labels [B] (nats)."""
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def model_loss(
    model: nn.Module,
    variables: Variables,
    images: jax.Array,
    labels: jax.Array,
    train: bool,
    weights: jax.Array | None = None,
) -> tuple[jax.Array, Any]:
  """Cross-entropy of a batch of normalised images [n, H, W, C] and labels int32 [n].

  The mean over the batch (weights None) or the weighted sum sum_i weights_i l_i (weights
  float32 [n]); the second value is the new BatchNorm statistics in training mode ({} for
  batch-independent norms), None in eval mode.
  """

  def reduce(per_example):
    return per_example.mean() if weights is None else jnp.sum(weights * per_example)

  if train:
    logits, updates = model.apply(
        variables, images, mutable=['batch_stats'], **train_kwargs(model, True)
    )
    return reduce(cross_entropy(logits, labels)), updates.get('batch_stats', {})
  logits = model.apply(variables, images, **train_kwargs(model, False))
  return reduce(cross_entropy(logits, labels)), None


def refreshed_batch_stats(
    model: nn.Module, variables: Variables, data: TrainData, num_batches: int, batch_size: int
) -> Any:
  """BatchNorm running statistics brought up to date with the current weights, for evaluation.

  The running averages (momentum 0.9) describe the weights of the last ~10 steps; an SI net at
  intrinsic LR eta*lambda turns its weights by ~sqrt(2 eta lambda) rad per step, so at large
  eta*lambda they lag and eval-mode accuracy of single trials can collapse while the training
  loss is fine. This runs `num_batches` train-mode forward passes over fixed training batches of
  `batch_size` (the first num_batches * batch_size examples, cycling; 0.9^num_batches of the old
  statistics remain) and returns the updated statistics; `variables` are not changed.
  """
  b = batch_size
  idx = jnp.arange(num_batches * b) % data.images.shape[0]

  def body(batch_stats, i):
    batch = jnp.take(data.images, jax.lax.dynamic_slice_in_dim(idx, i * b, b), axis=0)
    images = normalize(batch, data.mean, data.std)
    v = {**variables, 'batch_stats': batch_stats}
    _, updates = model.apply(v, images, mutable=['batch_stats'], **train_kwargs(model, True))
    return updates['batch_stats'], None

  batch_stats, _ = jax.lax.scan(body, variables['batch_stats'], jnp.arange(num_batches))
  return batch_stats


def evaluate_split(
    model: nn.Module, variables: Variables, split: EvalSplit, mean: jax.Array, std: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Mean loss and accuracy over a whole split (eval-mode norms) and the predicted classes.

  Returns:
    (loss, accuracy, predictions): float32 scalars (nats, fraction), and uint8 [nb * eb]
    (padding included).
  """
  v = {k: variables[k] for k in ('params', 'frozen', 'batch_stats') if k in variables}
  flag = train_kwargs(model, False)

  def batch_stats(batch):
    images, labels, mask = batch
    logits = model.apply(v, normalize(images, mean, std), **flag)
    pred = jnp.argmax(logits, -1)
    return (
        jnp.sum(cross_entropy(logits, labels) * mask),
        jnp.sum((pred == labels) * mask),
        pred.astype(jnp.uint8),
    )

  loss, correct, preds = jax.lax.map(batch_stats, (split.images, split.labels, split.mask))
  n = jnp.sum(split.mask)
  return jnp.sum(loss) / n, jnp.sum(correct) / n, preds.reshape(-1)


@dataclasses.dataclass(frozen=True)
class Evaluator:
  """How networks are evaluated: the model and the optional BatchNorm refresh.

  Attributes:
    model: a Flax Linen module `(x[, train]) -> logits` (module docstring), or
      `precision.LowPrecision` around one (train.precision 'tf32' / 'bf16').
    bn_batches: refresh BatchNorm statistics with this many training batches before each
      evaluation (`refreshed_batch_stats`; 0 = evaluate with the running averages as they are;
      ignored for batch-independent norms).
    bn_batch_size: examples per refresh batch (the run's training batch size B).
  """

  model: nn.Module
  bn_batches: int = 0
  bn_batch_size: int = 1

  @classmethod
  def from_config(
      cls, config: ml_collections.ConfigDict, num_classes: int, bn_batches: int | None = None
  ) -> 'Evaluator':
    """The evaluation of a run's config (model, train.eval_bn_batches, train.batch_size);
    `bn_batches` overrides train.eval_bn_batches."""
    k = config.train.eval_bn_batches if bn_batches is None else bn_batches
    if k < 0:
      raise ValueError(f'bn_batches = {k}: must be >= 0')
    model = precision.wrap(models.build(config.model, num_classes), config.train.precision)
    return cls(model, int(k), config.train.batch_size)

  def one(
      self, variables: Variables, splits: dict[str, EvalSplit], data: TrainData
  ) -> tuple[dict[str, jax.Array], jax.Array | None]:
    """`{split}_loss`, `{split}_accuracy` (float32 scalars) for each split, and the test-split
    predictions (uint8 [nb * eb], None without a 'test' split) of ONE network."""
    if self.bn_batches and jax.tree.leaves(variables['batch_stats']):
      variables = {
          **variables,
          'batch_stats': refreshed_batch_stats(
              self.model, variables, data, self.bn_batches, self.bn_batch_size
          ),
      }
    result, preds = {}, None
    for name, split in splits.items():
      loss, acc, pred = evaluate_split(self.model, variables, split, data.mean, data.std)
      result[f'{name}_loss'], result[f'{name}_accuracy'] = loss, acc
      if name == 'test':
        preds = pred
    return result, preds

  def trials(
      self, variables: Variables, splits: dict[str, EvalSplit], data: TrainData
  ) -> tuple[dict[str, jax.Array], jax.Array | None]:
    """`one` mapped over the leading trial axis [T, ...] of every variable leaf: metrics float32
    [T] and predictions uint8 [T, nb * eb]."""
    return jax.vmap(self.one, in_axes=(0, None, None))(variables, splits, data)

  @functools.cached_property
  def _jitted_trials(self):
    return jax.jit(self.trials)

  def __call__(
      self, variables: Variables, splits: dict[str, EvalSplit], data: TrainData
  ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """`trials`, jitted, with the results as host arrays (metrics float64 [T])."""
    result, preds = jax.device_get(self._jitted_trials(variables, splits, data))
    return {k: np.asarray(v, float) for k, v in result.items()}, preds
