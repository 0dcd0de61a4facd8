"""`python -m svag_jax.analysis NAME ARGS...` (or `svag-analysis NAME ARGS...`): runs one analysis.

svag-analysis fast_equilibrium runs/fe     # = python -m svag_jax.analysis.fast_equilibrium runs/fe
svag-analysis --list                       # the analyses there are
"""

import importlib
import pkgutil
import sys
from collections.abc import Sequence

from svag_jax import analysis

# Modules of the package that are libraries, not figures.
_LIBRARIES = frozenset({'common', 'plots', 'stats', 'weights'})


def names() -> list[str]:
  """The analyses `python -m svag_jax.analysis NAME` runs."""
  found = (m.name for m in pkgutil.iter_modules(analysis.__path__))
  return sorted(n for n in found if n not in _LIBRARIES and not n.startswith('_'))


def main(argv: Sequence[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  known = names()
  if not argv or argv[0] in ('-h', '--help', '--list'):
    print(
        'usage: svag-analysis NAME ARGS...   (NAME --help: its options)\n'
        '       svag-analysis --list | --help\n'
        f'NAME: {", ".join(known)}'
    )
    return 0 if argv else 2
  if argv[0] not in known:
    print(f'svag-analysis: no analysis {argv[0]!r}; there are: {", ".join(known)}', file=sys.stderr)
    return 2
  module = importlib.import_module(f'svag_jax.analysis.{argv[0]}')
  return module.main(argv[1:])


if __name__ == '__main__':
  sys.exit(main())
