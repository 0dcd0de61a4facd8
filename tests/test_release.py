"""Release hygiene: one version everywhere, the license text, the generated config reference."""

import pathlib
import re

import svag_jax
from svag_jax import schema

ROOT = pathlib.Path(__file__).parents[1]


def test_citation_and_changelog_carry_the_package_version():
  citation = (ROOT / 'CITATION.cff').read_text()
  assert re.search(r'^version: (\S+)', citation, re.M).group(1) == svag_jax.__version__
  assert f'## {svag_jax.__version__} ' in (ROOT / 'CHANGELOG.md').read_text()
  assert 'arXiv:2010.02916' in citation and 'arXiv:2102.12470' in citation  # both papers
  pyproject = (ROOT / 'pyproject.toml').read_text()
  assert 'dynamic = ["version"]' in pyproject and 'attr = "svag_jax.__version__"' in pyproject


def test_license_is_the_apache_2_text_pyproject_declares():
  text = (ROOT / 'LICENSE').read_text()
  assert 'Apache License' in text and 'Version 2.0, January 2004' in text
  assert 'END OF TERMS AND CONDITIONS' in text
  assert 'license = "Apache-2.0"' in (ROOT / 'pyproject.toml').read_text()


def test_config_reference_is_generated_from_the_schema():
  doc = (ROOT / 'docs' / 'config.md').read_text()
  assert doc == schema.reference(), 'regenerate: python -m svag_jax.schema > docs/config.md'


def _leaves(config, prefix=''):
  for key, value in config.items():
    if hasattr(value, 'items') and key != 'arms':
      yield from _leaves(value, f'{prefix}{key}.')
    elif key != 'arms':
      yield f'{prefix}{key}'


def test_config_reference_explains_every_field():
  doc = schema.reference()
  for field in _leaves(schema.defaults()):
    row = re.search(rf'^(\| `{re.escape(field)}` \|.*|`{re.escape(field)}` \(.*)$', doc, re.M)
    assert row, f'{field} missing from the reference'
    assert not row.group(1).rstrip().endswith('|  |'), f'{field} has no comment in schema.py'
