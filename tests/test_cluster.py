"""Sweeps on an existing engine (launch/cluster.py, launch/status.py): submitit's local executor end
to end with a preempted task, the SLURM job array as sbatch sees it (a stand-in sbatch), the
states `--status` reports, and the flags each executor reads."""

import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest
from submitit.core.utils import DelayedSubmission

from svag_jax import record
from svag_jax.launch import slurm_flags, status
from tests.helpers import one_line, run_cli

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Three points; 'b_again' is 'b' under another name: the uninterrupted twin of the one preempted.
SWEEP = """
from tests.helpers import tiny_config

def get_config(arg=None):
  return tiny_config(**{'train.epochs': 90, 'train.steps_per_dispatch': 1,
                        'train.eval_every': 30.0})

def get_sweep(arg=None):
  return [{'name': 'a', 'optim.lr': 0.05}, {'name': 'b', 'optim.lr': 0.1},
          {'name': 'b_again', 'optim.lr': 0.1}]
"""  # 720 steps, an evaluation and a checkpoint every 240


def _sweep_file(tmp_path: pathlib.Path) -> pathlib.Path:
  path = tmp_path / 'three_points.py'
  path.write_text(SWEEP)
  return path


def _wait_for(predicate, what: str, proc: subprocess.Popen, timeout: float = 400) -> None:
  deadline = time.time() + timeout
  while not predicate():
    assert proc.poll() is None, f'the sweep ended before {what}:\n{proc.communicate()[0]}'
    assert time.time() < deadline, f'no {what} after {timeout} s'
    time.sleep(0.1)


def test_local_executor_resumes_a_preempted_task_to_the_uninterrupted_numbers(tmp_path):
  """3 points in 2 local tasks (a, b_again | b): b_again's process gets SIGTERM after its first
  evaluation (as in a preemption), exits 75, its task is requeued, skips the finished 'a' and
  resumes b_again from its checkpoint to the rows of b, its uninterrupted twin."""
  root = tmp_path / 'root'
  env = {**os.environ, 'JAX_DISABLE_MOST_OPTIMIZATIONS': '1'}
  argv = [
      sys.executable, '-m', 'svag_jax.launch.sweep', f'--config={_sweep_file(tmp_path)}',
      f'--workdir={root}', '--executor=local', '--tasks=2',
  ]  # fmt: skip
  proc = subprocess.Popen(
      argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
  )
  try:
    metrics = root / 'b_again' / 'metrics.jsonl'
    _wait_for(lambda: metrics.exists() and metrics.stat().st_size, "b_again's first eval", proc)
    _, note = status.log_paths(root, 'b_again')
    os.kill(json.loads(note.read_text())['pid'], signal.SIGTERM)
    out, _ = proc.communicate(timeout=400)
  finally:
    if proc.poll() is None:
      proc.kill()
  assert proc.returncode == 0, out
  assert 'Submitted 2 task(s) for 3 point(s) (local)' in out
  for name in ('a', 'b', 'b_again'):
    assert record.read_status(root / name)['status'] == 'done'
  assert record.read_metrics(root / 'b_again') == record.read_metrics(root / 'b')
  log = status.log_paths(root, 'b_again')[0].read_text()
  assert re.findall(r'exit code (-?\d+)', log) == ['75', '0'], log  # preempted, then resumed
  assert 'Resuming from step' in (root / 'b_again' / 'log.txt').read_text()
  assert 'a: already done, skipped' in status.log_paths(root, 'a')[0].read_text()
  lines = status.report(root)
  assert lines[-2:] == ['3 done.', 'Every point has finished.']
  assert re.search(r'b_again +done +step 720/720 +test accuracy 0\.\d{4}', '\n'.join(lines))


def _write_point(root: pathlib.Path, name: str, state: dict, accuracy: float | None = None):
  workdir = root / name
  workdir.mkdir(parents=True)
  (workdir / 'status.json').write_text(json.dumps(state))
  if accuracy is not None:
    rows = [{'step': s, 'trial': t, 'test_accuracy': accuracy + s / 1e3 + t * 2e-3}
            for s in (80, 160) for t in (0, 1)]  # fmt: skip
    (workdir / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))


