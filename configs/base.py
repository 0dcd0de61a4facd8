"""The common base of every svag_jax config: all fields with their defaults.

Experiment configs call `get_config()` from here and override a few fields. The schema itself lives
in `svag_jax.config.defaults` (the library validates configs against it), so this file stays tiny.
"""

import ml_collections

from svag_jax import config as config_lib


def get_config() -> ml_collections.ConfigDict:
  return config_lib.defaults()
