"""The built wheel, installed outside the checkout, is a working tool on its own.

One test (the acceptance of the packaging): build the wheel, install it into a new venv in a
temporary folder, check that it adds no top-level name but `svag_jax`, import every config by its
installed name, train a CPU config named `fast_equilibrium:cpu` (shortened) from a folder outside
the checkout, draw its analysis, and execute the Colab notebooks headless on tiny workdirs (the
bring-your-own-model one finds the groups of the ResNet it writes, and draws a tiny sweep's).

The new venv gets the wheel alone; the dependencies (jax, flax, nbclient, ...) come from the dev
venv through a .pth line, which adds that folder to sys.path without running its .pth files, so the
dev venv's editable svag_jax stays out of sight (asserted: svag_jax is imported from the new venv).
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import nbformat
import pytest

from tests import test_equilibrium, test_sweep
from tests.helpers import most_optimizations_disabled

ROOT = pathlib.Path(__file__).parents[1]
NOTEBOOKS = ('intrinsic_lr_2020', 'sde_2021', 'byom')


def _run(argv, **kwargs) -> subprocess.CompletedProcess:
  out = subprocess.run(argv, capture_output=True, text=True, **kwargs)
  assert out.returncode == 0, f'{argv} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}'
  return out


@pytest.fixture(scope='module')
def installed(tmp_path_factory) -> dict:
  """{'python': the new venv's python, 'site': its site-packages, 'wheel': the wheel file}."""
  tmp = tmp_path_factory.mktemp('wheel')
  _run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-build-isolation', '--no-deps',
        '-w', str(tmp / 'dist'), str(ROOT)])  # fmt: skip
  (wheel,) = (tmp / 'dist').glob('svag_jax-*.whl')
  venv = tmp / 'venv'
  _run([sys.executable, '-m', 'venv', '--without-pip', str(venv)])
  python = venv / 'bin' / 'python'
  site = pathlib.Path(
      _run(
          [str(python), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])']
      ).stdout.strip()
  )
  (site / 'svag_jax_test_dependencies.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
  _run([sys.executable, '-m', 'pip', '--python', str(python), 'install', '-q', '--no-deps',
        '--no-index', str(wheel)])  # fmt: skip
  return {'python': python, 'site': site, 'wheel': wheel}


def _tiny_workdirs(runs: pathlib.Path) -> None:
  """The workdirs the notebooks read, made here (fast, in this process): synthetic equilibrium
  and mixing-time records, a short toy run and a 2-point sweep with per-group columns (read as
  all three 2021 sweeps and as the bring-your-own-model sweep)."""
  from svag_jax.configs import toy_chaos  # noqa: PLC0415
  from svag_jax.launch import sweep as sweep_cli  # noqa: PLC0415
  from svag_jax.launch import toy as toy_cli  # noqa: PLC0415

  test_equilibrium.write_rows(runs / 'stationary_lr_cpu', test_equilibrium.stationary_rows())
  test_equilibrium.write_rows(runs / 'mixing_time_cpu', test_equilibrium.mixing_rows())
  for name in ('stationary_lr_cpu', 'mixing_time_cpu'):
    (runs / name / 'status.json').write_text(json.dumps({'status': 'done', 'step': 7000}))
  toy = toy_chaos.get_config('cpu')
  toy.steps, toy.num_pairs, toy.gf_substeps = 800, 4, 5
  assert toy_cli.run(toy, str(runs / 'toy_chaos_cpu'))['status'] == 'done'
  config = runs.parent / 'tiny_sweep.py'
  config.write_text(test_sweep.TINY_SWEEP)
  with most_optimizations_disabled():
    argv = [
        '--config',
        str(config),
        '--workdir',
        str(runs / 'sweep'),
        '--config.metrics.groups=auto',
    ]
    assert sweep_cli.main(argv) == 0
  for name in ('svag_convergence_cpu', 'lsr_cpu', 'ngd_cpu', 'byom_cpu'):
    shutil.copytree(runs / 'sweep', runs / name)


# Executes notebooks with the parameters TRAIN = False, RUNS = argv[1] set as papermill's
# `-p TRAIN False -p RUNS DIR` sets them: in a cell inserted after the cell tagged 'parameters'.
EXECUTE = """
import sys, nbclient, nbformat
for src, dst in zip(sys.argv[2::2], sys.argv[3::2]):
  nb = nbformat.read(src, as_version=4)
  (i,) = [i for i, c in enumerate(nb.cells) if 'parameters' in c.metadata.get('tags', [])]
  injected = nbformat.v4.new_code_cell(f'TRAIN = False\\nRUNS = {sys.argv[1]!r}')
  injected.metadata['tags'] = ['injected-parameters']
  nb.cells.insert(i + 1, injected)
  nbclient.NotebookClient(nb, kernel_name='python3', timeout=300).execute()
  nbformat.write(nb, dst)
"""


def test_wheel_installs_only_svag_jax_and_works_outside_the_checkout(installed, tmp_path):
  with zipfile.ZipFile(installed['wheel']) as whl:
    (top,) = [n for n in whl.namelist() if n.endswith('.dist-info/top_level.txt')]
    assert whl.read(top).decode().split() == ['svag_jax']
    names = whl.namelist()
  assert not [n for n in names if not n.startswith(('svag_jax/', 'svag_jax-'))]
  for notebook in NOTEBOOKS:
    assert f'svag_jax/analysis/notebooks/{notebook}.ipynb' in names

  outside = tmp_path / 'work'  # a folder with no checkout above it
  outside.mkdir()
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  env['JAX_PLATFORMS'] = 'cpu'
  py = str(installed['python'])

  # every config module by its installed name; each builds its default config
  check = (
      'import pkgutil, importlib, json, svag_jax, svag_jax.configs as c\n'
      'names = [m.name for m in pkgutil.iter_modules(c.__path__)]\n'
      'files = [importlib.import_module(f"svag_jax.configs.{n}").__file__ for n in names]\n'
      'for n in names:\n'
      '  m = importlib.import_module(f"svag_jax.configs.{n}")\n'
      '  hasattr(m, "get_config") and m.get_config()\n'
      'print(json.dumps({"names": names, "files": files, "package": svag_jax.__file__}))'
  )
  found = json.loads(_run([py, '-c', check], cwd=outside, env=env).stdout)
  site = str(installed['site'])
  assert found['package'].startswith(site) and all(f.startswith(site) for f in found['files'])
  assert {'base', 'fast_equilibrium', 'lsr', 'svag_convergence', 'ngd'} <= set(found['names'])

  # a named CPU config trains (shortened), and its analysis draws its figures
  runs = outside / 'runs'
  fe = runs / 'fast_equilibrium_cpu'
  train = [
      py, '-m', 'svag_jax.launch.main', '--config=fast_equilibrium:cpu', f'--workdir={fe}',
      '--config.trials.num=2', '--config.train.epochs=1', '--config.train.eval_every=0.5',
      '--config.train.predictions_at=(0.5,1.0)',
  ]  # fmt: skip
  _run(train, cwd=outside, env={**env, 'JAX_DISABLE_MOST_OPTIMIZATIONS': '1'})
  assert json.loads((fe / 'status.json').read_text())['status'] == 'done'
  out = _run([py, '-m', 'svag_jax.analysis', 'fast_equilibrium', str(fe)], cwd=outside, env=env)
  assert 'TV(' in out.stdout
  for name in ('errors', 'norms', 'tv'):
    assert (fe / 'figures' / f'{name}.png').stat().st_size > 0

  # the notebooks, from the installed package, headless, on tiny workdirs (no training), with
  # papermill's parameters (from a folder without runs/: the defaults would train)
  _tiny_workdirs(runs)
  argv = [py, '-c', EXECUTE, str(runs)]
  for notebook in NOTEBOOKS:
    argv += [
        f'{site}/svag_jax/analysis/notebooks/{notebook}.ipynb',
        str(outside / f'{notebook}.ipynb'),
    ]
  (outside / 'elsewhere').mkdir()
  _run(argv, cwd=outside / 'elsewhere', env=env)
  for notebook, figures in (('intrinsic_lr_2020', 6), ('sde_2021', 3), ('byom', 1)):
    nb = nbformat.read(outside / f'{notebook}.ipynb', as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == 'code' for o in c.outputs]
    assert not [o for o in outputs if o.output_type == 'error']
    printed = ''.join(o.get('text', '') for o in outputs)
    assert f'from {site}/svag_jax' in printed  # the installed package, not a checkout
    assert 'skipped' not in printed and 'training' not in printed
    images = [o for o in outputs if 'image/png' in o.get('data', {})]
    assert len(images) >= figures, (notebook, len(images))
    if notebook == 'sde_2021':
      assert 'B* =' in printed  # the baseline's LSR prediction
    if notebook == 'byom':  # the notebook's ResNet: each conv kernel, BatchNorm pairs, one joint
      assert '9 scale-invariant group(s)' in printed and '_and_3_more = ' in printed


def test_notebooks_are_stored_valid_and_without_outputs():
  runtimes = set()
  for notebook in NOTEBOOKS:
    nb = nbformat.read(ROOT / 'analysis' / 'notebooks' / f'{notebook}.ipynb', as_version=4)
    nbformat.validate(nb)
    assert not any(c.outputs for c in nb.cells if c.cell_type == 'code')
    source = ''.join(c.source for c in nb.cells)
    assert 'OWNER' not in source and "PACKAGE = ''" in source
    # papermill's parameters: the first code cell, tagged, sets PACKAGE, RUNS and TRAIN
    first = next(c for c in nb.cells if c.cell_type == 'code')
    assert first.metadata.get('tags') == ['parameters']
    assert all(f'\n{name} = ' in first.source for name in ('PACKAGE', 'RUNS', 'TRAIN'))
    for cell in nb.cells:
      if cell.cell_type == 'markdown':
        runtimes.update(re.findall(r'about ([\d.–]+ (?:min|s))\b', cell.source))
  # the runtimes the notebooks quote are the README's
  readme = (ROOT / 'README.md').read_text()
  listed = re.search(r"runtime in the section's text \(([^)]*)\)", ' '.join(readme.split()))
  assert listed, "the README lists the notebooks' runtimes"
  assert runtimes == set(re.findall(r'([\d.–]+ (?:min|s))', listed.group(1)))