def test_status_reports_every_state_and_the_command_that_resumes(tmp_path, capsys, monkeypatch):
  root = tmp_path / 'root'
  names = ['done', 'diverged', 'running', 'killed', 'preempted', 'failed', 'new']
  root.mkdir()
  command = ['--config=configs/lsr.py:cpu', f'--workdir={root}', '--executor=slurm']
  (root / 'sweep.json').write_text(
      json.dumps({'config': 'configs/lsr.py:cpu', 'points': dict.fromkeys(names, {}),
                  'command': command, 'cwd': str(tmp_path)})  # fmt: skip
  )
  _write_point(root, 'done', {'status': 'done', 'step': 160, 'total_steps': 160}, 0.5)
  _write_point(root, 'diverged', {'status': 'diverged', 'step': 80, 'message': 'All diverged'})
  _write_point(root, 'running', {'status': 'running', 'step': 0, 'total_steps': 320}, 0.25)
  status.note_task(root, 'running', os.getpid(), '42_2')  # alive: this process
  _write_point(root, 'killed', {'status': 'running', 'step': 80, 'total_steps': 320})
  gone = subprocess.Popen([sys.executable, '-c', 'pass'])
  gone.wait()
  status.note_task(root, 'killed', gone.pid, '42_3')
  _write_point(root, 'preempted', {'status': 'preempted', 'step': 120, 'total_steps': 320})
  _write_point(root, 'failed', {'status': 'failed', 'error': 'ValueError: bad'})

  monkeypatch.chdir(tmp_path)
  assert run_cli(['--status', str(root)], entry='sweep') == 0
  out = capsys.readouterr().out.splitlines()
  assert out == status.report(root)
  lines = dict(zip(names, out[1:8]))
  assert re.fullmatch(r' +done +done +step 160/160 +test accuracy 0\.6610', lines['done'])
  assert re.search(r'diverged +step 80 .*All diverged', lines['diverged'])
  assert re.search(rf'running +step 160/320 +test accuracy 0\.4110 +pid {os.getpid()}', out[3])
  assert ', job 42_2' in lines['running']
  assert re.search(rf'killed +failed +step 80/320 .*killed: its process \(pid {gone.pid}', out[4])
  assert re.search(r'preempted +step 120/320', lines['preempted'])
  assert re.search(r'failed +failed .*ValueError: bad', lines['failed'])
  assert re.fullmatch(r' +new +not started', lines['new'])
  assert out[8] == '1 done, 1 diverged, 1 running, 2 failed, 1 preempted, 1 not started.'
  assert 'once the jobs 42_2, 42_3 have ended' in out[9]
  assert out[10] == (
      '  python -m svag_jax.launch.sweep --config=configs/lsr.py:cpu '
      f'--workdir={root} --executor=slurm --point=killed --point=preempted --point=failed '
      '--point=new'
  )
  monkeypatch.chdir(ROOT)  # another folder: the command says where to run it
  assert status.report(root)[-1].startswith(f'  cd {tmp_path} && python -m')
  assert run_cli(['--status', str(tmp_path)], entry='sweep') == 1
  assert 'sweep.json does not exist' in one_line(capsys.readouterr().err)


