"""Orbax checkpoints behind one small class: save a tree, restore the newest readable one.

A checkpoint is one dict (trial states plus the loop's progress counters). A checkpoint that cannot
be restored (corrupt or partial) is reported, moved aside to `<workdir>/corrupt_checkpoints/` (never
deleted), and the previous one is used.

Multi-process runs: every process creates the Checkpointer and calls save / restore / wait at the
same points (orbax writes each process's shards and lets process 0 write the metadata and finalize
the step), so the directory must be on a filesystem all processes share. Moving a corrupt
checkpoint aside is done by process 0 alone, between barriers.
"""

import pathlib
import shutil
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

  def restore_latest(self, target: Any) -> tuple[int, Any] | None:
    """Restores the newest readable checkpoint into the structure (and shardings) of `target`.

    Unreadable checkpoints newer than the one restored are moved to
    `<workdir>/corrupt_checkpoints/<step>` (so later saves are not shadowed by them); if none is
    readable, nothing is moved and CheckpointError is raised.

    Returns:
      (step, tree), or None if there is no checkpoint at all.
    """
    steps, failed = self.steps(), []
    for step in reversed(steps):
      try:
        tree = self._manager.restore(step, args=ocp.args.StandardRestore(target))
      except Exception as e:  # orbax raises many types for unreadable or mismatched files
        logging.warning('Checkpoint %d in %s cannot be restored (%s: %s); trying the previous one.',
                        step, self.directory, type(e).__name__, str(e)[:300])
        failed.append((step, e))
        continue
      if failed:
        self._move_aside([s for s, _ in failed])
      return step, tree
    if steps:
      step, error = failed[0]
      raise CheckpointError(
          f'None of the checkpoints {steps} in {self.directory} can be restored (newest, step '
          f'{step}: {type(error).__name__}: {str(error)[:300]}). Nothing was moved or deleted. '
          'Resume with the config that wrote them, or start over in a new --workdir.'
      )
    return None

  def _move_aside(self, steps: list[int]) -> None:
    self._manager.close()
    aside = self.directory.parent / 'corrupt_checkpoints'
    if jax.process_index() == 0:
      aside.mkdir(parents=True, exist_ok=True)
      for step in steps:
        logging.warning('Moving unreadable checkpoint %d to %s.', step, aside / str(step))
        shutil.move(str(self.directory / str(step)), str(aside / str(step)))
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices('svag_jax checkpoint moved aside')
    self._manager = self._open()
