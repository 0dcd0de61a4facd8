"""Invalid configs fail before anything is compiled, with a message that names the field."""

import pathlib
import re
import subprocess
import sys

import pytest

from svag_jax import arms as arms_lib
from svag_jax import config as config_lib
from svag_jax import experiment, schema
from svag_jax.checks import ConfigError, differs
from tests.helpers import tiny_config

ROOT = pathlib.Path(__file__).resolve().parents[1]

BAD = [
    ('optim.lr', -1.0, r'config\.optim\.lr = -1.0: must be > 0'),
    ('optim.lr', 0.0, r'config\.optim\.lr = 0.0: must be > 0'),
    ('optim.wd', -0.1, r'config\.optim\.wd = -0.1: must be >= 0'),
    ('optim.momentum', 1.0, r'config\.optim\.momentum'),
    ('optim.optimizer', 'lion', r'config\.optim\.optimizer.*sgd, rmsprop, adam, adamw'),
    ('optim.beta1', 1.0, r'config\.optim\.beta1 = 1.0: must be in \[0, 1\)'),
    ('optim.beta2', -0.1, r'config\.optim\.beta2 = -0.1: must be in \[0, 1\)'),
    ('optim.eps', -1.0, r'config\.optim\.eps = -1.0: must be >= 0'),
    ('optim.lr_schedule', ((80, 0.5), (40, 0.5)), r'optim\.lr_schedule.*out of order'),
    ('optim.wd_schedule', ((40, -1.0),), r'optim\.wd_schedule.*factor'),
    ('data.source', 'imagenet_folder', r'config\.data\.source.*mnist5k, tfds, synthetic'),
    ('model.name', 'resnet', r'config\.model\.name.*cnn, mlp'),
    ('model.norm', 'instance', r'config\.model\.norm.*batch, group, layer'),
    ('model.num_groups', 3, r'config\.model\.num_groups.*must divide'),
    ('model.widths', (), r'config\.model\.widths'),
    ('train.sampling', 'stratified', r'config\.train\.sampling'),
    ('train.epochs', -1, r'config\.train\.epochs'),
    ('train.eval_every', 0.0, r'config\.train\.eval_every'),
    ('train.predictions_at', (1, 99), r'config\.train\.predictions_at.*99'),
    ('trials.num', 0, r'config\.trials\.num'),
    ('trials.vmap_chunk', -2, r'config\.trials\.vmap_chunk'),
    (
        'trials.mode',
        'pmap',
        r'config\.trials\.mode = .pmap.: unknown; choose one of vmap, side_by_side',
    ),
]


@pytest.mark.parametrize('field,value,match', BAD, ids=[f'{f}={v}' for f, v, _ in BAD])
def test_bad_values_name_the_field(field, value, match):
  cfg = (
      tiny_config(**{'model.norm': 'group', 'model.num_groups': 4})
      if 'groups' in field
      else tiny_config()
  )
  node, *_ = [cfg]
  *path, last = field.split('.')
  for p in path:
    node = node[p]
  node[last] = value
  with pytest.raises(ConfigError, match=match):
    config_lib.validate(cfg)


def test_a_config_file_at_its_defaults_validates_though_the_flag_parser_locks_it():
  """config_flags locks a config file's ConfigDict, and a ConfigDict's equality compares the lock:
  an unread group at its default (model.kwargs = {} of a built-in model) is still the default."""
  config = tiny_config()
  config.lock()
  assert not differs(config.model.kwargs, schema.defaults().model.kwargs)
  assert differs({'a': (1,)}, {'a': (2,)}) and not differs({'a': [1]}, {'a': (1,)})
  config_lib.validate(config)


def test_unknown_fields_are_rejected_with_a_suggestion():
  cfg = tiny_config()
  with cfg.unlocked():
    cfg.optim.lrr = 0.1
  with pytest.raises(ConfigError, match=r"config\.optim\.lrr: unknown.*'lr'"):
    config_lib.validate(cfg)
  cfg = tiny_config()
  cfg.arms = {'const': {'lr': 0.1, 'momentum': 0.9}}
  with pytest.raises(ConfigError, match=r'arms\.const\.momentum'):
    config_lib.validate(cfg)
  cfg.arms = {'const': {'lr': -3.0}}
  with pytest.raises(ConfigError, match=r'arms\.const\.lr = -3.0'):
    config_lib.validate(cfg)


def test_batch_larger_than_training_set_fails_before_the_workdir_is_written(tmp_path):
  cfg = tiny_config(**{'train.batch_size': 1000})
  with pytest.raises(ConfigError, match=r'train\.batch_size = 1000.*256 examples'):
    experiment.run(cfg, str(tmp_path / 'w'))
  assert not (tmp_path / 'w').exists()


