"""The bad-input table: every bad input or fault gives ONE line, the right exit code, and loses
nothing already written.

Each case runs the real command-line entry point (`launch.main` / `launch.sweep`: their flag parser
and error handling) in this process, on a finished tiny run where the case needs one, and checks:
the exit code, that stderr is one `svag_jax: <Kind>: ...` line naming the field or file, that no
traceback was printed, and that the earlier record is intact (bitwise). A few cases run the
command in a subprocess to check the same through `python -m`.
"""

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
from absl import flags

from launch import cli
from launch import main as launch_main
from launch import sweep as launch_sweep
from svag_jax import workdir as workdir_lib

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = '--config=tests/tiny_config.py'
FE = '--config=configs/fast_equilibrium.py:cpu'
SHORT = [
    '--config.train.epochs=1',
    '--config.trials.num=1',
    '--config.train.eval_every=0.5',
    '--config.checkpoint.every=0.5',
]  # 8 steps; evals and checkpoints at 4 and 8

pytestmark = pytest.mark.usefixtures('compile_bound')


def run_cli(argv: list[str], entry: str = 'main') -> int:
  """Runs `launch.<entry>` with `argv` in this process; returns its exit code."""
  flags.FLAGS.unparse_flags()
  saved = sys.argv
  sys.argv = [f'launch.{entry}', *argv]
  try:
    if entry == 'sweep':
      return launch_sweep.main(argv)
    launch_main.main(cli.parse_flags(sys.argv))
  except SystemExit as e:
    return 0 if e.code is None else (e.code if isinstance(e.code, int) else 1)
  finally:
    sys.argv = saved
    flags.FLAGS.unparse_flags()
  return 0


def one_line(err: str) -> str:
  """The svag_jax line of stderr, checking there is exactly one and no traceback."""
  assert 'Traceback' not in err, err
  lines = [line for line in err.splitlines() if line.startswith('svag_jax: ')]
  assert len(lines) == 1, err
  return lines[0]


def snapshot(workdir: pathlib.Path) -> dict[str, bytes]:
  """The bytes of every file of a run record except the checkpoints and the attempts log (which
  gains a row per command)."""
  return {
      str(p.relative_to(workdir)): p.read_bytes()
      for p in sorted(workdir.rglob('*'))
      if p.is_file() and 'checkpoints' not in p.parts and p.name != 'attempts.jsonl'
  }


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
  """A finished tiny run (1 epoch, 1 trial): its workdir."""
  workdir = tmp_path_factory.mktemp('finished') / 'run'
  cwd = os.getcwd()
  os.chdir(ROOT)
  try:
    assert run_cli([TINY, f'--workdir={workdir}', *SHORT]) == 0
  finally:
    os.chdir(cwd)
  return workdir


