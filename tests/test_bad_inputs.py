"""The bad-input table: every bad config, flag or override gives ONE line, exit code 1, and
writes nothing (bad sweeps: tests/test_bad_sweep_inputs.py).

Each case runs the real command-line entry point (`launch.main`: its flag parser and error
handling) in this process and checks the exit code, that stderr is one `svag_jax: <Kind>: ...` line
naming the field or file, that no traceback was printed, and that no workdir was created. A few
cases run the command in a subprocess to check the same through `python -m`. Faults around a run
(workdirs, signals, corrupt records): tests/test_faults.py.
"""

import json
import pathlib
import re
import subprocess
import sys

import pytest

from tests.helpers import one_line, run_cli

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = '--config=tests/tiny_config.py'
FE = '--config=configs/fast_equilibrium.py:cpu'
pytestmark = pytest.mark.usefixtures('compile_bound')


# (id, arguments, expected exit code, regex the one-line message must match). {w} is a fresh
# workdir, {tmp} a folder of broken config files.
def _cfg(path: str, text: str) -> str:
  p = pathlib.Path(path)
  p.parent.mkdir(parents=True, exist_ok=True)
  p.write_text(text)
  return str(p)


CONFIG_CASES = [
    (
        'missing config file',
        ['--config=configs/nope.py', '--workdir={w}'],
        1,
        r'ConfigError: --config=configs/nope.py: configs/nope.py does not exist',
    ),
    ('config is a directory', ['--config=configs', '--workdir={w}'], 1, r'configs is a directory'),
    (
        'config syntax error',
        ['--config={tmp}/broken.py', '--workdir={w}'],
        1,
        r'broken.py:2: syntax error',
    ),
    (
        'config import fails',
        ['--config={tmp}/raises.py', '--workdir={w}'],
        1,
        r'raises.py: importing the config file failed: ZeroDivisionError',
    ),
    (
        'config without get_config',
        ['--config={tmp}/empty.py', '--workdir={w}'],
        1,
        r'empty.py defines no get_config',
    ),
    (
        'unknown config argument',
        ['--config=configs/fast_equilibrium.py:bogus', '--workdir={w}'],
        1,
        r"get_config\('bogus'\) failed.*It takes: cpu",
    ),
    ('no --config', ['--workdir={w}'], 1, r'UsageError: .*--config'),
    ('no --workdir', [TINY], 1, r'UsageError: --workdir=DIR is required'),
    ('positional argument', [TINY, '--workdir={w}', 'extra'], 1, r'UsageError: unexpected'),
    ('unknown flag', [TINY, '--workdir={w}', '--bogus_flag=1'], 1, r'UsageError: .*bogus_flag'),
    (
        'unknown field',
        [TINY, '--workdir={w}', '--config.optim.lrr=0.1'],
        1,
        r"config\.optim\.lrr: unknown field\. Did you mean 'optim\.lr'",
    ),
    (
        'unknown group',
        [TINY, '--workdir={w}', '--config.optm.lr=0.1'],
        1,
        r"config\.optm\.lr: unknown field\. Did you mean 'optim'",
    ),
    (
        'tuple field given twice',
        [TINY, '--workdir={w}', '--config.model.widths=(32,)', '--config.model.widths=(64,)'],
        1,
        r"--config\.model\.widths is given twice \('\(32,\)', then '\(64,\)'\): give each field "
        r'once; a tuple as one value',
    ),
    (
        'field given twice',
        [TINY, '--workdir={w}', '--config.optim.lr=0.1', '--config.optim.lr=0.2'],
        1,
        r"--config\.optim\.lr is given twice \('0\.1', then '0\.2'\)",
    ),
    (
        'field below a value',
        [TINY, '--workdir={w}', '--config.optim.lr.x=1'],
        1,
        r'config\.optim\.lr\.x: unknown field.*is a value',
    ),
    (
        'int field given a fraction',
        [TINY, '--workdir={w}', '--config.train.batch_size=1.5'],
        1,
        r'--config\.train\.batch_size=1\.5: not a value of the field',
    ),
    (
        'float field given text',
        [TINY, '--workdir={w}', '--config.optim.lr=fast'],
        1,
        r'--config\.optim\.lr=fast: not a value',
    ),
    (
        'bool field given text',
        [TINY, '--workdir={w}', '--config.data.augment=maybe'],
        1,
        r'--config\.data\.augment=maybe',
    ),
    (
        'shadowed optim.lr',
        [FE, '--workdir={w}', '--config.optim.lr=-0.1'],
        1,
        r'--config\.optim\.lr=-0\.1 is not read: every arm.*--config\.arms\.const\.lr=\.\.\. '
        r'--config\.arms\.lr_decay\.lr=\.\.\. --config\.arms\.wd_decay\.lr=\.\.\.',
    ),
    (
        'shadowed optim.lr at its default',
        [FE, '--workdir={w}', '--config.optim.lr=0.1'],
        1,
        r'--config\.optim\.lr=0\.1 is not read',
    ),
    (
        'shadowed optim.wd',
        [FE, '--workdir={w}', '--config.optim.wd=0.2'],
        1,
        r'--config\.optim\.wd=0\.2 is not read.*arms\.const\.wd',
    ),
    (
        'shadowed optim.lr_schedule',
        [FE, '--workdir={w}', '--config.optim.lr_schedule=((1, 0.5),)'],
        1,
        r'--config\.optim\.lr_schedule=.* is not read',
    ),
    (
        'negative arm lr',
        [FE, '--workdir={w}', '--config.arms.const.lr=-1.0'],
        1,
        r'config\.arms\.const\.lr = -1\.0: must be > 0',
    ),
    (
        'unknown arm field',
        [FE, '--workdir={w}', '--config.arms.const.momentum=0.9'],
        1,
        r'config\.arms\.const\.momentum: unknown field',
    ),
    (
        'predictions beyond a shortened run',
        [FE, '--workdir={w}', '--config.train.epochs=1.5'],
        1,
        r'config\.train\.predictions_at = \(6, 12, 18, 30\): epoch 6 is beyond '
        r'train\.epochs = 1\.5.*'
        r'change train\.predictions_at too',
    ),
    (
        'eval_every beyond a shortened run',
        [FE, '--workdir={w}', '--config.train.epochs=0.5', '--config.train.predictions_at=()'],
        1,
        r'config\.train\.eval_every = 1\.0: longer than the run.*--config\.train\.eval_every=0\.5',
    ),
    (
        'params_at beyond the run',
        [TINY, '--workdir={w}', '--config.train.params_at=(1, 5)'],
        1,
        r'config\.train\.params_at = \(1, 5\): epoch 5 is beyond train\.epochs = 2',
    ),
    (
        'gn_every beyond the run',
        [TINY, '--workdir={w}', '--config.metrics.gn_every=3.0'],
        1,
        r'config\.metrics\.gn_every = 3\.0: longer than the run',
    ),
]

