"""End to end: the run record, resume (bitwise), preemption, corrupt checkpoints, divergence."""

import pathlib

import numpy as np
import pytest

from svag_jax import experiment, record
from svag_jax.record import WorkdirError
from svag_jax.rows import METRIC_KEYS
from tests.helpers import tiny_config

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _rows(path):
  return record.read_metrics(path)


def test_run_writes_the_run_record(tmp_path):
  cfg = tiny_config(**{'train.predictions_at': (1,)})
  result = experiment.run(cfg, str(tmp_path))
  assert result['status'] == 'done' and result['step'] == 16
  assert record.read_status(tmp_path)['status'] == 'done'
  resolved = record.read_config(tmp_path)  # what the run read: the arms, resolved
  assert resolved['arms']['default']['lr'] == cfg.optim.lr and resolved['optim']['lr'] is None
  rows = _rows(tmp_path)
  assert [(r['step'], r['trial']) for r in rows] == [(8, 0), (8, 1), (16, 0), (16, 1)]
  assert all(np.isfinite(r[k]) for r in rows for k in METRIC_KEYS)
  assert rows[-1]['test_accuracy'] > 0.5  # 4 learnable classes; chance is 0.25
  r = rows[0]
  assert r['intrinsic_lr'] == pytest.approx(r['lr'] * r['wd'], rel=1e-6)
  assert r['intrinsic_lr_momentum'] == r['intrinsic_lr']  # no momentum here
  assert r['effective_lr'] == pytest.approx(r['lr'] / r['w_norm_sq'], rel=1e-6)
  preds, arms = record.read_predictions(tmp_path)
  assert list(preds) == [1.0] and preds[1.0].shape == (2, 64) and arms == ['default'] * 2
  assert sorted(int(p.name) for p in (tmp_path / 'checkpoints').iterdir()) == [8, 16]


def test_resume_to_more_epochs_is_bitwise_identical(tmp_path):
  # with the per-group columns (the CNN's declared groups) and the angular updates
  config = lambda epochs: tiny_config(**{'train.epochs': epochs, 'metrics.groups': 'auto'})
  experiment.run(config(2), str(tmp_path / 'a'))
  resumed = experiment.run(config(4), str(tmp_path / 'a'))
  experiment.run(config(4), str(tmp_path / 'b'))
  assert resumed['step'] == 32
  assert _rows(tmp_path / 'a') == _rows(tmp_path / 'b')  # every value, bit for bit
  assert _rows(tmp_path / 'a')[-1]['group.Conv_1.kernel/angular_update'] > 0
  # rerunning a finished run does nothing new and keeps its record
  again = experiment.run(config(4), str(tmp_path / 'a'))
  assert again['status'] == 'done' and _rows(tmp_path / 'a') == _rows(tmp_path / 'b')


def test_corrupt_latest_checkpoint_falls_back_to_the_previous_one(tmp_path):
  experiment.run(tiny_config(**{'train.epochs': 2}), str(tmp_path / 'a'))
  latest = tmp_path / 'a' / 'checkpoints' / '16'
  for f in latest.rglob('*'):
    if f.is_file() and f.stat().st_size > 0 and 'metadata' not in f.name:
      f.write_bytes(b'\0' * 7)  # garbage where the array data was
  result = experiment.run(tiny_config(**{'train.epochs': 3}), str(tmp_path / 'a'))
  assert result['status'] == 'done'
  assert (tmp_path / 'a' / 'corrupt_checkpoints' / '16').exists()  # kept aside, not deleted
  experiment.run(tiny_config(**{'train.epochs': 3}), str(tmp_path / 'b'))
  assert _rows(tmp_path / 'a') == _rows(tmp_path / 'b')


def test_changed_config_on_an_existing_workdir_is_refused(tmp_path):
  experiment.run(tiny_config(**{'train.epochs': 1}), str(tmp_path))
  with pytest.raises(WorkdirError, match=r'train\.batch_size: 32 -> 16'):
    experiment.run(tiny_config(**{'train.epochs': 1, 'train.batch_size': 16}), str(tmp_path))
  assert record.read_status(tmp_path)['status'] == 'done'  # the old record is intact


def test_diverged_trials_are_marked_and_the_rest_continue(tmp_path):
  cfg = tiny_config(**{'trials.num': 1})
  cfg.arms = {'ok': {'lr': 0.1}, 'boom': {'lr': 1e38}}
  result = experiment.run(cfg, str(tmp_path))
  assert result['status'] == 'done'
  rows = {(r['step'], r['arm']): r for r in _rows(tmp_path)}
  assert not rows[(16, 'ok')]['diverged'] and rows[(16, 'ok')]['test_loss'] is not None
  assert rows[(16, 'boom')]['diverged'] and rows[(16, 'boom')]['test_loss'] is None
  text = (tmp_path / 'metrics.jsonl').read_text()
  assert 'NaN' not in text and 'Infinity' not in text


def test_all_diverged_stops_with_status_diverged(tmp_path):
  result = experiment.run(tiny_config(**{'optim.lr': 1e38}), str(tmp_path))
  status = record.read_status(tmp_path)
  assert result['status'] == status['status'] == 'diverged'
  assert 'optim.lr' in status['message']
  assert len(_rows(tmp_path)) == 2  # the rows up to the divergence are kept


# SIGTERM / SIGKILL mid-run and the resume: tests/test_bad_inputs.py (test_killed_mid_run...).


def test_momentum_runs_log_the_momentum_aware_intrinsic_lr(tmp_path):
  """intrinsic_lr stays eta lambda; intrinsic_lr_momentum = eta lambda / (1 - beta) is the rate
  of the norm dynamics under heavy-ball momentum (tests/test_theory.py checks it numerically)."""
  from tests.helpers import run_tiny  # noqa: PLC0415

  _, rows = run_tiny(tmp_path, **{'optim.momentum': 0.9, 'train.epochs': 1})
  for r in rows:
    assert r['intrinsic_lr'] == pytest.approx(r['lr'] * r['wd'], rel=1e-6)
    assert r['intrinsic_lr_momentum'] == pytest.approx(10 * r['intrinsic_lr'], rel=1e-5)