# (id, arguments, expected exit code, regex the one-line message must match). {w} is a fresh
# workdir, {f} the finished run's workdir.
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
        r'config\.train\.predictions_at = \(18, 30\): epoch 18 is beyond train\.epochs = 1\.5.*'
        r'change train\.predictions_at too',
    ),
    (
        'eval_every beyond a shortened run',
        [FE, '--workdir={w}', '--config.train.epochs=1', '--config.train.predictions_at=()'],
        1,
        r'config\.train\.eval_every = 1\.5: longer than the run.*--config\.train\.eval_every=1',
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


def test_a_changed_config_on_a_finished_run_is_refused_and_the_record_kept(
    finished, capsys, monkeypatch
):
  monkeypatch.chdir(ROOT)
  before = snapshot(finished)
  argv = [TINY, f'--workdir={finished}', *SHORT, '--config.train.batch_size=16']
  assert run_cli(argv) == 1
  line = one_line(capsys.readouterr().err)
  assert 'WorkdirError' in line and 'train.batch_size: 32 -> 16' in line
  assert snapshot(finished) == before


def test_a_shorter_run_on_a_finished_run_is_refused_and_the_record_kept(
    finished, capsys, monkeypatch
):
  monkeypatch.chdir(ROOT)
  before = snapshot(finished)
  argv = [TINY, f'--workdir={finished}', *SHORT, '--config.train.epochs=0.5']
  assert run_cli(argv) == 1
  line = one_line(capsys.readouterr().err)
  assert 'config.train.epochs = 0.5' in line and 'raise train.epochs' in line
  assert snapshot(finished) == before


def test_a_workdir_that_is_a_file(tmp_path, capsys, monkeypatch):
  monkeypatch.chdir(ROOT)
  (tmp_path / 'file').write_text('not a directory')
  assert run_cli([TINY, f'--workdir={tmp_path / "file"}', *SHORT]) == 1
  line = one_line(capsys.readouterr().err)
  assert str(tmp_path / 'file') in line and 'choose another --workdir' in line
  assert (tmp_path / 'file').read_text() == 'not a directory'


def test_a_workdir_that_cannot_be_created(capsys, monkeypatch):
  target = pathlib.Path('/sys/svag_jax_test/run')  # sysfs: not writable, even for root
  if os.access('/sys', os.W_OK) and not target.parent.exists():
    try:
      target.parent.mkdir()
    except OSError:
      pass
    else:
      target.parent.rmdir()
      pytest.skip('/sys is writable here')
  monkeypatch.chdir(ROOT)
  assert run_cli([TINY, f'--workdir={target}', *SHORT]) == 1
  line = one_line(capsys.readouterr().err)
  assert '/sys/svag_jax_test' in line and 'not writable' in line


def test_a_full_disk(tmp_path, capsys, monkeypatch):
  """config.json is written through a temporary file: make that file /dev/full (ENOSPC)."""
  if not os.path.exists('/dev/full'):
    pytest.skip('no /dev/full')
  monkeypatch.chdir(ROOT)
  workdir = tmp_path / 'w'
  workdir.mkdir()
  (workdir / 'config.json.tmp').symlink_to('/dev/full')
  assert run_cli([TINY, f'--workdir={workdir}', *SHORT]) == 1
  line = one_line(capsys.readouterr().err)
  assert 'No space left on device' in line and 'the disk is full' in line


def test_a_nan_producing_lr_ends_diverged_with_its_own_exit_code(tmp_path, capsys, monkeypatch):
  monkeypatch.chdir(ROOT)
  assert run_cli([TINY, f'--workdir={tmp_path}', *SHORT, '--config.optim.lr=1e38']) == 3
  line = one_line(capsys.readouterr().err)
  assert line.startswith('svag_jax: diverged:') and 'optim.lr' in line
  assert json.loads((tmp_path / 'status.json').read_text())['status'] == 'diverged'


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


# ---- sweeps ----

SWEEP = """
from svag_jax import sweep
from tests.helpers import tiny_config

def get_config(arg=None):
  return tiny_config(**{{'train.epochs': 1, 'trials.num': 1}})

def get_sweep(arg=None):
  return {points}
"""


def _sweep_file(tmp_path, points: str) -> str:
  return _cfg(tmp_path / 'sweep_cfg.py', SWEEP.format(points=points))


@pytest.mark.parametrize(
    'points,extra,match',
    [
        (
            "[{'optim.lr': 0.1}, {'optim.lr': -1.0}]",
            [],
            r"sweep point 'lr=-1\.0': config\.optim\.lr = -1\.0: must be > 0",
        ),
        ("[{'optim.lr': 0.1}, {'optim.lrr': 0.2}]", [], r'config\.optim\.lrr: unknown field'),
        (
            "[{'optim.lr': 0.1}]",
            ['--config.optim.lr=0.2'],
            r"--config\.optim\.lr is also set by sweep point 'lr=0\.1'",
        ),
        (
            "[{'optim.lr': 0.1}]",
            ['--config.optim.chunk_size=100'],
            r"sweep point 'lr=0\.1': config\.optim\.chunk_size = 100: not read",
        ),
        (
            "[{'optim.lr': 0.1}]",
            ['--config.optim.chunk_size=500'],
            r'--config\.optim\.chunk_size is read by no point',
        ),
        ("[{'optim.lr': 0.1}]", ['--config.optim.momentm=0.9'], r"Did you mean 'optim\.momentum'"),
    ],
    ids=[
        'bad point',
        'unknown key in a point',
        'override set by a point',
        'unread override',
        'unread override at its default',
        'unknown override',
    ],
)
def test_sweep_validates_every_point_before_training(
    points, extra, match, tmp_path, capsys, monkeypatch
):
  monkeypatch.chdir(ROOT)
  spec = _sweep_file(tmp_path, points)
  code = run_cli([f'--config={spec}', f'--workdir={tmp_path / "root"}', *extra], entry='sweep')
  assert code == 1
  line = one_line(capsys.readouterr().err)
  assert re.search(match, line), line
  assert not (tmp_path / 'root').exists()  # nothing trained, nothing written


def test_sweep_takes_overrides_for_every_point(tmp_path, capsys, monkeypatch):
  monkeypatch.chdir(ROOT)
  spec = _sweep_file(tmp_path, "[{'optim.lr': 0.05}, {'optim.lr': 0.1}]")
  argv = [f'--config={spec}', f'--workdir={tmp_path / "root"}', '--config.optim.wd=0.05', '--print']
  assert run_cli(argv, entry='sweep') == 0
  out = capsys.readouterr().out.splitlines()
  assert len(out) == 2 and all('--config.optim.wd=0.05' in line for line in out)
  assert '--config.optim.lr=0.05' in out[0] and '--config.optim.lr=0.1' in out[1]


def test_sweep_missing_config_file(tmp_path, capsys, monkeypatch):
  monkeypatch.chdir(ROOT)
  assert run_cli(['--config=configs/nope.py', f'--workdir={tmp_path}'], entry='sweep') == 1
  assert 'configs/nope.py does not exist' in one_line(capsys.readouterr().err)


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
      [sys.executable, '-m', 'launch.main', *args, f'--workdir={tmp_path / "w"}'],
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
          'launch.main',
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


# ---- faults mid-run, through `python -m launch.main` (the same program for every run) ----

LONG = [
    '--config.train.epochs=150',
    '--config.train.steps_per_dispatch=1',
    '--config.train.eval_every=50',
]  # 1,200 steps, an eval + checkpoint every 400


def _launch(workdir, **kwargs):
  cmd = [sys.executable, '-m', 'launch.main', TINY, f'--workdir={workdir}', *LONG]
  return cmd, kwargs


@pytest.fixture(scope='module')
def long_reference(tmp_path_factory):
  """The metric rows of the LONG run, uninterrupted."""
  workdir = tmp_path_factory.mktemp('long') / 'ref'
  cmd, _ = _launch(workdir)
  out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  return workdir_lib.read_metrics(workdir)


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGKILL], ids=['SIGTERM', 'SIGKILL'])
def test_killed_mid_run_then_resumed_gives_the_uninterrupted_numbers(sig, tmp_path, long_reference):
  """SIGTERM checkpoints and exits 75 (preempted); SIGKILL (no chance to clean up, maybe mid-write)
  once the first evaluation is on disk. Rerunning the command resumes to the same rows, bitwise."""
  workdir = tmp_path / 'a'
  cmd, _ = _launch(workdir)
  proc = subprocess.Popen(
      cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
  )
  status, metrics = workdir / 'status.json', workdir / 'metrics.jsonl'
  deadline = time.time() + 180
  while time.time() < deadline and proc.poll() is None:
    running = status.exists() and json.loads(status.read_text() or '{}').get('status') == 'running'
    if running and (sig == signal.SIGTERM or (metrics.exists() and metrics.stat().st_size)):
      break
    time.sleep(0.05)
  time.sleep(0.5)
  proc.send_signal(sig)
  out, _ = proc.communicate(timeout=120)
  if sig == signal.SIGTERM:
    assert proc.returncode == 75, out  # EX_TEMPFAIL: rerun the same command to resume
    assert one_line(out).startswith('svag_jax: preempted:')
    assert workdir_lib.read_status(workdir)['status'] == 'preempted'
  else:
    assert proc.returncode == -signal.SIGKILL, out
  resumed = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert 'Traceback' not in resumed.stderr
  assert workdir_lib.read_status(workdir)['status'] == 'done'
  assert workdir_lib.read_metrics(workdir) == long_reference


