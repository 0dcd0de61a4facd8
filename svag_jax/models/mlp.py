"""A scale-invariant MLP: the natural model for many-trial runs on a CPU (vmapped matmuls batch)."""

import flax.linen as nn
import jax

from svag_jax.models.layers import FixedDense, ScaleInvariantNet, weight_init


class MLP(ScaleInvariantNet):
  """dense -> norm -> ReLU blocks (no biases, no affine) and a fixed linear head.

  Input: float [B, ...] (flattened); output: logits [B, num_classes].
  """

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    x = x.reshape(x.shape[0], -1)
    for width in self.widths:
      x = nn.Dense(width, use_bias=False, kernel_init=weight_init(self.init_scale))(x)
      x = nn.relu(self.norm(train)(x))
    return FixedDense(self.num_classes)(x)
