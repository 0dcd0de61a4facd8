"""The examples of the public pieces for a researcher's own loop run as written: the docstring
examples (doctest) of the group finder, the NNX adapter, SVAG's time change as optax schedules,
SVAG's BatchNorm rule and the G/N estimators; every python block of docs/byom.md, in order; and the
README's model of your own validates with the config it names."""

import doctest
import importlib
import pathlib
import re

import numpy as np
import optax
import pytest

from svag_jax import schedules
from svag_jax.schedules import SvagTime
from tests.helpers import run_cli

ROOT = pathlib.Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures('compile_bound')
MODULES = (
    'svag_jax.invariance',
    'svag_jax.models.external',
    'svag_jax.schedules',
    'svag_jax.oracles',
    'svag_jax.metrics',
)


@pytest.mark.parametrize('name', MODULES)
def test_docstring_examples(name):
  result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
  assert result.attempted > 0 and result.failed == 0, result


def _blocks(path: pathlib.Path, language: str) -> list[str]:
  return re.findall(rf'```{language}\n(.*?)```', path.read_text(), flags=re.S)


def test_the_python_blocks_of_docs_byom_run():
  namespace = {'__name__': 'docs_byom'}
  blocks = _blocks(ROOT / 'docs' / 'byom.md', 'python')
  assert len(blocks) == 3
  for block in blocks:
    exec(compile(block, 'docs/byom.md', 'exec'), namespace)  # noqa: S102 (the page's own code)


def test_svag_time_schedules_are_the_runs_arrays():
  """SvagTime.lr_schedule of an SGD schedule takes the values of the arrays a SVAG run builds
  (`schedules.from_epochs` with l x the steps per epoch, values / l) at every step."""
  l, spe = 4, 10
  sgd = optax.piecewise_constant_schedule(0.4, {int(1.5 * spe): 0.5, 3 * spe: 0.1})
  arrays = schedules.from_epochs(0.4 / l, ((1.5, 0.5), (3, 0.1)), spe * l)
  lr = SvagTime(l).lr_schedule(sgd)
  steps = np.arange(5 * spe * l)
  got = np.array([float(lr(k)) for k in steps])
  want = np.array([float(schedules.value_at(arrays, k)) for k in steps])
  np.testing.assert_allclose(got, want, rtol=2**-23)  # one rounding of / l apart


def test_the_readme_model_of_your_own_validates(tmp_path, capsys, monkeypatch):
  readme = (ROOT / 'README.md').read_text()
  model = tmp_path / 'my_model.py'
  model.write_text(_blocks(ROOT / 'README.md', 'python')[0])
  (command,) = [line for line in readme.splitlines() if line.startswith('svag-sweep --config=byom')]
  assert 'my_model.py:Net' in command
  monkeypatch.chdir(tmp_path)
  argv = ['--config=byom:cpu', f'--config.model.name={model}:Net', '--print_config']
  assert run_cli(argv) == 0
  assert '"groups": "found at start"' in capsys.readouterr().out
  # the README's sweep command: both points (SGD, SVAG) validate on the model
  argv = [*argv[:2], f'--workdir={tmp_path / "runs"}', '--print']
  assert run_cli(argv, entry='sweep') == 0
  assert capsys.readouterr().out.count(f'--config.model.name={model}:Net') == 2
