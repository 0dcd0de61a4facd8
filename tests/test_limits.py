"""Limits checked before anything is compiled (issue 25): step counts that overflow int32, plans too
large to enumerate, trials that do not fit in the device's memory (the estimate that --print_config
states), and data that are not what they claim (pixels, labels).

Each refusal goes through the real entry point: exit code 1, one line naming the field or the file
and the fix, no workdir written."""

import dataclasses
import gzip
import json
import pathlib
import re
import resource

import numpy as np
import pytest

from svag_jax import data as data_lib
from svag_jax import memory, plan
from tests.helpers import one_line, run_cli, tiny_config

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = '--config=tests/tiny_config.py'

pytestmark = pytest.mark.usefixtures('compile_bound')


def _refused(argv, capsys, workdir) -> str:
  assert run_cli(argv) == 1
  line = one_line(capsys.readouterr().err)
  assert not workdir.exists()  # refused before anything was written
  return line


# ---- step counts and plans ----


def test_a_step_count_beyond_int32_is_refused(tmp_path, capsys, monkeypatch):
  monkeypatch.chdir(ROOT)
  w = tmp_path / 'w'
  line = _refused([TINY, f'--workdir={w}', '--config.train.epochs=3e8'], capsys, w)
  assert 'config.train.epochs = 3e+08: 2,400,000,000 optimizer steps (8 per epoch)' in line
  assert 'the most the int32 step counters hold; lower train.epochs to at most 268,435,455' in line


def test_print_config_of_a_billion_epochs_is_refused_without_growing(tmp_path, capsys, monkeypatch):
  monkeypatch.chdir(ROOT)
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  line = _refused([TINY, '--print_config', '--config.train.epochs=1e9'], capsys, tmp_path / 'w')
  assert 'int32 step counters' in line
  assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 200_000  # kB


def test_too_many_evaluations_are_refused(tmp_path, capsys, monkeypatch):
  monkeypatch.chdir(ROOT)
  w = tmp_path / 'w'
  argv = [TINY, f'--workdir={w}', '--config.train.epochs=2e6', '--config.train.eval_every=1.0']
  line = _refused(argv, capsys, w)
  assert 'config.train.eval_every = 1: 2,000,001 evaluations' in line
  assert 'raise train.eval_every to at least 2 epochs' in line


def test_dispatch_lengths_are_the_calls_of_the_loop():
  def loop(p, n):  # the loop of experiment._run, step by step
    lengths, step = set(), 0
    for e in p.eval_steps:
      while step < e:
        lengths.add(min(n, e - step))
        step += min(n, e - step)
    return sorted(lengths)

  for eval_every, predictions in ((0.3, ()), (1.0, (0.7, 1.9)), (0.125, (0.5,))):
    cfg = tiny_config(**{'train.eval_every': eval_every, 'train.predictions_at': predictions})
    p = plan.Plan.make(cfg, 8)
    for n in (1, 3, 4, 5, 64):
      assert plan.dispatch_lengths(p, n) == loop(p, n), (eval_every, predictions, n)


# ---- the memory of the trials ----


def test_print_config_summarises_a_long_plan_and_states_the_memory_per_trial(capsys, monkeypatch):
  monkeypatch.chdir(ROOT)
  assert run_cli([TINY, '--print_config', '--config.train.epochs=20000']) == 0
  out = capsys.readouterr().out
  p = json.loads(out)['plan']
  assert p['total_steps'] == 160_000 and p['steps_per_dispatch'] == [4]
  assert p['eval_steps'] == '20,000 steps: 8, 16, 24, ..., 160000'
  assert len(out) < 20_000
  assert re.fullmatch(
      r'~\S+ \S*B per trial \(\S+ \S*B state \+ \S+ \S*B while it trains or is evaluated; '
      r"XLA's memory analysis of the one-trial programs\) \+ \S+ \S*B of data per device: 2 "
      r'trials need ~\S+ \S*B per device of the \S+ \S*B of a cpu device: fits',
      p['memory'],
  ), p['memory']
  numbers = p['memory_bytes']
  assert numbers['state_per_trial'] > 0 and numbers['work_per_trial'] > 0 and numbers['fits']


@pytest.fixture(scope='module')
def tiny_estimate(compile_bound):
  """The memory estimate of the tiny config (XLA's analysis; its numbers per trial do not depend
  on the number of trials or the chunks)."""
  del compile_bound  # ordering only: the same compiler settings as the commands' estimates
  cfg = tiny_config()
  return memory.estimate(cfg, data_lib.load(cfg.data))


@pytest.fixture
def small_device(monkeypatch):
  """Every device has 64 MB."""
  monkeypatch.setattr(memory, 'device_memory', lambda device: 64_000_000)
  monkeypatch.chdir(ROOT)
  return 64_000_000


