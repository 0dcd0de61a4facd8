"""The scale-invariant CNN of the 2020 paper's MNIST experiments ("simple 4-layer CNN")."""

import flax.linen as nn
import jax

from svag_jax.models.conv import make_conv
from svag_jax.models.layers import FixedDense, ScaleInvariantNet, weight_init


class CNN(ScaleInvariantNet):
  """conv3x3 -> norm -> ReLU blocks (2x2 max pool between blocks), flatten, fixed head.

  Convolutions ('SAME', implementation `conv_impl`) have no bias and norms no affine, so the loss
  is invariant to scaling the conv weights; the linear head is fixed. Input: float [B, H, W, C];
  output: logits [B, num_classes].
  """

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    for i, width in enumerate(self.widths):
      conv = make_conv(self.conv_impl)(
          width, (3, 3), kernel_init=weight_init(self.init_scale), name=f'Conv_{i}'
      )  # nn.Conv's names: same param tree
      x = conv(x)
      x = nn.relu(self.norm(train)(x))
      if i < len(self.widths) - 1:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
    x = x.reshape(x.shape[0], -1)
    return FixedDense(self.num_classes)(x)
