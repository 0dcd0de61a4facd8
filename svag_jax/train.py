"""One trial: its state, its pure training step and its evaluation.

Everything here is written for ONE network. Many trials are a map of these same functions over a
leading trial axis (svag_jax/trials.py), never a second implementation.
"""

import dataclasses
import functools
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from svag_jax import augment, metrics, optim, oracles
from svag_jax.schedules import Schedules, value_at

# Independent random streams derived from a trial's key with fold_in.
STREAM_INIT, STREAM_DATA, STREAM_BATCH, STREAM_SHUFFLE = 0, 1, 2, 3
# SVAG's second batch (a data key of its own), isotropic noise (from the trial key), NGD's z and
# the G/N estimates' batches (from the data key).
STREAM_SVAG, STREAM_NOISE, STREAM_NGD, STREAM_GN = 4, 5, 6, 7
# Crop + flip augmentation of a batch: fold_in(fold_in(data key, STREAM_AUG), step) with the data
# key of that batch (SVAG's second batch: its own data key; G/N batches: the G/N key).
STREAM_AUG = 8


@flax.struct.dataclass
class TrainState:
  """Everything one trial needs to continue training: a pytree, checkpointed as is.

  Attributes:
    step: int32 scalar, optimizer steps taken so far.
    params: trainable (scale-invariant) weights.
    batch_stats: BatchNorm running statistics ({} for batch-independent norms).
    frozen: the fixed random head (never trained).
    opt_state: optax state of `Trainer.optimizer` (`optim.sgd`, preceded by svag / noise).
    key: typed PRNG key of the trial's data order; step t draws from fold_in(key, t).
    schedules: the trial's LR and WD schedules (arrays, so trials may differ).
  """

  step: jax.Array
  params: Any
  batch_stats: Any
  frozen: Any
  opt_state: optax.OptState
  key: jax.Array
  schedules: Schedules


@flax.struct.dataclass
class TrainData:
  """The training split on the device: uint8 images [N, H, W, C], int32 labels [N], and the
  per-channel mean/std float32 [C] used to normalise images inside the step."""

  images: jax.Array
  labels: jax.Array
  mean: jax.Array
  std: jax.Array


@flax.struct.dataclass
class EvalSplit:
  """A split cut into equal batches for evaluation: images uint8 [nb, eb, H, W, C], labels int32
  [nb, eb], mask bool [nb, eb] (False on the padding of the last batch)."""

  images: jax.Array
  labels: jax.Array
  mask: jax.Array

  @property
  def size(self) -> int:
    return int(np.asarray(self.mask).sum())


