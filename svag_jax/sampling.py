"""Which examples a trial sees: the random streams of a trial's key, epoch permutations, batch
indices, and the (augmented) images of a batch. For ONE trial; pure functions of keys and steps.

Every random number of a trial comes from its key through `jax.random.fold_in` with one of the
STREAM_* constants below (this is the only place they are defined), and then the step: step t of
a stream never depends on what other streams or earlier steps drew, so a resumed run, a run with
more trials or a different chunking draws the same numbers.
"""

import dataclasses

import jax
import jax.numpy as jnp

from svag_jax import augment as augment_lib
from svag_jax.data import TrainData

# Independent random streams derived from a trial's key with fold_in.
STREAM_INIT, STREAM_DATA, STREAM_BATCH, STREAM_SHUFFLE = 0, 1, 2, 3
# SVAG's second batch (a data key of its own), isotropic noise, NGD's z and the G/N estimates'
# batches (all from the data key).
STREAM_SVAG, STREAM_NOISE, STREAM_NGD, STREAM_GN = 4, 5, 6, 7
# Crop + flip augmentation of a batch: fold_in(fold_in(data key, STREAM_AUG), step) with the data
# key of that batch (SVAG's second batch: its own data key; G/N batches: the G/N key).
STREAM_AUG = 8


# How a trial draws its batches (`Sampler.sampling`).
SAMPLING = ('shuffle', 'replacement')


def stream_key(key: jax.Array, stream: int, step: jax.Array | None = None) -> jax.Array:
  """fold_in(key, stream), then fold_in(., step) when `step` is given."""
  key = jax.random.fold_in(key, stream)
  return key if step is None else jax.random.fold_in(key, step)


def svag_key(key: jax.Array) -> jax.Array:
  """The data key of SVAG's second batch, independent of the first batch's (data key `key`)."""
  return jax.random.fold_in(key, STREAM_SVAG)


def data_keys(key: jax.Array, num_batches: int) -> list[jax.Array]:
  """The data keys of the `num_batches` (1 or 2) independent batches of one step: the trial's
  data key, then SVAG's second (`svag_key`)."""
  return [key, svag_key(key)][:num_batches]


@dataclasses.dataclass(frozen=True)
class Sampler:
  """How one trial draws its training batches.

  Attributes:
    num_train: N, training-set size.
    batch_size: B, examples per batch.
    sampling: 'shuffle' (a new permutation each epoch, floor(N / B) steps per epoch) or
      'replacement' (B indices uniform with replacement each step).
    augment: random crop (4 px zero padding) + horizontal flip of the batch images
      (`augment.crop_and_flip`).
  """

  num_train: int
  batch_size: int
  sampling: str = 'shuffle'
  augment: bool = False

  @property
  def steps_per_epoch(self) -> int:
    """floor(N / B), at least 1 (SGD steps; SVAG's optimizer steps are l times more)."""
    return max(1, self.num_train // self.batch_size)

  def epoch_permutation(self, key: jax.Array, epoch: jax.Array) -> jax.Array:
    """The order int32 [N] in which a trial with data key `key` visits the examples in `epoch`."""
    return jax.random.permutation(stream_key(key, STREAM_SHUFFLE, epoch), self.num_train)

  def dispatch_permutations(
      self, key: jax.Array, step: jax.Array, num_steps: int
  ) -> tuple[jax.Array, jax.Array]:
    """The permutations [E, N] of the E = 1 + ceil((num_steps - 1) / steps_per_epoch) epochs that
    steps step .. step + num_steps - 1 may span, and the first of those epochs (int32 scalar)."""
    first_epoch = step // self.steps_per_epoch
    num_epochs = 1 + -(-(num_steps - 1) // self.steps_per_epoch)
    perms = jnp.stack([self.epoch_permutation(key, first_epoch + j) for j in range(num_epochs)])
    return perms, first_epoch

  def batch_indices(
      self,
      key: jax.Array,
      step: jax.Array,
      perms: jax.Array | None = None,
      first_epoch: jax.Array | None = None,
  ) -> jax.Array:
    """Indices int32 [B] of the examples of step `step` for a trial whose data key is `key`.

    With 'shuffle' sampling, `perms` [E, N] may hold the permutations of epochs
    first_epoch .. first_epoch + E - 1 (`dispatch_permutations`, computed once per dispatch: a
    permutation is a sort of N keys, the most expensive part of a small net's step if done every
    step).
    """
    n, b = self.num_train, self.batch_size
    if self.sampling == 'replacement':
      return jax.random.randint(stream_key(key, STREAM_BATCH, step), (b,), 0, n)
    epoch, pos = step // self.steps_per_epoch, step % self.steps_per_epoch
    perm = self.epoch_permutation(key, epoch) if perms is None else perms[epoch - first_epoch]
    return jax.lax.dynamic_slice_in_dim(perm, pos * b, b)

  def batch_images(
      self, data: TrainData, idx: jax.Array, key: jax.Array, step: jax.Array
  ) -> jax.Array:
    """uint8 images [..., H, W, C] of the examples `idx` [...] of a training batch, augmented
    from fold_in(fold_in(key, STREAM_AUG), step) when `augment` (`key`: the batch's data key)."""
    images = data.images[idx]
    if not self.augment:
      return images
    flat = images.reshape(-1, *images.shape[-3:])
    return augment_lib.crop_and_flip(stream_key(key, STREAM_AUG, step), flat).reshape(images.shape)

  def gn_batches(
      self, data: TrainData, key: jax.Array, step: jax.Array, num_batches: int
  ) -> tuple[jax.Array, jax.Array]:
    """The K = `num_batches` batches of size B of a G/N estimate at step `step`: uniform with
    replacement from fold_in(fold_in(key, STREAM_GN), step) (`key`: the trial's data key), augmented
    from that key when `augment`. Returns uint8 images [K, B, H, W, C] and int32 labels [K, B]."""
    gn_key = stream_key(key, STREAM_GN, step)
    idx = jax.random.randint(gn_key, (num_batches, self.batch_size), 0, self.num_train)
    return self.batch_images(data, idx, gn_key, step), data.labels[idx]
