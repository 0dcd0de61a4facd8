"""On-device data augmentation: the standard CIFAR random crop + horizontal flip.

Runs inside the jitted training step on the uint8 batch gathered from the device-resident data
set, before normalisation, so each trial (and each of SVAG's two batches) augments its own batch
with its own key. The whole batch is one gather (no per-example loop, no dynamic_slice per
example), which stays one gather under the trial vmap.
"""

import jax
import jax.numpy as jnp


def crop_and_flip(key: jax.Array, images: jax.Array, pad: int = 4) -> jax.Array:
  """Random `pad`-pixel zero-padded crop and horizontal flip with probability 1/2, per example.

  As torchvision's `RandomCrop(H, padding=pad)` + `RandomHorizontalFlip()` on the raw image: the
  image is padded with `pad` zeros on each side (value 0 of the raw, un-normalised image), an
  H x W window is cut at offsets (dy, dx) drawn uniformly from {0, ..., 2 pad} (independently for
  rows and columns and for every example), and the window is mirrored left-right when a fair coin
  says so.

  Args:
    key: typed PRNG key; the offsets and flips of the whole batch are drawn from it.
    images: [B, H, W, C] images of any dtype (uint8 pixels here).
    pad: zero padding in pixels on each side (>= 0; 0 leaves only the flip).

  Returns:
    [B, H, W, C] augmented images, same dtype: out[b, i, j] = padded[b, dy_b + i, x_b(j)] with
    x_b(j) = dx_b + j, or dx_b + W - 1 - j for a flipped example.
  """
  b, h, w = images.shape[:3]
  offset_key, flip_key = jax.random.split(key)
  offsets = jax.random.randint(offset_key, (b, 2), 0, 2 * pad + 1)
  flips = jax.random.bernoulli(flip_key, 0.5, (b,))
  padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  rows = offsets[:, :1] + jnp.arange(h)  # [B, H]
  cols = jnp.where(flips[:, None], jnp.arange(w - 1, -1, -1), jnp.arange(w))
  cols = offsets[:, 1:] + cols  # [B, W]
  return padded[jnp.arange(b)[:, None, None], rows[:, :, None], cols[:, None, :]]
