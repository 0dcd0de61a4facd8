"""Orbax checkpoints behind one small class: save a tree, restore the newest readable one.

A checkpoint is one dict (trial states plus the loop's progress counters). A checkpoint that cannot
be restored (corrupt or partial: an empty step folder, a missing item folder, a truncated file), or
that the caller refuses (e.g. it is ahead of metrics.jsonl), is reported, moved aside to
`<workdir>/corrupt_checkpoints/` (never deleted) with the reason beside it, and the previous one is
used.

Multi-process runs: every process creates the Checkpointer and calls save / restore / wait at the
same points (orbax writes each process's shards and lets process 0 write the metadata and finalize
the step), so the directory must be on a filesystem all processes share. Moving a corrupt
checkpoint aside is done by process 0 alone, between barriers.

Every checkpoint carries a JSON dict of metadata beside its tree (orbax's per-step custom metadata;
svag_jax.provenance: the config, its hash and the software), read without restoring the tree
(`step_metadata`). A full disk during a save (TensorStore's RESOURCE_EXHAUSTED) is an OSError ENOSPC
naming the checkpoint directory, as any other full disk.
"""

import contextlib
import errno
import logging as logging_std
import pathlib
import shutil
import sys
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import jax
import orbax.checkpoint as ocp
from absl import logging
from jax.experimental import multihost_utils


class CheckpointError(RuntimeError):
  """No checkpoint in the directory can be restored."""


def _one_line(text: str, limit: int) -> str:
  return ' '.join(str(text).split())[:limit]


def _quiet_closed_loop(unraisable) -> None:
  """sys.unraisablehook: drops the 'Event loop is closed' errors that TensorStore's callbacks raise
  when they fire after orbax closed the event loop of a failed restore or save (a callback of a
  future nobody waits for any more); everything else goes to the previous hook."""
  value = unraisable.exc_value
  if isinstance(value, RuntimeError) and str(value) == 'Event loop is closed':
    return
  _previous_unraisablehook(unraisable)


_previous_unraisablehook = sys.unraisablehook
sys.unraisablehook = _quiet_closed_loop


class _AbandonedOrbaxFutures(logging_std.Filter):
  """Drops asyncio's 'exception was never retrieved' reports of the futures orbax abandons when a
  restore fails (the failure itself is reported by `Checkpointer.restore_latest`)."""

  def filter(self, record: logging_std.LogRecord) -> bool:
    error = record.exc_info[1] if record.exc_info else None
    frames = traceback.extract_tb(error.__traceback__) if error is not None else []
    return not any('/orbax/' in f.filename for f in frames)


logging_std.getLogger('asyncio').addFilter(_AbandonedOrbaxFutures())
# ... and the coroutines of those futures, never awaited (svag_jax itself runs no coroutine).
warnings.filterwarnings('ignore', r"coroutine '.*' was never awaited", RuntimeWarning)


class _NoOrbaxWarnings(logging_std.Filter):

  def filter(self, record: logging_std.LogRecord) -> bool:
    return '/orbax/' not in record.pathname


@contextlib.contextmanager
def _disk_full_is_oserror(directory: pathlib.Path):
  """Turns TensorStore's 'No space left on device' (a ValueError of a background write) into
  OSError(ENOSPC) naming the checkpoint directory."""
  try:
    yield
  except OSError:
    raise
  except Exception as e:
    if 'No space left on device' in str(e) or "os_error_code='28'" in str(e):
      raise OSError(errno.ENOSPC, 'No space left on device', str(directory)) from e
    raise


def step_metadata(directory: str | pathlib.Path, step: int) -> dict | None:
  """The metadata dict saved with checkpoint `step` of `directory` (None if it has none: an empty
  or partial step folder, or a checkpoint written before checkpoints carried metadata)."""
  path = pathlib.Path(directory).absolute() / str(step)
  quiet = _NoOrbaxWarnings()
  logging_std.getLogger('absl').addFilter(quiet)  # "Metadata file does not exist"
  try:
    metadata = ocp.metadata.get_step_metadata(path).custom_metadata
  except (OSError, ValueError):
    return None
  finally:
    logging_std.getLogger('absl').removeFilter(quiet)
  return metadata or None


