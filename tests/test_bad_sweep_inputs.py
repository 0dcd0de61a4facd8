"""The bad-input table of `launch.sweep`: a bad sweep point or override gives ONE line, exit code
1, and writes nothing; every point is validated before the first one trains (the same checks as
tests/test_bad_inputs.py, through the sweep's entry point, in this process)."""

import pathlib
import re

import pytest

from tests.helpers import one_line, run_cli

ROOT = pathlib.Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures('compile_bound')

SWEEP = """
from svag_jax import sweep
from tests.helpers import tiny_config

def get_config(arg=None):
  return tiny_config(**{{'train.epochs': 1, 'trials.num': 1}})

def get_sweep(arg=None):
  return {points}
"""


def _sweep_file(tmp_path, points: str) -> str:
  path = tmp_path / 'sweep_cfg.py'
  path.write_text(SWEEP.format(points=points))
  return str(path)


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
