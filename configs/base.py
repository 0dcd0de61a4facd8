"""The common base of every svag_jax config: all fields with their defaults.

Experiment configs call `get_config()` from here and override a few fields. The schema itself lives
in `svag_jax.config.defaults` (the library validates configs against it), so this file stays tiny.
"""

import ml_collections

from svag_jax import config as config_lib


def get_config() -> ml_collections.ConfigDict:
  return config_lib.defaults()


def cifar10_preresnet32(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The 2021 paper's full-scale setting shared by its CIFAR figures: SI PreResNet32 on CIFAR-10
  (tfds), B = 128, eta = 0.8, lambda = 5e-4, no momentum, rolled steps (GPU/TPU); returns `c`."""
  c.data.source, c.data.name = 'tfds', 'cifar10'
  c.model.name, c.model.widths = 'preresnet32', (16, 32, 64)
  c.train.batch_size = 128
  c.optim.lr, c.optim.wd, c.optim.momentum = 0.8, 5e-4, 0.0
  c.checkpoint.every = 10.0
  c.train.unroll = False
  return c
