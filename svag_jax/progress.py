"""The progress of the training loop: compile times, steps/s, images/s and the ETA.

`Progress` times the compilation of the train step (printed once done, and left out of the rate
and the ETA) and, when stderr is a terminal (config.logging.progress = 'auto'), keeps one live
line between evaluations: steps/s, images/s over all trials, ETA. In non-interactive logs (CI,
SLURM) there is one line per evaluation.
"""

import math
import sys
import time

import jax
from absl import logging


def format_eta(seconds: float) -> str:
  if not math.isfinite(seconds):
    return '?'
  days, rest = divmod(int(max(0, seconds)), 86400)
  clock = time.strftime('%H:%M:%S', time.gmtime(rest))
  return f'{days}d {clock}' if days else clock


class Progress:
  """Rate, ETA and compile times of the training loop, and the live line on a terminal.

  Calls that compile (the first of each dispatch length, and the first evaluation) are timed
  apart, blocking before and after them, and left out of the rate: steps/s and the ETA are those
  of the compiled program, the evaluations between included.
  """

  def __init__(
      self,
      total_steps: int,
      images_per_step: float,
      num_trials: int,
      mode: str = 'auto',
      stream=None,
      min_interval: float = 0.5,
      clock=time.perf_counter,
  ):
    self.stream = stream or sys.stderr
    self.clock = clock
    isatty = getattr(self.stream, 'isatty', lambda: False)()
    self.live = mode == 'always' or (mode == 'auto' and isatty)
    self.total_steps, self.num_trials = total_steps, num_trials
    self.images_per_step = images_per_step
    self.restart(0)
    self.compiled: set = set()
    self.min_interval, self._last_draw = min_interval, 0.0
    self._line_shown = False

  def restart(self, step: int) -> None:
    """Counts the rate from now, at `step` (where a resumed run starts)."""
    self.start_step, self.t0 = step, self.clock()
    self.excluded_s, self.excluded_steps = 0.0, 0

  def compiles(self, key) -> bool:
    """True the first time `key` (e.g. ('train', steps per call)) is seen."""
    return key not in self.compiled

  def call(self, key, what: str, fn, *args, steps: int = 0):
    """`fn(*args)`, through `timed_compile` the first time `key` is seen (it compiles `what`)."""
    if self.compiles(key):
      return self.timed_compile(key, what, fn, *args, steps=steps)
    return fn(*args)

  def timed_compile(self, key, what: str, fn, *args, steps: int = 0):
    """Runs `fn(*args)` (a call that compiles `what`), blocked, and logs its time."""
    jax.block_until_ready(args)
    t = self.clock()
    out = jax.block_until_ready(fn(*args))
    dt = self.clock() - t
    self.compiled.add(key)
    self.excluded_s += dt
    self.excluded_steps += steps
    self.clear()
    logging.info('compiled %s in %.1f s (compile + first call).', what, dt)
    return out

  def rate(self, step: int) -> float:
    """Steps/s since the start, compile calls left out (nan before a compiled call)."""
    steps = step - self.start_step - self.excluded_steps
    seconds = self.clock() - self.t0 - self.excluded_s
    return steps / seconds if steps > 0 and seconds > 0 else math.nan

  def status(self, step: int) -> str:
    rate = self.rate(step)
    if not math.isfinite(rate):
      return f'step {step}/{self.total_steps}  (rate after the first compiled call)'
    return (
        f'step {step}/{self.total_steps}  {rate:.1f} steps/s '
        f'({rate * self.images_per_step * self.num_trials:.0f} img/s over {self.num_trials} '
        f'trials)  ETA {format_eta((self.total_steps - step) / rate)}'
    )

  def update(self, step: int, pending=None) -> None:
    """Redraws the live line (at most every `min_interval` s; waits for `pending` first, so the
    line counts steps done, not dispatched). Does nothing unless live."""
    if not self.live:
      return
    now = self.clock()
    if now - self._last_draw < self.min_interval:
      return
    if pending is not None:
      jax.block_until_ready(pending)
    self._last_draw = now
    frac = step / self.total_steps if self.total_steps else 1.0
    bar = '#' * int(20 * frac)
    self.stream.write(f'\r[{bar:<20}] {self.status(step)}\x1b[K')
    self.stream.flush()
    self._line_shown = True

  def clear(self) -> None:
    """Erases the live line, so that a log line starts on a clean line."""
    if self._line_shown:
      self.stream.write('\r\x1b[K')
      self.stream.flush()
      self._line_shown = False
