"""Watching a run (svag_jax.monitor, .runlog, .progress): TensorBoard events read back with
TensorBoard's reader, the W&B writer in offline mode, WORKDIR/log.txt and the progress line's rate.

The resume after SIGTERM / SIGKILL (no duplicate steps in the events, the log rotated) is checked
in tests/test_faults.py::test_killed_mid_run_then_resumed_gives_the_uninterrupted_numbers.
"""

import io
import json
import math
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

from svag_jax import monitor, progress, record
from svag_jax.checks import ConfigError
from tests import helpers
from tests.helpers import ARMS, TRIALS_PER_ARM, event_steps, make_tiny_workdir, tiny_config

ROOT = pathlib.Path(__file__).resolve().parents[1]

TAGS = [
    f'{k}/{s}'
    for k in ('test_accuracy', 'train_loss', 'lr', 'w_norm_sq')
    for s in ('mean', 'q10', 'q50', 'q90')
]


def assert_events_match_record(workdir):
  """Every arm's events hold each evaluation step once, with the record's mean and quantiles."""
  rows = record.read_metrics(workdir)
  eval_steps = sorted({r['step'] for r in rows})
  for tag, steps in event_steps(workdir / 'tensorboard').items():
    assert steps == ([0] if tag.endswith(':config/text_summary') else eval_steps), tag
  for arm in dict.fromkeys(r['arm'] for r in rows):
    acc = event_accumulator.EventAccumulator(str(workdir / 'tensorboard' / arm))
    acc.Reload()
    assert set(TAGS) <= set(acc.Tags()['scalars'])
    for step in eval_steps:
      values = [r['test_accuracy'] for r in rows if r['arm'] == arm and r['step'] == step]
      got = {e.step: e.value for e in acc.Scalars('test_accuracy/mean')}[step]
      np.testing.assert_allclose(got, np.mean(values), rtol=1e-6)
      got = {e.step: e.value for e in acc.Scalars('test_accuracy/q90')}[step]
      np.testing.assert_allclose(got, np.percentile(values, 90), rtol=1e-6)
  return rows


def test_summaries_are_over_live_trials_and_skip_missing_values():
  rows = [
      {
          'step': 5,
          'arm': 'a',
          'trial': i,
          'diverged': i == 3,
          'x': [1.0, 2.0, 3.0, 100.0][i],
          'G': None if i else 4.0,
          'epoch': 1.0,
      }
      for i in range(4)
  ] + [{'step': 5, 'arm': 'b', 'trial': 4, 'diverged': True, 'x': None, 'G': None, 'epoch': 1.0}]
  keys = monitor.metric_keys(rows)
  assert keys == ['x', 'G']  # epoch, step, trial, arm, diverged are not metrics
  s = monitor.arm_summaries(rows, keys)
  assert s['a']['x/mean'] == 2.0 and s['a']['x/q50'] == 2.0 and s['a']['trials/live'] == 3
  assert s['a']['x/q10'] == pytest.approx(1.2) and s['a']['x/q90'] == pytest.approx(2.8)
  assert s['a']['G/mean'] == 4.0  # only the trial that has it
  assert s['b'] == {'trials/live': 0.0}  # every trial diverged: nothing but the count


def test_a_run_writes_events_per_arm_that_tensorboard_reads(tmp_path):
  workdir = make_tiny_workdir(tmp_path / 'run')
  assert sorted(p.name for p in (workdir / 'tensorboard').iterdir()) == sorted(ARMS)
  rows = assert_events_match_record(workdir)
  assert len(rows) == 2 * TRIALS_PER_ARM * len({r['step'] for r in rows})
  acc = event_accumulator.EventAccumulator(str(workdir / 'tensorboard' / 'Const'))
  acc.Reload()
  (text,) = acc.Tensors('config/text_summary')
  assert b'"trials"' in text.tensor_proto.string_val[0]  # the run's config.json, as text

  # Rewritten from the record by the command-line tool (e.g. for runs older than the writer).
  shutil.rmtree(workdir / 'tensorboard')
  out = subprocess.run(
      [sys.executable, '-m', 'svag_jax.monitor', str(workdir)],
      cwd=ROOT,
      capture_output=True,
      text=True,
      timeout=120,
  )
  assert out.returncode == 0, out.stderr
  assert_events_match_record(workdir)