def test_trials_that_do_not_fit_are_refused_with_the_largest_number_that_fits(
    small_device, tiny_estimate, tmp_path, capsys
):
  w = tmp_path / 'w'
  line = _refused([TINY, f'--workdir={w}', '--config.trials.num=1000000'], capsys, w)
  assert 'config.trials.num = 1000000: 1 arm(s) x 1,000,000 trials do not fit in memory' in line
  n = int(re.search(r'the largest trials.num that fits is ([\d,]+)', line)[1].replace(',', ''))
  est = dataclasses.replace(tiny_estimate, per_arm=1_000_000, device_memory=small_device)
  assert est.needed(n) <= small_device < est.needed(n + 4)  # 4 devices: the next multiple
  assert 'vmap_chunk' not in line  # their states alone do not fit


def test_a_vmap_chunk_that_fits_is_proposed(small_device, tiny_estimate, tmp_path, capsys):
  w = tmp_path / 'w'
  line = _refused([TINY, f'--workdir={w}', '--config.trials.num=8000'], capsys, w)
  k = int(re.search(r'set trials.vmap_chunk to at most ([\d,]+)', line)[1].replace(',', ''))
  est = dataclasses.replace(tiny_estimate, per_arm=8000, device_memory=small_device)
  assert k % 4 == 0 and est.needed(chunk=k) <= small_device < est.needed(chunk=k + 4)


# ---- data checked at load ----


def _mnist_csv(path: pathlib.Path, row: int, column: int, value: str) -> pathlib.Path:
  """A 785-column CSV of 20 valid digits with one cell replaced."""
  table = np.tile(np.arange(785) % 200, (20, 1)).astype(object)
  table[:, -1] = np.arange(20) % 10
  table[row, column] = value
  with gzip.open(path, 'wt') as f:
    f.write('\n'.join(','.join(map(str, r)) for r in table) + '\n')
  return path


@pytest.mark.parametrize(
    'row,column,value,match',
    [
        (3, 5, '300', r'row 4: pixel 5 is 300; pixels must be finite integers 0\.\.255'),
        (0, 9, 'nan', r'row 1: pixel 9 is nan'),
        (7, 0, '-1', r'row 8: pixel 0 is -1;'),
        (11, 784, '10', r'row 12: label 10; labels must be integers 0\.\.9 \(10 classes\)'),
        (19, 784, 'nan', r'row 20: label nan'),
    ],
    ids=['pixel 300', 'NaN pixel', 'negative pixel', 'label 10', 'NaN label'],
)
def test_bad_mnist5k_values_are_refused_naming_the_file_and_row(
    row, column, value, match, tmp_path, capsys, monkeypatch
):
  csv = _mnist_csv(tmp_path / 'mnist_5k.csv.gz', row, column, value)
  monkeypatch.setattr(data_lib, 'mnist5k_path', lambda: csv)
  monkeypatch.chdir(ROOT)
  w = tmp_path / 'w'
  line = _refused(['--config=configs/mnist_const.py:cpu', f'--workdir={w}'], capsys, w)
  assert line.startswith(f'svag_jax: DataError: {csv}, ') and re.search(match, line), line


@pytest.mark.parametrize(
    'bad,match',
    [
        ({'image': np.full((4, 4, 1), 300.0)}, r"split 'train' .*, example 2: pixel 0 is 300;"),
        ({'label': 7}, r"split 'test' .*, example 2: label 7; labels must be integers 0\.\.4"),
    ],
    ids=['pixel 300', 'label beyond the classes'],
)
def test_bad_tfds_values_are_refused_naming_the_split_and_example(
    bad, match, tmp_path, capsys, monkeypatch
):
  import tensorflow_datasets as tfds  # noqa: PLC0415

  class Source(list):  # tfds.data_source's interface: len, batched reads

    def __getitems__(self, keys):
      return [self[k] for k in keys]

  def data_source(name, split, data_dir, download):
    examples = [{'image': np.full((4, 4, 1), 9, np.uint8), 'label': i % 5} for i in range(6)]
    if (split == 'train') == ('image' in bad):
      examples[2] = {**examples[2], **bad}
    return Source(examples)

  class Builder:
    info = type('Info', (), {'features': {'label': type('Label', (), {'num_classes': 5})}})

  monkeypatch.setattr(tfds, 'data_source', data_source)
  monkeypatch.setattr(tfds, 'builder', lambda name, data_dir=None: Builder)
  monkeypatch.chdir(ROOT)
  w = tmp_path / 'w'
  config = '--config=configs/mnist_const.py:cpu'
  argv = [config, f'--workdir={w}', '--config.data.source=tfds', '--config.data.name=mock']
  line = _refused(argv, capsys, w)
  assert line.startswith("svag_jax: DataError: tfds data set 'mock' ") and re.search(match, line)
