"""The run record on disk. Training writes it; analysis only reads it.

    <workdir>/config.json        the full config, written at the start, with a header (the config's
                                 hash, the software; `record.read_record_config`)
    <workdir>/metrics.jsonl      one JSON row per evaluation per trial, appended as produced
                                 (pandas: pd.read_json(path, lines=True))
    <workdir>/status.json        {"status": running|done|preempted|diverged|failed, ...}
    <workdir>/attempts.jsonl     one JSON row per command run on this workdir, appended when it
                                 ends: {"time", "outcome" (done|preempted|diverged|failed),
                                 "status" (status.json after it), "step", "error", "software"
                                 (`software.versions`), and what it took over or changed}
    <workdir>/lock               the command writing the workdir now (svag_jax.lock)
    <workdir>/predictions/       epoch_<E>.npy: uint8 [T, n_test] predicted classes (np.load with
                                 mmap_mode='r' reads lazily); a trial that had diverged by epoch E
                                 has DIVERGED_PREDICTION (255) for every input (`live_trials`);
                                 trials.json: arm of each trial
    <workdir>/params/            epoch_<E>.npz: the weights of every trial at epoch E
                                 (train.params_at): one float32 array [T, ...] (leading trial
                                 axis) per leaf of {'params', 'batch_stats', 'frozen'}, named by
                                 its '/'-joined path, e.g. 'params/Dense_0/kernel' (the fixed head,
                                 'frozen/...', is saved too, so one file defines the networks);
                                 trials.json: arm of each trial. `read_params` rebuilds the dicts.
    <workdir>/groups.json        the scale-invariant groups of the per-group metrics, written at
                                 the start (declared by a built-in model, or found: members and
                                 evidence; `svag_jax.invariance.Groups.to_json`); a resumed run
                                 reads them back
    <workdir>/checkpoints/       orbax checkpoints
    <workdir>/corrupt_checkpoints/  checkpoints set aside on resume (`<step>`, `<step>.reason.txt`)

Crash repair (on resume, by the writer: `svag_jax.repair`): a partial last line of metrics.jsonl
(a crash mid-append) is dropped and its bytes kept in `metrics.jsonl.partial-<UTC time>`;
unreadable predictions/params files and leftover temporary files are renamed
`<name>.corrupt-<UTC time>` beside the original. Nothing is deleted.

Status rules: `done` and `diverged` are final: a later command that is refused or fails before it
trains (changed config, unreadable checkpoints, lowered train.epochs, any exception) leaves
status.json as it is and only appends its reason to attempts.jsonl. A command that trains (a
`running` or `preempted` run, or a finished run given more epochs, which makes it `running`
again) and then fails sets `failed`. Exit codes of `python -m svag_jax.launch.main`:
record.EXIT_CODES.
"""

import hashlib
import json
import os
import pathlib
import time
from typing import Any

import ml_collections
import numpy as np
from absl import logging

from svag_jax.record import (
    DIVERGED_PREDICTION,
    GROUPS_FILE,
    HEADER,
    PARAMS_COLLECTIONS,
    WorkdirError,
    epoch_name,
    read_record_config,
)

# Fields that may change between a run and its resumption (e.g. training longer).
RESUMABLE_FIELDS = (
    'train.epochs',
    'checkpoint.max_to_keep',
    'train.predictions_at',
    'train.params_at',
    'logging.tensorboard',
    'logging.wandb',
    'logging.wandb_project',
    'logging.wandb_mode',
    'logging.progress',
)


def config_to_json(config: ml_collections.ConfigDict | dict) -> dict:
  """A JSON-able dict of the config (tuples become lists)."""
  tree = config if isinstance(config, dict) else config.to_dict()
  return json.loads(json.dumps(tree, default=list))


def config_hash(config: dict) -> str:
  """sha256 of a resolved config (JSON-able, `config_to_json`) without its RESUMABLE_FIELDS: the
  identity of a run, in config.json's header and in every checkpoint."""
  from flax import traverse_util  # noqa: PLC0415 (flax imports jax; analysis imports this module)

  flat = traverse_util.flatten_dict({k: v for k, v in config.items() if k != HEADER}, sep='.')
  kept = {k: v for k, v in flat.items() if k not in RESUMABLE_FIELDS}
  return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()


def check_path(path: str | os.PathLike) -> None:
  """Refuses a workdir path that is not valid UTF-8 (orbax and TensorStore write only UTF-8 paths:
  it would fail at the first checkpoint, after training)."""
  text = os.fspath(pathlib.Path(path).absolute())
  try:
    text.encode('utf-8')
  except UnicodeEncodeError:
    shown = os.fsencode(text).decode('utf-8', 'backslashreplace')
    raise WorkdirError(
        f'{shown}: the workdir path is not valid UTF-8, which the checkpoints (orbax, TensorStore) '
        'cannot be written under; choose a --workdir whose name is UTF-8.'
    ) from None


