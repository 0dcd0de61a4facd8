"""SIGTERM / SIGINT during a run: a flag the loop checks between dispatches."""

import contextlib
import signal

import jax
from absl import logging
from jax.experimental import multihost_utils


class Preemption:
  """Turns SIGTERM / SIGINT into a flag the loop checks between dispatches.

  With several processes all must stop after the same dispatch: SIGTERM is then left to JAX's
  preemption service (set up by `jax.distributed.initialize`), which agrees on a common dispatch
  via `reached_preemption_sync_point` (a signal caught in Python would stop one process alone and
  hang the others); Ctrl-C is not caught there.
  """

  def __init__(self):
    self.requested = False
    self.multiprocess = jax.process_count() > 1
    self._dispatches = 0

  def check(self) -> bool:
    """Call once after every dispatch: whether to checkpoint and stop now (the same answer on
    every process)."""
    if self.multiprocess and not self.requested:
      self.requested = multihost_utils.reached_preemption_sync_point(self._dispatches)
      if self.requested:
        logging.warning('Preemption notice: all processes checkpoint and stop.')
    self._dispatches += 1
    return self.requested

  def _handler(self, signum, frame):
    del frame
    logging.warning('Received signal %d: checkpointing and stopping.', signum)
    self.requested = True

  @contextlib.contextmanager
  def installed(self):
    if self.multiprocess:  # SIGTERM goes to JAX's preemption notifier
      yield self
      return
    old = {s: signal.signal(s, self._handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
      yield self
    finally:
      for s, h in old.items():
        signal.signal(s, h)