def test_wandb_offline_run_is_resumed_by_id_without_resending_steps(tmp_path):
  from svag_jax import experiment  # noqa: PLC0415

  config = tiny_config(
      **{
          'train.epochs': 1,
          'logging.wandb': True,
          'logging.wandb_mode': 'offline',
          'logging.tensorboard': False,
      }
  )
  workdir = tmp_path / 'run'
  with helpers.most_optimizations_disabled():
    assert experiment.run(config, str(workdir))['status'] == 'done'
  first = json.loads((workdir / 'wandb.json').read_text())
  assert first['last_step'] == 8 and not (workdir / 'tensorboard').exists()
  config.train.epochs = 2  # resumed with more epochs: the same W&B run goes on
  with helpers.most_optimizations_disabled():
    assert experiment.run(config, str(workdir))['status'] == 'done'
  second = json.loads((workdir / 'wandb.json').read_text())
  assert second == {'id': first['id'], 'last_step': 16}
  runs = sorted((workdir / 'wandb').glob(f'offline-run-*-{first["id"]}'))
  assert runs, list((workdir / 'wandb').iterdir())
  data = b''.join(f.read_bytes() for r in runs for f in r.glob('*.wandb'))
  assert b'default/test_accuracy/mean' in data and b'default/w_norm_sq/q90' in data


def test_wandb_without_the_package_names_the_extra(tmp_path, monkeypatch):
  """Refused by the config check, before anything is written (and by the writer itself)."""
  import importlib.util  # noqa: PLC0415

  from svag_jax import config as config_lib  # noqa: PLC0415

  config = tiny_config(**{'logging.wandb': True})
  real = importlib.util.find_spec
  monkeypatch.setattr(
      importlib.util, 'find_spec', lambda name, *a: None if name == 'wandb' else real(name, *a)
  )
  with pytest.raises(ConfigError, match=r'logging\.wandb = True.*svag_jax\[wandb\]'):
    config_lib.validate(config)
  monkeypatch.setitem(sys.modules, 'wandb', None)  # import wandb raises ImportError
  with pytest.raises(ImportError, match=r'svag_jax\[wandb\]'):
    monitor.WandbWriter(tmp_path, {}, config.logging)


class FakeClock:

  def __init__(self):
    self.now = 0.0

  def __call__(self):
    return self.now


def test_progress_rate_and_eta_leave_compilation_out():
  clock = FakeClock()
  stream = io.StringIO()
  p = progress.Progress(1000, 10.0, 4, 'always', stream=stream, clock=clock, min_interval=0)

  def compile_and_run():
    clock.now += 30.0  # a 30 s compile with its first 10 steps
    return 0

  assert p.compiles(('train', 10))
  p.timed_compile(('train', 10), 'the train step', compile_and_run, steps=10)
  assert not p.compiles(('train', 10))
  assert math.isnan(p.rate(10)) and 'rate after the first compiled call' in p.status(10)
  clock.now += 2.0  # 20 more steps in 2 s: 10 steps/s, whatever the compile took
  assert p.rate(30) == pytest.approx(10.0)
  assert 'ETA 00:01:37' in p.status(30)  # 970 steps at 10 steps/s
  assert '400 img/s over 4 trials' in p.status(30)  # 10 steps/s x 10 images x 4 trials
  p.update(30)
  assert stream.getvalue().startswith('\r[') and 'steps/s' in stream.getvalue()
  p.clear()
  assert stream.getvalue().endswith('\r\x1b[K')


def test_progress_is_quiet_when_not_a_terminal():
  stream = io.StringIO()  # isatty() is False: CI, SLURM, a redirected log
  p = progress.Progress(100, 1.0, 1, 'auto', stream=stream)
  p.update(50)
  p.clear()
  assert not p.live and stream.getvalue() == ''


def test_log_txt_keeps_the_log_and_the_warnings_of_the_command_that_trained(tmp_path):
  """A diverging run's warning lands in log.txt; a refused second command leaves the workdir
  (log.txt included) as it was. Rotation on resume: tests/test_faults.py."""
  cmd = [
      sys.executable,
      '-m',
      'svag_jax.launch.main',
      '--config=tests/tiny_config.py',
      f'--workdir={tmp_path}',
      '--config.train.epochs=1',
      '--config.optim.lr=1e38',
  ]
  env = {**os.environ, 'JAX_DISABLE_MOST_OPTIMIZATIONS': '1'}
  out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
  assert out.returncode == 3, out.stderr[-2000:]
  log = (tmp_path / 'log.txt').read_text()
  assert 'compiling the init, the train step' in log and 'compiled the train step' in log
  assert 'diverged before step' in log  # a warning, kept with the run
  assert "Unable to initialize backend 'tpu'" not in out.stderr + log
  assert 'CheckpointManager' not in log  # orbax's INFO chatter stays out
  changed = [*cmd[:-1], '--config.optim.lr=0.1']  # another run: refused before training
  again = subprocess.run(changed, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
  assert again.returncode == 1 and 'different config' in again.stderr, again.stderr[-2000:]
  assert (tmp_path / 'log.txt').read_text() == log and not (tmp_path / 'log.txt.1').exists()
