"""Scale-invariant Flax (Linen) models; `build` makes one from `config.model`.

`config.model.name` is a built-in model (`NAMES`) or a model of your own by import path
('package.module:Class', with `config.model.kwargs`; `svag_jax.models.external`).
"""

from typing import Any

import flax.linen as nn
import ml_collections
from flax import traverse_util

from svag_jax.models import external, preresnet, vgg
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
  """The model named by `cfg.name` (cfg = config.model): a built-in one, or the one at the import
  path `cfg.name` constructed with `cfg.kwargs` (`external.build`)."""
  if external.is_import_path(cfg.name):
    return external.build(cfg.name, cfg.kwargs.to_dict(), num_classes)
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


def invariance_groups(cfg: ml_collections.ConfigDict, params: Any) -> list[tuple[str, ...]] | None:
  """The declared scale-invariant groups of a built-in model with parameters `params`: lists of
  '/'-joined parameter paths ('Conv_0/kernel'). Every kernel alone (cnn, mlp, vgg: each is
  followed by a norm), PreResNet's `preresnet.invariance_groups`, none without norms
  (norm = 'none'). None for a model named by import path: its groups are found
  (`svag_jax.invariance.find_groups`)."""
  if external.is_import_path(cfg.name):
    return None
  if cfg.norm == 'none':
    return []
  paths = list(traverse_util.flatten_dict(params, sep='/'))
  if cfg.name.startswith('preresnet'):
    depth = _BY_DEPTH[cfg.name][1]
    return [tuple(f'{m}/kernel' for m in g) for g in preresnet.invariance_groups(depth)]
  return [(p,) for p in paths]


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
    'invariance_groups',
    'layer_widths',
    'norm_factory',
]
