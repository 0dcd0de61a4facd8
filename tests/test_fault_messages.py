"""No traceback left (issue 25): corrupt, unwritable or wrong workdirs through every entry point
(training, sweep, analysis, monitor), a full disk during a checkpoint save, orbax's noise after a
failed restore, figures written atomically, and any number of signals during shutdown.

Each case checks the exit code, the one line (naming the file) and that the record is left as it
was."""

import errno
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from svag_jax import monitor, record
from svag_jax.analysis import common
from svag_jax.analysis import fast_equilibrium as fe
from tests.helpers import SHORT, TINY, one_line, run_cli, short, snapshot

ROOT = pathlib.Path(__file__).resolve().parents[1]
FAST = {**os.environ, 'JAX_DISABLE_MOST_OPTIMIZATIONS': '1'}  # subprocesses: compile fast

pytestmark = pytest.mark.usefixtures('compile_bound')


@pytest.fixture
def run(finished_copy):
  return finished_copy


def _analysis(workdir, out=None) -> int:
  return fe.main([str(workdir), *(['--out', str(out)] if out else [])])


# ---- workdir paths ----


def _not_utf8(tmp_path) -> str:
  return os.fsdecode(os.fsencode(tmp_path) + b'/w\xff')


def test_a_workdir_path_that_is_not_utf8_is_refused_before_training(tmp_path, capsys, monkeypatch):
  monkeypatch.chdir(ROOT)
  assert run_cli([TINY, f'--workdir={_not_utf8(tmp_path)}', *SHORT]) == 1
  line = one_line(capsys.readouterr().err)
  assert f'{tmp_path}/w\\xff: the workdir path is not valid UTF-8' in line
  assert list(tmp_path.iterdir()) == []


def test_a_sweep_root_that_is_not_utf8_is_refused(tmp_path, capsys, monkeypatch):
  monkeypatch.chdir(ROOT)
  spec = tmp_path / 'sweep_cfg.py'
  spec.write_text(
      'from tests.helpers import tiny_config\n'
      'def get_config(arg=None):\n  return tiny_config()\n'
      "def get_sweep(arg=None):\n  return [{'optim.lr': 0.1}]\n"
  )
  argv = [f'--config={spec}', f'--workdir={_not_utf8(tmp_path)}']
  assert run_cli(argv, entry='sweep') == 1
  assert 'not valid UTF-8' in one_line(capsys.readouterr().err)
  assert [p.name for p in tmp_path.iterdir()] == ['sweep_cfg.py']


# ---- corrupt records, through every entry point ----


def _corrupt_first_row(workdir):
  path = workdir / 'metrics.jsonl'
  lines = path.read_text().splitlines(keepends=True)
  path.write_text('{"step": 4, "trial"' + '\n' + ''.join(lines[1:]))


def _corrupt_config(workdir):
  (workdir / 'config.json').write_text('{"seed": 0, ')


def _train(workdir, capsys):
  code = run_cli([TINY, f'--workdir={workdir}', *short('--config.train.epochs=1.5')])
  return code, capsys.readouterr().err


def _analyse(workdir, capsys):
  code = _analysis(workdir)
  return code, capsys.readouterr().err


def _monitor(workdir, capsys):
  code = monitor.main([str(workdir)])
  return code, capsys.readouterr().err


ENTRIES = {'training': (_train, 1), 'analysis': (_analyse, 2), 'monitor': (_monitor, 1)}


@pytest.mark.parametrize('entry', list(ENTRIES))
def test_a_corrupt_middle_line_of_metrics_names_the_file_and_line(entry, run, capsys):
  _corrupt_first_row(run)
  before = snapshot(run)
  fn, expected = ENTRIES[entry]
  code, err = fn(run, capsys)
  assert code == expected
  assert 'Traceback' not in err
  assert f'{run / "metrics.jsonl"}, line 1: not a JSON row' in ' '.join(err.split())
  assert snapshot(run) == before


@pytest.mark.parametrize('entry', list(ENTRIES))
def test_a_corrupt_config_json_names_the_file(entry, run, capsys):
  _corrupt_config(run)
  before = snapshot(run)
  fn, expected = ENTRIES[entry]
  code, err = fn(run, capsys)
  assert code == expected
  assert 'Traceback' not in err
  assert f'{run / "config.json"}: not a JSON file of a run record' in ' '.join(err.split())
  assert snapshot(run) == before


@pytest.mark.parametrize('make', ['missing', 'empty'])
def test_monitor_on_a_wrong_workdir(make, tmp_path, capsys):
  workdir = tmp_path / 'w'
  if make == 'empty':
    workdir.mkdir()
  assert monitor.main([str(workdir)]) == 1
  line = one_line(capsys.readouterr().err)
  assert str(workdir) in line and ('not a directory' in line or 'no metric rows' in line)
  assert list(tmp_path.iterdir()) == ([workdir] if make == 'empty' else [])
  assert not (workdir / 'lock').exists()


