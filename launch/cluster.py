"""A sweep on an existing engine: SLURM job arrays (or local processes) through submitit.

`python -m svag_jax.launch.sweep --executor=slurm|local` (launch/sweep.py) builds one `PointTask`
per array task and submits them all as ONE job array (`executor.batch()`): on SLURM one `sbatch`,
locally one process per task, all at once. Needs the optional extra `svag_jax[cluster]` (submitit).

A task runs its points one after another, each as its own `python -m svag_jax.launch.main`
process (the command `--print` shows; its own JAX runtime, its memory freed at the end):

- a point whose workdir says done (or diverged) is skipped;
- the point's output (stdout and stderr) is appended to ROOT/logs/<point>.log, one header line
  per attempt; ROOT/logs/<point>.task.json says where it runs (host, pid, job id) for
  `--status`; submitit's own files (the pickled tasks, its logs) are in ROOT/submitit/;
- preemption: submitit's signal (SLURM sends it `--signal` seconds before the time limit) calls
  `PointTask.checkpoint`, which sends SIGTERM to the running point: it checkpoints at its next
  dispatch and exits 75, and submitit requeues the task (a fresh start of the same task: its
  finished points are skipped, the stopped one resumes from its checkpoint). A point that exits
  75 by itself (SIGTERM from the scheduler, as in a preemption) makes its task requeue the same
  way. The point's process ignores submitit's signal (SLURM signals every process of the job):
  only its task decides when it stops.
"""

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import submitit

from svag_jax.launch.status import log_paths, note_task, read_status
from svag_jax.record import EXIT_CODES, FINAL_STATUSES

# A point's exit codes that ask for a requeue: preempted (checkpointed), or killed by SIGTERM
# before its run could catch it (it resumes from its last checkpoint).
REQUEUE_CODES = (EXIT_CODES['preempted'], -signal.SIGTERM)


def _now() -> str:
  return time.strftime('%Y-%m-%dT%H:%M:%S')


def _job_id() -> str | None:
  try:
    return submitit.JobEnvironment().job_id
  except RuntimeError:  # not inside a submitit job
    return None


def _preemption_signal() -> signal.Signals:
  """submitit's preemption / timeout signal (SIGUSR2 unless SUBMITIT_PREEMPT_SIGNAL says)."""
  return signal.Signals[f'SIG{submitit.JobEnvironment.USR_SIG}']


class PointTask(submitit.helpers.Checkpointable):
  """One array task: the points [(name, launch.main arguments)] run in turn into ROOT/<name>.

  Returns {name: status} of its points. Checkpointable: on submitit's preemption signal the running
  point is stopped at a checkpoint and the task is requeued with the same points.
  """

  def __init__(self, root: str, points: list[tuple[str, list[str]]], cwd: str):
    self.root, self.points, self.cwd = root, points, cwd
    self._child: subprocess.Popen | None = None

  def __call__(self) -> dict[str, str | None]:
    statuses = {}
    for name, argv in self.points:
      workdir = pathlib.Path(self.root) / name
      log, _ = log_paths(self.root, name)
      log.parent.mkdir(parents=True, exist_ok=True)
      if read_status(workdir) in FINAL_STATUSES:
        with log.open('a') as f:
          f.write(f'==== {_now()} {name}: already {read_status(workdir)}, skipped\n')
        statuses[name] = read_status(workdir)
        continue
      code = self._run(name, argv, log)
      statuses[name] = read_status(workdir)
      if code in REQUEUE_CODES and _job_id() is not None:
        # Requeue through submitit's own path: its signal handler calls `checkpoint` (nothing
        # runs now) and requeues this task; it exits this process.
        os.kill(os.getpid(), _preemption_signal())
        time.sleep(60)
    return statuses

  def _run(self, name: str, argv: list[str], log: pathlib.Path) -> int:
    command = [sys.executable, '-m', 'svag_jax.launch.main', *argv]
    ignored = _preemption_signal()
    with log.open('a') as out:
      out.write(
          f'==== {_now()} {name}: on {socket.gethostname()}, job {_job_id()}: '
          f'{" ".join(command)}\n'
      )
      out.flush()
      self._child = subprocess.Popen(
          command,
          cwd=self.cwd,
          stdout=out,
          stderr=subprocess.STDOUT,
          preexec_fn=lambda: signal.signal(ignored, signal.SIG_IGN),  # the task decides
      )
      note_task(self.root, name, self._child.pid, _job_id())
      code = self._child.wait()
      self._child = None
      out.write(f'==== {_now()} {name}: exit code {code}\n')
    return code

  def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
    """submitit's signal handler: stop the running point at a checkpoint (SIGTERM; it exits 75),
    then resubmit this task unchanged (finished points skipped, the stopped one resumes)."""
    child = self._child
    if child is not None:
      child.send_signal(signal.SIGTERM)
      # os.waitpid, not child.wait(): this handler may run inside child.wait(), which holds a
      # lock that another wait() would wait for forever.
      while True:
        try:
          pid, _ = os.waitpid(child.pid, os.WNOHANG)
        except ChildProcessError:  # already reaped
          break
        if pid:
          break
        time.sleep(0.2)
    return super().checkpoint(*args, **kwargs)

  def __getstate__(self) -> dict:
    return {**self.__dict__, '_child': None}  # a process does not pickle


def tasks_of(
    root: str, points: list[tuple[str, list[str]]], num_tasks: int, cwd: str
) -> list[PointTask]:
  """The points dealt round-robin into `num_tasks` tasks (sweeps often grow in cost along their
  order: each task gets a share of the cheap and the dear points)."""
  num_tasks = max(1, min(num_tasks, len(points)))
  return [PointTask(root, points[i::num_tasks], cwd) for i in range(num_tasks)]


def executor(
    kind: str, root: str, slurm: dict[str, Any] | None = None, max_timeouts: int = 3
) -> submitit.AutoExecutor:
  """A submitit executor writing to ROOT/submitit: 'local' (processes here, no time limit) or
  'slurm' with `slurm` = {timeout_min, partition, account, gpus_per_task, cpus_per_task, mem_gb,
  array_parallelism, setup, additional_parameters} (None values left to the cluster), whose tasks
  may reach their time limit (and be requeued) `max_timeouts` times."""
  folder = pathlib.Path(root) / 'submitit'
  if kind == 'slurm':
    ex = submitit.AutoExecutor(folder=folder, cluster=kind, slurm_max_num_timeout=max_timeouts)
  else:
    ex = submitit.AutoExecutor(folder=folder, cluster=kind)
  if kind == 'local':
    ex.update_parameters(name='svag_jax', timeout_min=60 * 24 * 365)
    return ex
  slurm = {k: v for k, v in (slurm or {}).items() if v not in (None, [], {})}
  timeout_min = slurm.pop('timeout_min')
  ex.update_parameters(
      name='svag_jax',
      timeout_min=timeout_min,
      nodes=1,
      tasks_per_node=1,
      **{f'slurm_{k}': v for k, v in slurm.items()},
  )
  return ex


def submit(ex: submitit.AutoExecutor, tasks: list[PointTask]) -> list[submitit.Job]:
  """Submits the tasks as one job array; returns their jobs."""
  with ex.batch():
    jobs = [ex.submit(task) for task in tasks]
  return jobs


def wait(jobs: list[submitit.Job]) -> None:
  """Waits for the jobs (local ones: their processes), printing each as it ends."""
  for job in submitit.helpers.as_completed(jobs, poll_frequency=1):
    state = 'finished' if job.exception() is None else f'failed: {job.exception()}'
    print(f'task {job.job_id}: {state}', flush=True)