# Ranges and combinations on the tiny config: (field=value overrides, message regex).
RANGE_CASES = [
    (['optim.lr=-1.0'], r'config\.optim\.lr = -1\.0: must be > 0'),
    (['optim.lr=0.0'], r'config\.optim\.lr = 0\.0: must be > 0'),
    (['optim.wd=-0.1'], r'config\.optim\.wd = -0\.1: must be >= 0'),
    (['optim.momentum=1.0'], r'config\.optim\.momentum = 1\.0: must be in \[0, 1\)'),
    (['optim.lr_schedule=((2, 0.5), (1, 0.5))'], r'config\.optim\.lr_schedule.*out of order'),
    (['optim.wd_schedule=((1, -1.0),)'], r'config\.optim\.wd_schedule.*factor'),
    (['optim.lr_curve=linear'], r"config\.optim\.lr_curve = 'linear': unknown"),
    (['optim.lr_curve_epochs=(0, 1)'], r'config\.optim\.lr_curve_epochs.*constant LR curve'),
    (['data.source=imagenet'], r"config\.data\.source = 'imagenet': unknown"),
    (['model.name=resnet'], r"config\.model\.name = 'resnet': unknown"),
    (['model.norm=instance'], r"config\.model\.norm = 'instance': unknown"),
    (['model.norm=group', 'model.num_groups=3'], r'config\.model\.num_groups = 3: must divide'),
    (['model.widths=()'], r'config\.model\.widths = \(\): must be a non-empty'),
    (['model.norm_eps=0.0'], r'config\.model\.norm_eps = 0\.0: must be > 0'),
    (['model.widen=2.0'], r'config\.model\.widen = 2\.0: only preresnet/vgg'),
    (
        ['model.name=tests.nope:Net'],
        r"config\.model\.name = 'tests\.nope:Net': cannot be imported.*ModuleNotFoundError",
    ),
    (
        ['model.name=tests.foreign_models:Nope'],
        r"config\.model\.name = .*cannot be imported or built \(AttributeError.*'Nope'",
    ),
    (
        ['model.name=tests.foreign_models:PlainMLP'],
        r"config\.model\.widths = \(4, 8\): not read.*model\.name is 'cnn' or 'mlp'",
    ),
    (['metrics.groups=some'], r"config\.metrics\.groups = 'some': unknown"),
    (['train.sampling=stratified'], r"config\.train\.sampling = 'stratified': unknown"),
    (['train.epochs=-1.0'], r'config\.train\.epochs = -1\.0: must be > 0'),
    (['train.eval_every=0.0'], r'config\.train\.eval_every = 0\.0: must be > 0'),
    (['train.batch_size=0'], r'config\.train\.batch_size = 0: must be > 0'),
    (['train.batch_size=1000'], r'config\.train\.batch_size = 1000: larger than the training set'),
    (['trials.num=0'], r'config\.trials\.num = 0: must be > 0'),
    (['trials.vmap_chunk=-2'], r'config\.trials\.vmap_chunk = -2: must be >= 0'),
    (['checkpoint.max_to_keep=0'], r'config\.checkpoint\.max_to_keep = 0: must be > 0'),
    (['optim.svag_l=2'], r'config\.optim\.svag_l = 2: only the svag oracle amplifies'),
    (['optim.oracle=svag', 'optim.momentum=0.9'], r'config\.optim\.momentum = 0\.9: SVAG'),
    (['optim.oracle=ngd'], r"config\.model\.norm = 'batch': the ngd oracle needs"),
    (
        ['optim.oracle=gd', 'model.norm=group', 'model.num_groups=4', 'data.augment=True'],
        r'config\.data\.augment = True: the gd oracle',
    ),
    (['optim.chunk_size=100'], r"config\.optim\.chunk_size = 100: not read by this run.*'ngd'"),
    (['model.num_groups=4'], r"config\.model\.num_groups = 4: not read.*model\.norm = 'group'"),
    (['data.name=cifar10'], r"config\.data\.name = 'cifar10': not read.*data\.source = 'tfds'"),
    (
        ['model.norm=group', 'model.num_groups=4', 'train.eval_bn_batches=2'],
        r"config\.train\.eval_bn_batches = 2: not read.*model\.norm = 'batch'",
    ),
    (['metrics.gn_batches=4'], r'config\.metrics\.gn_batches = 4: not read.*gn_every > 0'),
    (['metrics.gn_every=1.0', 'metrics.gn_batches=1'], r'config\.metrics\.gn_batches = 1: G/N'),
    (['data.synthetic_num_classes=0'], r'config\.data\.synthetic_num_classes = 0: must be > 0'),
    (['logging.progress=sometimes'], r"config\.logging\.progress = 'sometimes': unknown"),
    (
        ['logging.wandb_mode=offline'],
        r"config\.logging\.wandb_mode = 'offline': not read.*logging\.wandb = True",
    ),
    (['logging.wandb=True', 'logging.wandb_mode=cloud'], r"logging\.wandb_mode = 'cloud': unknown"),
]


