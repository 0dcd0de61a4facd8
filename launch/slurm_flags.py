"""The `--slurm.*` flags of `launch.sweep --executor=slurm`: the sbatch resources of each array
task (one process per task: one point at a time), as the arguments of `cluster.executor`
(launch/cluster.py). Key flags of launch/sweep.py: its --help lists them."""

import math
import re

from absl import flags

from svag_jax.launch import cli

SLURM = {
    'time': flags.DEFINE_string(
        'slurm.time',
        None,
        "Time limit of each task, in sbatch's format (MINUTES, HH:MM:SS, D-HH:MM, ...); required. "
        'A task at its limit checkpoints its point and is requeued.',
    ),
    'partition': flags.DEFINE_string('slurm.partition', None, 'SLURM partition.'),
    'account': flags.DEFINE_string('slurm.account', None, 'SLURM account to charge.'),
    'gpus_per_task': flags.DEFINE_integer(
        'slurm.gpus_per_task', 1, 'GPUs of each task (its point sees them all).', lower_bound=0
    ),
    'cpus_per_task': flags.DEFINE_integer(
        'slurm.cpus_per_task', None, "CPUs of each task (default: the cluster's).", lower_bound=1
    ),
    'mem_gb': flags.DEFINE_float(
        'slurm.mem_gb', None, "Memory of each task in GB (default: the cluster's)."
    ),
    'array_parallelism': flags.DEFINE_integer(
        'slurm.array_parallelism',
        None,
        "At most this many tasks run at once (default: submitit's, 256).",
        lower_bound=1,
    ),
    'max_timeouts': flags.DEFINE_integer(
        'slurm.max_timeouts',
        10,
        'How many times a task may reach its time limit and be requeued (preemptions do not '
        'count).',
        lower_bound=0,
    ),
    'setup': flags.DEFINE_multi_string(
        'slurm.setup', [], 'A shell line run before each task (e.g. module load cuda); repeatable.'
    ),
    'sbatch': flags.DEFINE_list(
        'slurm.sbatch',
        [],
        'More sbatch options as KEY=VALUE,... (e.g. qos=high,constraint=a100).',
    ),
}


_SLURM_TIME = re.compile(r'^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$')


def slurm_minutes(text: str) -> int:
  """sbatch's --time formats (MINUTES, MINUTES:SECONDS, HOURS:MINUTES:SECONDS, DAYS-HOURS,
  DAYS-HOURS:MINUTES, DAYS-HOURS:MINUTES:SECONDS) in whole minutes, rounded up."""
  m = _SLURM_TIME.match(text.strip())
  if not m:
    raise cli.InputError(
        'UsageError',
        f'--slurm.time={text}: not a SLURM time; give MINUTES, HH:MM:SS or DAYS-HH:MM:SS',
    )
  days, a, b, c = (int(g) if g else None for g in m.groups())
  if days is not None:  # DAYS-HOURS[:MINUTES[:SECONDS]]
    seconds = ((days * 24 + a) * 60 + (b or 0)) * 60 + (c or 0)
  elif c is not None:  # HOURS:MINUTES:SECONDS
    seconds = (a * 60 + b) * 60 + c
  else:  # MINUTES[:SECONDS]
    seconds = a * 60 + (b or 0)
  if seconds <= 0:
    raise cli.InputError('UsageError', f'--slurm.time={text}: the time limit must be positive')
  return math.ceil(seconds / 60)


def slurm_resources() -> dict:
  """The `--slurm.*` flags as the arguments of `cluster.executor` (None: the cluster's default)."""
  if SLURM['time'].value is None:
    raise cli.InputError(
        'UsageError',
        '--executor=slurm needs --slurm.time, the time limit of each task (e.g. 24:00:00); a '
        'point that needs longer is checkpointed before it and its task requeued',
    )
  extra = {}
  for item in SLURM['sbatch'].value:
    key, eq, value = item.partition('=')
    if not eq or not key:
      raise cli.InputError(
          'UsageError', f'--slurm.sbatch: {item!r} is not KEY=VALUE (e.g. qos=high)'
      )
    extra[key] = value
  return {
      'timeout_min': slurm_minutes(SLURM['time'].value),
      **{k: SLURM[k].value for k in ('partition', 'account', 'gpus_per_task', 'cpus_per_task')},
      'mem_gb': SLURM['mem_gb'].value,
      'array_parallelism': SLURM['array_parallelism'].value,
      'setup': SLURM['setup'].value,
      'additional_parameters': extra,
      'max_num_timeout': SLURM['max_timeouts'].value,
  }
