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
"""

import pathlib
import shutil
from collections.abc import Callable
from typing import Any

import jax
import orbax.checkpoint as ocp
from absl import logging
from jax.experimental import multihost_utils


class CheckpointError(RuntimeError):
  """No checkpoint in the directory can be restored."""


class Checkpointer:
  """Saves and restores pytrees under `directory/<step>/` (async saves; `wait` before reading)."""

  def __init__(self, directory: str | pathlib.Path, max_to_keep: int = 2):
    self.directory = pathlib.Path(directory).absolute()  # orbax needs absolute paths
    self.max_to_keep = max_to_keep
    self._manager = self._open()

  def _open(self) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=self.max_to_keep, create=True)
    return ocp.CheckpointManager(self.directory, options=options)

  def save(self, step: int, tree: Any) -> None:
    """Starts saving `tree` as checkpoint `step` (returns before the write finishes)."""
    self._manager.save(step, args=ocp.args.StandardSave(tree), force=True)

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()

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
            str(e)[:300],
        )
        failed.append((step, f'cannot be restored: {type(e).__name__}: {str(e)[:2000]}'))
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