@pytest.fixture
def tmp_configs(tmp_path):
  _cfg(tmp_path / 'broken.py', 'X = 1\nif X\n  pass\n')
  _cfg(tmp_path / 'raises.py', 'x = 1 / 0\n')
  _cfg(tmp_path / 'empty.py', 'X = 1\n')
  return tmp_path


@pytest.mark.parametrize('case,argv,code,match', CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_config_and_flag_errors(case, argv, code, match, tmp_configs, capsys, monkeypatch):
  del case
  monkeypatch.chdir(ROOT)
  workdir = tmp_configs / 'w'
  argv = [a.format(w=workdir, tmp=tmp_configs) for a in argv]
  assert run_cli(argv) == code
  line = one_line(capsys.readouterr().err)
  assert re.search(match, line), line
  assert not workdir.exists()  # refused before anything was written


@pytest.mark.parametrize('overrides,match', RANGE_CASES, ids=[' '.join(c[0]) for c in RANGE_CASES])
def test_out_of_range_values(overrides, match, tmp_path, capsys, monkeypatch):
  monkeypatch.chdir(ROOT)
  argv = [TINY, f'--workdir={tmp_path / "w"}', *(f'--config.{o}' for o in overrides)]
  assert run_cli(argv) == 1
  line = one_line(capsys.readouterr().err)
  assert re.search(match, line), line
  assert not (tmp_path / 'w').exists()


def test_print_config_shows_the_resolved_arms_and_the_plan(capsys, monkeypatch, tmp_path):
  monkeypatch.chdir(ROOT)
  assert run_cli([FE, '--print_config', '--config.arms.const.lr=0.2']) == 0
  out = json.loads(capsys.readouterr().out)
  assert out['config']['arms']['const']['lr'] == 0.2
  assert out['config']['arms']['lr_decay']['lr_schedule'] == [[6, 0.5], [12, 0.5], [18, 0.1]]
  assert out['config']['optim']['lr'] is None  # read by no arm
  assert out['config']['data']['name'] is None  # the bundled digits: no tfds name is read
  plan = out['plan']
  assert plan['total_steps'] == 30 * 125 and plan['eval_steps'][-1] == 3750
  assert plan['chunks'] == [8] * 24 and plan['trials'] == {
      'const': 64,
      'lr_decay': 64,
      'wd_decay': 64,
  }
  assert not list(tmp_path.iterdir())


# ---- the real command, in a subprocess ----


@pytest.mark.parametrize(
    'args,match',
    [
        ([FE, '--config.optim.lr=-0.1'], r'--config\.optim\.lr=-0\.1 is not read'),
        (['--config=configs/nope.py'], r'configs/nope\.py does not exist'),
        ([TINY, '--config.optim.lrr=1'], r"Did you mean 'optim\.lr'"),
    ],
)
def test_python_dash_m_gives_the_same_one_line(args, match, tmp_path):
  out = subprocess.run(
      [sys.executable, '-m', 'svag_jax.launch.main', *args, f'--workdir={tmp_path / "w"}'],
      cwd=ROOT,
      capture_output=True,
      text=True,
      timeout=120,
  )
  assert out.returncode == 1
  assert re.search(match, one_line(out.stderr))
  assert not (tmp_path / 'w').exists()


def test_verbose_shows_the_traceback(tmp_path):
  out = subprocess.run(
      [
          sys.executable,
          '-m',
          'svag_jax.launch.main',
          '--config=configs/nope.py',
          f'--workdir={tmp_path}',
          '--verbose',
      ],
      cwd=ROOT,
      capture_output=True,
      text=True,
      timeout=120,
  )
  assert out.returncode != 0 and 'Traceback' in out.stderr
