"""The run record's format and its readers: analysis reads workdirs through these, never writes.

The layout and the rules of the record are in `svag_jax.workdir` (its writer).
"""

import json
import os
import pathlib
import warnings
from typing import Any

import numpy as np

# Exit status of `python -m svag_jax.launch.main` per final status (launch/slurm.sh requeues on
# 75, the sysexits.h EX_TEMPFAIL "try again later"). An exception that escapes the run (e.g. a
# WorkdirError or CheckpointError) is 'failed'.
EXIT_CODES = {'done': 0, 'failed': 1, 'diverged': 3, 'preempted': 75}

# Written for every test input of a trial that has diverged, in predictions/epoch_<E>.npy (a real
# class is < num_classes <= 254, checked where predictions are saved).
DIVERGED_PREDICTION = 255

# Statuses that no later failed or refused command overwrites.
FINAL_STATUSES = ('done', 'diverged')


# The key of config.json's header (`read_record_config`); every other key is a config field.
HEADER = '_record'


class WorkdirError(RuntimeError):
  """The workdir holds a run that cannot be continued with this config, or a corrupt record."""


PARAMS_COLLECTIONS = ('params', 'batch_stats', 'frozen')

# Per-group columns of metrics.jsonl: 'group.<name>/<metric>' for every scale-invariant group of
# the run (WORKDIR/groups.json: its name, members and evidence) and every metric of GROUP_METRICS:
#   w_norm_sq       ||w_S||^2, the group's squared norm
#   effective_lr    lr / ||w_S||^2
#   angular_update  the angle (radians) between w_S at the evaluated step t and at t + 1 (the
#                   step the trial takes next; theory: svag_jax.theory.rotational_angular_update)
#   G, N, NSR       the gradient signal / noise estimates restricted to the group (null between
#                   G/N estimates, like the whole net's G, N, NSR)
# and, in runs of the adaptive optimizers (rmsprop / adam / adamw), GROUP_ADAPTIVE_METRICS:
#   intrinsic_lr_adaptive  the group's lambda_e = eta lambda p_S (svag_jax.metrics.
#                   group_adaptive_intrinsic_lrs): its rate of relaxation and, through
#                   svag_jax.theory.rotational_angular_update, its equilibrium angular update
# A group's name has no '/' (svag_jax.invariance.group_name), so the key splits at its last '/';
# the prefix 'group.<name>' is also the TensorBoard section of the group.
GROUP_PREFIX = 'group.'
GROUP_METRICS = ('w_norm_sq', 'effective_lr', 'angular_update', 'G', 'N', 'NSR')
GROUP_ADAPTIVE_METRICS = ('intrinsic_lr_adaptive',)
GROUPS_FILE = 'groups.json'


def group_key(group: str, metric: str) -> str:
  """The metrics.jsonl column of `metric` of the group named `group`: 'group.<group>/<metric>'."""
  return f'{GROUP_PREFIX}{group}/{metric}'


def split_group_key(key: str) -> tuple[str, str] | None:
  """(group, metric) of a per-group column (`group_key`), None for any other column."""
  if not key.startswith(GROUP_PREFIX) or '/' not in key:
    return None
  group, _, metric = key[len(GROUP_PREFIX) :].rpartition('/')
  return group, metric


def epoch_name(epoch: float) -> str:
  return f'{epoch:g}'


def scan_metrics(path: pathlib.Path) -> tuple[list[dict], int, bytes, int]:
  """Parses metrics.jsonl, allowing only its last line to be partial.

  Returns:
    (rows, kept: the byte length of the complete lines, partial: the bytes of a last line that
    is unterminated or not a JSON row (b'' if none), its 1-based line number (0 if none)).

  Raises:
    WorkdirError: a line other than the last is not a JSON row (naming the file and the line).
  """
  data = path.read_bytes() if path.exists() else b''
  lines = data.split(b'\n')  # the piece after the last newline is b'' or an unterminated line
  last_line = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
  rows, offset = [], 0
  for i, line in enumerate(lines):
    last, terminated = i == last_line, i < len(lines) - 1
    if line.strip():
      try:
        row = json.loads(line)
        if not isinstance(row, dict):
          raise ValueError(f'a JSON {type(row).__name__}, not an object')
      except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        if last:
          return rows, offset, data[offset:], i + 1
        raise WorkdirError(
            f'{path}, line {i + 1}: not a JSON row ({type(e).__name__}: {e}); the record is '
            'corrupt beyond its last line, which a crash cannot do. Inspect the file (a copy made '
            'by hand?); nothing was changed.'
        ) from e
      if not terminated:  # complete JSON but no newline: the append was cut; drop it too
        return rows, offset, data[offset:], i + 1
      rows.append(row)
    offset += len(line) + (1 if terminated else 0)
  return rows, offset, b'', 0


def complete_eval_step(rows: list[dict], num_trials: int) -> int:
  """The step of the last evaluation of which metrics.jsonl holds the rows of all `num_trials`
  trials (0 if none): rows of a later, incomplete evaluation are a crash's leftovers."""
  counts: dict[int, int] = {}
  for row in rows:
    counts[row['step']] = counts.get(row['step'], 0) + 1
  return max((s for s, c in counts.items() if c >= num_trials), default=0)


def live_trials(predictions: np.ndarray, num_classes: int | None = None) -> np.ndarray:
  """bool [T]: the trials of an integer [T, n_test] predictions array that had not diverged (a
  diverged trial's row is DIVERGED_PREDICTION everywhere).

  num_classes: where DIVERGED_PREDICTION is itself a class (num_classes > DIVERGED_PREDICTION, an
  array that is not a run's saved predictions), no row is taken for a diverged trial.
  """
  predictions = np.asarray(predictions)
  everyone = np.ones(predictions.shape[0], bool)
  if predictions.shape[1] == 0 or (num_classes is not None and num_classes > DIVERGED_PREDICTION):
    return everyone
  return ~np.all(predictions == DIVERGED_PREDICTION, axis=1)


