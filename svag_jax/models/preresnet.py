"""Scale-invariant pre-activation ResNets for CIFAR: PreResNet 20/32/56 (depth = 6n + 2).

He et al. 2016 ("Identity mappings in deep residual networks"), CIFAR variant: a 3x3 stem conv,
three stages of n pre-activation blocks with (16, 32, 64) x `widen` channels (stages 2 and 3
halve the resolution in their first block), then norm -> ReLU -> global average pool -> a fixed
random linear head. Convolutions have no bias and norms no affine.

Why the whole net is scale invariant, L(c w) = L(w) for all trainable kernels w scaled jointly:
a normalization's output has degree 0 in w, a conv of a degree-0 input has degree 1, and a sum of
degree-1 terms has degree 1. The stem output has degree 1; each block adds its residual branch
(norm -> ReLU -> conv -> norm -> ReLU -> conv: degree 1) to a shortcut of degree 1 as well: the
identity on a degree-1 input, or, in the first block of every stage, norm -> 1x1 conv. So every
block output has degree 1 and the head's norm makes the loss degree 0. A bare 1x1-conv shortcut
(degree 2) would mix terms of different degrees and break invariance.

The invariance is by groups, not layer by layer: the stem and every conv1 are followed by a norm
and are invariant on their own, but a stage's output is the SUM of its shortcut conv and of all
its conv2 branches, read only through norms; scaling these together is invariant, scaling one of
them changes the mix. So <grad L, w> = 0 holds for each group of `invariance_groups` (and for the
whole net), not for each conv2 alone; the effective LR eta / ||w||^2 of the whole net is exact.

The shortcut's norm and the block's first norm normalize the same tensor, so the block computes it
once (identical function, one norm fewer; for BatchNorm the two would keep identical running
statistics anyway).
"""

import flax.linen as nn
import jax

from svag_jax.models.conv import make_conv
from svag_jax.models.layers import (
    FixedDense,
    NormFactory,
    ScaleInvariantNet,
    weight_init,
    widened,
)

DEPTHS = (20, 32, 56)
BASE_WIDTHS = (16, 32, 64)


def blocks_per_stage(depth: int) -> int:
  """n of a depth-(6n + 2) PreResNet; ValueError for other depths."""
  if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
    raise ValueError(f'PreResNet depth must be 6n + 2 with n >= 1 (e.g. {DEPTHS}); got {depth!r}')
  return (depth - 2) // 6


def stage_widths(widen: float) -> tuple[int, ...]:
  """Channels of the three stages: (16, 32, 64) x widen, rounded, at least 1."""
  return tuple(widened(w, widen) for w in BASE_WIDTHS)


def layer_widths(depth: int, widen: float) -> tuple[int, ...]:
  """Output channels of every conv in parameter order: stem; per block conv1, conv2[, shortcut]."""
  n = blocks_per_stage(depth)
  widths = stage_widths(widen)
  out = [widths[0]]
  for width in widths:
    out += [width, width, width] + [width, width] * (n - 1)
  return tuple(out)


def invariance_groups(depth: int) -> list[tuple[str, ...]]:
  """The smallest groups of kernels whose joint scaling leaves the loss unchanged.

  Returns: one tuple of module paths ('stem', 'stage2_block1/conv1', ...) per group: the stem,
  each conv1 alone, and per stage its first block's shortcut with every conv2 of the stage.
  """
  n = blocks_per_stage(depth)
  groups = [('stem',)]
  for s in range(1, len(BASE_WIDTHS) + 1):
    blocks = [f'stage{s}_block{b}' for b in range(1, n + 1)]
    groups += [(f'{block}/conv1',) for block in blocks]
    groups.append((f'{blocks[0]}/shortcut', *(f'{block}/conv2' for block in blocks)))
  return groups


class PreActBlock(nn.Module):
  """norm -> ReLU -> conv3x3 -> norm -> ReLU -> conv3x3, plus the shortcut.

  Attributes:
    features: output channels.
    strides: stride of the first conv and of the shortcut (2 to halve the resolution).
    projection: shortcut norm -> 1x1 conv (the first block of a stage) instead of the identity.
    norm, init_scale, conv_impl: as in `ScaleInvariantNet`.

  Input float [B, H, W, C] (C = features unless `projection`); output
  [B, ceil(H / strides), ceil(W / strides), features].
  """

  features: int
  strides: int
  projection: bool
  norm: NormFactory
  init_scale: float = 1.0
  conv_impl: str = 'xla'

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    conv = make_conv(self.conv_impl)
    init = weight_init(self.init_scale)
    h = self.norm(train)(x)
    y = conv(self.features, (3, 3), self.strides, kernel_init=init, name='conv1')(nn.relu(h))
    y = nn.relu(self.norm(train)(y))
    y = conv(self.features, (3, 3), 1, kernel_init=init, name='conv2')(y)
    if self.projection:
      x = conv(self.features, (1, 1), self.strides, kernel_init=init, name='shortcut')(h)
    return y + x


class PreResNet(ScaleInvariantNet):
  """Scale-invariant CIFAR PreResNet of depth 6n + 2 (see the module docstring).

  `widths` is ignored: the stages have (16, 32, 64) x `widen` channels. Input: float [B, H, W, C]
  (32 x 32 x 3 for CIFAR/SVHN; any size works, the pool is global); output: logits
  [B, num_classes]. Parameters: 'stem' and 'stage{s}_block{b}' with 'conv1', 'conv2' and, in the
  first block of a stage, 'shortcut' (each one 'kernel'); the head is in 'frozen'.
  """

  depth: int = 32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    n = blocks_per_stage(self.depth)
    widths = stage_widths(self.widen)
    x = make_conv(self.conv_impl)(
        widths[0], (3, 3), 1, kernel_init=weight_init(self.init_scale), name='stem'
    )(x)
    for s, width in enumerate(widths):
      for b in range(n):
        x = PreActBlock(
            width,
            strides=2 if s > 0 and b == 0 else 1,
            projection=b == 0,
            norm=self.norm,
            init_scale=self.init_scale,
            conv_impl=self.conv_impl,
            name=f'stage{s + 1}_block{b + 1}',
        )(x, train)
    x = nn.relu(self.norm(train)(x))
    x = x.mean(axis=(1, 2))
    return FixedDense(self.num_classes)(x)
