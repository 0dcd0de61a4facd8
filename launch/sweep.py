"""Run a config's sweep: point by point here, or as one job array on SLURM or local processes.

    python -m svag_jax.launch.sweep --config=FILE[:ARG] --workdir=ROOT [--config.x.y=v ...]
        [--print] [--point=NAME ...] [--executor=sequential|local|slurm] [--tasks=N]
        [--slurm.time=24:00:00 --slurm.partition=P --slurm.account=A --slurm.gpus_per_task=1 ...]
    python -m svag_jax.launch.sweep --status ROOT

The points are the config file's `get_sweep(arg)` (`svag_jax.sweep`); `--config.*` overrides apply
to every point, as in `launch.main` (a key that a point also sets is refused: the point would
silently win). Every point is built and validated before the first one trains, so a bad point
fails in seconds with the one-line error of `launch.main`, naming the point. `--point=NAME`
(repeated) takes only those points.

Points whose shapes differ (batch sizes, models) cannot share one compiled program, so each is its
own run in ROOT/<name>, resumable point by point: a point whose workdir says status done (or
diverged) is skipped; an interrupted one resumes from its checkpoint. How the points run
(`--executor`):

- `sequential` (the default): one after another in this process.
- `slurm`: ONE SLURM job array through submitit (`pip install 'svag_jax[cluster]'`), one task per
  point, or per group of points with `--tasks=N` (N tasks, the points dealt round-robin, each
  task running its points in turn); the resources from the `--slurm.*` flags
  (launch/slurm_flags.py). Each task runs its points as `launch.main` processes, is requeued when
  preempted or at its time limit (exit code 75; finished points skipped, the stopped one
  resumes), and logs each point to ROOT/logs/<name>.log (launch/cluster.py). The command returns
  once the array is submitted.
- `local`: the same submission through submitit's local executor: N tasks (`--tasks`, default one
  per CPU core, at most one per point) as processes on this machine, all at once; the command
  waits for them.

`--status ROOT` prints each point's state (done / running / preempted / failed / not started), step
and last test accuracy, and the command that resumes the unfinished ones (launch/status.py).
`--print` emits the equivalent `python -m svag_jax.launch.main ...` commands instead (one per
line). ROOT/sweep.json lists the points (name -> overrides) for analysis, and the command. One
sweep command writes a root at a time (ROOT/lock, as a workdir's: svag_jax.lock; with
`--executor=slurm` only while it submits, and each point's run locks its own workdir). Exit code: 0
when every point run here is done or diverged (slurm: when the array is submitted), 75 when one was
preempted (rerun to resume), 1 on an error.
"""

import json
import os
import pathlib
import shlex
import shutil
import sys

from absl import flags, logging

from svag_jax import config as config_lib
from svag_jax import sweep as sweep_lib
from svag_jax.checks import ConfigError
from svag_jax.launch import cli, slurm_flags, specs, status
from svag_jax.lock import WorkdirLock
from svag_jax.record import EXIT_CODES, FINAL_STATUSES
from svag_jax.workdir import check_path

_PRINT = flags.DEFINE_bool(
    'print', False, 'Print the launch.main command of every point; do not run.'
)
_STATUS = flags.DEFINE_string(
    'status',
    None,
    'ROOT: print the state, step and last test accuracy of every point of the sweep root ROOT, '
    'and the command that resumes the unfinished ones (no other flag).',
)
_POINT = flags.DEFINE_multi_string(
    'point', [], 'Only this point (its name, ROOT/<name>); repeat the flag for several.'
)
_EXECUTOR = flags.DEFINE_enum(
    'executor',
    'sequential',
    ['sequential', 'local', 'slurm'],
    'How the points run: one after another in this process (sequential), as one SLURM job array '
    '(slurm), or as its tasks on this machine (local), both through submitit.',
)
_TASKS = flags.DEFINE_integer(
    'tasks',
    None,
    'local / slurm: the number of array tasks; the points are dealt round-robin and each task '
    'runs its points one after another (default: one task per point on slurm; one per CPU core, '
    'at most one per point, locally, where all tasks run at once).',
    lower_bound=1,
)
flags.adopt_module_key_flags(slurm_flags)  # --help lists the --slurm.* flags with these


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


