"""Scale-invariant VGG 11/13/16/19 for CIFAR (Simonyan & Zisserman 2015, configurations A/B/D/E).

conv3x3 -> norm -> ReLU blocks with 2x2 *average* pooling at each 'M' of the channel plan (an
average is linear, so it keeps the invariance and the gradients of every pixel), then flatten
(1 x 1 x 512 x widen on a 32 x 32 input) into a fixed random linear head. Every conv is followed by
a norm without affine, so the loss is invariant to scaling each conv kernel on its own, hence also
to scaling all of them jointly: <grad L, w> = 0 layer by layer.
"""

import flax.linen as nn
import jax

from svag_jax.models.conv import make_conv
from svag_jax.models.layers import FixedDense, ScaleInvariantNet, weight_init, widened

# Channels of each conv; 'M' = 2x2 pooling with stride 2 (the standard CIFAR VGG plans).
PLANS: dict[int, tuple[int | str, ...]] = {
    11: (64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'),
    13: (64, 64, 'M', 128, 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'),
    16: (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'),
    19: (
        64,
        64,
        'M',
        128,
        128,
        'M',
        256,
        256,
        256,
        256,
        'M',
        512,
        512,
        512,
        512,
        'M',
        512,
        512,
        512,
        512,
        'M',
    ),
}
DEPTHS = tuple(PLANS)


def plan(depth: int) -> tuple[int | str, ...]:
  """The channel plan of VGG`depth`; ValueError for depths other than 11, 13, 16, 19."""
  if depth not in PLANS:
    raise ValueError(f'VGG depth must be one of {DEPTHS}; got {depth!r}')
  return PLANS[depth]


def layer_widths(depth: int, widen: float) -> tuple[int, ...]:
  """Output channels of every conv, in order: the plan's numbers x widen (rounded, >= 1)."""
  return tuple(widened(c, widen) for c in plan(depth) if c != 'M')


class VGG(ScaleInvariantNet):
  """Scale-invariant VGG`depth` (see the module docstring).

  `widths` is ignored: channels are the plan's x `widen`. Input: float [B, H, W, C] (32 x 32 x 3
  for CIFAR/SVHN; other sizes work: pooling pads odd sizes and averages the real pixels only, and
  the head takes the flattened [B, ceil(H / 32) * ceil(W / 32) * channels]); output: logits
  [B, num_classes]. Parameters 'conv1', 'conv2', ... (each one 'kernel'); the head is in 'frozen'.
  """

  depth: int = 19

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    conv = make_conv(self.conv_impl)
    widths = iter(layer_widths(self.depth, self.widen))
    i = 0
    for item in plan(self.depth):
      if item == 'M':
        pooled = nn.avg_pool(x, (2, 2), strides=(2, 2), padding='SAME', count_include_pad=False)
        x = pooled.astype(x.dtype)  # its float32 pixel counts would promote bfloat16 activations
        continue
      i += 1
      x = conv(next(widths), (3, 3), 1, kernel_init=weight_init(self.init_scale), name=f'conv{i}')(
          x
      )
      x = nn.relu(self.norm(train)(x))
    x = x.reshape(x.shape[0], -1)
    return FixedDense(self.num_classes)(x)
