"""Sweeps as data: the points of a config file's `get_sweep(arg)` and the config of each point.

A config file may declare `get_sweep(arg)` beside `get_config(arg)`: a list of dicts of dotted
config overrides (build them with `product` / `zip_`), e.g.

    from svag_jax import sweep

    def get_sweep(arg=None):
      return sweep.zip_(**{'train.batch_size': (32, 64), 'optim.lr': (0.05, 0.1)})

A point may carry a 'name' (its sub-workdir); otherwise it is named `key=value` of the overrides'
last key parts joined by ','. `launch/specs.py` reads the points of a config file,
`launch/sweep.py` runs them; analyses read their workdirs.
"""

import itertools
from typing import Any

import ml_collections

from svag_jax import config as config_lib
from svag_jax.checks import ConfigError


def product(**axes: Any) -> list[dict]:
  """Every combination of the values of the given dotted keys (the first key varies slowest)."""
  keys = list(axes)
  return [dict(zip(keys, values)) for values in itertools.product(*axes.values())]


def zip_(**axes: Any) -> list[dict]:
  """The i-th values of all keys together (all value lists must have the same length)."""
  lengths = {k: len(v) for k, v in axes.items()}
  if len(set(lengths.values())) > 1:
    raise ValueError(f'zip_ needs value lists of equal length, got {lengths}')
  keys = list(axes)
  return [dict(zip(keys, values)) for values in zip(*axes.values())]


def point_name(point: dict) -> str:
  """The sub-workdir name of a point: its 'name', or `key=value,...` of the last key parts."""
  if 'name' in point:
    return str(point['name'])
  return ','.join(f'{k.split(".")[-1]}={v}' for k, v in point.items())


def overrides(point: dict) -> dict:
  """The dotted config overrides of a point (everything but its 'name')."""
  return {k: v for k, v in point.items() if k != 'name'}


def apply(config: ml_collections.ConfigDict, point: dict) -> ml_collections.ConfigDict:
  """A copy of `config` with the point's overrides applied; an unknown key is a ConfigError."""
  cfg = ml_collections.ConfigDict(config.to_dict())
  for key, value in overrides(point).items():
    config_lib.check_field(cfg, key)  # update_from_flattened_dict would add an unknown leaf
    try:  # one key at a time, so that a type error names its key
      cfg.update_from_flattened_dict({key: value})
    except TypeError as e:
      raise ConfigError(f'config.{key} = {value!r}: {e}') from None
  return cfg
