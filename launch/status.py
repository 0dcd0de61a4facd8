"""The state of every point of a sweep root: `python -m svag_jax.launch.sweep --status ROOT`.

One line per point (in the sweep's order, ROOT/sweep.json): its state, its step (of its total)
and its last test accuracy (the mean over its trials at its last evaluation), then the command
that resumes the unfinished points. The states:

    done / diverged   finished (status.json)
    running           status.json says running (and, where its process is on this host, it is)
    preempted         checkpointed and stopped: resumable
    failed            status.json says failed, or says running but its process is gone (killed)
    not started       no run record yet

Which process runs a point is in ROOT/logs/<name>.task.json (`note_task`, written by the sweep's
tasks); a point's output is in ROOT/logs/<name>.log (the cluster executors).
"""

import json
import os
import pathlib
import shlex
import socket
import time

from svag_jax import record

UNFINISHED = ('preempted', 'failed', 'not started')


def read_status(workdir: str | os.PathLike) -> str | None:
  """The status in WORKDIR/status.json, or None (no run yet, or unreadable)."""
  try:
    return json.loads((pathlib.Path(workdir) / 'status.json').read_text())['status']
  except (OSError, ValueError, KeyError, TypeError):
    return None


def log_paths(root: str | os.PathLike, name: str) -> tuple[pathlib.Path, pathlib.Path]:
  """(ROOT/logs/<name>.log, ROOT/logs/<name>.task.json) of a point."""
  logs = pathlib.Path(root) / 'logs'
  return logs / f'{name}.log', logs / f'{name}.task.json'


def note_task(root: str | os.PathLike, name: str, pid: int, job_id: str | None = None) -> None:
  """Writes ROOT/logs/<name>.task.json: the process that runs the point now (host, pid, job)."""
  _, path = log_paths(root, name)
  path.parent.mkdir(parents=True, exist_ok=True)
  info = {
      'host': socket.gethostname(),
      'pid': pid,
      'job_id': job_id,
      'started': time.strftime('%Y-%m-%dT%H:%M:%S'),
  }
  tmp = path.with_name(path.name + '.tmp')
  tmp.write_text(json.dumps(info))
  tmp.replace(path)


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # someone else's process
    return True
  return True


def point_state(root: str | os.PathLike, name: str) -> dict:
  """{'state', 'step', 'total_steps', 'test_accuracy', 'detail'} of the point ROOT/<name>."""
  workdir = pathlib.Path(root) / name
  try:
    status = json.loads((workdir / 'status.json').read_text())
  except (OSError, ValueError):
    status = None
  if not isinstance(status, dict) or 'status' not in status:
    return {'state': 'not started', 'step': None, 'total_steps': None, 'test_accuracy': None,
            'detail': ''}  # fmt: skip
  state, detail = status['status'], ''
  if state == 'failed':
    detail = status.get('error') or status.get('message') or ''
  elif state == 'diverged':
    detail = status.get('message', '')
  _, note_path = log_paths(root, name)
  note = json.loads(note_path.read_text()) if note_path.exists() else None
  if state == 'running' and note:
    where = f'pid {note["pid"]} on {note["host"]}' + (
        f', job {note["job_id"]}' if note.get('job_id') else ''
    )
    if note['host'] == socket.gethostname() and not _alive(note['pid']):
      state, detail = 'failed', f'killed: its process ({where}) is gone; the record says running'
    else:
      detail = where
  try:
    rows = record.read_metrics(workdir)
  except (OSError, record.WorkdirError):
    rows = []
  last = max((r['step'] for r in rows), default=0)
  accuracies = [
      r['test_accuracy'] for r in rows if r['step'] == last and r.get('test_accuracy') is not None
  ]
  return {
      'state': state,
      'step': max(last, status.get('step') or 0),
      'total_steps': status.get('total_steps'),
      'test_accuracy': sum(accuracies) / len(accuracies) if accuracies else None,
      'detail': detail,
  }


def _job_of(root: pathlib.Path, name: str) -> str | None:
  """The submitit job (SLURM: ARRAY_TASK) that last ran the point, if any."""
  _, path = log_paths(root, name)
  try:
    return json.loads(path.read_text()).get('job_id')
  except (OSError, ValueError):
    return None


def resume_command(root: str | os.PathLike, index: dict, names: list[str]) -> str:
  """The sweep command of ROOT/sweep.json restricted to the points `names` (`--point=NAME`)."""
  args = index.get('command')
  if args is None:  # a root written before the command was recorded
    args = [f'--config={index["config"]}', f'--workdir={root}']
    args += [f'--config.{k}={v}' for k, v in index.get('overrides', {}).items()]
  args = [*args, *(f'--point={n}' for n in names)]
  command = 'python -m svag_jax.launch.sweep ' + shlex.join(args)
  cwd = index.get('cwd')
  if cwd and pathlib.Path(cwd).resolve() != pathlib.Path.cwd().resolve():
    command = f'cd {shlex.quote(cwd)} && {command}'
  return command


def report(root: str | os.PathLike) -> list[str]:
  """The lines of `--status ROOT`: one per point, a count per state, the resume command.

  Raises:
    FileNotFoundError: ROOT has no sweep.json.
  """
  root = pathlib.Path(root)
  index_path = root / 'sweep.json'
  if not index_path.exists():
    raise FileNotFoundError(f'{index_path} does not exist: is {root} the root of a sweep?')
  index = json.loads(index_path.read_text())
  names = list(index['points'])
  width = max(len(n) for n in names)
  lines, states = [f'{root}: {len(names)} points of {index.get("config")}'], {}
  for name in names:
    s = point_state(root, name)
    states.setdefault(s['state'], []).append(name)
    step = '' if s['step'] is None else f'step {s["step"]}'
    if s['total_steps']:
      step += f'/{s["total_steps"]}'
    acc = '' if s['test_accuracy'] is None else f'test accuracy {s["test_accuracy"]:.4f}'
    line = f'  {name:<{width}}  {s["state"]:<11}  {step:<15}  {acc:<22}  {s["detail"]}'
    lines.append(line.rstrip())
  lines.append(', '.join(f'{len(v)} {k}' for k, v in states.items()) + '.')
  unfinished = [n for n in names if any(n in states.get(k, []) for k in UNFINISHED)]
  running = states.get('running', [])
  jobs = sorted({job for n in names if (job := _job_of(root, n))})
  if unfinished:
    when = ' (once the running points have ended: a point runs once at a time)' if running else ''
    if jobs:
      when = (
          f' (once the jobs {", ".join(jobs)} have ended: until then their tasks requeue their '
          'preempted points themselves)'
      )
    lines.append(f'Resume the unfinished points{when}:')
    lines.append('  ' + resume_command(root, index, unfinished))
  elif running:
    lines.append('Nothing to resume: the other points have finished.')
  else:
    lines.append('Every point has finished.')
  return lines
