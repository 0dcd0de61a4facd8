"""Faults around a run through the real entry point: bad workdirs, refused reruns on a finished
run, a diverging LR, SIGTERM / SIGKILL mid-run, truncated records and corrupt checkpoints. Each
gives one line and the right exit code, loses nothing already written, and a resumed run ends
with the numbers of an uninterrupted one (bitwise: the same program)."""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import pytest

from svag_jax import record
from tests.helpers import SHORT, TINY, event_steps, one_line, run_cli, short, snapshot

ROOT = pathlib.Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures('compile_bound')


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
  """A finished tiny run (1 epoch, 1 trial): its workdir."""
  workdir = tmp_path_factory.mktemp('finished') / 'run'
  cwd = os.getcwd()
  os.chdir(ROOT)
  try:
    assert run_cli([TINY, f'--workdir={workdir}', *SHORT]) == 0
  finally:
    os.chdir(cwd)
  return workdir


def test_a_changed_config_on_a_finished_run_is_refused_and_the_record_kept(
    finished, capsys, monkeypatch
):
  monkeypatch.chdir(ROOT)
  before = snapshot(finished)
  argv = [TINY, f'--workdir={finished}', *SHORT, '--config.train.batch_size=16']
  assert run_cli(argv) == 1
  line = one_line(capsys.readouterr().err)
  assert 'WorkdirError' in line and 'train.batch_size: 32 -> 16' in line
  assert snapshot(finished) == before


def test_a_shorter_run_on_a_finished_run_is_refused_and_the_record_kept(
    finished, capsys, monkeypatch
):
  monkeypatch.chdir(ROOT)
  before = snapshot(finished)
  argv = [TINY, f'--workdir={finished}', *short('--config.train.epochs=0.5')]
  assert run_cli(argv) == 1
  line = one_line(capsys.readouterr().err)
  assert 'config.train.epochs = 0.5' in line and 'raise train.epochs' in line
  assert snapshot(finished) == before


def test_a_workdir_that_is_a_file(tmp_path, capsys, monkeypatch):
  monkeypatch.chdir(ROOT)
  (tmp_path / 'file').write_text('not a directory')
  assert run_cli([TINY, f'--workdir={tmp_path / "file"}', *SHORT]) == 1
  line = one_line(capsys.readouterr().err)
  assert str(tmp_path / 'file') in line and 'choose another --workdir' in line
  assert (tmp_path / 'file').read_text() == 'not a directory'


def test_a_workdir_that_cannot_be_created(capsys, monkeypatch):
  target = pathlib.Path('/sys/svag_jax_test/run')  # sysfs: not writable, even for root
  if os.access('/sys', os.W_OK) and not target.parent.exists():
    try:
      target.parent.mkdir()
    except OSError:
      pass
    else:
      target.parent.rmdir()
      pytest.skip('/sys is writable here')
  monkeypatch.chdir(ROOT)
  assert run_cli([TINY, f'--workdir={target}', *SHORT]) == 1
  line = one_line(capsys.readouterr().err)
  assert '/sys/svag_jax_test' in line and 'not writable' in line


def test_a_full_disk(tmp_path, capsys, monkeypatch):
  """config.json is written through a temporary file: make that file /dev/full (ENOSPC)."""
  if not os.path.exists('/dev/full'):
    pytest.skip('no /dev/full')
  monkeypatch.chdir(ROOT)
  workdir = tmp_path / 'w'
  workdir.mkdir()
  (workdir / 'config.json.tmp').symlink_to('/dev/full')
  assert run_cli([TINY, f'--workdir={workdir}', *SHORT]) == 1
  line = one_line(capsys.readouterr().err)
  assert 'No space left on device' in line and 'the disk is full' in line


def test_a_nan_producing_lr_ends_diverged_with_its_own_exit_code(tmp_path, capsys, monkeypatch):
  monkeypatch.chdir(ROOT)
  assert run_cli([TINY, f'--workdir={tmp_path}', *SHORT, '--config.optim.lr=1e38']) == 3
  line = one_line(capsys.readouterr().err)
  assert line.startswith('svag_jax: diverged:') and 'optim.lr' in line
  assert json.loads((tmp_path / 'status.json').read_text())['status'] == 'diverged'


# ---- faults mid-run, through `python -m svag_jax.launch.main` (one program for every run) ----

