"""Run a config's sweep point by point: `python -m launch.sweep --config FILE[:ARG] --workdir ROOT`.

A config file may declare `get_sweep(arg)` beside `get_config(arg)`: a list of dicts of dotted
config overrides (build them with `product` / `zip_` below), e.g.

    def get_sweep(arg=None):
      return sweep.zip_(**{'train.batch_size': (32, 64), 'optim.lr': (0.05, 0.1)})

Points whose shapes differ (batch sizes, models) cannot share one compiled program, so each is its
own run in ROOT/<name> (name: `key=value` of the overrides' last key parts joined by `,`, or the
point's own 'name' entry). Runs are sequential here and resumable point by point: a point whose
workdir says status done (or diverged) is skipped; an interrupted one resumes from its checkpoint.
`--print` emits the equivalent `python -m launch.main ...` commands instead (one per line, for a
cluster). ROOT/sweep.json lists the points (name -> overrides) for analysis.
"""

import argparse
import importlib.util
import itertools
import json
import pathlib
import shlex
import sys
from typing import Any

FINISHED = ('done', 'diverged')


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


def load_module(path: str):
  spec = importlib.util.spec_from_file_location(pathlib.Path(path).stem, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def split_config_arg(config: str) -> tuple[str, str | None]:
  path, _, arg = config.partition(':')
  return path, (arg or None)


def points(config: str) -> list[dict]:
  """The sweep of `FILE[:ARG]` (a single empty point when the file declares none)."""
  path, arg = split_config_arg(config)
  module = load_module(path)
  if not hasattr(module, 'get_sweep'):
    return [{'name': 'run'}]
  result = list(module.get_sweep(arg))
  names = [point_name(p) for p in result]
  if len(set(names)) != len(names):
    raise ValueError(f'{path}: sweep points with the same name: {names}')
  return result


def overrides(point: dict) -> dict:
  return {k: v for k, v in point.items() if k != 'name'}


def build_config(config: str, point: dict):
  """`get_config(arg)` of the file with the point's overrides applied (dotted keys)."""
  path, arg = split_config_arg(config)
  cfg = load_module(path).get_config(arg)
  for key, value in overrides(point).items():
    node = cfg
    *parents, last = key.split('.')
    for p in parents:
      node = node[p]
    node[last] = value
  return cfg


def commands(config: str, root: str) -> list[str]:
  """`python -m launch.main` commands, one per point."""
  out = []
  for point in points(config):
    args = [f'--config={config}', f'--workdir={pathlib.Path(root) / point_name(point)}']
    args += [f'--config.{k}={v}' for k, v in overrides(point).items()]
    out.append('python -m launch.main ' + ' '.join(shlex.quote(a) for a in args))
  return out


def _status(workdir: pathlib.Path) -> str | None:
  try:
    return json.loads((workdir / 'status.json').read_text())['status']
  except (OSError, ValueError, KeyError):
    return None


def run_sweep(config: str, root: str) -> dict[str, str]:
  """Runs every point not yet finished into ROOT/<name>; returns {name: status}."""
  from svag_jax import experiment  # heavy import only when training

  root_path = pathlib.Path(root)
  root_path.mkdir(parents=True, exist_ok=True)
  pts = points(config)
  (root_path / 'sweep.json').write_text(json.dumps(
      {'config': config, 'points': {point_name(p): overrides(p) for p in pts}}, indent=2,
      default=list))
  result = {}
  for i, point in enumerate(pts, 1):
    name = point_name(point)
    workdir = root_path / name
    if _status(workdir) in FINISHED:
      print(f'[{i}/{len(pts)}] {name}: already {_status(workdir)}, skipped', flush=True)
      result[name] = _status(workdir)
      continue
    print(f'[{i}/{len(pts)}] {name}: running into {workdir}', flush=True)
    out = experiment.run(build_config(config, point), str(workdir))
    result[name] = out['status']
    if out['status'] == 'preempted':
      break
  return result


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--config', required=True, help='config file, optionally :arg')
  parser.add_argument('--workdir', required=True, help='sweep root; each point in ROOT/<name>')
  parser.add_argument('--print', action='store_true', help='print the commands, do not run')
  args = parser.parse_args(argv)
  if args.print:
    print('\n'.join(commands(args.config, args.workdir)))
    return 0
  import logging as logging_std

  from absl import logging

  class _Quiet(logging_std.Filter):  # orbax's per-save INFO chatter out of the log (as launch.main)
    def filter(self, record):
      return record.levelno >= logging_std.WARNING or '/orbax/' not in record.pathname

  logging.set_verbosity(logging.INFO)
  logging.use_absl_handler()
  logging.get_absl_handler().addFilter(_Quiet())
  statuses = run_sweep(args.config, args.workdir)
  print(json.dumps(statuses, indent=2))
  return 0 if all(s in FINISHED for s in statuses.values()) else 1


if __name__ == '__main__':
  sys.exit(main())
