"""What made a run, checked before a command writes to its workdir: one writer, the config and the
software of the record and of its checkpoints.

`experiment.run` holds the workdir's lock (`holding`) and then, before it writes anything,
`start`s the record:

 1. A record that never trained (a config.json, but no checkpoint, no metric row, no predictions
    or params: an earlier attempt died before its first step) is not a run: a command with another
    config takes the workdir over. The old config.json is kept as config.json.replaced-<time> and
    the takeover is recorded in attempts.jsonl.
 2. Every checkpoint carries the hash of the resolved config it was made with, that config, and
    the software (`checkpoint_metadata`). A checkpoint of another config is refused, naming the
    differing fields. A missing config.json is rebuilt from the newest checkpoint's config (never
    from the command's), once that config is the command's.
 3. config.json is compared with the command (`workdir.Workdir.start`; resumable fields aside).
 4. The software (`svag_jax.software.COMPARED`) of the record (config.json's header, else the
    newest checkpoint) must be this command's: a resume under other versions is refused unless the
    command allows it (`--allow_version_change`); an allowed change is recorded in the attempts
    row and in config.json's header (`software_changes`).

A refusal is one WorkdirError naming the file, recorded in attempts.jsonl; the record is otherwise
left as it is. Multi-host: process 0 decides, the others follow its answer.
"""

import contextlib
import pathlib
import time

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from svag_jax import software as software_lib
from svag_jax.checkpoint import step_metadata
from svag_jax.lock import WorkdirLock
from svag_jax.record import GROUPS_FILE, WorkdirError, read_record_config
from svag_jax.workdir import RESUMABLE_FIELDS, Workdir, config_hash, config_to_json


def _agree(error: Exception | None, what: str) -> None:
  """Raises `error` (process 0's) on process 0 and a WorkdirError on the others of a multi-host
  run when process 0 failed at `what`; nothing when it succeeded."""
  if jax.process_count() > 1:
    ok = int(multihost_utils.broadcast_one_to_all(np.int32(error is None)))
    if not ok and error is None:
      raise WorkdirError(f'process 0 refused {what} (its log says why).')
  if error is not None:
    raise error


@contextlib.contextmanager
def holding(wd: Workdir):
  """The workdir's lock (svag_jax.lock), held by the writer (process 0) while the block runs."""
  lock = WorkdirLock(wd.path, enabled=wd.writer)
  error = None
  try:
    lock.acquire()
  except Exception as e:  # noqa: BLE001 (given to every process by _agree)
    error = e
  _agree(error, f'the lock of {wd.path}')
  if lock.took_over:
    wd.attempt_info['took_over_lock'] = lock.took_over
  try:
    yield lock
  finally:
    lock.release()


def checkpoint_metadata(config: dict, software: dict | None) -> dict:
  """What every checkpoint of a run carries: its config (resolved, as config.json), the config's
  hash (`workdir.config_hash`) and the software that wrote it."""
  config = config_to_json(config)
  return {'config_sha256': config_hash(config), 'config': config, 'software': software}


def _steps(wd: Workdir) -> list[int]:
  d = wd.checkpoints_dir
  return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.is_dir() else []


def _differences(old: dict, new: dict) -> str:
  from flax import traverse_util  # noqa: PLC0415

  a, b = (traverse_util.flatten_dict(c, sep='.') for c in (old, new))
  diff = [
      f'{k}: {a.get(k)!r} -> {b.get(k)!r}'
      for k in sorted(set(a) | set(b))
      if a.get(k) != b.get(k) and k not in RESUMABLE_FIELDS
  ]
  return '; '.join(diff) or 'its hash differs'


def _refuse(wd: Workdir, message: str) -> WorkdirError:
  error = WorkdirError(message)
  wd.record_attempt('failed', error=f'WorkdirError: {message}')
  return error


def _never_trained(wd: Workdir) -> bool:
  """Whether the record holds a config.json and nothing that training makes."""
  made = [wd.predictions_dir.glob('epoch_*'), wd.params_dir.glob('epoch_*')]
  metrics = wd.metrics_path.exists() and wd.metrics_path.stat().st_size > 0
  return wd.config_path.exists() and not (_steps(wd) or metrics or any(any(m) for m in made))