LONG = [
    '--config.train.epochs=60',
    '--config.train.steps_per_dispatch=1',
    '--config.train.eval_every=20',
]  # 480 steps, an eval + checkpoint every 160


def _launch(workdir, **kwargs):
  cmd = [sys.executable, '-m', 'svag_jax.launch.main', TINY, f'--workdir={workdir}', *LONG]
  return cmd, kwargs


@pytest.fixture(scope='module')
def long_reference(tmp_path_factory):
  """The metric rows of the LONG run, uninterrupted."""
  workdir = tmp_path_factory.mktemp('long') / 'ref'
  cmd, _ = _launch(workdir)
  out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  return record.read_metrics(workdir)


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGKILL], ids=['SIGTERM', 'SIGKILL'])
def test_killed_mid_run_then_resumed_gives_the_uninterrupted_numbers(sig, tmp_path, long_reference):
  """SIGTERM checkpoints and exits 75 (preempted); SIGKILL (no chance to clean up, maybe mid-write)
  once the first evaluation is on disk. Rerunning the command resumes to the same rows, bitwise."""
  workdir = tmp_path / 'a'
  cmd, _ = _launch(workdir)
  proc = subprocess.Popen(
      cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
  )
  status, metrics = workdir / 'status.json', workdir / 'metrics.jsonl'
  deadline = time.time() + 180
  while time.time() < deadline and proc.poll() is None:
    running = status.exists() and json.loads(status.read_text() or '{}').get('status') == 'running'
    if running and (sig == signal.SIGTERM or (metrics.exists() and metrics.stat().st_size)):
      break
    time.sleep(0.05)
  time.sleep(0.5)
  proc.send_signal(sig)
  out, _ = proc.communicate(timeout=120)
  if sig == signal.SIGTERM:
    assert proc.returncode == 75, out  # EX_TEMPFAIL: rerun the same command to resume
    assert one_line(out).startswith('svag_jax: preempted:')
    assert record.read_status(workdir)['status'] == 'preempted'
  else:
    assert proc.returncode == -signal.SIGKILL, out
  resumed = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert 'Traceback' not in resumed.stderr
  assert record.read_status(workdir)['status'] == 'done'
  assert record.read_metrics(workdir) == long_reference
  # The TensorBoard events hold every evaluation once, whatever the killed attempt wrote past its
  # checkpoint; each command's log is kept.
  eval_steps = sorted({r['step'] for r in long_reference})
  for tag, steps in event_steps(workdir / 'tensorboard').items():
    assert steps == ([0] if tag.endswith(':config/text_summary') else eval_steps), tag
  assert 'Resuming from step' not in (workdir / 'log.txt.1').read_text()
  if sig == signal.SIGTERM:
    assert 'Preempted at step' in (workdir / 'log.txt.1').read_text()
    assert 'Resuming from step' in (workdir / 'log.txt').read_text()


def test_a_truncated_metrics_line_is_repaired_on_resume(finished, tmp_path, capsys, monkeypatch):
  """What a crash mid-append leaves: the rerun keeps the dropped bytes aside, warns with the line
  number, and ends with the rows of the uninterrupted run."""
  monkeypatch.chdir(ROOT)
  copy = tmp_path / 'run'
  shutil.copytree(finished, copy)
  text = (copy / 'metrics.jsonl').read_text()
  (copy / 'metrics.jsonl').write_text(text[:-25])  # the last row loses its end
  assert run_cli([TINY, f'--workdir={copy}', *SHORT]) == 0
  assert (copy / 'metrics.jsonl').read_text() == text
  assert list(copy.glob('metrics.jsonl.partial-*'))
  assert 'Traceback' not in capsys.readouterr().err


def test_an_empty_newest_checkpoint_is_set_aside_on_resume(finished, tmp_path, monkeypatch):
  monkeypatch.chdir(ROOT)
  copy = tmp_path / 'run'
  shutil.copytree(finished, copy)
  newest = max((copy / 'checkpoints').iterdir(), key=lambda p: int(p.name))
  shutil.rmtree(newest)
  newest.mkdir()
  metrics = (copy / 'metrics.jsonl').read_bytes()
  assert run_cli([TINY, f'--workdir={copy}', *SHORT]) == 0
  assert (copy / 'corrupt_checkpoints' / newest.name).is_dir()  # kept aside, not deleted
  assert (copy / 'metrics.jsonl').read_bytes() == metrics
