"""Every config file: each argument it declares gives a valid config (no training), every sweep
point too, cpu variants run offline, and each full-scale CIFAR config runs a few steps on CPU in its
CIFAR-shaped smoke form."""

import math
import pathlib

import pytest

from svag_jax import config as config_lib
from svag_jax import experiment, record
from svag_jax.launch import specs

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = sorted(
    str(p.relative_to(ROOT))
    for p in (ROOT / 'configs').glob('*.py')
    if p.name not in ('__init__.py', 'base.py')
)


def _args(path):
  module = specs.load_module(str(ROOT / path))
  assert hasattr(module, 'ARGS'), f'{path} must declare ARGS (the get_config arguments it takes)'
  return module, (None, *module.ARGS)


def _spec(path, arg):
  return path if arg is None else f'{path}:{arg}'


@pytest.mark.parametrize('path', CONFIGS)
def test_every_argument_and_sweep_point_validates(path, monkeypatch):
  monkeypatch.chdir(ROOT)
  module, args = _args(path)
  validate = getattr(module, 'validate', config_lib.validate)  # a config with its own schema
  for arg in args:
    points = specs.points(_spec(path, arg))
    assert points
    for point in points:
      cfg = specs.build_config(_spec(path, arg), point)
      validate(cfg)
      if arg in ('cpu', 'smoke') and 'data' in cfg:
        assert cfg.data.source != 'tfds', f'{path}:{arg} must run offline'
  with pytest.raises(ValueError, match='unknown config argument'):
    module.get_config('no_such_variant')


SMOKE = [p for p in CONFIGS if 'smoke' in getattr(specs.load_module(str(ROOT / p)), 'ARGS', ())]


def test_the_cifar_figures_have_smoke_variants():
  names = {pathlib.Path(p).stem for p in SMOKE}
  assert {
      'cifar_equilibrium',
      'wd_lr_family',
      'lr_vs_wd_halving',
      'lsr',
      'svag_convergence',
      'ngd',
  } <= names


@pytest.mark.usefixtures('compile_bound')
@pytest.mark.parametrize('path', SMOKE)
def test_smoke_variant_trains_a_few_steps(path, tmp_path, monkeypatch):
  monkeypatch.chdir(ROOT)
  point = specs.points(f'{path}:smoke')[-1]
  full = specs.build_config(path, point)
  cfg = specs.build_config(f'{path}:smoke', point)
  # the smoke run keeps what defines the experiment
  for field in ('model.name', 'model.norm', 'optim.oracle', 'optim.momentum', 'data.augment'):
    group, name = field.split('.')
    assert cfg[group][name] == full[group][name], field
  assert list(cfg.arms) == list(full.arms)
  # The per-group metrics (tests/test_byom.py covers them) double a smoke run's compiles: one
  # PreResNet config keeps them (an SGD one: SVAG's 2x steps made svag_convergence's 52 s).
  if pathlib.Path(path).stem != 'weight_distance':
    cfg.metrics.groups = 'none'
  result = experiment.run(cfg, str(tmp_path))
  assert result['status'] == 'done'
  rows = record.read_metrics(tmp_path)
  assert rows and all(not r['diverged'] for r in rows)
  assert all(math.isfinite(r['train_loss']) for r in rows)
  assert len(rows) == cfg.trials.num * max(1, len(cfg.arms))
