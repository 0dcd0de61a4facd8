"""Sweeps (launch/sweep.py), `analysis.lsr --baseline`, and every config file's cpu variant."""

import json
import pathlib
import subprocess
import sys

import pytest

from svag_jax import record, sweep
from svag_jax.analysis import lsr
from svag_jax.launch import sweep as sweep_cli

ROOT = pathlib.Path(__file__).resolve().parents[1]

TINY_SWEEP = """
from svag_jax import sweep
from tests.helpers import tiny_config

def get_config(arg=None):
  return tiny_config(**{'train.epochs': 1, 'trials.num': 2, 'metrics.gn_every': 0.5,
                        'metrics.gn_batches': 3, 'train.eval_every': 0.25})

def get_sweep(arg=None):
  return sweep.zip_(**{'train.batch_size': (16, 32), 'optim.lr': (0.05, 0.1)})
"""


pytestmark = pytest.mark.usefixtures('compile_bound')  # compile-bound runs


def test_product_and_zip():
  assert sweep.product(**{'a.x': (1, 2), 'b': ('u', 'v')}) == [
      {'a.x': 1, 'b': 'u'},
      {'a.x': 1, 'b': 'v'},
      {'a.x': 2, 'b': 'u'},
      {'a.x': 2, 'b': 'v'},
  ]
  assert sweep.zip_(**{'a': (1, 2), 'b': (3, 4)}) == [{'a': 1, 'b': 3}, {'a': 2, 'b': 4}]
  with pytest.raises(ValueError, match='equal length'):
    sweep.zip_(a=(1, 2), b=(3,))
  assert sweep.point_name({'train.batch_size': 16, 'optim.lr': 0.05}) == 'batch_size=16,lr=0.05'
  assert sweep.point_name({'name': 'sgd', 'optim.oracle': 'sgd'}) == 'sgd'


def test_print_emits_one_launch_command_per_point(tmp_path):
  out = subprocess.run(
      [
          sys.executable,
          '-m',
          'svag_jax.launch.sweep',
          '--config',
          'configs/lsr.py:cpu',
          '--workdir',
          str(tmp_path),
          '--print',
      ],
      cwd=ROOT,
      check=True,
      capture_output=True,
      text=True,
  ).stdout.splitlines()
  assert len(out) == 7
  assert out[0] == (
      f'python -m svag_jax.launch.main --config=configs/lsr.py:cpu '
      f'--workdir={tmp_path}/batch_size=25 '
      '--config.train.batch_size=25 --config.optim.lr=0.1 --config.metrics.gn_batches=128 '
      '--config.train.steps_per_dispatch=160'
  )


def test_sweep_runs_each_point_resumably_and_the_analyses_read_it(tmp_path, capsys):
  cfg = tmp_path / 'tiny_sweep.py'
  cfg.write_text(TINY_SWEEP)
  root = tmp_path / 'root'
  assert sweep_cli.main(['--config', str(cfg), '--workdir', str(root)]) == 0
  names = ['batch_size=16,lr=0.05', 'batch_size=32,lr=0.1']
  assert json.loads((root / 'sweep.json').read_text())['points'][names[0]] == {
      'train.batch_size': 16,
      'optim.lr': 0.05,
  }
  for name, b in zip(names, (16, 32)):
    assert record.read_status(root / name)['status'] == 'done'
    assert record.read_config(root / name)['train']['batch_size'] == b
  mtime = (root / names[0] / 'metrics.jsonl').stat().st_mtime_ns
  capsys.readouterr()
  assert sweep_cli.main(['--config', str(cfg), '--workdir', str(root)]) == 0
  assert 'already done, skipped' in capsys.readouterr().out
  assert (root / names[0] / 'metrics.jsonl').stat().st_mtime_ns == mtime

  # the baseline CLI on the smallest-B point: B* = 2 (1 + N/G) B per trial, and the mean
  s = lsr.lsr_summary(str(root / names[0]))
  assert s['batch_size'] == 16 and len(s['trials']) == 2
  for t in s['trials']:
    assert t['B*'] == pytest.approx(2 * (1 + t['N'] / t['G']) * 16)
    assert t['B*_approx'] == pytest.approx(2 * t['N'] / t['G'] * 16)
  assert s['window'] == (1.0, 1.0)  # G/N at epochs 0.5 and 1: the last 25% is the last one
  assert lsr.main(['--baseline', str(root / names[0]), '--window', '0', '1']) == 0
  out = capsys.readouterr().out
  assert 'over epochs [0, 1]' in out and 'mean N/G' in out and 'B* =' in out
  assert lsr.main(['--baseline', str(tmp_path / 'nowhere')]) == 2

  # the figures read the sweep root only
  from svag_jax.analysis import ngd, svag_convergence

  summary = lsr.summarize(str(root))
  assert summary['B'] == [16, 32] and [b['B'] for b in summary['baselines']] == [16, 32]
  assert summary['baselines'][0]['B*'] == pytest.approx(s['mean_B*'])
  exact = [b['B*'] for b in summary['baselines']]
  assert summary['predicted'] == pytest.approx((min(exact), max(exact)))
  errors = summary['test_error']
  assert summary['threshold'] == pytest.approx(1.2 * min(errors))
  assert summary['observed_break'] == next(
      (b for b, e in zip(summary['B'], errors) if e > 1.2 * min(errors)), None
  )
  assert lsr.main([str(root), '--baselines', '16', '--out', str(tmp_path / 'fig')]) == 0
  out = capsys.readouterr().out
  assert 'predicted interval' in out and 'observed break' in out
  for name, module in [('lsr', lsr), ('ngd', ngd), ('svag_convergence', svag_convergence)]:
    assert module.main([str(root), '--out', str(tmp_path / 'fig')]) == 0
    assert (tmp_path / 'fig' / f'{name}.png').stat().st_size > 0
    assert (tmp_path / 'fig' / f'{name}.pdf').exists()
  assert lsr.main([str(root)]) == 0 and (root / 'figures' / 'lsr.png').exists()  # the default
