"""Scale-invariant Flax (Linen) models; `build` makes one from `config.model`."""

import flax.linen as nn
import ml_collections

from svag_jax.models import preresnet, vgg
from svag_jax.models.cnn import CNN
from svag_jax.models.layers import FixedDense, norm_factory
from svag_jax.models.mlp import MLP
from svag_jax.models.preresnet import PreResNet
from svag_jax.models.vgg import VGG

# Models sized by config.model.widths, and models of a standard depth sized by config.model.widen.
_BY_WIDTHS = {'cnn': CNN, 'mlp': MLP}
_BY_DEPTH = {
    **{f'preresnet{d}': (PreResNet, d, preresnet.layer_widths) for d in preresnet.DEPTHS},
    **{f'vgg{d}': (VGG, d, vgg.layer_widths) for d in vgg.DEPTHS},
}
NAMES = (*_BY_WIDTHS, *_BY_DEPTH)


def _check_name(name: str) -> None:
  if name not in NAMES:
    raise ValueError(f'unknown model {name!r}; choose one of {", ".join(NAMES)}')


def build(cfg: ml_collections.ConfigDict, num_classes: int) -> nn.Module:
  """The model named by `cfg.name` (cfg = config.model)."""
  _check_name(cfg.name)
  common = dict(
      num_classes=num_classes,
      norm=norm_factory(cfg.norm, cfg.norm_eps, cfg.num_groups),
      init_scale=cfg.init_scale,
      widen=cfg.widen,
      conv_impl=cfg.conv_impl,
  )
  if cfg.name in _BY_WIDTHS:
    return _BY_WIDTHS[cfg.name](widths=tuple(cfg.widths), **common)
  cls, depth, _ = _BY_DEPTH[cfg.name]
  return cls(depth=depth, **common)


def layer_widths(cfg: ml_collections.ConfigDict) -> tuple[int, ...]:
  """Output channels (units) of every trainable weight layer of the model `cfg` describes.

  Each is normalized over its channels, so e.g. GroupNorm's groups must divide all of them.
  """
  _check_name(cfg.name)
  if cfg.name in _BY_WIDTHS:
    return tuple(cfg.widths)
  _, depth, widths = _BY_DEPTH[cfg.name]
  return widths(depth, cfg.widen)


__all__ = [
    'CNN',
    'MLP',
    'NAMES',
    'PreResNet',
    'VGG',
    'FixedDense',
    'build',
    'layer_widths',
    'norm_factory',
]
