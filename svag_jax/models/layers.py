"""Building blocks of scale-invariant networks.

A network is scale-invariant in its trainable weights w (L(c w) = L(w) for c > 0) when every weight
layer is followed by a normalization whose affine scale and shift are fixed (here: absent), and the
last linear layer is fixed (random, never trained). Its weights live in the 'frozen' collection, so
they are not in 'params' and no optimizer ever sees them.
"""

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

NormFactory = Callable[[bool], nn.Module]


# The norms `norm_factory` makes, and those whose output for an example does not depend on the
# rest of the batch (per-example losses: what the full-batch oracles need).
NORMS = ('batch', 'group', 'layer', 'none')
BATCH_INDEPENDENT_NORMS = ('group', 'layer', 'none')


def norm_factory(kind: str, eps: float, num_groups: int = 8) -> NormFactory:
  """Returns `make(train) -> module`: a normalization layer without trainable affine.

  Args:
    kind: 'batch' (BatchNorm, batch statistics in training, running averages in eval),
      'group' (GroupNorm with `num_groups`), 'layer' (GroupNorm with one group: all features
      of an example), or 'none' (the identity: the baseline that is NOT scale invariant; a net
      with ReLUs is then positively homogeneous in its weights, L(c w) != L(w)).
    eps: variance epsilon. Invariance L(c w) = L(w) holds up to a relative error ~ eps / var(c w),
      so it must be small next to the variance of the pre-activations at the smallest norm reached.
    num_groups: groups of GroupNorm.
  """
  common = dict(epsilon=eps, use_bias=False, use_scale=False, use_fast_variance=False)
  if kind == 'batch':
    return lambda train: nn.BatchNorm(use_running_average=not train, momentum=0.9, **common)
  if kind == 'group':
    return lambda train: nn.GroupNorm(num_groups=num_groups, **common)
  if kind == 'layer':
    return lambda train: nn.GroupNorm(num_groups=1, **common)
  if kind == 'none':
    return lambda train: Identity()
  raise ValueError(f'unknown norm {kind!r}; choose one of {", ".join(NORMS)}')


class Identity(nn.Module):
  """No normalization (`norm_factory('none', ...)`): returns its input unchanged."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return x


def widened(base: int, widen: float) -> int:
  """`base` channels times `widen`, rounded half up, at least 1."""
  return max(1, int(base * widen + 0.5))


def weight_init(scale: float = 1.0) -> nn.initializers.Initializer:
  """LeCun truncated normal with std multiplied by `scale`.

  For a scale-invariant layer the init scale only sets the initial norm, hence the initial
  effective LR eta / ||w||^2 (PyTorch's default conv/linear init has scale 1/sqrt(3)).
  """
  return nn.initializers.variance_scaling(scale**2, 'fan_in', 'truncated_normal')


class FixedDense(nn.Module):
  """A linear layer with a random kernel that is never trained (collection 'frozen').

  Kernel [in, features] ~ LeCun normal, so logits of unit-variance features are O(1).
  """

  features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    shape = (x.shape[-1], self.features)
    kernel = self.variable(
        'frozen', 'kernel', lambda: nn.initializers.lecun_normal()(self.make_rng('params'), shape)
    )
    return jnp.dot(x, kernel.value)


class ScaleInvariantNet(nn.Module):
  """Fields shared by the scale-invariant models: `(x, train) -> logits`.

  Attributes:
    num_classes: outputs of the fixed head.
    norm: `norm_factory(...)`, a normalization without trainable affine.
    widths: channels (cnn) or units (mlp) of each weight layer, each followed by `norm`; the
      CIFAR models (preresnet, vgg) ignore it and take their standard widths times `widen`.
    init_scale: multiplies the LeCun-normal std of every trainable weight (`weight_init`).
    widen: multiplies the standard channel counts of the CIFAR models (`widened`).
    conv_impl: implementation of the convolutions (`svag_jax.models.conv.make_conv`); it changes
      speed only, not the function or the parameter tree.
  """

  num_classes: int
  norm: NormFactory
  widths: Sequence[int] = ()
  init_scale: float = 1.0
  widen: float = 1.0
  conv_impl: str = 'xla'