def read_json(file: str | os.PathLike) -> Any:
  """The JSON value of a record file; a file that is not JSON is a WorkdirError naming it.

  Raises:
    FileNotFoundError: no such file.
  """
  file = pathlib.Path(file)
  try:
    return json.loads(file.read_bytes())
  except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
    raise WorkdirError(
        f'{file}: not a JSON file of a run record ({type(e).__name__}: {e}); was it edited or '
        'copied incompletely? Nothing was changed.'
    ) from e


def read_status(path: str | os.PathLike) -> dict:
  return read_json(pathlib.Path(path) / 'status.json')


def read_record_config(path: str | os.PathLike) -> tuple[dict, dict]:
  """(the config, the header) of WORKDIR/config.json.

  config.json is the resolved config (what the run read) plus one entry, `HEADER` ("_record",
  first when sorted): {"format", "config_sha256" (svag_jax.provenance.config_hash), "software"
  (svag_jax.software.versions of the latest command that trained), "software_changes" (the
  changes allowed by --allow_version_change: [{"time", "step", "changes"}])}. A record written
  before the header existed has the header {}.
  """
  config = read_json(pathlib.Path(path) / 'config.json')
  if not isinstance(config, dict):
    raise WorkdirError(f'{pathlib.Path(path) / "config.json"}: not a JSON object')
  header = config.pop(HEADER, None)
  return config, header if isinstance(header, dict) else {}


def read_config(path: str | os.PathLike) -> dict:
  """The config of WORKDIR/config.json (its header left out: `read_record_config`)."""
  return read_record_config(path)[0]


def read_groups(path: str | os.PathLike) -> dict | None:
  """WORKDIR/groups.json: the run's scale-invariant groups ({'source': 'declared' | 'found',
  'groups': [{'name', 'members', 'evidence'}], 'ungrouped': {path: evidence}, 'inert': [...]};
  `svag_jax.invariance.Groups.to_json`), None for a run without per-group metrics."""
  p = pathlib.Path(path) / GROUPS_FILE
  return json.loads(p.read_text()) if p.exists() else None


def read_metrics(path: str | os.PathLike) -> list[dict]:
  """All metric rows of a workdir, in the order written.

  A partial last line (a crash mid-append, or a row being written right now) is skipped with a
  warning while status.json says `running`; in any other record it is an error, as is a corrupt
  line anywhere else.

  Raises:
    FileNotFoundError: there is no metrics.jsonl.
    WorkdirError: a corrupt line, naming the file and the line number.
  """
  p = pathlib.Path(path) / 'metrics.jsonl'
  if not p.exists():
    raise FileNotFoundError(f'{p} does not exist: is {path} the workdir of a run?')
  rows, _, partial, line = scan_metrics(p)
  if partial:
    status = read_status(path)['status'] if (pathlib.Path(path) / 'status.json').exists() else None
    message = f'{p}, line {line}: partial last line ({len(partial)} bytes; a crash mid-append?)'
    if status != 'running':
      raise WorkdirError(
          f'{message} in a record with status {status!r}. Rerun the command of the '
          'run on this workdir to repair it (the line is kept aside and its '
          'evaluation recomputed).'
      )
    warnings.warn(f'{message}: skipped (the run is still running, or crashed).', stacklevel=2)
  return rows


def read_predictions(path: str | os.PathLike) -> tuple[dict[float, np.ndarray], list[str]]:
  """{epoch: uint8 [T, n_test] memory-mapped predictions} and the arm of each trial.

  Rows of trials that had diverged by an epoch are DIVERGED_PREDICTION (255) everywhere: select
  the others with `live_trials(predictions[epoch])` before using them.
  """
  d = pathlib.Path(path) / 'predictions'
  arms = read_json(d / 'trials.json')['arm']
  preds = {
      float(p.stem.removeprefix('epoch_')): np.load(p, mmap_mode='r')
      for p in sorted(d.glob('epoch_*.npy'))
      if not p.stem.endswith('.tmp')
  }
  return dict(sorted(preds.items())), arms


def params_epochs(path: str | os.PathLike) -> list[float]:
  """The epochs with saved weights (params/epoch_<E>.npz), increasing; [] if none."""
  d = pathlib.Path(path) / 'params'
  return sorted(
      float(p.stem.removeprefix('epoch_'))
      for p in d.glob('epoch_*.npz')
      if not p.stem.endswith('.tmp')
  )


def read_params(path: str | os.PathLike, epoch: float) -> tuple[dict, list[str]]:
  """The weights of every trial at `epoch` and the arm of each trial.

  Returns:
    ({'params': ..., 'batch_stats': ..., 'frozen': ...} nested dicts of float32 arrays [T, ...]
    ('batch_stats' is {} for batch-independent norms), [arm of each of the T trials]).
  """
  d = pathlib.Path(path) / 'params'
  file = d / f'epoch_{epoch_name(epoch)}.npz'
  if not file.exists():
    saved = ', '.join(f'{e:g}' for e in params_epochs(path)) or 'none'
    raise FileNotFoundError(
        f'{file} does not exist (saved epochs: {saved}); set '
        'train.params_at to the epochs you need.'
    )
  from flax import traverse_util  # noqa: PLC0415 (flax imports jax: only readers of weights pay)

  with np.load(file) as npz:
    tree = traverse_util.unflatten_dict({k: npz[k] for k in npz.files}, sep='/')
  arms = read_json(d / 'trials.json')['arm']
  return {k: tree.get(k, {}) for k in PARAMS_COLLECTIONS}, arms
