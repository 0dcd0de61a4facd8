"""Crash repair of a run record, on resume, by its writer (the record: `svag_jax.workdir`).

A partial last line of metrics.jsonl (a crash mid-append) is dropped and its bytes kept in
`metrics.jsonl.partial-<UTC time>`; unreadable predictions/params files and leftover temporary
files are renamed `<name>.corrupt-<UTC time>` beside the original; rows after the resumed step are
dropped (recomputed identically). Nothing is deleted. Where the process is not the writer,
nothing is changed.
"""

import os
import pathlib
import time
import zipfile

import numpy as np
from absl import logging

from svag_jax.record import scan_metrics
from svag_jax.workdir import Workdir, atomic_write


def _utc_stamp() -> str:
  return time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())


def _aside_path(path: pathlib.Path, tag: str) -> pathlib.Path:
  """A new name beside `path`: `<name>.<tag>-<UTC time>` (`-<n>` added if taken)."""
  dest = path.with_name(f'{path.name}.{tag}-{_utc_stamp()}')
  n = 1
  while dest.exists():
    dest, n = path.with_name(f'{path.name}.{tag}-{_utc_stamp()}-{n}'), n + 1
  return dest


def repair_metrics(wd: Workdir) -> list[dict]:
  """Drops a partial last line of metrics.jsonl (a crash mid-append) and returns the rows.

  The dropped bytes are kept in `metrics.jsonl.partial-<UTC time>` beside the file, and a
  warning names the line. Rows of the evaluation it belonged to are recomputed on resume (see
  `complete_eval_step`). Only the writer repairs; the others just read.

  Raises:
    WorkdirError: a line before the last is corrupt (not a crash's doing; nothing is changed).
  """
  rows, kept, partial, line = scan_metrics(wd.metrics_path)
  if partial and wd.writer:
    aside = _aside_path(wd.metrics_path, 'partial')
    aside.write_bytes(partial)
    logging.warning(
        '%s, line %d: partial last line (%d bytes; a crash mid-append?) dropped; '
        'its bytes are kept in %s and its evaluation is recomputed.',
        wd.metrics_path,
        line,
        len(partial),
        aside.name,
    )
    atomic_write(wd.metrics_path, wd.metrics_path.read_bytes()[:kept].decode())
  return rows


def repair_files(wd: Workdir) -> dict[str, list[float]]:
  """Sets aside unreadable predictions/params files and leftover temporary files.

  A file is renamed `<name>.corrupt-<UTC time>` beside itself, with a warning: predictions
  `epoch_<E>.npy` that np.load cannot map (truncated), params `epoch_<E>.npz` that are not a
  complete zip archive, and `*.tmp*` files of an interrupted atomic write (in the workdir,
  predictions/ and params/).

  Returns:
    {'predictions': [E, ...], 'params': [E, ...]}: the epochs whose file was set aside (the
    caller recomputes them). Empty lists where this process is not the writer.
  """
  bad: dict[str, list[float]] = {'predictions': [], 'params': []}
  if not wd.writer:
    return bad
  for d in (wd.path, wd.predictions_dir, wd.params_dir):
    for tmp in sorted(d.glob('*.tmp*')) if d.is_dir() else []:
      if tmp.is_file() and '.corrupt-' not in tmp.name:
        _set_aside(tmp, 'a leftover temporary file of an interrupted write')
  for kind, d, ext in (
      ('predictions', wd.predictions_dir, '.npy'),
      ('params', wd.params_dir, '.npz'),
  ):
    for f in sorted(d.glob(f'epoch_*{ext}')) if d.is_dir() else []:
      try:
        if ext == '.npy':
          np.load(f, mmap_mode='r')
        else:
          with zipfile.ZipFile(f) as z:  # a truncated zip has lost its central directory
            z.namelist()
      except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        _set_aside(f, f'unreadable ({type(e).__name__}: {e}); it is recomputed')
        bad[kind].append(float(f.stem.removeprefix('epoch_')))
  return bad


def _set_aside(path: pathlib.Path, why: str) -> None:
  dest = _aside_path(path, 'corrupt')
  logging.warning('%s: %s; moved to %s.', path, why, dest.name)
  os.replace(path, dest)


def truncate_metrics(wd: Workdir, max_step: int) -> int:
  """Drops rows written after step `max_step` (they will be recomputed identically on resume).

  Returns the number of rows dropped (0 where this process is not the writer).
  """
  if not wd.writer or not wd.metrics_path.exists():
    return 0
  repair_metrics(wd)  # a partial last line is kept aside, not dropped silently
  rows, kept, partial, _ = scan_metrics(wd.metrics_path)
  text = wd.metrics_path.read_bytes()[:kept].decode()
  lines = [line for line in text.split('\n') if line.strip()]
  keep = [line for line, row in zip(lines, rows, strict=True) if row['step'] <= max_step]
  if len(keep) != len(lines) or partial:
    atomic_write(wd.metrics_path, ''.join(line + '\n' for line in keep))
  return len(lines) - len(keep)
