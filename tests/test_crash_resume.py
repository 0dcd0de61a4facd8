"""Resume after real crashes (issue 10, part 3): damaged checkpoints, partial files, the status.

Each test damages a copy of one finished tiny run the way a crash (or a full disk) would, reruns
the same command, and checks that the record ends up bitwise equal to the uninterrupted run's,
with whatever was unusable moved aside, never deleted.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from svag_jax import experiment, record, tv
from svag_jax import workdir as workdir_lib
from svag_jax.analysis import fast_equilibrium as fe
from svag_jax.checkpoint import Checkpointer, CheckpointError
from svag_jax.checks import ConfigError
from svag_jax.record import WorkdirError
from tests.helpers import tiny_config

pytestmark = pytest.mark.usefixtures('compile_bound')

ROOT = pathlib.Path(__file__).resolve().parents[1]
# 2 trials, 8 steps per epoch: evaluations and checkpoints at steps 8 and 16.
OVERRIDES = {'train.epochs': 2, 'train.predictions_at': (1, 2), 'train.params_at': (1, 2)}


def _config(**overrides):
  return tiny_config(**{**OVERRIDES, **overrides})


@pytest.fixture(scope='module')
def reference(tmp_path_factory, compile_bound):
  """An uninterrupted run of `_config()` (status done)."""
  del compile_bound  # ordering only: compile fast from the first run on
  path = tmp_path_factory.mktemp('crash_resume') / 'reference'
  assert experiment.run(_config(), str(path))['status'] == 'done'
  return path


def _copy(reference, tmp_path) -> pathlib.Path:
  run = tmp_path / 'run'
  shutil.copytree(reference, run)
  return run


def _metric_lines(run) -> list[bytes]:
  return (run / 'metrics.jsonl').read_bytes().splitlines(keepends=True)


def _attempts(run) -> list[dict]:
  return [json.loads(line) for line in (run / 'attempts.jsonl').read_text().splitlines()]


def _assert_same_record(run, reference):
  """Same metrics, predictions and params as the uninterrupted run, bit for bit; status done."""
  assert record.read_status(run)['status'] == 'done'
  assert record.read_metrics(run) == record.read_metrics(reference)
  preds, arms = record.read_predictions(run)
  ref_preds, ref_arms = record.read_predictions(reference)
  assert list(preds) == list(ref_preds) == [1.0, 2.0] and arms == ref_arms
  for epoch in preds:
    np.testing.assert_array_equal(preds[epoch], ref_preds[epoch])
  assert record.params_epochs(run) == record.params_epochs(reference) == [1.0, 2.0]
  for epoch in (1.0, 2.0):
    with (
        np.load(run / 'params' / f'epoch_{epoch:g}.npz') as a,
        np.load(reference / 'params' / f'epoch_{epoch:g}.npz') as b,
    ):
      assert sorted(a.files) == sorted(b.files)
      for k in a.files:
        np.testing.assert_array_equal(a[k], b[k])


# ---- 1. Checkpoint fallback ----


def test_one_failed_restore_does_not_poison_the_next(tmp_path):
  writer = Checkpointer(tmp_path / 'checkpoints')
  writer.save(1, {'x': np.arange(3.0)})
  writer.save(2, {'x': np.arange(3.0) + 1})
  writer.close()
  shutil.rmtree(tmp_path / 'checkpoints' / '2')
  (tmp_path / 'checkpoints' / '2').mkdir()  # an empty newest step folder
  ckpt = Checkpointer(tmp_path / 'checkpoints')  # a new process: no item handler known yet
  step, tree = ckpt.restore_latest({'x': np.zeros(3)})
  assert step == 1 and np.array_equal(tree['x'], np.arange(3.0))
  assert (tmp_path / 'corrupt_checkpoints' / '2').is_dir()
  assert (tmp_path / 'corrupt_checkpoints' / '2.reason.txt').exists()
  ckpt.save(2, {'x': np.arange(3.0) + 2})  # the step can be written again
  ckpt.close()


def _truncate_biggest_file(folder: pathlib.Path) -> None:
  biggest = max((f for f in folder.rglob('*') if f.is_file()), key=lambda f: f.stat().st_size)
  biggest.write_bytes(biggest.read_bytes()[: biggest.stat().st_size // 2])


@pytest.mark.parametrize('damage', ['empty_folder', 'no_item_folder', 'truncated_file'])
def test_unreadable_newest_checkpoint_falls_back_to_the_previous(reference, tmp_path, damage):
  run = _copy(reference, tmp_path)
  newest = run / 'checkpoints' / '16'
  if damage == 'empty_folder':
    shutil.rmtree(newest)
    newest.mkdir()
  elif damage == 'no_item_folder':
    shutil.rmtree(newest / 'default')
  else:
    _truncate_biggest_file(newest / 'default')
  result = experiment.run(_config(), str(run))
  assert result['status'] == 'done' and result['step'] == 16
  _assert_same_record(run, reference)
  assert (run / 'corrupt_checkpoints' / '16').is_dir()  # moved aside, not deleted
  assert 'cannot be restored' in (run / 'corrupt_checkpoints' / '16.reason.txt').read_text()
  assert sorted(int(p.name) for p in (run / 'checkpoints').iterdir()) == [8, 16]


@pytest.mark.parametrize('lost', ['all_rows_of_the_last_eval', 'the_last_row'])
def test_checkpoint_ahead_of_the_metrics_is_set_aside(reference, tmp_path, lost):
  """Metrics are the record, checkpoints a cache: resuming from checkpoint 16 would leave the rows
  of step 16 missing (or incomplete) for good, so checkpoint 8 is used and step 16 recomputed."""
  run = _copy(reference, tmp_path)
  lines = _metric_lines(run)
  keep = lines[:2] if lost == 'all_rows_of_the_last_eval' else lines[:3]
  (run / 'metrics.jsonl').write_bytes(b''.join(keep))
  result = experiment.run(_config(), str(run))
  assert result['status'] == 'done'
  _assert_same_record(run, reference)
  assert (run / 'corrupt_checkpoints' / '16').is_dir()
  assert 'ahead of the run record' in (run / 'corrupt_checkpoints' / '16.reason.txt').read_text()


# ---- 2. Partial metrics lines and partial files ----


def test_partial_last_metrics_line_is_repaired(reference, tmp_path, caplog):
  """A crash mid-append at step 16: half of the last row written, no checkpoint 16 yet, nor the
  files of step 16 (they are written after the rows)."""
  run = _copy(reference, tmp_path)
  lines = _metric_lines(run)
  fragment = lines[3][: len(lines[3]) // 2]
  (run / 'metrics.jsonl').write_bytes(b''.join(lines[:3]) + fragment)
  shutil.rmtree(run / 'checkpoints' / '16')
  (run / 'predictions' / 'epoch_2.npy').unlink()
  (run / 'params' / 'epoch_2.npz').unlink()
  (run / 'status.json').write_text(json.dumps({'status': 'running', 'step': 16}))
  with pytest.warns(UserWarning, match=r'metrics\.jsonl, line 4: partial last line'):
    assert len(record.read_metrics(run)) == 3  # a reader of a running record skips it
  result = experiment.run(_config(), str(run))
  assert result['status'] == 'done'
  assert 'metrics.jsonl, line 4: partial last line' in caplog.text
  (partial,) = run.glob('metrics.jsonl.partial-*')
  assert partial.read_bytes() == fragment  # the dropped bytes are kept
  _assert_same_record(run, reference)


def test_readers_name_the_file_and_line_of_a_corrupt_row(reference, tmp_path):
  run = _copy(reference, tmp_path)
  lines = _metric_lines(run)
  (run / 'metrics.jsonl').write_bytes(b''.join(lines[:3]) + lines[3][:20])
  with pytest.raises(WorkdirError, match=r'metrics\.jsonl, line 4: partial last line.*done'):
    record.read_metrics(run)  # a finished record: an error, not a raw JSONDecodeError
  (run / 'metrics.jsonl').write_bytes(lines[0] + lines[1][:20] + b'\n' + b''.join(lines[2:]))
  with pytest.raises(WorkdirError, match=r'metrics\.jsonl, line 2: not a JSON row'):
    record.read_metrics(run)
  status = record.read_status(run)
  with pytest.raises(WorkdirError, match=r'line 2'):  # corrupt mid-file: refused, not "repaired"
    experiment.run(_config(), str(run))
  assert record.read_status(run) == status


def test_partial_predictions_and_params_files_are_set_aside_and_recomputed(
    reference, tmp_path, caplog
):
  run = _copy(reference, tmp_path)
  for f in (run / 'predictions' / 'epoch_2.npy', run / 'params' / 'epoch_2.npz'):
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])  # truncated
  (run / 'predictions' / 'epoch_1.tmp.npy').write_bytes(b'\x93NUMPY half-written')  # leftovers
  (run / 'params' / 'epoch_1.tmp.npz').write_bytes(b'PK half-written')
  result = experiment.run(_config(), str(run))
  assert result['status'] == 'done'
  _assert_same_record(run, reference)
  for name in (
      'predictions/epoch_2.npy',
      'params/epoch_2.npz',
      'predictions/epoch_1.tmp.npy',
      'params/epoch_1.tmp.npz',
  ):
    assert len(list(run.glob(f'{name}.corrupt-*'))) == 1, name  # moved aside, beside
    assert name.split('/')[1] in caplog.text
  assert 'ahead of the run record' in (run / 'corrupt_checkpoints' / '16.reason.txt').read_text()


# ---- 3. A refused or failed rerun never downgrades a finished record ----


def _zero_all_checkpoints(run):
  for f in (run / 'checkpoints').rglob('*'):
    if f.is_file() and f.stat().st_size > 0 and 'metadata' not in f.name.lower():
      f.write_bytes(b'\0' * 7)


def test_a_refused_rerun_never_downgrades_a_finished_run(reference, tmp_path, monkeypatch):
  run = _copy(reference, tmp_path)
  done = record.read_status(run)
  assert done['status'] == 'done'
  with pytest.raises(WorkdirError, match='different config'):
    experiment.run(_config(**{'train.batch_size': 16}), str(run))
  with pytest.raises(ConfigError, match='already at step 16'):
    experiment.run(
        _config(**{'train.epochs': 1, 'train.predictions_at': (1,), 'train.params_at': (1,)}),
        str(run),
    )

  def broken_disk(*args, **kwargs):
    raise RuntimeError('disk on fire')

  with monkeypatch.context() as m:
    m.setattr(Checkpointer, 'restore_latest', broken_disk)
    with pytest.raises(RuntimeError, match='disk on fire'):
      experiment.run(_config(), str(run))
  _zero_all_checkpoints(run)
  with pytest.raises(CheckpointError):
    experiment.run(_config(), str(run))
  assert record.read_status(run) == done  # untouched by all four
  assert sorted(p.name for p in (run / 'checkpoints').iterdir()) == ['16', '8']  # nothing moved
  attempts = _attempts(run)[-4:]  # the reasons are written beside the status
  assert [a['outcome'] for a in attempts] == ['failed'] * 4
  assert [a['status'] for a in attempts] == ['done'] * 4
  for a, error in zip(
      attempts, ('WorkdirError', 'ConfigError', 'RuntimeError', 'CheckpointError'), strict=True
  ):
    assert a['error'].startswith(error), a
  # An unfinished run that fails is a real state change: it becomes failed.
  (run / 'status.json').write_text(json.dumps({'status': 'preempted', 'step': 12}))
  with pytest.raises(CheckpointError):
    experiment.run(_config(), str(run))
  status = record.read_status(run)
  assert status['status'] == 'failed' and status['previous'] == 'preempted'
  assert status['error'].startswith('CheckpointError')


# ---- 4. Exit codes ----


def test_exit_codes_are_distinct_per_final_status():
  assert record.EXIT_CODES == {'done': 0, 'failed': 1, 'diverged': 3, 'preempted': 75}


@pytest.mark.parametrize('code', [0, 1, 3, 75])
def test_slurm_script_requeues_on_exit_code_75_only(tmp_path, code):
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  for name, body in (('srun', f'exit {code}'), ('scontrol', f'echo "$@" >> {tmp_path}/scontrol')):
    (bin_dir / name).write_text(f'#!/bin/bash\n{body}\n')
    (bin_dir / name).chmod(0o755)
  env = {
      **os.environ,
      'PATH': f'{bin_dir}:{os.environ["PATH"]}',
      'SLURM_NNODES': '1',
      'SLURM_NTASKS': '1',
      'SLURM_JOB_ID': '42',
      'SLURM_SUBMIT_DIR': str(ROOT),
      'PYTHON': sys.executable,
  }
  # No status.json is written (the fake srun trains nothing): only the exit code can tell.
  result = subprocess.run(
      ['bash', str(ROOT / 'launch' / 'slurm.sh'), 'configs/x.py', str(tmp_path / 'wd')],
      env=env,
      capture_output=True,
      text=True,
      timeout=30,
  )
  assert result.returncode == code, result.stdout + result.stderr
  log = tmp_path / 'scontrol'
  assert (log.read_text().split() if log.exists() else []) == (
      ['requeue', '42'] if code == 75 else []
  )


# ---- 5. Diverged trials' predictions ----


def test_diverged_trials_predict_the_sentinel_and_tv_leaves_them_out(tmp_path):
  cfg = tiny_config(**{'train.epochs': 1, 'train.predictions_at': (1,)})
  cfg.arms = {'a_ref': {'lr': 0.1}, 'b_other': {'lr': 0.2}, 'c_boom': {'lr': 1e38}}
  assert experiment.run(cfg, str(tmp_path))['status'] == 'done'
  preds, arms = record.read_predictions(tmp_path)
  pred = np.asarray(preds[1.0])
  assert arms == ['a_ref', 'a_ref', 'b_other', 'b_other', 'c_boom', 'c_boom']
  assert record.DIVERGED_PREDICTION == 255 and np.all(pred[4:] == 255)
  np.testing.assert_array_equal(record.live_trials(pred), [1, 1, 1, 1, 0, 0])
  assert pred[:4].max() < 4
  # The TV estimator leaves the diverged rows out: the same numbers as over the live trials only.
  mixed = pred[[0, 4, 1, 5]]
  assert tv.tv_distance(mixed, pred[2:4], 4) == tv.tv_distance(pred[:2], pred[2:4], 4)
  a = tv.tv_vs_trials(mixed, pred[2:4], None, 4, num_resamples=3, seed=1)
  b = tv.tv_vs_trials(pred[:2], pred[2:4], None, 4, num_resamples=3, seed=1)
  np.testing.assert_array_equal(a.tv, b.tv)
  np.testing.assert_array_equal(a.trials, b.trials)
  assert a.num_trials_a == 2
  assert tv.mean_error(mixed, pred[0]) == tv.mean_error(pred[:2], pred[0])
  with pytest.raises(ValueError, match='all 2 trials diverged'):
    tv.tv_distance(pred[4:], pred[:2], 4)
  # So does the analysis: no curve for the all-diverged arm, the plain TV for the other.
  curves = fe.tv_curves(tmp_path)[1.0]
  assert list(curves) == ['b_other']
  assert curves['b_other'].tv[-1] == pytest.approx(tv.tv_distance(pred[:2], pred[2:4], 4))


def test_predictions_need_fewer_than_255_classes(tmp_path):
  cfg = tiny_config(**{'train.predictions_at': (1,), 'data.synthetic_num_classes': 300})
  with pytest.raises(ConfigError, match='255'):
    experiment.run(cfg, str(tmp_path / 'run'))
  wd = workdir_lib.Workdir(tmp_path / 'direct')
  with pytest.raises(ValueError, match=r'\[0, 255\)'):
    wd.save_predictions(1.0, np.array([[0, 255]]), ['a'])