def make_eval_split(images: np.ndarray, labels: np.ndarray, batch_size: int) -> EvalSplit:
  """Pads a split to a multiple of `batch_size` and reshapes it into batches (host arrays)."""
  n = len(labels)
  eb = min(batch_size, n)
  nb = -(-n // eb)
  pad = nb * eb - n
  images = np.concatenate([images, np.zeros((pad, *images.shape[1:]), images.dtype)])
  labels = np.concatenate([labels, np.zeros((pad,), labels.dtype)])
  mask = np.arange(nb * eb) < n
  return EvalSplit(
      images.reshape(nb, eb, *images.shape[1:]), labels.reshape(nb, eb), mask.reshape(nb, eb)
  )


def normalize(images: jax.Array, mean: jax.Array, std: jax.Array) -> jax.Array:
  """uint8 images -> float32, per-channel standardised."""
  return (images.astype(jnp.float32) / 255.0 - mean) / std


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Per-example cross-entropy [B] of logits [B, K] and int labels [B]."""
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


@dataclasses.dataclass(frozen=True)
class Trainer:
  """The static description of one trial's training (everything that is not data or state).

  Attributes:
    model: a Flax Linen module `(x, train) -> logits`.
    batch_size: B, examples per step.
    num_train: N, training-set size (for sampling).
    sampling: 'shuffle' (a new permutation each epoch, floor(N / B) steps per epoch) or
      'replacement' (B indices uniform with replacement each step).
    momentum: heavy-ball beta (0 = plain SGD).
    unroll: unroll the steps of one dispatch (XLA:CPU runs conv weight-gradients inside rolled
      loops 25-60x slower, jax#12868); False keeps a rolled `lax.scan` (better on GPU/TPU).
    oracle: how a step's gradient is estimated (`svag_jax.oracles`): 'sgd' (one batch),
      'svag' (two independent batches combined by `optim.svag(svag_l)`), 'ngd' / 'gd' (the whole
      training set, chunks of `chunk_size`). Chosen statically: one compiled program per oracle.
    svag_l: SVAG amplification l. The LR / l and the l-times-longer schedules are the caller's
      (they are data, `schedules`); batch 1 of step t is the SGD batch of step t, so l = 1 is SGD.
    noise_scale: std of the isotropic Gaussian noise added to the gradient (0 = none).
    chunk_size: examples per pass of the full-batch oracles.
    gn_batches: K, batches per G/N estimate (`gradient_noise`).
    eval_bn_batches: refresh BatchNorm statistics with this many training batches before each
      evaluation (`refreshed_batch_stats`; 0 = evaluate with the running averages as they are).
    augment: random crop (4 px zero padding) + horizontal flip of every training batch of the
      sgd / svag oracles and of the G/N batches (`augment.crop_and_flip`; the noise of the
      training process includes the augmentation); never of evaluation batches or of the
      BatchNorm refresh. The full-batch oracles need a fixed data set (config validation).
  """

  model: nn.Module
  batch_size: int
  num_train: int
  sampling: str = 'shuffle'
  momentum: float = 0.0
  unroll: bool = True
  oracle: str = 'sgd'
  svag_l: int = 1
  noise_scale: float = 0.0
  chunk_size: int = 500
  gn_batches: int = 8
  eval_bn_batches: int = 0
  augment: bool = False

  @property
  def steps_per_epoch(self) -> int:
    return max(1, self.num_train // self.batch_size)

  def optimizer(self, schedules: Schedules, noise_key: jax.Array | None = None
                ) -> optax.GradientTransformation:
    """`[svag(l)] + [add_isotropic_noise] + sgd(lr, wd, momentum)`; the bracketed parts only for
    the svag oracle / a non-zero noise scale (plain SGD keeps the foundation's chain). The LR is
    the schedule's (already divided by l for SVAG). `noise_key` is only read by `init` (the
    noise transform keeps it in its state)."""
    base = optim.sgd(
        functools.partial(value_at, schedules.lr),
        functools.partial(value_at, schedules.wd),
        self.momentum,
    )
    front = []
    if self.oracle == 'svag':
      front.append(optim.svag(self.svag_l))
    if self.noise_scale:
      key = jax.random.key(0) if noise_key is None else noise_key
      front.append(optim.add_isotropic_noise(self.noise_scale, key))
    return optax.chain(*front, base) if front else base

  def init(self, key: jax.Array, schedules: Schedules, data: TrainData) -> TrainState:
    """A fresh trial: weights from fold_in(key, STREAM_INIT), data order from STREAM_DATA,
    isotropic noise (if any) from STREAM_NOISE."""
    init_key = jax.random.fold_in(key, STREAM_INIT)
    x = jnp.zeros((1, *data.images.shape[1:]), jnp.float32)
    variables = self.model.init({'params': init_key}, x, train=False)
    params = variables['params']
    noise_key = jax.random.fold_in(key, STREAM_NOISE)
    return TrainState(
        step=jnp.zeros([], jnp.int32),
        params=params,
        batch_stats=variables.get('batch_stats', {}),
        frozen=variables['frozen'],
        opt_state=self.optimizer(schedules, noise_key).init(params),
        key=jax.random.fold_in(key, STREAM_DATA),
        schedules=schedules,
    )

  def epoch_permutation(self, key: jax.Array, epoch: jax.Array) -> jax.Array:
    """The order int32 [N] in which a trial with data key `key` visits the examples in `epoch`."""
    return jax.random.permutation(
        jax.random.fold_in(jax.random.fold_in(key, STREAM_SHUFFLE), epoch), self.num_train)

  def batch_indices(
      self, key: jax.Array, step: jax.Array, perms: jax.Array | None = None,
      first_epoch: jax.Array | None = None,
  ) -> jax.Array:
    """Indices [B] of the examples of step `step` for a trial whose data key is `key`.

    With 'shuffle' sampling, `perms` [E, N] may hold the permutations of epochs
    first_epoch .. first_epoch + E - 1 (computed once per dispatch: a permutation is a sort of N
    keys, the most expensive part of a small net's step if done every step).
    """
    n, b = self.num_train, self.batch_size
    if self.sampling == 'replacement':
      return jax.random.randint(jax.random.fold_in(jax.random.fold_in(key, STREAM_BATCH), step),
                                (b,), 0, n)
    epoch, pos = step // self.steps_per_epoch, step % self.steps_per_epoch
    perm = self.epoch_permutation(key, epoch) if perms is None else perms[epoch - first_epoch]
    return jax.lax.dynamic_slice_in_dim(perm, pos * b, b)

  def loss(self, params, state: TrainState, images, labels, train: bool, weights=None):
    """Cross-entropy of a batch of normalised images and the updated model state.

    The mean over the batch (weights None) or the weighted sum sum_i weights_i l_i (weights
    float32 [n]); the second value is the new BatchNorm statistics in training mode ({} for
    batch-independent norms), None in eval mode.
    """
    variables = {'params': params, 'frozen': state.frozen, 'batch_stats': state.batch_stats}

    def reduce(per_example):
      return per_example.mean() if weights is None else jnp.sum(weights * per_example)

    if train:
      logits, updates = self.model.apply(variables, images, train=True, mutable=['batch_stats'])
      return reduce(cross_entropy(logits, labels)), updates.get('batch_stats', {})
    return reduce(cross_entropy(self.model.apply(variables, images, train=False), labels)), None

  def loss_fn(self, state: TrainState, data: TrainData) -> oracles.LossFn:
    """The oracles' loss interface for this trial (training mode, uint8 images normalised inside):
    `loss_fn(params, images, labels, weights=None) -> (loss, model_aux)`, model_aux
    `{'batch_stats': ...}` for a BatchNorm net and `{}` for a batch-independent one."""

    def loss_fn(params, images, labels, weights=None):
      x = normalize(images, data.mean, data.std)
      loss, batch_stats = self.loss(params, state, x, labels, True, weights)
      return loss, ({'batch_stats': batch_stats} if jax.tree.leaves(batch_stats) else {})

    return loss_fn

  def batch_images(self, data: TrainData, idx: jax.Array, key: jax.Array, step: jax.Array
                   ) -> jax.Array:
    """uint8 images [..., H, W, C] of the examples `idx` [...] of a training batch, augmented
    from fold_in(fold_in(key, STREAM_AUG), step) when `augment` (`key`: the batch's data key)."""
    images = data.images[idx]
    if not self.augment:
      return images
    aug_key = jax.random.fold_in(jax.random.fold_in(key, STREAM_AUG), step)
    flat = images.reshape(-1, *images.shape[-3:])
    return augment.crop_and_flip(aug_key, flat).reshape(images.shape)

  def _gradient(self, state: TrainState, data: TrainData, idx, idx2):
    """(grads, loss, new batch_stats) of the configured oracle at `state`."""
    loss_fn = self.loss_fn(state, data)
    if self.oracle == 'sgd':
      images = self.batch_images(data, idx, state.key, state.step)
      grads, (loss, aux) = oracles.sgd(loss_fn, state.params, images, data.labels[idx])
    elif self.oracle == 'svag':
      both = jnp.stack([self.batch_images(data, idx, state.key, state.step),
                        self.batch_images(data, idx2, self.svag_key(state.key), state.step)])
      grads, (losses, aux) = oracles.svag(loss_fn, state.params, both,
                                          data.labels[jnp.stack([idx, idx2])])
      # the reported loss and (for l = 1) the BatchNorm statistics are batch 1's, so that l = 1
      # is SGD bit for bit; for l > 1 the running statistics take the mean of the two updates
      loss = losses[0]
      take = (lambda x: x[0]) if self.svag_l == 1 else (lambda x: jnp.mean(x, axis=0))
      aux = jax.tree.map(take, aux)
    elif self.oracle in ('ngd', 'gd'):
      if self.oracle == 'ngd':
        key = jax.random.fold_in(jax.random.fold_in(state.key, STREAM_NGD), state.step)
        grads, (loss, aux) = oracles.ngd(loss_fn, state.params, data.images, data.labels, key,
                                         self.batch_size, self.chunk_size, self.unroll)
      else:
        grads, (loss, aux) = oracles.gd(loss_fn, state.params, data.images, data.labels,
                                        self.chunk_size, self.unroll)
    else:
      raise ValueError(f'unknown oracle {self.oracle!r}')
    batch_stats = aux['batch_stats'] if aux else state.batch_stats
    return grads, loss, batch_stats

  def train_step(
      self, state: TrainState, data: TrainData, idx: jax.Array | None = None,
      idx2: jax.Array | None = None,
  ) -> tuple[TrainState, jax.Array]:
    """One optimizer step of one trial.

    `idx` [B]: the examples of the (first) batch, default the trial's own sampling; `idx2` [B]:
    SVAG's second batch, default the same sampling with the data key fold_in(key, STREAM_SVAG).
    Both are ignored by the full-batch oracles. Returns the new state and the step's loss
    (float32 scalar: the batch loss; SVAG: batch 1's; NGD: the noise-weighted loss).
    """
    if self.oracle in ('sgd', 'svag') and idx is None:
      idx = self.batch_indices(state.key, state.step)
    if self.oracle == 'svag' and idx2 is None:
      idx2 = self.batch_indices(self.svag_key(state.key), state.step)
    grads, loss, batch_stats = self._gradient(state, data, idx, idx2)
    updates, opt_state = self.optimizer(state.schedules).update(
        grads, state.opt_state, state.params
    )
    new_state = state.replace(
        step=state.step + 1,
        params=optax.apply_updates(state.params, updates),
        batch_stats=batch_stats,
        opt_state=opt_state,
    )
    return new_state, loss

  @staticmethod
  def svag_key(key: jax.Array) -> jax.Array:
    """The data key of SVAG's second batch, independent of the first batch's."""
    return jax.random.fold_in(key, STREAM_SVAG)

  def train_steps(
      self, state: TrainState, data: TrainData, num_steps: int
  ) -> tuple[TrainState, jax.Array]:
    """`num_steps` steps in one program; returns the state and the sum of the step losses.

    Same numbers as `num_steps` calls of `train_step`: only the epoch permutations are computed
    once per call (for the at most 1 + ceil((num_steps - 1) / steps_per_epoch) epochs spanned).
    """
    perms = perms2 = first_epoch = None
    if self.sampling == 'shuffle' and self.oracle in ('sgd', 'svag'):
      first_epoch = state.step // self.steps_per_epoch
      num_epochs = 1 + -(-(num_steps - 1) // self.steps_per_epoch)
      perms = jnp.stack([self.epoch_permutation(state.key, first_epoch + j)
                         for j in range(num_epochs)])
      if self.oracle == 'svag':
        perms2 = jnp.stack([self.epoch_permutation(self.svag_key(state.key), first_epoch + j)
                            for j in range(num_epochs)])

    def body(s, _):
      idx = idx2 = None
      if self.oracle in ('sgd', 'svag'):
        idx = self.batch_indices(s.key, s.step, perms, first_epoch)
      if self.oracle == 'svag':
        idx2 = self.batch_indices(self.svag_key(s.key), s.step, perms2, first_epoch)
      return self.train_step(s, data, idx, idx2)

    unroll = num_steps if self.unroll else 1
    state, losses = jax.lax.scan(body, state, None, length=num_steps, unroll=unroll)
    return state, jnp.sum(losses)

  def gradient_noise(self, state: TrainState, data: TrainData) -> dict[str, jax.Array]:
    """G, N, NSR (and gn_loss) of one trial at its current weights (`metrics.gradient_noise`).

    K = gn_batches batches of the training batch size B (also for SVAG runs: B, not 2B), drawn
    uniformly with replacement from fold_in(fold_in(key, STREAM_GN), step); data loss only (no WD);
    the state (BatchNorm running statistics included) is not changed. N estimates
    Tr Sigma_B with replacement = Tr Sigma_1 / B. With `augment` the batches are augmented too
    (key from the G/N key): the noise of the training process includes the augmentation.
    """
    key = jax.random.fold_in(jax.random.fold_in(state.key, STREAM_GN), state.step)
    idx = jax.random.randint(key, (self.gn_batches, self.batch_size), 0, self.num_train)
    images = self.batch_images(data, idx, key, state.step)
    return metrics.gradient_noise_metrics(self.loss_fn(state, data), state.params,
                                          images, data.labels[idx], self.unroll)

  def refreshed_batch_stats(self, state: TrainState, data: TrainData) -> Any:
    """BatchNorm running statistics brought up to date with the current weights, for evaluation.

    The running averages (momentum 0.9) describe the weights of the last ~10 steps; an SI net at
    intrinsic LR eta*lambda turns its weights by ~sqrt(2 eta lambda) rad per step, so at large
    eta*lambda they lag and eval-mode accuracy of single trials can collapse while the training
    loss is fine. This runs `eval_bn_batches` train-mode forward passes over fixed training batches
    (the first eval_bn_batches * B examples; 0.9^k of the old statistics remain) and returns the
    updated statistics. Training never sees them: the trial's state is unchanged.
    """
    b = self.batch_size
    idx = jnp.arange(self.eval_bn_batches * b) % self.num_train

    def body(batch_stats, i):
      batch = jnp.take(data.images, jax.lax.dynamic_slice_in_dim(idx, i * b, b), axis=0)
      images = normalize(batch, data.mean, data.std)
      variables = {'params': state.params, 'frozen': state.frozen, 'batch_stats': batch_stats}
      _, updates = self.model.apply(variables, images, train=True, mutable=['batch_stats'])
      return updates['batch_stats'], None

    batch_stats, _ = jax.lax.scan(body, state.batch_stats, jnp.arange(self.eval_bn_batches))
    return batch_stats

  def evaluate_split(
      self, state: TrainState, split: EvalSplit, mean: jax.Array, std: jax.Array
  ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Mean loss and accuracy over a whole split (eval-mode norms) and the predicted classes.

    Returns:
      (loss, accuracy, predictions): float32 scalars, and uint8 [nb * eb] (padding included).
    """
    variables = {'params': state.params, 'frozen': state.frozen, 'batch_stats': state.batch_stats}

    def batch_stats(batch):
      images, labels, mask = batch
      logits = self.model.apply(variables, normalize(images, mean, std), train=False)
      pred = jnp.argmax(logits, -1)
      return (
          jnp.sum(cross_entropy(logits, labels) * mask),
          jnp.sum((pred == labels) * mask),
          pred.astype(jnp.uint8),
      )

    loss, correct, preds = jax.lax.map(batch_stats, (split.images, split.labels, split.mask))
    n = jnp.sum(split.mask)
    return jnp.sum(loss) / n, jnp.sum(correct) / n, preds.reshape(-1)

  def evaluate(
      self, state: TrainState, splits: dict[str, EvalSplit], data: TrainData
  ) -> tuple[dict[str, jax.Array], jax.Array]:
    """The metrics of one eval: `{split}_loss`, `{split}_accuracy` for each split, plus the norm
    and learning-rate metrics of `metrics.learning_rates`; and the test-split predictions.
    Images are normalised with the training-set statistics in `data`."""
    if self.eval_bn_batches and jax.tree.leaves(state.batch_stats):
      state = state.replace(batch_stats=self.refreshed_batch_stats(state, data))
    result, preds = {}, None
    for name, split in splits.items():
      loss, acc, pred = self.evaluate_split(state, split, data.mean, data.std)
      result[f'{name}_loss'], result[f'{name}_accuracy'] = loss, acc
      if name == 'test':
        preds = pred
    result.update(
        metrics.learning_rates(
            value_at(state.schedules.lr, state.step),
            value_at(state.schedules.wd, state.step),
            state.params,
        )
    )
    return result, preds
