"""One writer per workdir: an exclusive lock held while a command writes the run record.

    <workdir>/lock     {"host", "pid", "started" (UTC), "command"} of the command that holds it;
                       there only while that command runs (removed when it ends)

The lock is an OS file lock (`fcntl.flock`) on WORKDIR/lock, taken before anything is written and
held until the command ends; the kernel releases it when the process dies, however it dies. A
second command on the same workdir (a double-submitted SLURM job, a second terminal) is refused in
one line naming the holder, before it writes anything. A lock file left by a process that died
(SIGKILL, a crash) is stale: if it names this host and nobody holds the file lock, the command
takes it over with a warning. A lock file of another host whose file lock is free is refused
instead: whether a file lock taken on another host is seen here depends on the shared filesystem,
so only the user can say that its process is gone (then: delete the file). Multi-host runs: process
0 holds the lock (the other processes write nothing to the record).
"""

import errno
import fcntl
import json
import os
import pathlib
import socket
import sys
import time

from absl import logging

from svag_jax.record import WorkdirError

LOCK_NAME = 'lock'


def _describe(holder: dict) -> str:
  return (
      f'pid {holder.get("pid")} on host {holder.get("host")} (started {holder.get("started")}: '
      f'{holder.get("command") or "?"})'
  )


class WorkdirLock:
  """The exclusive lock of one workdir (or sweep root), as a context manager.

  `enabled=False` (processes other than the writer) takes nothing.
  """

  def __init__(self, directory: str | os.PathLike, enabled: bool = True, what: str = 'workdir'):
    self.path = pathlib.Path(directory) / LOCK_NAME
    self.enabled = enabled
    self.what = what
    self.took_over: dict | None = None  # the stale holder taken over, for the attempts row
    self._fd: int | None = None

  def _read(self) -> dict:
    try:
      holder = json.loads(self.path.read_text())
      return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
      return {}

  def acquire(self) -> None:
    """Takes the lock; WorkdirError naming the holder if another command has it."""
    if not self.enabled:
      return
    while True:
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except OSError as e:
        os.close(fd)
        if e.errno not in (errno.EAGAIN, errno.EACCES):
          raise
        raise WorkdirError(
            f'{self.path.parent} is in use: {self.path} is held by {_describe(self._read())}. '
            f'One command writes a {self.what} at a time: wait for that one to end (or stop it), '
            'or use another --workdir.'
        ) from None
      try:  # the holder may have removed the file between our open and flock: retry on the new
        same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
      except FileNotFoundError:
        same = False
      if same:
        break
      os.close(fd)
    self._fd = fd
    holder = self._read()
    if holder:  # a lock file nobody holds: its process is gone
      if holder.get('host') != socket.gethostname():
        self.release(remove=False)
        raise WorkdirError(
            f'{self.path} names {_describe(holder)}, another host: whether that command still '
            'runs cannot be checked from here. If it has ended, delete the lock file and rerun.'
        )
      logging.warning(
          'Taking over the stale lock %s of %s: that process is gone.', self.path, _describe(holder)
      )
      self.took_over = holder
    me = {
        'host': socket.gethostname(),
        'pid': os.getpid(),
        'started': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
        'command': ' '.join(sys.argv)[:500],
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(me) + '\n').encode(), 0)
    os.fsync(fd)

  def release(self, remove: bool = True) -> None:
    if self._fd is None:
      return
    if remove:
      try:
        self.path.unlink()  # before unlocking: a waiting command then retries on a new file
      except OSError:
        pass
    os.close(self._fd)
    self._fd = None

  def __enter__(self) -> 'WorkdirLock':
    self.acquire()
    return self

  def __exit__(self, *exc) -> None:
    self.release()