class Checkpointer:
  """Saves and restores pytrees under `directory/<step>/` (async saves; `wait` before reading).

  `metadata`: the JSON dict saved with every checkpoint (`step_metadata` reads it back).
  """

  def __init__(
      self, directory: str | pathlib.Path, max_to_keep: int = 2, metadata: dict | None = None
  ):
    self.directory = pathlib.Path(directory).absolute()  # orbax needs absolute paths
    self.max_to_keep = max_to_keep
    self.metadata = metadata
    self._manager = self._open()

  def _open(self) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=self.max_to_keep, create=True)
    return ocp.CheckpointManager(self.directory, options=options)

  def save(self, step: int, tree: Any) -> None:
    """Starts saving `tree` as checkpoint `step`, with `metadata` beside it (returns before the
    write finishes; a failed earlier save raises here or in `wait`)."""
    with _disk_full_is_oserror(self.directory):
      args = ocp.args.StandardSave(tree)
      self._manager.save(step, args=args, force=True, custom_metadata=self.metadata)

  def wait(self) -> None:
    with _disk_full_is_oserror(self.directory):
      self._manager.wait_until_finished()

  def close(self) -> None:
    """Waits for a save in flight and closes; never raises (it runs in a `finally`, after an
    error of its own has been raised by `save` or `wait`, or after another error)."""
    try:
      self._manager.wait_until_finished()
      self._manager.close()
    except Exception as e:  # noqa: BLE001
      logging.warning('%s: closing the checkpoints failed (%s).', self.directory, _one_line(e, 300))

  def steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def restore_latest(
      self, target: Any, accept: Callable[[Any], str | None] | None = None
  ) -> tuple[int, Any] | None:
    """Restores the newest usable checkpoint into the structure (and shardings) of `target`.

    Each step is restored by a CheckpointManager of its own, opened for that one attempt: a failed
    restore leaves orbax's manager in a state in which every later restore fails too (e.g. after an
    empty step folder, "Must provide `args` of type `Composite`"), so one manager must never serve
    two attempts.

    A checkpoint is unusable if it cannot be restored, or if `accept(tree)` returns a reason (e.g.
    it is ahead of the rest of the run record). Unusable checkpoints newer than the one restored are
    moved to `<workdir>/corrupt_checkpoints/<step>` with a `<step>.reason.txt` beside them (so later
    saves are not shadowed by them; nothing is deleted).

    Returns:
      (step, tree); or None if there is no checkpoint, or if every checkpoint that could be read
      was refused by `accept` (all are then moved aside and the run starts over).

    Raises:
      CheckpointError: there are checkpoints but none can be read (nothing is moved).
    """
    steps, failed, readable = self.steps(), [], False
    for step in reversed(steps):
      manager = self._open()
      try:
        tree = manager.restore(step, args=ocp.args.StandardRestore(target))
      except Exception as e:  # orbax raises many types for unreadable or mismatched files
        logging.warning(
            'Checkpoint %d in %s cannot be restored (%s: %s); trying the previous one.',
            step,
            self.directory,
            type(e).__name__,
            _one_line(e, 300),
        )
        failed.append((step, f'cannot be restored: {type(e).__name__}: {_one_line(e, 2000)}'))
        continue
      finally:
        manager.close()
      readable = True
      reason = accept(tree) if accept is not None else None
      if reason:
        logging.warning(
            'Checkpoint %d in %s is not used: %s; trying the previous one.',
            step,
            self.directory,
            reason,
        )
        failed.append((step, reason))
        continue
      if failed:
        self._move_aside(failed)
      return step, tree
    if readable:
      logging.warning('No checkpoint in %s is usable; the run starts from step 0.', self.directory)
      self._move_aside(failed)
      return None
    if steps:
      step, reason = failed[0]
      raise CheckpointError(
          f'None of the checkpoints {steps} in {self.directory} can be restored (newest, step '
          f'{step}, {reason[:300]}). Nothing was moved or deleted. Resume with the config that '
          'wrote them, or start over in a new --workdir.'
      )
    return None

  def _move_aside(self, failed: list[tuple[int, str]]) -> None:
    """Moves checkpoints [(step, reason)] to corrupt_checkpoints/ (process 0, between barriers)."""
    self._manager.close()
    aside = self.directory.parent / 'corrupt_checkpoints'
    if jax.process_index() == 0:
      aside.mkdir(parents=True, exist_ok=True)
      for step, reason in failed:
        dest, n = aside / str(step), 1
        while dest.exists() or dest.with_name(dest.name + '.reason.txt').exists():
          dest, n = aside / f'{step}.{n}', n + 1  # the same step set aside again later
        logging.warning('Moving unusable checkpoint %d to %s.', step, dest)
        shutil.move(str(self.directory / str(step)), str(dest))
        dest.with_name(dest.name + '.reason.txt').write_text(
            f'Checkpoint {step} of {self.directory} was set aside on resume: {reason}\n'
        )
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices('svag_jax checkpoint moved aside')
    self._manager = self._open()
