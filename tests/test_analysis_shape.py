"""Every module of analysis/ has the one shape that analysis/common.py describes: it reads the run
record through `svag_jax.record` (never the writer `svag_jax.workdir`) and imports no training
code, draws without pyplot, and its `main` is `common.figure_parser` + `common.run_figure`."""

import ast
import importlib
import json
import pathlib
import subprocess
import sys

import pytest

from svag_jax.analysis import __main__ as analysis_main

ROOT = pathlib.Path(__file__).resolve().parents[1]
ANALYSIS = ROOT / 'analysis'
MODULES = sorted(p.stem for p in ANALYSIS.glob('*.py') if p.stem != '__init__')

# What of svag_jax an analysis may import: the record's reader and the estimators and closed forms
# that read it (tv, theory; chaos: the toy's measurements, which read its trajectories).
READERS = {'svag_jax.record', 'svag_jax.tv', 'svag_jax.theory', 'svag_jax.chaos'}
# The one exception: the SWA panel of weight_distance evaluates averaged weights, i.e. runs the
# run's network forward on its data (svag_jax.evaluate, svag_jax.data; no optimizer step).
EVALUATES = {'weight_distance': {'svag_jax.evaluate', 'svag_jax.data'}}


def _tree(module: str) -> ast.Module:
  return ast.parse((ANALYSIS / f'{module}.py').read_text())


def _imports(tree: ast.Module) -> set[str]:
  """Every module an import statement names (`from a import b` names a and a.b)."""
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names |= {a.name for a in node.names}
    elif isinstance(node, ast.ImportFrom) and node.module:
      names.add(node.module)
      names |= {f'{node.module}.{a.name}' for a in node.names}
  return names


def _svag_jax_modules(names: set[str]) -> set[str]:
  """The svag_jax modules among `names` (`svag_jax.x.y` -> `svag_jax.x`), analysis/ left out."""
  found = set()
  for name in names:
    parts = name.split('.')
    if parts[0] == 'svag_jax' and len(parts) > 1 and parts[1] != 'analysis':
      found.add('.'.join(parts[:2]))
  return found - {'svag_jax.__version__'}


def _calls(function: ast.FunctionDef) -> set[str]:
  """'a.b' for every call a.b(...) in `function`."""
  return {
      f'{n.func.value.id}.{n.func.attr}'
      for n in ast.walk(function)
      if isinstance(n, ast.Call)
      and isinstance(n.func, ast.Attribute)
      and isinstance(n.func.value, ast.Name)
  }


@pytest.mark.parametrize('module', MODULES)
def test_reads_through_the_record_and_imports_no_training_code(module):
  used = _svag_jax_modules(_imports(_tree(module)))
  assert 'svag_jax.workdir' not in used, f'{module}: read the record through svag_jax.record'
  assert used <= READERS | EVALUATES.get(module, set()), f'{module} imports {used - READERS}'


@pytest.mark.parametrize('module', MODULES)
def test_draws_on_its_own_figure_and_parses_through_common(module):
  names = _imports(_tree(module))
  assert not {'matplotlib.pyplot', 'pylab'} & names, f'{module}: draw into common.new_axes'
  assert 'matplotlib.use' not in (ANALYSIS / f'{module}.py').read_text()
  if module != 'common':
    assert 'argparse' not in names, f'{module}: take the parser of common.figure_parser'


@pytest.mark.parametrize('module', MODULES)
def test_every_analysis_main_is_figure_parser_plus_run_figure(module):
  tree = _tree(module)
  functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
  if module in analysis_main.names():
    calls = _calls(functions['main'])
    assert {'common.figure_parser', 'common.run_figure'} <= calls, f'{module}.main: {calls}'
    assert "if __name__ == '__main__':\n    sys.exit(main())" in ast.unparse(tree)
  elif module != '__main__':
    assert 'main' not in functions, f'{module} is a library of the analyses, not one'


def test_no_file_of_analysis_is_over_400_lines():
  long = {p.name: n for p in ANALYSIS.glob('*.py') if (n := len(p.read_text().splitlines())) > 400}
  assert not long, long


def test_importing_the_analyses_loads_no_training_code():
  """Transitively too, for every analysis but the two whose own imports reach further (toy_chaos
  through svag_jax.chaos, weight_distance through the exception above)."""
  modules = [m for m in MODULES if m not in {'toy_chaos', 'weight_distance'}]
  code = (
      'import importlib, json, sys\n'
      f'for m in {modules!r}:\n'
      '  importlib.import_module(f"svag_jax.analysis.{m}")\n'
      'print(json.dumps(sorted(m for m in sys.modules if m.startswith("svag_jax.") '
      'and not m.startswith("svag_jax.analysis"))))'
  )
  out = subprocess.run(
      [sys.executable, '-c', code], check=True, capture_output=True, text=True, cwd=ROOT
  ).stdout
  assert set(json.loads(out)) <= {'svag_jax.record', 'svag_jax.tv', 'svag_jax.theory'}


@pytest.mark.parametrize('name', analysis_main.names())
def test_an_analysis_of_a_missing_or_empty_workdir_leaves_no_figures_folder(name, tmp_path, capsys):
  """Exit code 2 with the reason, and nothing written: figures/ is made only to save a figure."""
  module = importlib.import_module(f'svag_jax.analysis.{name}')
  empty = tmp_path / 'empty'
  empty.mkdir()
  for source in (tmp_path / 'missing', empty):
    assert module.main([str(source)]) == 2
    assert capsys.readouterr().err.startswith(f'analysis.{name}: ')
  assert sorted(p.name for p in tmp_path.rglob('*')) == ['empty']