def _take_over(wd: Workdir, config: dict) -> None:
  """Step 1 of the module docstring."""
  old, _ = read_record_config(wd.path)
  if not _never_trained(wd) or config_hash(old) == config_hash(config):
    return
  stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())
  aside = wd.config_path.with_name(f'config.json.replaced-{stamp}')
  wd.config_path.replace(aside)
  groups = wd.path / GROUPS_FILE  # the old model's groups (written before its first step)
  if groups.exists():
    groups.replace(groups.with_name(f'{GROUPS_FILE}.replaced-{stamp}'))
  logging.warning(
      '%s never trained (its earlier attempt, status %r, stopped before the first step): this '
      'command takes it over; its config is kept as %s.',
      wd.path,
      wd.status(),
      aside.name,
  )
  wd.attempt_info['took_over'] = {
      'never_trained': True,
      'status': wd.status(),
      'config': aside.name,
  }


def _check_checkpoints(wd: Workdir, config: dict) -> dict | None:
  """Step 2: refuses checkpoints of another config, rebuilds a missing config.json. Returns the
  newest checkpoint's metadata (None if there is none with metadata)."""
  steps = _steps(wd)
  metas = [(s, m) for s in reversed(steps) if (m := step_metadata(wd.checkpoints_dir, s))]
  missing = not wd.config_path.exists()
  for step, meta in metas:
    if meta.get('config_sha256') != config_hash(config):
      raise _refuse(
          wd,
          f'{wd.checkpoints_dir / str(step)} was written by a run with a different config '
          f'({_differences(meta.get("config") or {}, config)})'
          + ('; config.json is missing, so the checkpoint is the record' if missing else '')
          + '. Rerun the command of that run to resume it, or use a new --workdir.',
      )
  if missing and steps:
    if not metas:
      raise _refuse(
          wd,
          f'{wd.config_path} is missing and the checkpoints {steps} in {wd.checkpoints_dir} do '
          'not say which config made them (written before checkpoints carried it). Put the '
          "run's config.json back to resume it, or use a new --workdir.",
      )
    step, meta = metas[0]
    wd.write_config(meta['config'], software=meta.get('software'))
    logging.warning('%s was missing: rebuilt from checkpoint %d.', wd.config_path, step)
    wd.attempt_info['rebuilt_config'] = {'from_checkpoint': step}
  return metas[0][1] if metas else None


def _check_software(wd: Workdir, newest: dict | None, allow_version_change: bool) -> None:
  """Step 4 of the module docstring."""
  _, header = read_record_config(wd.path)
  found = [(wd.config_path, header.get('software'))]
  if newest is not None:
    found.append((wd.checkpoints_dir, newest.get('software')))
  mine = wd.software or {}
  for where, theirs in found:
    diff = software_lib.changes(theirs, mine, software_lib.COMPARED)
    if not diff:
      continue
    text = software_lib.describe_changes(diff)
    if not allow_version_change:
      raise _refuse(
          wd,
          f'{where} records a run made with other software ({text}). A run continued under '
          'other versions is equal to neither: rerun with the versions it was made with, pass '
          '--allow_version_change to continue it anyway (the change is recorded), or use a new '
          '--workdir.',
      )
    logging.warning('Continuing %s under other software (%s), as allowed.', wd.path, text)
    change = {'time': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), 'changes': diff}
    wd.attempt_info['software_change'] = change
    wd.software_changes.append(change)
    return


def start(wd: Workdir, config: dict, allow_version_change: bool = False) -> tuple[bool, dict]:
  """Checks the record against the command (module docstring) and writes config.json for a new
  run. Returns (whether the workdir holds a run to resume, the metadata of its checkpoints)."""
  config = config_to_json(config)
  resuming, error = False, None
  if wd.writer:
    try:
      if wd.config_path.exists():
        _take_over(wd, config)
      newest = _check_checkpoints(wd, config)
      resuming = wd.config_path.exists()
      wd.start(config, write=not resuming)  # a resumed record is rewritten once the run goes on
      if resuming:
        _check_software(wd, newest, allow_version_change)
    except Exception as e:  # noqa: BLE001 (given to every process by _agree)
      error = e
  _agree(error, f'to resume the run in {pathlib.Path(wd.path)}')
  return resuming, checkpoint_metadata(config, wd.software)
