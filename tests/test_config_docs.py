"""Config docstrings stay short and true: each gives commands that name a real module, config and
config argument, says what to expect, and links its section of docs/experiments.md (the lab notebook
with the history and every measured number), which exists. No JAX work: the configs are only
imported."""

import ast
import pathlib
import re

import pytest

from svag_jax.launch import specs

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTES = ROOT / 'docs' / 'experiments.md'
CONFIGS = sorted(
    p.stem for p in (ROOT / 'configs').glob('*.py') if p.name not in ('__init__.py', 'base.py')
)
MAX_LINES = 30  # command, runtime, expected result, the paper's caption: the rest goes to NOTES
# pyproject's [tool.setuptools.package-dir]: the installed package of each top-level folder
PACKAGE_DIRS = {
    'svag_jax.configs': 'configs',
    'svag_jax.launch': 'launch',
    'svag_jax.analysis': 'analysis',
}
TRAINERS = ('svag_jax.launch.main', 'svag_jax.launch.sweep', 'svag_jax.launch.toy')


def _docstring(name):
  return ast.get_docstring(ast.parse((ROOT / 'configs' / f'{name}.py').read_text()), clean=False)


def _module_file(module):
  """The source file of `python -m MODULE`, from the folder layout (nothing imported)."""
  package, _, leaf = module.rpartition('.')
  folder = PACKAGE_DIRS.get(package, package.replace('.', '/'))
  return ROOT / folder / f'{leaf}.py'


def _sections():
  return re.findall(r'^## (\w+)$', NOTES.read_text(), re.M)


@pytest.mark.parametrize('name', CONFIGS)
def test_docstring_is_short_and_links_its_notes(name):
  doc = _docstring(name)
  assert doc, f'configs/{name}.py needs a module docstring'
  lines = len(doc.strip('\n').splitlines())
  assert lines <= MAX_LINES, f'{name}: {lines} docstring lines; move history to {NOTES.name}'
  assert f'docs/experiments.md#{name}' in doc, f'{name}: link its section of docs/experiments.md'
  assert name in _sections(), f'docs/experiments.md has no "## {name}" section'
  assert 'Expected' in doc, f'{name}: say what result to expect'


@pytest.mark.parametrize('name', CONFIGS)
def test_docstring_commands_name_real_modules_configs_and_arguments(name):
  doc = _docstring(name)
  module = specs.load_module(str(ROOT / 'configs' / f'{name}.py'))
  commands = re.findall(r'python -m (svag_jax[\w.]*)(.*)', doc)
  trainers = [(m, rest) for m, rest in commands if m in TRAINERS]
  assert trainers, f'{name}: give the command that trains it'
  for m, _ in commands:
    assert _module_file(m).is_file(), f'{name}: `python -m {m}` has no module'
  for m, rest in trainers:
    spec = re.search(r'--config=(\S+)', rest)
    assert spec, f'{name}: `python -m {m}` without --config'
    config, _, arg = spec.group(1).partition(':')
    assert config == name, f'{name}: its command runs --config={config}'
    if arg and not arg.isupper():  # VARIANT-style placeholders are listed in the text
      assert arg in module.ARGS, f'{name}: unknown config argument {arg!r}'
    if hasattr(module, 'get_sweep'):
      assert m == 'svag_jax.launch.sweep', f'{name} is a sweep: run it with launch.sweep'


def test_every_notes_section_is_a_config():
  assert sorted(_sections()) == CONFIGS
