"""The import rules of the layout (README, "How it is built"), read from the source with `ast`.

- No import cycle among the modules of svag_jax/ (an import inside a function counts too: it hides
  a cycle from import time, not from the design).
- The library is imported, it imports nothing above it: svag_jax/ never imports configs/, launch/
  or analysis/ (installed as svag_jax.configs, .launch, .analysis). launch/ never imports
  analysis/ (a command runs or analyses, never both).
- Every name has one home: a name is imported from (or read as an attribute of) the module that
  defines it, not from one that imports it in turn; no `# noqa: F401` re-export blocks in svag_jax/,
  configs/ or launch/. Importers checked: svag_jax/, configs/, launch/, benchmarks/, tests/.
- No Python file of these folders (and benchmarks/, tests/) is over MAX_LINES = 400 lines.

The rules of analysis/ (what it may read) are tested with the shape of an analysis module.
"""

import ast
import functools
import pathlib

import pytest

ROOT = pathlib.Path(__file__).parents[1]
# The name each top-level folder is installed under (pyproject's [tool.setuptools.package-dir]).
INSTALLED = {
    'svag_jax': 'svag_jax',
    'configs': 'svag_jax.configs',
    'launch': 'svag_jax.launch',
    'analysis': 'svag_jax.analysis',
}


def _module_name(folder: str, path: pathlib.Path) -> str:
  parts = path.relative_to(ROOT / folder).with_suffix('').parts
  if parts[-1] == '__init__':
    parts = parts[:-1]
  return '.'.join((INSTALLED[folder], *parts))


def _modules(*folders: str) -> dict[str, pathlib.Path]:
  """{installed module name: file} of every .py file under the folders."""
  return {
      _module_name(folder, path): path
      for folder in folders
      for path in sorted((ROOT / folder).rglob('*.py'))
  }


MODULES = _modules(*INSTALLED)


def _is_package(name: str) -> bool:
  return MODULES[name].name == '__init__.py'


def imports(name: str) -> set[str]:
  """The svag_jax modules (of the four folders) that module `name` imports, anywhere in its file.

  `from a import b` imports module a.b if that is a module, else a (b is a name in a).
  """
  found = set()
  for node in ast.walk(ast.parse(MODULES[name].read_text(), str(MODULES[name]))):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ''
      if node.level:  # relative: from the module's package upwards
        package = name if _is_package(name) else name.rpartition('.')[0]
        package = '.'.join(package.split('.')[: len(package.split('.')) - node.level + 1])
        base = f'{package}.{base}' if base else package
      for alias in node.names:
        found.add(f'{base}.{alias.name}' if f'{base}.{alias.name}' in MODULES else base)
  return {m for m in found if m in MODULES}


@functools.cache
def _top_level(name: str) -> tuple[set[str], set[str]]:
  """(names module `name` defines, names it imports) at its top level (inside if / try too)."""
  defined, imported = set(), set()

  def bind(target):
    for node in ast.walk(target):
      if isinstance(node, ast.Name):
        defined.add(node.id)

  def scan(body):
    for node in body:
      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        defined.add(node.name)
      elif isinstance(node, ast.Assign):
        for target in node.targets:
          bind(target)
      elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.For)):
        bind(node.target)
      elif isinstance(node, (ast.Import, ast.ImportFrom)):
        imported.update((a.asname or a.name).split('.')[0] for a in node.names)
      for field in ('body', 'orelse', 'finalbody', 'handlers'):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
          scan(getattr(node, field, []))

  scan(ast.parse(MODULES[name].read_text()).body)
  return defined, imported - defined


def _misused(module: str, attr: str) -> str | None:
  """Why `attr` must not be taken from `module` (None when `module` defines it)."""
  if f'{module}.{attr}' in MODULES or (attr.startswith('__') and attr.endswith('__')):
    return None
  if module.startswith(f'{INSTALLED["analysis"]}.'):
    return None  # analysis/ keeps its own rules (tested with the shape of an analysis module)
  defined, imported = _top_level(module)
  if attr in imported:
    return f'{attr} is imported by {module}, not defined there: import it from its home'
  if attr in defined or '__getattr__' in defined:  # config.py: its registries, read on first use
    return None
  return f'{module} has no {attr}'