def point_args(spec: str, root: str | os.PathLike, name: str, overrides: dict, cli_overrides: dict):
  """The `launch.main` arguments of one point (command-line overrides first), with this command's
  --allow_version_change."""
  args = [f'--config={spec}', f'--workdir={pathlib.Path(root) / name}']
  args += [f'--config.{k}={v}' for k, v in {**cli_overrides, **overrides}.items()]
  return args + ['--allow_version_change'] * bool(cli.ALLOW_VERSION_CHANGE.value)


def commands(spec: str, root: str, points, cli_overrides: dict) -> list[str]:
  """`python -m svag_jax.launch.main` commands, one per point (command-line overrides first)."""
  head = 'python -m svag_jax.launch.main '
  return [head + shlex.join(point_args(spec, root, n, ov, cli_overrides)) for n, ov, _ in points]


def run_sweep(root: str, points, allow_version_change: bool = False) -> dict[str, str]:
  """Runs every point not yet finished into ROOT/<name>, in this process; returns {name: status}."""
  from svag_jax import experiment  # noqa: PLC0415 (heavy import only when training)

  result = {}
  for i, (name, _, cfg) in enumerate(points, 1):
    workdir = pathlib.Path(root) / name
    if status.read_status(workdir) in FINAL_STATUSES:
      result[name] = status.read_status(workdir)
      print(f'[{i}/{len(points)}] {name}: already {result[name]}, skipped', flush=True)
      continue
    print(f'[{i}/{len(points)}] {name}: running into {workdir}', flush=True)
    status.note_task(root, name, os.getpid())
    out = experiment.run(cfg, str(workdir), allow_version_change)
    result[name] = out['status']
    if out['status'] == 'preempted':
      break
  return result


def _check_flags() -> None:
  """Refuses flags that the chosen mode would not read."""
  given = [f'--{n}' for n in ('print', 'point', 'executor', 'tasks') if flags.FLAGS[n].present]
  given += [f'--{h.name}' for h in slurm_flags.SLURM.values() if h.present]
  if _STATUS.present:
    others = given + [f'--{n}' for n in ('config', 'workdir') if flags.FLAGS[n].present]
    if others:
      raise cli.InputError('UsageError', f'--status ROOT takes no other flag; got {others[0]}')
    return
  executor = _EXECUTOR.value
  unread = [g for g in given if g.startswith('--slurm.')] if executor != 'slurm' else []
  if executor == 'sequential' and _TASKS.present:
    unread.insert(0, '--tasks')
  if _PRINT.value:
    unread = [g for g in given if g not in ('--print', '--point')]
  if unread:
    mode = '--print' if _PRINT.value else f'--executor={executor}'
    raise cli.InputError('UsageError', f'{unread[0]} is not read with {mode}')


def _command_args(argv: list[str]) -> list[str]:
  """The flags of this command, less --point and --print: the sweep's command in sweep.json."""
  out, skip = [], False
  for a in argv:
    if skip:
      skip = False
    elif a in ('--point', '--print'):
      skip = a == '--point'
    elif not a.startswith(('--point=', '--print=', '--noprint')):
      out.append(a)
  return out


def _cluster():
  """launch/cluster.py, or the error that says how to install submitit."""
  try:
    from svag_jax.launch import cluster  # noqa: PLC0415 (submitit: an optional extra)
  except ImportError as e:
    raise cli.InputError(
        'UsageError',
        f"--executor={_EXECUTOR.value} needs submitit ({e}): pip install 'svag_jax[cluster]'",
    ) from None
  return cluster


