"""Entry point: `python -m svag_jax.launch.main --config=X[:arg] --workdir=DIR`.

Overrides: `--config.optim.lr=0.05` etc. Rerunning the same command on the same workdir resumes.
`--print_config` prints the resolved config and the run plan without training. Bad input gives one
line `svag_jax: <Kind>: ...` and exit code 1 (`--verbose` or SVAG_DEBUG=1: the traceback). Exit
codes: done 0, failed 1, diverged 3, preempted 75 (rerun the same command to resume).

Multi-host (several processes, one per host or per accelerator; see launch/README.md): every
process runs this same command, `jax.distributed.initialize()` joins them before anything else, and
the trials are sharded over the devices of ALL processes (each device trains its own block of
trials; results are gathered at each evaluation). Two ways to start it:
  - cluster auto-detection: set SVAG_DISTRIBUTED=1 and launch one process per host or per GPU
    with SLURM (`srun`, launch/slurm.sh) or on every worker of a TPU pod slice
    (launch/tpu_pod.sh); JAX reads the coordinator, process count and id from the environment.
  - manual: give all three of `--coordinator_address=HOST:PORT --num_processes=N --process_id=I`
    (or the environment variables SVAG_COORDINATOR_ADDRESS, SVAG_NUM_PROCESSES, SVAG_PROCESS_ID),
    e.g. two processes on one CPU machine:
      python -m svag_jax.launch.main --config=... --workdir=W \
          --coordinator_address=localhost:12355 \
          --num_processes=2 --process_id=0 &
      python -m svag_jax.launch.main --config=... --workdir=W \
          --coordinator_address=localhost:12355 \
          --num_processes=2 --process_id=1
The workdir must be on a filesystem all processes share (orbax writes the checkpoints from all of
them); only process 0 writes config.json, metrics, status and predictions. Every chunk of trials
must be a multiple of the global device count (trials.num x arms and trials.vmap_chunk).
Preemption across processes: SIGTERM to any process makes all of them checkpoint at the same step
(JAX's preemption sync point) and stop with status 'preempted'.
"""

import json
import os
import sys

import jax
from absl import app, flags, logging

from svag_jax.launch import cli
from svag_jax.record import EXIT_CODES

_PRINT_CONFIG = flags.DEFINE_bool(
    'print_config',
    False,
    'Print the resolved config (arms resolved, every field; null = not read '
    'by this run) and the run plan (steps, evaluations, checkpoints, chunks, compiled programs) as '
    'JSON, and exit without training.',
)
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address',
    None,
    'Manual multi-process launch: HOST:PORT of process 0 (env SVAG_COORDINATOR_ADDRESS).',
)
_NUM_PROCESSES = flags.DEFINE_integer(
    'num_processes',
    None,
    'Manual multi-process launch: number of processes (env ' 'SVAG_NUM_PROCESSES).',
    lower_bound=1,
)
_PROCESS_ID = flags.DEFINE_integer(
    'process_id',
    None,
    'Manual multi-process launch: this process, 0..num_processes-1 (env ' 'SVAG_PROCESS_ID).',
    lower_bound=0,
)

# Environment variables of a manual multi-process launch, and the flags that override them.
_MANUAL = (
    ('coordinator_address', 'SVAG_COORDINATOR_ADDRESS', _COORDINATOR, str),
    ('num_processes', 'SVAG_NUM_PROCESSES', _NUM_PROCESSES, int),
    ('process_id', 'SVAG_PROCESS_ID', _PROCESS_ID, int),
)


def distributed_args() -> dict | None:
  """The arguments of `jax.distributed.initialize`, or None for a single-process run.

  Manual settings (flags, else SVAG_* environment variables) must be given all together; with
  none of them, SVAG_DISTRIBUTED=1 asks JAX to detect the cluster (SLURM, TPU pod, MPI, ...).
  """
  manual = {}
  for name, env, flag, kind in _MANUAL:
    value = flag.value if flag.value is not None else os.environ.get(env)
    if value is not None and value != '':
      try:
        manual[name] = kind(value)
      except ValueError as e:
        raise app.UsageError(f'{env}={value!r} is not a valid {name} ({e}).') from e
  if manual:
    missing = [f'--{name} (or {env})' for name, env, _, _ in _MANUAL if name not in manual]
    if missing:
      raise app.UsageError(
          f'A manual multi-process launch needs all of --coordinator_address, --num_processes '
          f'and --process_id; missing {", ".join(missing)}. Give none of them (and set '
          'SVAG_DISTRIBUTED=1) to let JAX detect a SLURM / TPU-pod cluster instead.'
      )
    if not 0 <= manual['process_id'] < manual['num_processes']:
      raise app.UsageError(
          f'--process_id={manual["process_id"]} must be in 0..'
          f'{manual["num_processes"] - 1} (--num_processes).'
      )
    return manual
  if os.environ.get('SVAG_DISTRIBUTED', '') not in ('', '0'):
    return {}
  return None


def _train() -> int:
  from svag_jax import config as config_lib  # noqa: PLC0415 (jax-heavy imports after flags)
  from svag_jax import experiment, preemption  # noqa: PLC0415

  config = cli.CONFIG.value
  if config is None:  # checked here, not by an absl validator: that would bind every command
    raise cli.InputError(
        'UsageError', '--config=NAME[:ARG] or FILE[:ARG] is required, e.g. fast_equilibrium:cpu'
    )
  cli.check_read(config, list(cli.override_values()))
  config_lib.validate(config)  # before anything starts: bad input fails in seconds
  if _PRINT_CONFIG.value:
    print(json.dumps(experiment.describe(config), indent=2))
    return 0
  if not cli.WORKDIR.value:
    raise cli.InputError(
        'UsageError',
        '--workdir=DIR is required (the run record is written '
        'there; rerunning the same command on it resumes)',
    )
  dist = distributed_args()
  if dist is not None:
    jax.distributed.initialize(**dist)
  logging.info(
      'JAX process %d/%d, local devices: %s',
      jax.process_index(),
      jax.process_count(),
      jax.local_devices(),
  )
  preemption.PROCESS_ENDS_WITH_RUN = True  # a preempted run exits 75, whatever signals follow
  result = experiment.run(config, cli.WORKDIR.value, cli.ALLOW_VERSION_CHANGE.value)
  logging.info('Finished with status %s at step %d.', result['status'], result['step'])
  if result['status'] != 'done':
    message = result.get('message') or f'status {result["status"]} at step {result["step"]}'
    print(f'svag_jax: {result["status"]}: {message}', file=sys.stderr, flush=True)
  return EXIT_CODES[result['status']]


def main(argv):
  if len(argv) > 1:
    cli.fail('UsageError', f'unexpected arguments {argv[1:]}; flags look like --name=value')
  cli.quiet_libraries()
  sys.exit(cli.guarded(_train))


def console_main() -> None:
  """The console script (pyproject's [project.scripts])."""
  app.run(main, flags_parser=lambda argv: cli.parse_flags(argv, __name__))


if __name__ == '__main__':
  console_main()
