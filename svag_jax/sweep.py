"""Sweeps as data: the points of a config file's `get_sweep(arg)` and the config of each point.

A config file may declare `get_sweep(arg)` beside `get_config(arg)`: a list of dicts of dotted
config overrides (build them with `product` / `zip_`), e.g.

    from svag_jax import sweep

    def get_sweep(arg=None):
      return sweep.zip_(**{'train.batch_size': (32, 64), 'optim.lr': (0.05, 0.1)})

A point may carry a 'name' (its sub-workdir); otherwise it is named `key=value` of the overrides'
last key parts joined by ','. `launch/sweep.py` runs the points; analyses read their workdirs.
"""

import importlib.util
import itertools
import os
import pathlib
import pkgutil
import re
import types
from typing import Any

import ml_collections

from svag_jax import config as config_lib


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


def config_names() -> list[str]:
  """The config names `--config=NAME[:ARG]` accepts: the modules of svag_jax.configs."""
  from svag_jax import configs  # noqa: PLC0415 (the configs import this module)

  found = (m.name for m in pkgutil.iter_modules(configs.__path__))
  return sorted(n for n in found if n != 'base' and not n.startswith('_'))


def config_file(path: str) -> str:
  """The file of a config: `path` itself if it names a file (or is no bare name), else the file of
  the installed config module `svag_jax.configs.<path>` (so `fast_equilibrium` works anywhere)."""
  if os.path.exists(path) or not re.fullmatch(r'[A-Za-z_]\w*', path):
    return path
  spec = importlib.util.find_spec(f'svag_jax.configs.{path}')
  return spec.origin if spec is not None and spec.origin else path


def split_config_arg(spec: str) -> tuple[str, str | None]:
  """'configs/x.py:cpu' or 'x:cpu' -> (the config file, 'cpu'); no ':' -> (file, None)."""
  path, _, arg = spec.partition(':')
  return config_file(path), (arg or None)


def resolve_spec(spec: str) -> str:
  """`FILE[:ARG]` with a config name replaced by its file (what ml_collections can load)."""
  path, arg = split_config_arg(spec)
  return path if arg is None else f'{path}:{arg}'


def load_module(path: str) -> types.ModuleType:
  """Imports a config file by its path."""
  spec = importlib.util.spec_from_file_location(pathlib.Path(path).stem, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def points(spec: str) -> list[dict]:
  """The sweep of `FILE[:ARG]`: a single point named 'run' when the file declares none."""
  path, arg = split_config_arg(spec)
  module = load_module(path)
  if not hasattr(module, 'get_sweep'):
    return [{'name': 'run'}]
  result = list(module.get_sweep(arg))
  names = [point_name(p) for p in result]
  if len(set(names)) != len(names):
    raise config_lib.ConfigError(f'{path}: sweep points with the same name: {names}')
  return result


def apply(config: ml_collections.ConfigDict, point: dict) -> ml_collections.ConfigDict:
  """A copy of `config` with the point's overrides applied; an unknown key is a ConfigError."""
  cfg = ml_collections.ConfigDict(config.to_dict())
  for key, value in overrides(point).items():
    config_lib.check_field(cfg, key)  # update_from_flattened_dict would add an unknown leaf
    try:  # one key at a time, so that a type error names its key
      cfg.update_from_flattened_dict({key: value})
    except TypeError as e:
      raise config_lib.ConfigError(f'config.{key} = {value!r}: {e}') from None
  return cfg


def build_config(spec: str, point: dict) -> ml_collections.ConfigDict:
  """`get_config(arg)` of the file `FILE[:ARG]` with the point's overrides applied."""
  path, arg = split_config_arg(spec)
  return apply(load_module(path).get_config(arg), point)
