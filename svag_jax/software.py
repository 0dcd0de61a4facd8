"""The software and devices a command runs with, as the run record states them.

`versions()` is written into config.json's header, every attempts.jsonl row and every checkpoint
(svag_jax.workdir, svag_jax.provenance). A run resumed under other versions of the libraries that
compute its numbers (`COMPARED`) is refused unless the command allows it (`--allow_version_change`):
two versions of jax already differ by points of accuracy after a few thousand steps, so a run
continued under another one is equal to neither. The other entries (the git commit of a checkout,
the device and process counts) are recorded but do not refuse a resume: a trial's numbers do not
depend on the number of devices (tested), and a commit changes with every edit.
"""

import functools
import importlib.metadata
import pathlib
import platform
import subprocess

import svag_jax

# The distributions whose versions the record states, by the key it uses.
PACKAGES = {
    'jax': 'jax',
    'jaxlib': 'jaxlib',
    'flax': 'flax',
    'optax': 'optax',
    'orbax': 'orbax-checkpoint',
    'numpy': 'numpy',
}
# The entries that must be equal for a resume (the rest are recorded only).
COMPARED = ('python', *PACKAGES, 'svag_jax', 'platform', 'device_kind')


def _package_version(name: str) -> str | None:
  try:
    return importlib.metadata.version(name)
  except importlib.metadata.PackageNotFoundError:
    return None


@functools.cache
def git_commit() -> str | None:
  """The commit of the git checkout svag_jax is imported from ('+dirty' if its tracked files
  differ from it); None for an installed package or where git cannot tell."""
  root = pathlib.Path(svag_jax.__file__).resolve().parents[1]
  if not (root / '.git').exists():
    return None
  try:
    run = lambda *args: subprocess.run(
        ['git', '-C', str(root), *args], capture_output=True, text=True, timeout=5, check=True
    ).stdout.strip()
    commit = run('rev-parse', 'HEAD')
    dirty = run('status', '--porcelain', '--untracked-files=no')
  except (OSError, subprocess.SubprocessError):
    return None
  return commit + ('+dirty' if dirty else '') if commit else None


def versions() -> dict:
  """{'python', 'jax', 'jaxlib', 'flax', 'optax', 'orbax', 'numpy', 'svag_jax', 'git', 'platform',
  'device_kind', 'device_count', 'process_count'} of this process (starts JAX's backend)."""
  import jax  # noqa: PLC0415 (the record's readers, e.g. analysis, never call this)

  devices = jax.devices()
  return {
      'python': platform.python_version(),
      **{key: _package_version(name) for key, name in PACKAGES.items()},
      'svag_jax': svag_jax.__version__,
      'git': git_commit(),
      'platform': devices[0].platform,
      'device_kind': devices[0].device_kind,
      'device_count': len(devices),
      'process_count': jax.process_count(),
  }


def changes(old: dict | None, new: dict, keys: tuple[str, ...] | None = None) -> dict:
  """{key: [old value, new value]} of the entries of `keys` (default: all) that differ; {} if
  `old` is None (a record made before versions were recorded)."""
  if old is None:
    return {}
  keys = tuple(dict.fromkeys([*old, *new])) if keys is None else keys
  return {k: [old.get(k), new.get(k)] for k in keys if old.get(k) != new.get(k)}


def describe_changes(diff: dict) -> str:
  """'jax 0.4.30 -> 0.5.0, numpy 1.26.4 -> 2.1.0' of a `changes` dict."""
  return ', '.join(f'{k} {a} -> {b}' for k, (a, b) in diff.items())
