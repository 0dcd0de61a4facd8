"""SIGTERM / SIGINT during a run: a flag the loop checks between dispatches.

After the first signal the run is stopping (checkpoint, status 'preempted', exit code 75): every
later SIGTERM / SIGINT is logged and ignored, and where the process ends with the run (the command
line: `PROCESS_ENDS_WITH_RUN`) to the end of the process, so that any number of them (a scheduler
that repeats its notice, an impatient Ctrl-C) cannot turn a clean preemption into a kill by
signal, which launch/slurm.sh would not requeue.
"""

import contextlib
import signal

import jax
from absl import logging
from jax.experimental import multihost_utils

# Set by the command-line entry points, whose process exits when the run returns: a run that is
# stopping then ignores SIGTERM / SIGINT to the end of the process (its shutdown included).
PROCESS_ENDS_WITH_RUN = False


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
    # Signals received, logged by `check` (a handler must not log: it may interrupt a log write).
    self._signals: list[int] = []
    self._announced = False

  def check(self) -> bool:
    """Call once after every dispatch: whether to checkpoint and stop now (the same answer on
    every process)."""
    if self.multiprocess and not self.requested:
      self.requested = multihost_utils.reached_preemption_sync_point(self._dispatches)
      if self.requested:
        logging.warning('Preemption notice: all processes checkpoint and stop.')
    if self._signals and not self._announced:
      logging.warning('Received signal %d: checkpointing and stopping.', self._signals[0])
      self._announced = True
    self._dispatches += 1
    return self.requested

  def _handler(self, signum, frame):
    del frame
    self._signals.append(signum)
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
      if len(self._signals) > 1:
        logging.warning('%d more signal(s) while stopping: ignored.', len(self._signals) - 1)
      for s, h in old.items():
        # SIG_IGN, not a Python handler: the interpreter's shutdown resets those to SIG_DFL
        signal.signal(s, signal.SIG_IGN if self.requested and PROCESS_ENDS_WITH_RUN else h)
