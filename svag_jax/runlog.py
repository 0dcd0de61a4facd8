"""WORKDIR/log.txt: every log line of a command that trains, as on the console.

    <workdir>/log.txt        every log line of the command (absl INFO and up, warnings); the
                             previous commands' logs are log.txt.1, .2, ...

`QuietLibraries` keeps orbax's per-save chatter and JAX's backend probing out of log.txt and of
the console (launch/cli.py installs it there).
"""

import contextlib
import logging as logging_std
import pathlib

from absl import logging

LOG_NAME = 'log.txt'


def _rotate(path: pathlib.Path) -> None:
  """Moves an existing, non-empty `path` to `<name>.<n>`, n = 1, 2, ... the first free one."""
  if path.exists() and path.stat().st_size:
    n = 1
    while path.with_name(f'{path.name}.{n}').exists():
      n += 1
    path.rename(path.with_name(f'{path.name}.{n}'))


class QuietLibraries(logging_std.Filter):
  """Drops INFO records of orbax (its per-save chatter) and of JAX's backend probing ("Unable to
  initialize backend 'tpu'" on a machine without one); warnings and errors pass, as one line
  each: without the tracebacks of orbax's background threads (the error reaches the run, which
  reports it in one line)."""

  QUIET = ('/orbax/', 'xla_bridge.py')

  def filter(self, record: logging_std.LogRecord) -> bool:
    if not any(q in record.pathname for q in self.QUIET):
      return True
    record.exc_info = record.exc_text = record.stack_info = None
    return record.levelno >= logging_std.WARNING


class RunLog:
  """Appends every log record of the process (absl and Python logging, captured warnings) to
  WORKDIR/log.txt while installed, with the console's format and `QuietLibraries`.

  Records are held in memory until `start()`, which the run calls once it trains: a command
  refused before that (a changed config, a finished run, ...) leaves the workdir as it was (its
  reason is in attempts.jsonl and on the console). `start()` moves an earlier log.txt to
  log.txt.<n> and writes the held records first. `enabled=False` (processes other than the
  writer of a multi-host run) installs nothing.
  """

  def __init__(self, workdir: pathlib.Path, enabled: bool = True):
    self.path = workdir / LOG_NAME
    self.enabled = enabled
    self.handler: logging_std.Handler | None = None
    self._held: list[logging_std.LogRecord] | None = []
    self._file = None

  def __enter__(self) -> 'RunLog':
    if self.enabled:
      self.handler = _Handler(self)
      self.handler.setFormatter(logging.PythonFormatter())
      self.handler.addFilter(QuietLibraries())
      logging_std.getLogger().addHandler(self.handler)
    return self

  def start(self) -> None:
    """From now on, write to WORKDIR/log.txt (rotating an earlier one), held records first."""
    if self.handler is None or self._held is None:
      return
    _rotate(self.path)
    self._file = open(self.path, 'a', encoding='utf-8')  # noqa: SIM115 (closed in __exit__)
    held, self._held = self._held, None
    for record in held:
      self.write(self.handler.format(record))

  def write(self, line: str) -> None:
    if self._file is None:
      return
    try:
      self._file.write(line + '\n')
      self._file.flush()
    except OSError:  # e.g. a full disk: the console still has the log, the error is reported
      self._file = None

  def emit(self, record: logging_std.LogRecord) -> None:
    """Holds `record` until the log starts, then writes it."""
    if self._held is not None:
      self._held.append(record)
    else:
      self.write(self.handler.format(record))

  def __exit__(self, *exc) -> None:
    if self.handler is not None:
      logging_std.getLogger().removeHandler(self.handler)
      self.handler = None
      if self._held is None and self._file is not None:
        with contextlib.suppress(OSError):
          self._file.close()


class _Handler(logging_std.Handler):
  """RunLog's handler (RunLog.emit)."""

  def __init__(self, log: RunLog):
    super().__init__()
    self.log = log

  def emit(self, record: logging_std.LogRecord) -> None:
    try:
      self.log.emit(record)
    except Exception:  # noqa: BLE001 (logging must not break the run)
      self.handleError(record)