def _submit(root: pathlib.Path, spec: str, points, cli_overrides: dict, resources) -> int:
  """--executor=local|slurm: the unfinished points as one job array (launch/cluster.py)."""
  cluster, kind = _cluster(), _EXECUTOR.value
  todo = [p for p in points if status.read_status(root / p[0]) not in FINAL_STATUSES]
  running = (
      []
      if _POINT.value
      else [p[0] for p in todo if status.point_state(root, p[0])['state'] == 'running']
  )
  for name in running:
    print(f'{name}: its record says running (see --status): left out; --point={name} runs it')
  todo = [p for p in todo if p[0] not in running]
  if len(todo) < len(points):
    print(f'{len(points) - len(todo) - len(running)} point(s) already finished: skipped')
  if not todo:
    print('Nothing to submit.')
    return 0
  file_spec = spec
  path, colon, arg = spec.partition(':')
  if os.path.exists(path):  # a config file: the tasks may start elsewhere (sbatch's cwd)
    file_spec = os.path.abspath(path) + colon + arg
  argvs = [
      (name, point_args(file_spec, root.absolute(), name, ov, cli_overrides))
      for name, ov, _ in todo
  ]
  num_tasks = _TASKS.value or (len(todo) if kind == 'slurm' else (os.cpu_count() or 1))
  max_timeouts = resources.pop('max_num_timeout') if resources else 0
  ex = cluster.executor(kind, str(root), resources, max_timeouts)
  jobs = cluster.submit(ex, cluster.tasks_of(str(root), argvs, num_tasks, os.getcwd()))
  tasks = f'{len(jobs)} task(s) for {len(todo)} point(s)'
  print(f'Submitted {tasks} ({kind}): jobs {", ".join(j.job_id for j in jobs)}.')
  print(f'Logs: {root}/logs/<point>.log (submitit: {root}/submitit/).')
  print(f'Progress: python -m svag_jax.launch.sweep --status {shlex.quote(str(root))}')
  if kind == 'slurm':
    return 0
  cluster.wait(jobs)
  statuses = {name: status.read_status(root / name) for name, _, _ in todo}
  return _exit_code(statuses)


def _exit_code(statuses: dict) -> int:
  if 'preempted' in statuses.values():
    return EXIT_CODES['preempted']
  return 0 if all(s in FINAL_STATUSES for s in statuses.values()) else EXIT_CODES['failed']


def _main() -> int:
  _check_flags()
  if _STATUS.value:
    print('\n'.join(status.report(_STATUS.value)))
    return 0
  spec = cli.config_spec(sys.argv)
  if spec is None or not cli.WORKDIR.value:
    raise cli.InputError(
        'UsageError',
        'both --config=FILE[:ARG] and --workdir=ROOT are required '
        '(each point runs in ROOT/<name>), or --status ROOT',
    )
  cli_overrides = cli.override_values()
  points = plan(spec, cli.CONFIG.value, cli_overrides)
  selected = points
  if _POINT.value:
    names = [name for name, _, _ in points]
    unknown = [n for n in _POINT.value if n not in names]
    if unknown:
      raise cli.InputError(
          'UsageError', f'--point={unknown[0]}: no such point; the points: {", ".join(names)}'
      )
    selected = [p for p in points if p[0] in _POINT.value]
  if _PRINT.value:
    print('\n'.join(commands(spec, cli.WORKDIR.value, selected, cli_overrides)))
    return 0
  resources = None
  if _EXECUTOR.value != 'sequential':  # refused before anything is written
    _cluster()
    resources = slurm_flags.slurm_resources() if _EXECUTOR.value == 'slurm' else None
    if _EXECUTOR.value == 'slurm' and shutil.which('srun') is None:  # submitit's own test
      raise cli.InputError(
          'UsageError',
          "--executor=slurm needs SLURM's commands (srun, sbatch) on PATH: run it on the "
          "cluster's login node; --executor=local runs the same tasks on this machine",
      )
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
                'command': _command_args(sys.argv[1:]),
                'cwd': os.getcwd(),
            },
            indent=2,
            default=list,
        )
    )
    if _EXECUTOR.value != 'sequential':
      return _submit(root, spec, selected, cli_overrides, resources)
    from svag_jax import preemption  # noqa: PLC0415 (jax: only when training here)

    preemption.PROCESS_ENDS_WITH_RUN = True  # a preempted point exits 75, whatever signals follow
    statuses = run_sweep(str(root), selected, cli.ALLOW_VERSION_CHANGE.value)
  print(json.dumps(statuses, indent=2))
  return _exit_code(statuses)


def main(argv: list[str] | None = None) -> int:
  """The command; `argv` without the program name (None: sys.argv). Returns the exit code."""
  argv = sys.argv if argv is None else ['svag_jax.launch.sweep', *argv]
  saved, sys.argv = sys.argv, argv
  try:
    rest = cli.parse_flags(argv, __name__)
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
