"""The Colab notebook analysis/notebooks/fast_equilibrium.ipynb runs headless on a tiny workdir."""

import pathlib

import nbclient
import nbformat
import pytest

from tests.helpers import make_tiny_workdir

ROOT = pathlib.Path(__file__).parents[1]
NOTEBOOK = ROOT / 'analysis' / 'notebooks' / 'fast_equilibrium.ipynb'


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory) -> pathlib.Path:
  return make_tiny_workdir(tmp_path_factory.mktemp('notebook') / 'run')


def test_notebook_is_valid_and_stored_without_outputs():
  nb = nbformat.read(NOTEBOOK, as_version=4)
  nbformat.validate(nb)
  assert not any(c.outputs for c in nb.cells if c.cell_type == 'code')


def test_notebook_runs_headless(run_dir, monkeypatch):
  monkeypatch.setenv('SVAG_WORKDIR', str(run_dir))
  nb = nbformat.read(NOTEBOOK, as_version=4)
  client = nbclient.NotebookClient(
      nb,
      kernel_name='python3',
      timeout=120,
      resources={'metadata': {'path': str(ROOT / 'analysis' / 'notebooks')}},
  )
  client.execute()  # raises CellExecutionError (with the cell and traceback) on any error
  outputs = [out for c in nb.cells if c.cell_type == 'code' for out in c.outputs]
  assert not [out for out in outputs if out.output_type == 'error']
  printed = ''.join(out.get('text', '') for out in outputs)
  assert f'repository root: {ROOT}' in printed  # the checkout was found: nothing installed
  assert 'Const: final test error' in printed and 'TV(Const, LR-decay)' in printed
  for name in ('errors', 'norms', 'tv'):  # make_figures printed the paths it wrote
    assert str(run_dir / 'figures' / f'{name}.png') in printed
  images = [out for out in outputs if 'image/png' in out.get('data', {})]
  assert len(images) == 3  # the inline errors, norms and TV figures
  for name in ('errors', 'norms', 'tv'):
    for fmt in ('png', 'pdf'):
      assert (run_dir / 'figures' / f'{name}.{fmt}').stat().st_size > 0