def test_a_truncated_metrics_line_is_repaired_on_resume(finished, tmp_path, capsys, monkeypatch):
  """What a crash mid-append leaves: the rerun keeps the dropped bytes aside, warns with the line
  number, and ends with the rows of the uninterrupted run."""
  monkeypatch.chdir(ROOT)
  copy = tmp_path / 'run'
  shutil.copytree(finished, copy)
  text = (copy / 'metrics.jsonl').read_text()
  (copy / 'metrics.jsonl').write_text(text[:-25])  # the last row loses its end
  assert run_cli([TINY, f'--workdir={copy}', *SHORT]) == 0
  assert (copy / 'metrics.jsonl').read_text() == text
  assert list(copy.glob('metrics.jsonl.partial-*'))
  assert 'Traceback' not in capsys.readouterr().err


def test_an_empty_newest_checkpoint_is_set_aside_on_resume(finished, tmp_path, monkeypatch):
  monkeypatch.chdir(ROOT)
  copy = tmp_path / 'run'
  shutil.copytree(finished, copy)
  newest = max((copy / 'checkpoints').iterdir(), key=lambda p: int(p.name))
  shutil.rmtree(newest)
  newest.mkdir()
  metrics = (copy / 'metrics.jsonl').read_bytes()
  assert run_cli([TINY, f'--workdir={copy}', *SHORT]) == 0
  assert (copy / 'corrupt_checkpoints' / newest.name).is_dir()  # kept aside, not deleted
  assert (copy / 'metrics.jsonl').read_bytes() == metrics
