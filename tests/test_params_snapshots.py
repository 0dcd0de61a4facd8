"""Weight snapshots (train.params_at): the right epochs and shapes, resume-safe, validated."""

import json
import shutil

import jax
import numpy as np
import pytest

from svag_jax import config as config_lib
from svag_jax import data as data_lib
from svag_jax import experiment, models, record
from svag_jax import workdir as workdir_lib
from svag_jax.checks import ConfigError
from tests.helpers import tiny_config

pytestmark = pytest.mark.usefixtures('compile_bound')

# tiny_config: 256 synthetic examples, B = 32: 8 steps per epoch; 2 trials, all vmapped.
SNAPSHOTS = {'train.epochs': 2, 'train.params_at': (0.5, 1, 2)}


def _all_arrays(path, epoch):
  tree, arms = record.read_params(path, epoch)
  leaves, _ = jax.tree.flatten_with_path(tree)
  return {jax.tree_util.keystr(k): np.asarray(v) for k, v in leaves}, arms


@pytest.fixture(scope='module')
def reference(tmp_path_factory, compile_bound):
  """An uninterrupted run with snapshots at epochs 0.5, 1 and 2."""
  del compile_bound
  path = tmp_path_factory.mktemp('reference')
  experiment.run(tiny_config(**SNAPSHOTS), str(path))
  return path


def test_snapshots_are_saved_at_the_requested_epochs_with_a_trial_axis(reference):
  tmp_path, cfg = reference, tiny_config(**SNAPSHOTS)
  assert record.params_epochs(tmp_path) == [0.5, 1.0, 2.0]
  assert sorted(p.name for p in (tmp_path / 'params').iterdir()) == [
      'epoch_0.5.npz',
      'epoch_1.npz',
      'epoch_2.npz',
      'trials.json',
  ]
  # an epoch of params_at that is not an eval epoch becomes one (step 4)
  rows = record.read_metrics(tmp_path)
  assert sorted({r['step'] for r in rows}) == [4, 8, 16]
  # shapes: the model's variables with a leading axis of T = 2 trials
  ds = data_lib.load(cfg.data)
  init = models.build(cfg.model, ds.num_classes).init(
      jax.random.key(0), np.zeros((1, *ds.shape), np.float32), train=False
  )
  tree, arms = record.read_params(tmp_path, 2)
  assert arms == ['default'] * 2
  assert set(tree) == {'params', 'batch_stats', 'frozen'}
  for name in tree:
    want = jax.tree.map(lambda x: (2, *x.shape), init[name])
    got = jax.tree.map(lambda x: x.shape, tree[name])
    assert got == want, name
  # the weights are those of the evaluation at that step: ||w||^2 of each trial is the row's
  for epoch, step in ((0.5, 4), (1, 8), (2, 16)):
    tree, _ = record.read_params(tmp_path, epoch)
    sq = sum(
        np.sum(np.asarray(x, np.float64) ** 2, axis=tuple(range(1, x.ndim)))
        for x in jax.tree.leaves(tree['params'])
    )
    want = [r['w_norm_sq'] for r in sorted(rows, key=lambda r: r['trial']) if r['step'] == step]
    np.testing.assert_allclose(sq, want, rtol=1e-5)
  # trials differ (own keys), and the weights move between snapshots
  a, _ = _all_arrays(tmp_path, 1)
  b, _ = _all_arrays(tmp_path, 2)
  kernel = next(k for k in a if k.startswith("['params']"))
  assert not np.allclose(a[kernel][0], a[kernel][1])
  assert not np.allclose(a[kernel], b[kernel])
  frozen = next(k for k in a if k.startswith("['frozen']"))
  np.testing.assert_array_equal(a[frozen], b[frozen])  # the fixed head never moves


def test_resume_neither_loses_nor_duplicates_snapshots(tmp_path, reference):
  # a: trained to epoch 1 (snapshots 0.5 and 1), resumed to 2 with one more snapshot epoch
  experiment.run(
      tiny_config(**{'train.epochs': 1, 'train.params_at': (0.5, 1)}), str(tmp_path / 'a')
  )
  experiment.run(tiny_config(**SNAPSHOTS), str(tmp_path / 'a'))
  # c: finished, then its last checkpoint lost: the rerun resumes at step 8 and rewrites epoch 2
  experiment.run(tiny_config(**SNAPSHOTS), str(tmp_path / 'c'))
  before = (tmp_path / 'c' / 'params' / 'epoch_2.npz').stat().st_mtime_ns
  shutil.rmtree(tmp_path / 'c' / 'checkpoints' / '16')
  experiment.run(tiny_config(**SNAPSHOTS), str(tmp_path / 'c'))
  assert (tmp_path / 'c' / 'params' / 'epoch_2.npz').stat().st_mtime_ns != before  # rewritten
  for run in ('a', 'c'):
    assert record.params_epochs(tmp_path / run) == [0.5, 1.0, 2.0]
    assert not list((tmp_path / run / 'params').glob('*.tmp*'))
    for epoch in (0.5, 1, 2):
      got, _ = _all_arrays(tmp_path / run, epoch)
      want, _ = _all_arrays(reference, epoch)  # uninterrupted
      assert got.keys() == want.keys()
      for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=f'{run} {epoch} {k}')


