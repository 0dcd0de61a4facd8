"""A run record that nothing corrupts silently (issue 25): one writer per workdir, checkpoints that
know their config and software, versions in the record, a workdir that never trained.

Each case runs the real entry point and checks the exit code, the one line it prints and that the
record is left as it was (or, where the command goes on, what it recorded)."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest

from svag_jax import record
from svag_jax.lock import WorkdirLock
from svag_jax.software import COMPARED
from tests.helpers import SHORT, TINY, one_line, run_cli, short, snapshot

ROOT = pathlib.Path(__file__).resolve().parents[1]
LONGER = '--config.train.epochs=1.5'  # resumes the finished run: 4 more steps

pytestmark = pytest.mark.usefixtures('compile_bound')


@pytest.fixture
def run(finished_copy):
  return finished_copy


def _attempts(workdir) -> list[dict]:
  return [json.loads(line) for line in (workdir / 'attempts.jsonl').read_text().splitlines()]


def _edit_json(path: pathlib.Path, edit) -> None:
  tree = json.loads(path.read_text())
  edit(tree)
  path.write_text(json.dumps(tree))


# ---- 1. One writer per workdir ----


def test_two_commands_at_once_give_one_run_and_one_refusal(tmp_path):
  workdir = tmp_path / 'w'
  cmd = [sys.executable, '-m', 'svag_jax.launch.main', TINY, f'--workdir={workdir}', *SHORT]
  env = {**os.environ, 'JAX_DISABLE_MOST_OPTIMIZATIONS': '1'}  # compile-bound: compile fast
  procs = [
      subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)
  ]
  outs = [p.communicate(timeout=300)[1] for p in procs]
  codes = sorted(p.returncode for p in procs)
  assert codes == [0, 1], outs
  loser = next(i for i, p in enumerate(procs) if p.returncode == 1)
  line = one_line(outs[loser])
  winner = procs[1 - loser].pid
  assert 'WorkdirError' in line and 'is in use' in line and f'pid {winner} ' in line, line
  rows = record.read_metrics(workdir)
  assert sorted((r['step'], r['trial']) for r in rows) == [(4, 0), (8, 0)]  # written once
  assert [a['outcome'] for a in _attempts(workdir)] == ['done']
  assert not (workdir / 'lock').exists()  # released by the run that held it


def test_a_held_lock_refuses_the_command_naming_the_holder(run, capsys):
  before, attempts = snapshot(run), (run / 'attempts.jsonl').read_bytes()
  with WorkdirLock(run):
    assert run_cli([TINY, f'--workdir={run}', *short(LONGER)]) == 1
  line = one_line(capsys.readouterr().err)
  assert f'{run / "lock"} is held by pid {os.getpid()} on host {socket.gethostname()}' in line
  assert snapshot(run) == before and (run / 'attempts.jsonl').read_bytes() == attempts


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_warning(run, capsys, caplog):
  dead = subprocess.Popen(['true'])
  dead.wait()
  holder = {'host': socket.gethostname(), 'pid': dead.pid, 'started': 'then', 'command': 'x'}
  (run / 'lock').write_text(json.dumps(holder))
  assert run_cli([TINY, f'--workdir={run}', *SHORT]) == 0  # finished: nothing to train
  assert 'Taking over the stale lock' in caplog.text and f'pid {dead.pid}' in caplog.text
  assert _attempts(run)[-1]['took_over_lock'] == holder
  assert not (run / 'lock').exists()
  assert 'Traceback' not in capsys.readouterr().err


def test_a_lock_file_of_another_host_is_not_taken_over(run, capsys):
  holder = {'host': 'elsewhere.example', 'pid': 1, 'started': 'then', 'command': 'x'}
  (run / 'lock').write_text(json.dumps(holder))
  before = snapshot(run)
  assert run_cli([TINY, f'--workdir={run}', *SHORT]) == 1
  line = one_line(capsys.readouterr().err)
  assert 'host elsewhere.example' in line and 'delete the lock file' in line
  assert snapshot(run) == before  # the lock file too


def test_a_sweep_root_in_use_is_refused(tmp_path, capsys, monkeypatch):
  monkeypatch.chdir(ROOT)
  spec = tmp_path / 'sweep_cfg.py'
  spec.write_text(
      'from tests.helpers import tiny_config\n'
      "def get_config(arg=None):\n  return tiny_config(**{'train.epochs': 1})\n"
      "def get_sweep(arg=None):\n  return [{'optim.lr': 0.1}]\n"
  )
  root = tmp_path / 'root'
  root.mkdir()
  with WorkdirLock(root, what='sweep root'):
    assert run_cli([f'--config={spec}', f'--workdir={root}'], entry='sweep') == 1
  line = one_line(capsys.readouterr().err)
  assert 'is in use' in line and 'sweep root' in line
  assert sorted(p.name for p in root.iterdir()) == []  # no sweep.json, no point


def test_the_monitor_refuses_a_workdir_in_use(run, capsys):
  from svag_jax import monitor  # noqa: PLC0415

  before = snapshot(run)
  with WorkdirLock(run):
    assert monitor.main([str(run)]) == 1
  line = one_line(capsys.readouterr().err)
  assert 'is in use' in line and f'pid {os.getpid()}' in line
  assert snapshot(run) == before


# ---- 2. Checkpoints that know their config ----


@pytest.mark.parametrize(
    'override,diff',
    [('--config.seed=7', 'seed: 0 -> 7'), ('--config.optim.lr=0.2', 'arms.default.lr: 0.1 -> 0.2')],
    ids=['seed', 'arm lr'],
)
def test_a_missing_config_json_is_never_rebuilt_from_another_command(run, capsys, override, diff):
  (run / 'config.json').unlink()
  before = snapshot(run)
  assert run_cli([TINY, f'--workdir={run}', *SHORT, override]) == 1
  line = one_line(capsys.readouterr().err)
  assert f'{run / "checkpoints" / "8"} was written by a run with a different config' in line
  assert diff in line and 'config.json is missing' in line
  assert snapshot(run) == before  # config.json not written
  assert _attempts(run)[-1]['outcome'] == 'failed'


def test_a_missing_config_json_is_rebuilt_from_the_checkpoint(run, finished_tiny, caplog):
  (run / 'config.json').unlink()
  assert run_cli([TINY, f'--workdir={run}', *SHORT]) == 0
  assert record.read_config(run) == record.read_config(finished_tiny)
  assert record.read_record_config(run)[1] == record.read_record_config(finished_tiny)[1]
  assert 'rebuilt from checkpoint 8' in caplog.text
  assert _attempts(run)[-1]['rebuilt_config'] == {'from_checkpoint': 8}


def test_a_checkpoint_of_another_config_is_refused_though_config_json_agrees(run, capsys):
  _edit_json(run / 'config.json', lambda c: c.update(seed=7))  # the record edited by hand
  before = snapshot(run)
  assert run_cli([TINY, f'--workdir={run}', *short('--config.seed=7', LONGER)]) == 1
  line = one_line(capsys.readouterr().err)
  assert 'checkpoints/8 was written by a run with a different config (seed: 0 -> 7)' in line
  assert snapshot(run) == before


def test_checkpoints_that_cannot_tell_their_config_are_not_resumed_without_config_json(run, capsys):
  for step in (4, 8):  # as checkpoints written before they carried their config
    _edit_json(
        run / 'checkpoints' / str(step) / '_CHECKPOINT_METADATA', lambda m: m.pop('custom_metadata')
    )
  (run / 'config.json').unlink()
  assert run_cli([TINY, f'--workdir={run}', *SHORT]) == 1
  line = one_line(capsys.readouterr().err)
  assert 'config.json is missing' in line and 'do not say which config made them' in line
  assert not (run / 'config.json').exists()


# ---- 3. Versions in the record ----


def test_the_record_states_the_software_it_was_made_with(finished_tiny):
  import jax  # noqa: PLC0415

  config, header = record.read_record_config(finished_tiny)
  software = header['software']
  assert set(COMPARED) | {'git', 'device_count', 'process_count'} <= set(software)
  assert software['jax'] == jax.__version__ and software['device_count'] == jax.device_count()
  assert 'software' not in config and '_record' not in config  # readers get the config alone
  assert all(a['software'] == software for a in _attempts(finished_tiny))
  meta = json.loads((finished_tiny / 'checkpoints' / '8' / '_CHECKPOINT_METADATA').read_text())
  assert meta['custom_metadata']['software'] == software
  assert meta['custom_metadata']['config_sha256'] == header['config_sha256']


def _fake_jax(header):
  header['_record']['software']['jax'] = '0.0.1'


def test_a_resume_under_other_software_is_refused(run, capsys):
  _edit_json(run / 'config.json', _fake_jax)
  before = snapshot(run)
  assert run_cli([TINY, f'--workdir={run}', *short(LONGER)]) == 1
  line = one_line(capsys.readouterr().err)
  assert f'{run / "config.json"} records a run made with other software (jax 0.0.1 -> ' in line
  assert '--allow_version_change' in line
  assert snapshot(run) == before
  assert _attempts(run)[-1]['error'].startswith('WorkdirError')


def test_allow_version_change_continues_the_run_and_records_the_change(run, capsys):
  import jax  # noqa: PLC0415

  _edit_json(run / 'config.json', _fake_jax)
  argv = [TINY, f'--workdir={run}', *short(LONGER), '--allow_version_change']
  assert run_cli(argv) == 0
  assert 'Traceback' not in capsys.readouterr().err
  change = _attempts(run)[-1]['software_change']
  assert change['changes'] == {'jax': ['0.0.1', jax.__version__]}
  _, header = record.read_record_config(run)
  assert header['software_changes'] == [change] and header['software']['jax'] == jax.__version__
  assert record.read_status(run)['step'] == 12


def test_a_checkpoint_made_under_other_software_is_refused(run, capsys):
  for step in (4, 8):
    path = run / 'checkpoints' / str(step) / '_CHECKPOINT_METADATA'
    _edit_json(path, lambda m: m['custom_metadata']['software'].update(numpy='0.0.2'))
  (run / 'config.json').unlink()  # rebuilt from the checkpoint, with its software
  assert run_cli([TINY, f'--workdir={run}', *SHORT]) == 1
  line = one_line(capsys.readouterr().err)
  assert 'records a run made with other software (numpy 0.0.2 -> ' in line


# ---- 5. A workdir that never trained is not a run ----


def test_a_workdir_whose_first_attempt_died_before_its_first_step_is_taken_over(
    tmp_path, capsys, monkeypatch
):
  from svag_jax.trials import TrialRunner  # noqa: PLC0415

  monkeypatch.chdir(ROOT)
  workdir = tmp_path / 'w'

  def out_of_memory(*args, **kwargs):
    raise MemoryError('RESOURCE_EXHAUSTED: out of memory allocating the trials')

  with monkeypatch.context() as m:
    m.setattr(TrialRunner, 'init', out_of_memory)
    first = short('--config.trials.num=2', '--config.metrics.groups=auto')  # groups.json written
    assert run_cli([TINY, f'--workdir={workdir}', *first]) == 1
  capsys.readouterr()
  assert (workdir / 'groups.json').exists()
  assert record.read_config(workdir)['trials']['num'] == 2  # what the failed attempt left
  assert record.read_status(workdir)['status'] == 'failed'
  assert run_cli([TINY, f'--workdir={workdir}', *SHORT]) == 0  # the corrected command
  assert 'Traceback' not in capsys.readouterr().err
  assert record.read_config(workdir)['trials']['num'] == 1
  (aside,) = workdir.glob('config.json.replaced-*')
  assert json.loads(aside.read_text())['trials']['num'] == 2  # kept, not deleted
  # the old model's groups are set aside with its config: not read back as the new run's
  assert record.read_groups(workdir) is None
  assert (workdir / aside.name.replace('config', 'groups')).exists()
  first, second = _attempts(workdir)
  assert first['outcome'] == 'failed' and 'MemoryError' in first['error']
  assert second['outcome'] == 'done' and second['took_over']['config'] == aside.name