def test_monitor_where_tensorboard_cannot_be_written(run, capsys):
  (run / 'tensorboard').rename(run / 'tb')
  (run / 'tensorboard').write_text('a file where the events go')
  assert monitor.main([str(run)]) == 1
  line = one_line(capsys.readouterr().err)
  assert str(run / 'tensorboard') in line
  assert (run / 'tensorboard').read_text() == 'a file where the events go'


def test_analysis_into_a_folder_that_cannot_be_written(run, capsys):
  out = pathlib.Path('/sys/svag_jax_test/figures')  # sysfs: not writable, even for root
  assert _analysis(run, out) == 2
  err = capsys.readouterr().err
  assert 'Traceback' not in err and '/sys/svag_jax_test' in err


def test_an_interrupted_figure_leaves_the_earlier_one_whole(tmp_path, capsys, monkeypatch):
  axes = common.new_axes(1)
  axes[0].plot([0, 1], [1, 0])
  png, pdf = common.save_axes(axes, tmp_path, 'f')
  whole = png.read_bytes()

  def interrupted(fig, fname, **kwargs):
    pathlib.Path(fname).write_bytes(whole[:100])  # half-written, then Ctrl-C
    raise KeyboardInterrupt

  monkeypatch.setattr(type(axes[0].figure), 'savefig', interrupted)
  args = common.figure_parser('f', 'doc').parse_args([str(tmp_path), '--out', str(tmp_path)])
  assert common.run_figure(args, lambda: (axes, [])) == 130
  assert 'interrupted' in capsys.readouterr().err
  assert png.read_bytes() == whole and pdf.exists()
  assert sorted(p.name for p in tmp_path.iterdir()) == ['f.pdf', 'f.png']  # no temporary file


# ---- a full disk, orbax's noise ----

TENSORSTORE_ENOSPC = (
    'RESOURCE_EXHAUSTED: Error writing local file "{d}/4.orbax-checkpoint-tmp/default/_sharding": '
    "Failed to write 4505 bytes to file 8: No space left on device [os_error_code='28']"
)


def test_a_full_disk_during_a_checkpoint_save_is_the_disk_is_full_message(
    tmp_path, capsys, monkeypatch
):
  import orbax.checkpoint as ocp  # noqa: PLC0415

  def full(self, step, *args, **kwargs):
    raise ValueError(TENSORSTORE_ENOSPC.format(d=self.directory))

  monkeypatch.setattr(ocp.CheckpointManager, 'save', full)
  monkeypatch.chdir(ROOT)
  workdir = tmp_path / 'w'
  assert run_cli([TINY, f'--workdir={workdir}', *SHORT]) == 1
  line = one_line(capsys.readouterr().err)
  assert f'OSError: No space left on device: {workdir / "checkpoints"}; the disk is full' in line
  assert [r['step'] for r in record.read_metrics(workdir)] == [4]  # kept
  assert record.read_status(workdir)['status'] == 'failed'
  assert errno.ENOSPC == 28


def test_no_asyncio_noise_after_a_failed_restore(run):
  for manifest in (run / 'checkpoints').rglob('manifest.ocdbt'):
    manifest.write_bytes(manifest.read_bytes()[:5])
  before = snapshot(run)
  cmd = [sys.executable, '-m', 'svag_jax.launch.main', TINY, f'--workdir={run}']
  out = subprocess.run(
      [*cmd, *short('--config.train.epochs=1.5')],
      cwd=ROOT,
      env=FAST,
      capture_output=True,
      text=True,
  )
  assert out.returncode == 1
  line = one_line(out.stderr)
  assert 'CheckpointError: None of the checkpoints [4, 8]' in line
  assert 'Event loop is closed' not in out.stderr and 'asyncio/' not in out.stderr
  assert snapshot(run) == before


# ---- signals during shutdown ----


def test_any_number_of_signals_during_shutdown_still_exits_75(tmp_path):
  workdir = tmp_path / 'w'
  long = ['--config.train.epochs=60', '--config.train.steps_per_dispatch=1']
  cmd = [sys.executable, '-m', 'svag_jax.launch.main', TINY, f'--workdir={workdir}', *long]
  proc = subprocess.Popen(cmd, cwd=ROOT, env=FAST, stderr=subprocess.PIPE, text=True)
  status = workdir / 'status.json'
  deadline = time.time() + 180
  while time.time() < deadline and proc.poll() is None:
    if status.exists() and json.loads(status.read_text() or '{}').get('status') == 'running':
      break
    time.sleep(0.05)
  time.sleep(0.5)
  sent = 0
  while proc.poll() is None and sent < 2000:  # a signal every 5 ms until it has exited
    proc.send_signal((signal.SIGTERM, signal.SIGINT)[sent % 2])
    sent += 1
    time.sleep(0.005)
  err = proc.communicate(timeout=120)[1]
  assert proc.returncode == 75, err[-3000:]
  assert sent > 10
  assert one_line(err).startswith('svag_jax: preempted:')
  assert record.read_status(workdir)['status'] == 'preempted'
  attempts = (workdir / 'attempts.jsonl').read_text().splitlines()
  assert [json.loads(a)['outcome'] for a in attempts] == ['preempted']
