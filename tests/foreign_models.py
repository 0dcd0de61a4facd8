"""Models svag_jax does not ship, written the way their authors would (affine norms, biases,
trained heads): the group finder's test models and the import-path models of the pipeline tests.

Every model maps images [B, H, W, C] to logits [B, num_classes].
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx


class ResNet(nn.Module):
  """A standard (post-activation) ResNet with affine BatchNorm and a trained head: stem conv ->
  BN -> ReLU, one basic block per stage (the first stage keeps the width: identity
  shortcut; the others halve the resolution: 1x1 conv + BN shortcut), global pool, Dense head."""

  num_classes: int
  widths: tuple[int, ...] = (4, 8)
  eps: float = 1e-5  # Flax's default

  @nn.compact
  def __call__(self, x, train: bool):
    bn = lambda name: nn.BatchNorm(
        use_running_average=not train, momentum=0.9, epsilon=self.eps, name=name
    )
    x = nn.relu(bn('stem_bn')(nn.Conv(self.widths[0], (3, 3), use_bias=False, name='stem')(x)))
    for s, width in enumerate(self.widths):
      stride = 1 if s == 0 else 2
      conv = lambda name, k=3, st=1: nn.Conv(width, (k, k), st, use_bias=False, name=name)
      y = nn.relu(bn(f'stage{s}_bn1')(conv(f'stage{s}_conv1', st=stride)(x)))
      y = bn(f'stage{s}_bn2')(conv(f'stage{s}_conv2')(y))
      if s > 0:
        x = bn(f'stage{s}_shortcut_bn')(conv(f'stage{s}_shortcut', k=1, st=stride)(x))
      x = nn.relu(x + y)
    return nn.Dense(self.num_classes, name='head')(x.mean(axis=(1, 2)))


class AffineMLP(nn.Module):
  """Dense (no bias) -> BatchNorm with affine scale and bias -> ReLU layers, a trained Dense head.

  Groups: every kernel alone (a BatchNorm follows it); every BatchNorm's (scale, bias) but the
  last one's (ReLU -> kernel -> BatchNorm: invariant as a pair); the last BatchNorm's pair and the
  head are in no group."""

  num_classes: int
  widths: tuple[int, ...] = (16, 16)

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = x.reshape(x.shape[0], -1)
    for w in self.widths:
      x = nn.Dense(w, use_bias=False)(x)
      x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
    return nn.Dense(self.num_classes)(x)


class _Block(nn.Module):
  """A Transformer block over tokens [B, T, D]: pre-LN x + f(LN(x)) or post-LN LN(x + f(x))."""

  dim: int
  pre_ln: bool
  eps: float

  @nn.compact
  def __call__(self, x):
    ln = lambda name: nn.LayerNorm(epsilon=self.eps, name=name)
    attn = nn.MultiHeadDotProductAttention(num_heads=2, name='attn')
    mlp = lambda h: nn.Dense(self.dim, name='mlp_out')(
        nn.relu(nn.Dense(2 * self.dim, name='mlp_in')(h))
    )
    if self.pre_ln:
      h = ln('ln1')(x)
      x = x + attn(h, h)
      return x + mlp(ln('ln2')(x))
    x = ln('ln1')(x + attn(x, x))
    return ln('ln2')(x + mlp(x))


class Transformer(nn.Module):
  """The image's rows as tokens -> Dense embedding -> one block -> (pre-LN: a final LayerNorm) ->
  mean over tokens -> Dense head. LayerNorms with affine scale and bias, biases everywhere."""

  num_classes: int
  pre_ln: bool = True
  dim: int = 8
  eps: float = 1e-6  # Flax's default

  @nn.compact
  def __call__(self, x):
    x = nn.Dense(self.dim, name='embed')(x.reshape(x.shape[0], x.shape[1], -1))
    x = _Block(self.dim, self.pre_ln, self.eps, name='block')(x)
    if self.pre_ln:
      x = nn.LayerNorm(epsilon=self.eps, name='ln_final')(x)
    return nn.Dense(self.num_classes, name='head')(x.mean(axis=1))


class PlainMLP(nn.Module):
  """No normalisation: Dense + bias -> ReLU layers and a Dense head."""

  num_classes: int
  widths: tuple[int, ...] = (16, 16)

  @nn.compact
  def __call__(self, x):
    x = x.reshape(x.shape[0], -1)
    for w in self.widths:
      x = nn.relu(nn.Dense(w)(x))
    return nn.Dense(self.num_classes)(x)


class NNXNet(nnx.Module):
  """An NNX model (through svag_jax.models.external.from_nnx): Linear -> BatchNorm (no affine) ->
  ReLU -> trained Linear head."""

  def __init__(self, num_classes: int, width: int = 16, in_features: int = 64, *, rngs: nnx.Rngs):
    self.dense = nnx.Linear(in_features, width, use_bias=False, rngs=rngs)
    self.norm = nnx.BatchNorm(width, use_scale=False, use_bias=False, momentum=0.9, rngs=rngs)
    self.head = nnx.Linear(width, num_classes, rngs=rngs)

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    h = self.dense(jnp.reshape(x, (x.shape[0], -1)))
    return self.head(nnx.relu(self.norm(h, use_running_average=not train)))