def test_arms_resolve_from_optim_defaults():
  cfg = tiny_config()
  cfg.arms = {'a': {'lr': 0.4, 'lr_schedule': ((1, 0.5),)}, 'b': {'wd': 0.2}}
  arms = arms_lib.arms(cfg)
  assert [a.name for a in arms] == ['a', 'b']
  assert arms[0].lr == 0.4 and arms[0].wd == cfg.optim.wd and arms[0].lr_schedule == ((1.0, 0.5),)
  assert arms[1].lr == cfg.optim.lr and arms[1].wd == 0.2


def test_cli_rejects_negative_lr_before_compiling(tmp_path):
  cmd = [
      sys.executable,
      '-m',
      'svag_jax.launch.main',
      '--config=configs/mnist_const.py:cpu',
      f'--workdir={tmp_path / "w"}',
      '--config.optim.lr=-1',
  ]
  out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert out.returncode != 0
  assert 'config.optim.lr = -1.0: must be > 0' in out.stderr
  assert 'Traceback' not in out.stderr
  assert not (tmp_path / 'w').exists()


# A non-default value for every field of the unread-field table, and the settings under which the
# field is NOT read (from tiny_config).
OTHER_VALUE = {
    'data.name': 'cifar10',
    'data.data_dir': '/data',
    'data.download': True,
    'data.synthetic_shape': (4, 4, 1),
    'data.synthetic_num_classes': 3,
    'data.synthetic_num_train': 100,
    'data.synthetic_num_test': 10,
    'model.kwargs': {'widths': (4,)},
    'model.widths': (8, 8),
    'model.norm': 'layer',
    'model.init_scale': 0.5,
    'model.widen': 2.0,
    'model.conv_impl': 'split',
    'model.num_groups': 2,
    'model.norm_eps': 1e-5,
    'optim.momentum': 0.9,
    'optim.beta1': 0.5,
    'optim.beta2': 0.99,
    'optim.eps': 1e-6,
    'optim.svag_l': 2,
    'optim.chunk_size': 64,
    'train.sampling': 'replacement',
    'train.eval_bn_batches': 2,
    'metrics.gn_batches': 4,
    'logging.wandb_project': 'other',
    'logging.wandb_mode': 'offline',
}
UNREAD_UNDER = {  # settings on top of the schema's defaults (mnist5k, cnn, BatchNorm, sgd)
    'data.synthetic_shape': {},
    'data.synthetic_num_classes': {},
    'data.synthetic_num_train': {},
    'data.synthetic_num_test': {},
    'data.name': {},
    'data.data_dir': {},
    'data.download': {},
    'model.kwargs': {},
    'model.widths': {'model.name': 'preresnet20'},
    'model.norm': {'model.name': 'tests.foreign_models:PlainMLP'},
    'model.init_scale': {'model.name': 'tests.foreign_models:PlainMLP'},
    'model.widen': {},
    'model.conv_impl': {'model.name': 'mlp'},
    'model.num_groups': {},
    'model.norm_eps': {'model.norm': 'none'},
    'optim.momentum': {'optim.optimizer': 'adam'},
    'optim.beta1': {'optim.optimizer': 'rmsprop'},
    'optim.beta2': {},
    'optim.eps': {},
    'optim.svag_l': {},
    'optim.chunk_size': {},
    'train.sampling': {'optim.oracle': 'gd', 'model.norm': 'layer'},
    'train.eval_bn_batches': {'model.norm': 'layer'},
    'metrics.gn_batches': {},
    'logging.wandb_project': {},
    'logging.wandb_mode': {},
}


def _defaults(**settings):
  c = schema.defaults()
  for key, value in settings.items():
    section, name = key.split('.')
    c[section][name] = value
  return c


@pytest.mark.parametrize('field', [f for f, _, _ in config_lib.CONDITIONAL_FIELDS])
def test_every_conditional_field_is_refused_where_it_is_not_read(field):
  assert field in OTHER_VALUE and field in UNREAD_UNDER, f'add {field} to the tables above'
  settings = UNREAD_UNDER[field]
  cfg = _defaults(**settings)
  assert field in config_lib.unread_fields(cfg), f'{field} is read under {settings}'
  config_lib.validate(cfg)  # fine at its default
  with pytest.raises(ConfigError, match=rf'config\.{re.escape(field)} = '):
    config_lib.validate(_defaults(**settings, **{field: OTHER_VALUE[field]}))


def test_noise_scale_is_read_by_the_full_batch_oracles_too(tmp_path):
  """optim.noise_scale is not in the unread table: it changes an NGD run."""
  from tests.helpers import run_tiny  # noqa: PLC0415

  common = {
      'optim.oracle': 'ngd',
      'model.norm': 'group',
      'model.num_groups': 4,
      'train.epochs': 0.25,
      'train.eval_every': 0.25,
  }
  _, plain = run_tiny(tmp_path / 'a', **common)
  _, noisy = run_tiny(tmp_path / 'b', **common, **{'optim.noise_scale': 0.1})
  assert plain[-1]['train_loss'] != noisy[-1]['train_loss']