def test_slurm_submits_the_unfinished_points_as_one_job_array(tmp_path, capsys, monkeypatch):
  """sbatch and srun are stand-ins here: the test reads the array job that sbatch was given."""
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  (bin_dir / 'sbatch').write_text(
      f'#!/bin/sh\ncp "$1" {tmp_path}/sbatch_script.sh\necho "Submitted batch job 4242"\n'
  )
  (bin_dir / 'srun').write_text('#!/bin/sh\nexit 1\n')
  for tool in ('sbatch', 'srun'):
    (bin_dir / tool).chmod(0o755)
  monkeypatch.setenv('PATH', f'{bin_dir}{os.pathsep}{os.environ["PATH"]}')
  monkeypatch.chdir(ROOT)
  root = tmp_path / 'root'
  _write_point(root, 'a', {'status': 'done', 'step': 720, 'total_steps': 720})
  argv = [
      f'--config={_sweep_file(tmp_path)}', f'--workdir={root}', '--executor=slurm',
      '--slurm.time=1:30:00', '--slurm.partition=gpu', '--slurm.account=proj',
      '--slurm.gpus_per_task=2', '--slurm.array_parallelism=1', '--slurm.sbatch=qos=high',
      '--slurm.setup=module load cuda',
  ]  # fmt: skip
  assert run_cli(argv, entry='sweep') == 0
  out = capsys.readouterr().out
  assert '1 point(s) already finished: skipped' in out
  assert 'Submitted 2 task(s) for 2 point(s) (slurm): jobs 4242_0, 4242_1.' in out
  script = (tmp_path / 'sbatch_script.sh').read_text()
  for line in (
      '#SBATCH --array=0-1%1', '#SBATCH --partition=gpu', '#SBATCH --account=proj',
      '#SBATCH --time=90', '#SBATCH --gpus-per-task=2', '#SBATCH --qos=high',
      '#SBATCH --signal=USR2@90', '#SBATCH --nodes=1', '#SBATCH --ntasks-per-node=1',
      f'#SBATCH --output={root}/submitit/%A_%a_0_log.out', 'module load cuda',
  ):  # fmt: skip
    assert line in script.splitlines(), (line, script)
  assert f'{sys.executable} -u -m submitit.core._submit {root}/submitit' in script
  tasks = [DelayedSubmission.load(root / 'submitit' / f'4242_{i}_submitted.pkl') for i in (0, 1)]
  assert [[name for name, _ in t.function.points] for t in tasks] == [['b'], ['b_again']]
  assert tasks[0].function.points[0][1] == [
      f'--config={tmp_path}/three_points.py',
      f'--workdir={root}/b',
      '--config.optim.lr=0.1',
  ]
  assert tasks[0].function.cwd == str(ROOT)
  assert json.loads((root / 'sweep.json').read_text())['command'] == argv


@pytest.mark.parametrize(
    'extra,match',
    [
        (['--executor=local', '--slurm.partition=gpu'], r'--slurm\.partition is not read with '
         r'--executor=local'),
        (['--tasks=2'], r'--tasks is not read with --executor=sequential'),
        (['--print', '--executor=slurm'], r'--executor is not read with --print'),
        (['--executor=slurm'], r'--executor=slurm needs --slurm\.time'),
        (['--executor=slurm', '--slurm.time=soon'], r'--slurm\.time=soon: not a SLURM time'),
        (['--executor=slurm', '--slurm.time=1:00', '--slurm.sbatch=qos'],
         r"'qos' is not KEY=VALUE"),
        (['--point=c'], r'--point=c: no such point; the points: a, b, b_again'),
        (['--status=ROOT'], r'--status ROOT takes no other flag; got --config'),
    ],
    ids=['slurm flag, local', 'tasks, sequential', 'executor, print', 'no time', 'bad time',
         'bad sbatch', 'unknown point', 'status and config'],
)  # fmt: skip
def test_sweep_flags_that_would_not_be_read_are_refused(extra, match, tmp_path, capsys):
  root = tmp_path / 'root'
  argv = [f'--config={_sweep_file(tmp_path)}', f'--workdir={root}', *extra]
  cwd = os.getcwd()
  os.chdir(ROOT)
  try:
    assert run_cli(argv, entry='sweep') == 1
  finally:
    os.chdir(cwd)
  assert re.search(match, one_line(capsys.readouterr().err))
  assert not root.exists()


def test_slurm_off_a_cluster_is_refused_before_anything_is_written(tmp_path, capsys, monkeypatch):
  monkeypatch.setenv('PATH', str(tmp_path / 'no_slurm_here'))  # no srun, no sbatch
  monkeypatch.chdir(ROOT)
  root = tmp_path / 'root'
  argv = [f'--config={_sweep_file(tmp_path)}', f'--workdir={root}', '--executor=slurm']
  assert run_cli([*argv, '--slurm.time=1:00:00'], entry='sweep') == 1
  line = one_line(capsys.readouterr().err)
  assert "UsageError: --executor=slurm needs SLURM's commands (srun, sbatch) on PATH" in line
  assert not root.exists()


@pytest.mark.parametrize(
    'text,minutes',
    [('90', 90), ('1:30', 2), ('2:00:00', 120), ('1-0', 1440), ('1-2:30', 1590), ('0-0:0:1', 1)],
)
def test_slurm_time_formats(text, minutes):
  assert slurm_flags.slurm_minutes(text) == minutes
