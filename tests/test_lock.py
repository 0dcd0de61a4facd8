"""The environment is the lock (requirements.lock, `make lock`): the tests run on exactly the
versions it pins for this Python and platform (`make install` installs them), and it pins every
dependency of pyproject.toml within its range."""

import pathlib
import subprocess
import sys
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = pathlib.Path(__file__).resolve().parents[1]
LOCK = ROOT / 'requirements.lock'
NOT_LOCKED = {'pip', 'svag-jax'}  # the installer (make install upgrades it) and the package


def locked() -> dict[str, str]:
  """{name: version} of the lock's pins that apply here (their environment markers hold)."""
  pins = {}
  for line in LOCK.read_text().splitlines():
    if not line.strip() or line.startswith(('#', ' ')):
      continue
    req = Requirement(line)
    if req.marker is None or req.marker.evaluate():
      (spec,) = req.specifier
      assert spec.operator == '==', line
      pins[canonicalize_name(req.name)] = spec.version
  return pins


def test_the_installed_packages_are_exactly_the_locked_versions():
  frozen = subprocess.run(
      [sys.executable, '-m', 'pip', 'freeze', '--all', '--exclude-editable'],
      capture_output=True,
      text=True,
      check=True,
  ).stdout.splitlines()
  installed = {}
  for line in frozen:
    name, _, version = line.partition('==')
    assert version, f'pip freeze: {line!r} is not NAME==VERSION (installed from a path or URL?)'
    installed[canonicalize_name(name)] = version
  for name in NOT_LOCKED:
    installed.pop(name, None)
  pins = locked()
  differ = {
      n: (installed.get(n), pins.get(n))
      for n in sorted(set(installed) | set(pins))
      if installed.get(n) is None
      or pins.get(n) is None
      or Version(installed[n]) != Version(pins[n])
  }
  assert not differ, (
      f'{{name: (installed, locked)}} differ: {differ}. `make install` installs the lock into '
      '.venv; packages that the lock no longer holds stay: `rm -rf .venv && make install`.'
  )


def test_the_lock_pins_every_dependency_of_pyproject_within_its_range():
  project = tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']
  pins = locked()
  for line in project['dependencies'] + project['optional-dependencies']['dev']:
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate():
      continue
    name = canonicalize_name(req.name)
    assert name in pins, f'{req} is not in requirements.lock: run `make lock`'
    assert req.specifier.contains(
        pins[name], prereleases=True
    ), f'requirements.lock pins {name}=={pins[name]} outside {req}: run `make lock`'
  for extra in set(project['optional-dependencies']) - {'dev'}:  # where dev locks them too
    for line in project['optional-dependencies'][extra]:
      name = canonicalize_name(Requirement(line).name)
      if name in pins:
        assert Requirement(line).specifier.contains(pins[name], prereleases=True), line
