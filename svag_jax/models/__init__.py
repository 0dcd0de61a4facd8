"""Scale-invariant Flax (Linen) models; `build` makes one from `config.model`."""

import flax.linen as nn
import ml_collections

from svag_jax.models.cnn import CNN
from svag_jax.models.layers import FixedDense, norm_factory
from svag_jax.models.mlp import MLP

_MODELS = {'cnn': CNN, 'mlp': MLP}


def build(cfg: ml_collections.ConfigDict, num_classes: int) -> nn.Module:
  """The model named by `cfg.name` (cfg = config.model)."""
  norm = norm_factory(cfg.norm, cfg.norm_eps, cfg.num_groups)
  return _MODELS[cfg.name](
      widths=tuple(cfg.widths), num_classes=num_classes, norm=norm, init_scale=cfg.init_scale
  )


__all__ = ['CNN', 'MLP', 'FixedDense', 'build', 'norm_factory']
