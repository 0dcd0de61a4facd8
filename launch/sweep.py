"""Run a config's sweep point by point.

    python -m svag_jax.launch.sweep --config=FILE[:ARG] --workdir=ROOT \
        [--config.x.y=v ...] [--print]

The points are the config file's `get_sweep(arg)` (`svag_jax.sweep`); `--config.*` overrides apply
to every point, as in `launch.main` (a key that a point also sets is refused: the point would
silently win). Every point is built and validated before the first one trains, so a bad point
fails in seconds with the one-line error of `launch.main`, naming the point.

Points whose shapes differ (batch sizes, models) cannot share one compiled program, so each is its
own run in ROOT/<name>. Runs are sequential here and resumable point by point: a point whose
workdir says status done (or diverged) is skipped; an interrupted one resumes from its checkpoint.
`--print` emits the equivalent `python -m svag_jax.launch.main ...` commands instead (one per
line, for a cluster). ROOT/sweep.json lists the points (name -> overrides) for analysis. One sweep
runs on a root at a time (ROOT/lock, as a workdir's: svag_jax.lock). Exit code: 0 when every point
is done or diverged, 75 when one was preempted (rerun to resume), 1 on an error.
"""

import json
import pathlib
import shlex
import sys

from absl import flags, logging

from svag_jax import config as config_lib
from svag_jax import sweep as sweep_lib
from svag_jax.checks import ConfigError
from svag_jax.launch import cli, specs
from svag_jax.lock import WorkdirLock
from svag_jax.record import EXIT_CODES
from svag_jax.workdir import check_path

_PRINT = flags.DEFINE_bool(
    'print', False, 'Print the launch.main command of every point; do not ' 'run.'
)

FINISHED = ('done', 'diverged')


def _status(workdir: pathlib.Path) -> str | None:
  try:
    return json.loads((workdir / 'status.json').read_text())['status']
  except (OSError, ValueError, KeyError):
    return None


def plan(spec: str, config, cli_overrides: dict) -> list[tuple[str, dict, object]]:
  """[(name, point overrides, config)] of every point, each validated; errors name the point."""
  points = specs.points(spec)
  unread_everywhere = set(cli_overrides)
  result = []
  for point in points:
    name = sweep_lib.point_name(point)
    both = sorted(set(sweep_lib.overrides(point)) & set(cli_overrides))
    if both:
      raise cli.InputError(
          'ConfigError',
          f'--config.{both[0]} is also set by sweep point '
          f'{name!r}, whose value would win: drop the override, or change '
          f'get_sweep in {specs.split_config_arg(spec)[0]}',
      )
    try:
      cfg = sweep_lib.apply(config, point)
      config_lib.validate(cfg)
    except ConfigError as e:
      raise ConfigError(f'sweep point {name!r}: {e}') from None
    unread_everywhere -= set(cli_overrides) - set(config_lib.unread_fields(cfg))
    cli.check_read(cfg, list(cli_overrides))
    result.append((name, sweep_lib.overrides(point), cfg))
  if unread_everywhere:
    field = min(unread_everywhere)
    raise cli.InputError(
        'ConfigError',
        f'--config.{field} is read by no point of this sweep '
        f'({config_lib.unread_fields(result[0][2])[field]})',
    )
  return result


def commands(spec: str, root: str, points, cli_overrides: dict) -> list[str]:
  """`python -m svag_jax.launch.main` commands, one per point (command-line overrides first)."""
  out = []
  for name, overrides, _ in points:
    args = [f'--config={spec}', f'--workdir={pathlib.Path(root) / name}']
    args += [f'--config.{k}={v}' for k, v in {**cli_overrides, **overrides}.items()]
    out.append('python -m svag_jax.launch.main ' + ' '.join(shlex.quote(a) for a in args))
  return out


def run_sweep(root: str, points, allow_version_change: bool = False) -> dict[str, str]:
  """Runs every point not yet finished into ROOT/<name>; returns {name: status}."""
  from svag_jax import experiment  # noqa: PLC0415 (heavy import only when training)

  result = {}
  for i, (name, _, cfg) in enumerate(points, 1):
    workdir = pathlib.Path(root) / name
    if _status(workdir) in FINISHED:
      print(f'[{i}/{len(points)}] {name}: already {_status(workdir)}, skipped', flush=True)
      result[name] = _status(workdir)
      continue
    print(f'[{i}/{len(points)}] {name}: running into {workdir}', flush=True)
    out = experiment.run(cfg, str(workdir), allow_version_change)
    result[name] = out['status']
    if out['status'] == 'preempted':
      break
  return result


def _main() -> int:
  spec = cli.config_spec(sys.argv)
  if spec is None or not cli.WORKDIR.value:
    raise cli.InputError(
        'UsageError',
        'both --config=FILE[:ARG] and --workdir=ROOT are required '
        '(each point runs in ROOT/<name>)',
    )
  cli_overrides = cli.override_values()
  points = plan(spec, cli.CONFIG.value, cli_overrides)
  if _PRINT.value:
    print('\n'.join(commands(spec, cli.WORKDIR.value, points, cli_overrides)))
    return 0
  from svag_jax import preemption  # noqa: PLC0415 (jax: only when training)

  preemption.PROCESS_ENDS_WITH_RUN = True  # a preempted point exits 75, whatever signals follow
  root = pathlib.Path(cli.WORKDIR.value)
  check_path(root)
  root.mkdir(parents=True, exist_ok=True)
  with WorkdirLock(root, what='sweep root'):
    (root / 'sweep.json').write_text(
        json.dumps(
            {
                'config': spec,
                'overrides': cli_overrides,
                'points': {name: overrides for name, overrides, _ in points},
            },
            indent=2,
            default=list,
        )
    )
    statuses = run_sweep(str(root), points, cli.ALLOW_VERSION_CHANGE.value)
  print(json.dumps(statuses, indent=2))
  if 'preempted' in statuses.values():
    return EXIT_CODES['preempted']
  return 0 if all(s in FINISHED for s in statuses.values()) else EXIT_CODES['failed']


def main(argv: list[str] | None = None) -> int:
  """The command; `argv` without the program name (None: sys.argv). Returns the exit code."""
  argv = sys.argv if argv is None else ['svag_jax.launch.sweep', *argv]
  saved, sys.argv = sys.argv, argv
  try:
    rest = cli.parse_flags(argv)
    if len(rest) > 1:
      cli.fail('UsageError', f'unexpected arguments {rest[1:]}; flags look like --name=value')
    logging.set_verbosity(logging.INFO)
    logging.use_absl_handler()
    cli.quiet_libraries()
    return cli.guarded(_main)
  finally:
    sys.argv = saved


if __name__ == '__main__':
  sys.exit(main())
