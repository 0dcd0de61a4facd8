"""Orbax checkpoints behind one small class: save a tree, restore the newest readable one.

A checkpoint is one dict (trial states plus the loop's progress counters). A checkpoint that cannot
be restored (corrupt or partial) is reported, moved aside to `<workdir>/corrupt_checkpoints/` (never
deleted), and the previous one is used.
"""

import pathlib
import shutil
from typing import Any

from absl import logging
import orbax.checkpoint as ocp


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

    Returns:
      (step, tree), or None if there is no checkpoint at all.

    Raises:
      CheckpointError: checkpoints exist but none can be read.
    """
    steps = self.steps()
    for step in reversed(steps):
      try:
        return step, self._manager.restore(step, args=ocp.args.StandardRestore(target))
      except Exception as e:  # orbax raises many types for unreadable or mismatched files
        aside = self.directory.parent / 'corrupt_checkpoints' / str(step)
        logging.warning(
            'Checkpoint %d in %s cannot be restored (%s: %s); moving it to %s and trying the '
            'previous one.', step, self.directory, type(e).__name__, str(e)[:300], aside)
        self._manager.close()
        aside.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(self.directory / str(step)), str(aside))
        self._manager = self._open()
    if steps:
      raise CheckpointError(
          f'None of the checkpoints {steps} in {self.directory} can be restored (they were moved '
          f'to {self.directory.parent / "corrupt_checkpoints"}). Start over in a new --workdir, '
          'or fix the config to match the run that wrote them.'
      )
    return None