def _named(e: OSError, path: pathlib.Path) -> OSError:
  """`e` with the file it failed on (a failed write or fsync of an open file names none)."""
  return e if e.filename else OSError(e.errno, e.strerror or str(e), str(path))


def atomic_write(path: pathlib.Path, text: str) -> None:
  tmp = path.with_name(path.name + '.tmp')
  try:
    tmp.write_text(text)
  except OSError as e:
    raise _named(e, tmp) from e
  os.replace(tmp, path)


class Workdir:
  """Writes the files of one run. Every write is append-only or atomic (write, then rename).

  In a multi-process run every process holds a Workdir but only the one with `writer=True`
  (process 0) writes; the others' writes are no-ops, so no two processes touch the same file.
  """

  def __init__(self, path: str | os.PathLike, writer: bool = True, software: dict | None = None):
    check_path(path)
    self.path = pathlib.Path(path).absolute()
    self.writer = writer
    self.software = software  # this command's (software.versions): the header, attempts rows
    self.software_changes: list[dict] = []  # the header's, carried over by write_config
    self.attempt_info: dict = {}  # added to this command's attempts rows (what it took over, ...)
    if writer:
      self.path.mkdir(parents=True, exist_ok=True)
    self.metrics_path = self.path / 'metrics.jsonl'
    self.config_path = self.path / 'config.json'
    self.status_path = self.path / 'status.json'
    self.predictions_dir = self.path / 'predictions'
    self.params_dir = self.path / 'params'
    self.checkpoints_dir = self.path / 'checkpoints'
    self.attempts_path = self.path / 'attempts.jsonl'

  def start(self, config: ml_collections.ConfigDict | dict, write: bool = True) -> None:
    """Checks that an existing config.json describes the same run (resumable fields aside), and
    writes config.json if `write` (else `write_config` later, once the run goes on: a refused
    rerun must not change the record)."""
    from flax import traverse_util  # noqa: PLC0415 (flax imports jax; analysis imports this module)

    new = config_to_json(config)
    if self.config_path.exists():
      old, header = read_record_config(self.path)
      self.software_changes = list(header.get('software_changes', []))
      a, b = (traverse_util.flatten_dict(c, sep='.') for c in (old, new))
      diff = [
          f'{k}: {a.get(k)!r} -> {b.get(k)!r}'
          for k in sorted(set(a) | set(b))
          if a.get(k) != b.get(k) and k not in RESUMABLE_FIELDS
      ]
      if diff:
        error = WorkdirError(
            f'{self.path} holds a run with a different config ({"; ".join(diff)}). Use a new '
            '--workdir for a different experiment, or the same config to resume this one.'
        )
        self.record_attempt('failed', error=f'{type(error).__name__}: {error}')
        raise error
    if write:
      self.write_config(new)

  def write_config(
      self, config: ml_collections.ConfigDict | dict, software: dict | None = None
  ) -> None:
    """Writes config.json: `config` and its header (`record.read_record_config`), whose software
    is `software` (default: this command's)."""
    if self.writer:
      config = {k: v for k, v in config_to_json(config).items() if k != HEADER}
      software = software or self.software
      header = {'format': 1, 'config_sha256': config_hash(config), 'software': software}
      if self.software_changes:
        header['software_changes'] = self.software_changes
      text = json.dumps({HEADER: header, **config}, indent=2, sort_keys=True)
      atomic_write(self.config_path, text)

  def write_groups(self, groups: dict) -> None:
    """WORKDIR/groups.json (`svag_jax.record.read_groups` reads it)."""
    if self.writer:
      atomic_write(self.path / GROUPS_FILE, json.dumps(groups, indent=2))

  def append_metrics(self, rows: list[dict]) -> None:
    if not self.writer:
      return
    try:
      with self.metrics_path.open('a') as f:
        for row in rows:
          f.write(json.dumps(row, allow_nan=False) + '\n')
        f.flush()
        os.fsync(f.fileno())
    except OSError as e:
      raise _named(e, self.metrics_path) from e

  def write_status(self, status: str, **info: Any) -> None:
    if not self.writer:
      return
    atomic_write(self.status_path, json.dumps({'status': status, **info}, indent=2))

  def status(self) -> str | None:
    """The status in status.json, or None if there is none (a new workdir) or it is unreadable."""
    try:
      return json.loads(self.status_path.read_text())['status']
    except (OSError, ValueError, KeyError, TypeError):
      return None

  def record_attempt(self, outcome: str, **info: Any) -> None:
    """Appends one row to attempts.jsonl: how a command on this workdir ended (`outcome`, one of
    EXIT_CODES), the status.json it left, and `info` (e.g. step, error)."""
    if not self.writer or not self.path.is_dir():
      return
    row = {
        'time': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
        'outcome': outcome,
        'status': self.status(),
        **info,
        **self.attempt_info,
        **({'software': self.software} if self.software else {}),
    }
    try:
      with self.attempts_path.open('a') as f:
        f.write(json.dumps(row, default=str) + '\n')
        f.flush()
        os.fsync(f.fileno())
    except OSError as e:  # in a `finally`: the command's own error is the one to report
      logging.warning('%s: this command is not recorded (%s).', self.attempts_path, e)

  def save_predictions(
      self,
      epoch: float,
      predictions: np.ndarray,
      arms: list[str],
      diverged: np.ndarray | None = None,
  ) -> None:
    """Saves uint8 [T, n_test] predicted classes at `epoch`, and the arm of each trial.

    Args:
      epoch: the epoch label of the file (predictions/epoch_<E>.npy).
      predictions: integer [T, n_test], classes in [0, DIVERGED_PREDICTION).
      arms: the arm of each of the T trials.
      diverged: bool [T], trials whose rows are replaced by DIVERGED_PREDICTION (their argmax of
        non-finite logits would otherwise read as class 0).
    """
    predictions = np.asarray(predictions)
    live = np.ones(len(predictions), bool) if diverged is None else ~np.asarray(diverged, bool)
    if predictions[live].size and (
        predictions[live].min() < 0 or predictions[live].max() >= DIVERGED_PREDICTION
    ):
      raise ValueError(
          f'save_predictions: classes must be in [0, {DIVERGED_PREDICTION}) (uint8, '
          f'{DIVERGED_PREDICTION} marks diverged trials); got '
          f'{predictions[live].min()}..{predictions[live].max()}.'
      )
    predictions = predictions.astype(np.uint8)
    predictions[~live] = DIVERGED_PREDICTION
    if not self.writer:
      return
    self.predictions_dir.mkdir(exist_ok=True)
    atomic_write(self.predictions_dir / 'trials.json', json.dumps({'arm': arms}))
    path = self.predictions_dir / f'epoch_{epoch_name(epoch)}.npy'
    tmp = path.with_name(path.stem + '.tmp.npy')
    np.save(tmp, predictions)
    os.replace(tmp, path)

  def save_params(self, epoch: float, tree: dict, arms: list[str]) -> pathlib.Path:
    """Saves the weights of every trial at `epoch` (format: module docstring, `params/`).

    Args:
      epoch: the epoch label of the file (params/epoch_<E>.npz).
      tree: {'params': ..., 'batch_stats': ..., 'frozen': ...}, nested dicts of host arrays, each
        with a leading trial axis [T, ...] (other top-level keys are refused).
      arms: the arm of each of the T trials.

    Written atomically (temporary file, then rename): rewriting an epoch after a resume replaces
    the file with the same content, so snapshots are neither duplicated nor lost.
    """
    unknown = set(tree) - set(PARAMS_COLLECTIONS)
    if unknown:
      raise ValueError(
          f'save_params: unknown collections {sorted(unknown)}; ' f'expected {PARAMS_COLLECTIONS}'
      )
    from flax import traverse_util  # noqa: PLC0415 (flax imports jax; analysis imports this module)

    tree = {k: tree[k] for k in PARAMS_COLLECTIONS if k in tree}
    for path in traverse_util.flatten_dict(tree):
      if any('/' in str(k) for k in path):
        raise ValueError(f'tree path {path} contains "/", the separator of saved parameter names')
    # {'params/Dense_0/kernel': array}; empty dicts (batch_stats of a net without BatchNorm) vanish
    flat = {k: np.asarray(v) for k, v in traverse_util.flatten_dict(tree, sep='/').items()}
    bad = {k: v.shape for k, v in flat.items() if v.ndim == 0 or v.shape[0] != len(arms)}
    if bad:
      raise ValueError(f'save_params: every leaf needs a leading trial axis of {len(arms)}; {bad}')
    d = self.params_dir
    if not self.writer:
      return d / f'epoch_{epoch_name(epoch)}.npz'
    d.mkdir(exist_ok=True)
    atomic_write(d / 'trials.json', json.dumps({'arm': arms}))
    path = d / f'epoch_{epoch_name(epoch)}.npz'
    tmp = path.with_name(path.stem + '.tmp.npz')
    with tmp.open('wb') as f:
      np.savez(f, **flat)
    os.replace(tmp, path)
    return path