def test_save_and_read_params_round_trip_and_refuse_bad_trees(tmp_path):
  wd = workdir_lib.Workdir(tmp_path)
  tree = {
      'params': {'Dense_0': {'kernel': np.arange(12, dtype=np.float32).reshape(3, 2, 2)}},
      'batch_stats': {},
      'frozen': {'FixedDense_0': {'kernel': np.ones((3, 2), np.float32)}},
  }
  wd.save_params(1.5, tree, ['x', 'y', 'y'])
  wd.save_params(1.5, tree, ['x', 'y', 'y'])  # idempotent
  got, arms = record.read_params(tmp_path, 1.5)
  assert arms == ['x', 'y', 'y'] and got['batch_stats'] == {}
  np.testing.assert_array_equal(
      got['params']['Dense_0']['kernel'], tree['params']['Dense_0']['kernel']
  )
  assert json.loads((tmp_path / 'params' / 'trials.json').read_text()) == {'arm': ['x', 'y', 'y']}
  with pytest.raises(ValueError, match='leading trial axis of 2'):
    wd.save_params(2, tree, ['x', 'y'])
  with pytest.raises(ValueError, match='unknown collections'):
    wd.save_params(2, {**tree, 'opt_state': {}}, ['x', 'y', 'y'])
  with pytest.raises(FileNotFoundError, match=r'saved epochs: 1\.5'):
    record.read_params(tmp_path, 3)
  assert record.params_epochs(tmp_path) == [1.5]


def test_params_files_keep_their_format(tmp_path):
  """params/epoch_<E>.npz names each leaf by its '/'-joined path, depth first (the format of the
  files written before flax.traverse_util flattened the trees): save_params writes the bytes of
  np.savez of those names, read_params reads such a file back to the nested dicts, and a '/' in a
  name is refused."""
  a = lambda *shape: np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
  tree = {
      'params': {
          'Block_0': {'Conv_0': {'kernel': a(2, 3, 3, 1, 4)}},
          'Dense_0': {'kernel': a(2, 4, 3), 'bias': a(2, 3)},
      },
      'batch_stats': {'Block_0': {'BatchNorm_0': {'mean': a(2, 4), 'var': a(2, 4)}}, 'Empty_0': {}},
      'frozen': {'FixedDense_0': {'kernel': a(2, 3, 2)}},
  }
  names = {
      'params/Block_0/Conv_0/kernel': tree['params']['Block_0']['Conv_0']['kernel'],
      'params/Dense_0/kernel': tree['params']['Dense_0']['kernel'],
      'params/Dense_0/bias': tree['params']['Dense_0']['bias'],
      'batch_stats/Block_0/BatchNorm_0/mean': tree['batch_stats']['Block_0']['BatchNorm_0']['mean'],
      'batch_stats/Block_0/BatchNorm_0/var': tree['batch_stats']['Block_0']['BatchNorm_0']['var'],
      'frozen/FixedDense_0/kernel': tree['frozen']['FixedDense_0']['kernel'],
  }
  path = workdir_lib.Workdir(tmp_path / 'new').save_params(1, tree, ['x', 'y'])
  with (tmp_path / 'old.npz').open('wb') as f:
    np.savez(f, **names)
  assert path.read_bytes() == (tmp_path / 'old.npz').read_bytes()
  old = tmp_path / 'old_run' / 'params'
  old.mkdir(parents=True)
  shutil.copy(tmp_path / 'old.npz', old / 'epoch_1.npz')
  (old / 'trials.json').write_text(json.dumps({'arm': ['x', 'y']}))
  got, arms = record.read_params(tmp_path / 'old_run', 1)
  del tree['batch_stats']['Empty_0']  # an empty dict has no leaf to save
  assert arms == ['x', 'y']
  assert jax.tree.structure(got) == jax.tree.structure(tree)
  for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(tree)):
    np.testing.assert_array_equal(x, y)
  with pytest.raises(ValueError, match='separator'):
    workdir_lib.Workdir(tmp_path / 'bad').save_params(1, {'params': {'a/b': a(2)}}, ['x', 'y'])


@pytest.mark.parametrize('value', [(0,), (3,), (-1,), (True,), ('1',)])
def test_params_at_outside_the_run_is_refused_naming_the_field(value):
  cfg = tiny_config(**{'train.epochs': 2})
  cfg.train.params_at = value
  with pytest.raises(ConfigError, match=r'config\.train\.params_at'):
    config_lib.validate(cfg)


def test_params_at_may_change_on_resume():
  assert 'train.params_at' in workdir_lib.RESUMABLE_FIELDS
  config_lib.validate(tiny_config(**{'train.epochs': 2, 'train.params_at': (0.25, 2)}))
