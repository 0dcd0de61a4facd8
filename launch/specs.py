"""Config specs of the command line: `--config=FILE[:ARG]` or `NAME[:ARG]`, NAME a module of
svag_jax.configs (so `fast_equilibrium:cpu` works from any directory).

A spec names a config file and the argument of its `get_config(arg)` (and `get_sweep(arg)`, whose
points `svag_jax.sweep` turns into configs). The library never reads a spec: it takes configs.
"""

import importlib.util
import os
import pathlib
import pkgutil
import re
import types

import ml_collections

from svag_jax import sweep
from svag_jax.checks import ConfigError


def config_names() -> list[str]:
  """The config names `--config=NAME[:ARG]` accepts: the modules of svag_jax.configs."""
  from svag_jax import configs  # noqa: PLC0415 (only to list them)

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
  """Imports a config file by its path (importlib's spec + exec_module; not the deprecated
  `Loader.load_module`)."""
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
  names = [sweep.point_name(p) for p in result]
  if len(set(names)) != len(names):
    raise ConfigError(f'{path}: sweep points with the same name: {names}')
  return result


def build_config(spec: str, point: dict) -> ml_collections.ConfigDict:
  """`get_config(arg)` of the file `FILE[:ARG]` with the point's overrides applied."""
  path, arg = split_config_arg(spec)
  return sweep.apply(load_module(path).get_config(arg), point)