def _where(path: pathlib.Path) -> str:
  return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def misused_names(path: pathlib.Path) -> list[str]:
  """Names that file `path` takes from a svag_jax module that does not define them."""
  tree = ast.parse(path.read_text(), str(path))
  aliases, found = {}, []  # local name -> svag_jax module
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for a in node.names:
        if a.asname and a.name in MODULES:
          aliases[a.asname] = a.name
        elif a.name.split('.')[0] in MODULES:
          aliases[a.name.split('.')[0]] = a.name.split('.')[0]
    elif isinstance(node, ast.ImportFrom) and not node.level and node.module in MODULES:
      for a in node.names:
        if f'{node.module}.{a.name}' in MODULES:
          aliases[a.asname or a.name] = f'{node.module}.{a.name}'
        elif why := _misused(node.module, a.name):
          found.append(f'{_where(path)}:{node.lineno}: {why}')
  for node in ast.walk(tree):
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
      module = aliases.get(node.value.id)
      # `import svag_jax.a` binds svag_jax: then only the `a` of svag_jax.a.x is checked
      if module and (why := _misused(module, node.attr)):
        found.append(f'{_where(path)}:{node.lineno}: {why}')
  return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
  """One cycle of the directed graph as [a, b, ..., a], or None when it has none."""
  state = {}  # node -> 'open' (on the path) | 'done'

  def visit(node, path):
    state[node] = 'open'
    for nxt in sorted(graph[node]):
      if state.get(nxt) == 'open':
        return path[path.index(nxt) :] + [node, nxt] if nxt in path else [node, nxt]
      if nxt not in state:
        found = visit(nxt, path + [node])
        if found:
          return found
    state[node] = 'done'
    return None

  for start in sorted(graph):
    if start not in state:
      found = visit(start, [])
      if found:
        return found
  return None


def _library() -> list[str]:
  return [m for m in MODULES if MODULES[m].is_relative_to(ROOT / 'svag_jax')]


def test_the_import_graph_finds_what_it_should():
  assert 'svag_jax.models.layers' in imports('svag_jax.models')  # from svag_jax.models import ..
  assert 'svag_jax.launch.cli' in imports('svag_jax.launch.main')
  assert 'svag_jax.configs.base' in imports('svag_jax.configs.fast_equilibrium')
  assert _cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
  assert _cycle({'a': {'b', 'c'}, 'b': {'c'}, 'c': set()}) is None
  assert _cycle({'a': {'a'}}) == ['a', 'a']


def test_no_import_cycle_in_svag_jax():
  library = _library()
  graph = {m: imports(m) & set(library) for m in library}
  assert len(graph) > 20 and sum(map(len, graph.values())) > 40  # the graph is not empty
  assert _cycle(graph) is None, ' -> '.join(_cycle(graph))


@pytest.mark.parametrize(
    'folder, never',
    [
        ('svag_jax', ('configs', 'launch', 'analysis')),
        ('launch', ('analysis',)),
    ],
)
def test_never_imports(folder, never):
  forbidden = tuple(f'{INSTALLED[f]}.' for f in never) + tuple(INSTALLED[f] for f in never)
  broken = {
      f'{MODULES[m].relative_to(ROOT)} imports {i}'
      for m in _modules(folder)
      for i in imports(m)
      if i in forbidden or i.startswith(forbidden)
  }
  assert not broken, sorted(broken)


def test_misused_names_finds_a_reexport_and_a_missing_name(tmp_path):
  path = tmp_path / 'user.py'
  path.write_text(
      'from svag_jax import config as config_lib\n'
      'from svag_jax.config import validate, ConfigError\n'
      'config_lib.resolved, config_lib.MODELS, config_lib.no_such_name\n'
  )
  assert [m.split(': ', 1)[1] for m in misused_names(path)] == [
      'ConfigError is imported by svag_jax.config, not defined there: import it from its home',
  ]  # MODELS and no_such_name pass: config.py has a module __getattr__ (its registries)
  path.write_text('import svag_jax.workdir as wd\nwd.Workdir, wd.epoch_name, wd.nothing\n')
  assert [m.split(': ', 1)[1] for m in misused_names(path)] == [
      'epoch_name is imported by svag_jax.workdir, not defined there: import it from its home',
      'svag_jax.workdir has no nothing',
  ]


@pytest.mark.parametrize('folder', ['svag_jax', 'configs', 'launch', 'benchmarks', 'tests'])
def test_names_come_from_their_home(folder):
  found = [m for path in sorted((ROOT / folder).rglob('*.py')) for m in misused_names(path)]
  assert not found, found


@pytest.mark.parametrize('folder', ['svag_jax', 'configs', 'launch'])
def test_no_reexports(folder):
  """A `# noqa: F401` import re-exports a name: import it from its home module instead."""
  found = [
      f'{path.relative_to(ROOT)}:{i}'
      for path in sorted((ROOT / folder).rglob('*.py'))
      for i, line in enumerate(path.read_text().splitlines(), 1)
      if 'noqa: F401' in line
  ]
  assert not found, found


MAX_LINES = 400  # issue 21: no Python file over 400 lines (split along a seam instead)


def test_no_python_file_over_max_lines():
  folders = ('svag_jax', 'analysis', 'launch', 'configs', 'benchmarks', 'tests')
  lengths = {
      str(path.relative_to(ROOT)): len(path.read_text().splitlines())
      for folder in folders
      for path in sorted((ROOT / folder).rglob('*.py'))
  }
  assert len(lengths) > 100  # the folders were found
  over = {path: n for path, n in lengths.items() if n > MAX_LINES}
  assert not over, f'over {MAX_LINES} lines: {over}'
