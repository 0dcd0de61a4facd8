"""What the command-line entry points (launch.main, launch.sweep) share.

- The flags `--config` (ml_collections config file `FILE[:ARG]`, locked, with `--config.x.y=v`
  overrides), `--workdir` and `--verbose`.
- Bad input never prints a traceback: `parse_flags` checks the config file (exists, imports,
  `get_config(arg)` works) and every override (the field exists, the value has its type) before
  absl parses them, and `guarded` turns every error of a run into ONE line on stderr,
  `svag_jax: <Kind>: <what, where, the fix>`, and exit code 1. `--verbose` or SVAG_DEBUG=1 shows the
  traceback instead.
- The exit codes of a finished command: `record.EXIT_CODES` of the run's status.
- `--help` (`-h`, `--helpshort`, `--helpfull`): the command's docstring and flags on stdout, exit 0
  (`parse_flags(argv, entry)`); a field overridden twice is refused (`check_overrides`).
"""

import errno
import logging as logging_std
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from absl import app, flags, logging
from ml_collections import config_flags

from svag_jax import config as config_lib
from svag_jax import runlog
from svag_jax.arms import shadowed_fields
from svag_jax.checks import ConfigError
from svag_jax.launch import specs

CONFIG = config_flags.DEFINE_config_file(
    'config',
    None,
    'Experiment config FILE[:ARG] or NAME[:ARG], e.g. configs/fast_equilibrium.py:cpu or '
    'fast_equilibrium:cpu (a module of svag_jax.configs); override fields with '
    '--config.optim.lr=0.05.',
    lock_config=True,
)


class _ConfigFileParser(flags.ArgumentParser):
  """Parses `--config=FILE[:ARG]` as ml_collections does (`get_config(ARG)` of FILE, locked), but
  imports the file with `specs.load_module` (importlib's exec_module): ml_collections 1.1 calls the
  deprecated `Loader.load_module()`, a DeprecationWarning on every run."""

  def parse(self, argument: str) -> Any:
    path, arg = specs.split_config_arg(argument)
    module = specs.load_module(path)
    config = module.get_config(arg) if arg is not None else module.get_config()
    config.lock()  # lock_config=True
    return config

  def flag_type(self) -> str:
    return 'config object'


flags.FLAGS['config'].parser = _ConfigFileParser()
WORKDIR = flags.DEFINE_string('workdir', None, 'Directory of the run record (resumes if present).')
VERBOSE = flags.DEFINE_bool('verbose', False, 'Show tracebacks (also: SVAG_DEBUG=1).')
ALLOW_VERSION_CHANGE = flags.DEFINE_bool(
    'allow_version_change',
    False,
    'Resume a run that was made with other versions of python / jax / jaxlib / flax / optax / '
    'orbax / numpy / svag_jax or another device kind (refused by default; the change is recorded '
    "in config.json's header and attempts.jsonl).",
)


_OVERRIDE = re.compile(r'^--config\.([^=]+)(?:=(.*))?$')


class InputError(Exception):
  """Bad input to a command: `kind` names its class in the one-line message."""

  def __init__(self, kind: str, message: str):
    super().__init__(message)
    self.kind = kind


def debug() -> bool:
  """Whether tracebacks are wanted (--verbose, or SVAG_DEBUG set to anything but '' / '0')."""
  env = os.environ.get('SVAG_DEBUG', '') not in ('', '0')
  return env or (VERBOSE.present and VERBOSE.value) or '--verbose' in sys.argv


def fail(kind: str, message: str, code: int = 1) -> NoReturn:
  """Prints `svag_jax: <kind>: <message>` (one line) on stderr and exits with `code`."""
  print(f'svag_jax: {kind}: {" ".join(str(message).split())}', file=sys.stderr, flush=True)
  sys.exit(code)


def config_spec(argv: Sequence[str]) -> str | None:
  """The value of --config in `argv` (None if absent)."""
  for i, a in enumerate(argv):
    if a.startswith('--config='):
      return a.split('=', 1)[1]
    if a == '--config' and i + 1 < len(argv):
      return argv[i + 1]
  return None


def with_config_file(argv: Sequence[str]) -> list[str]:
  """`argv` with `--config=NAME[:ARG]` replaced by its file (ml_collections loads files)."""
  out = list(argv)
  for i, a in enumerate(out):
    if a.startswith('--config='):
      out[i] = '--config=' + specs.resolve_spec(a.split('=', 1)[1])
    elif a == '--config' and i + 1 < len(out):
      out[i + 1] = specs.resolve_spec(out[i + 1])
  return out


def load_config_file(spec: str) -> tuple[Any, Any]:
  """(module, get_config(arg)) of `FILE[:ARG]`; InputError naming the file and the fix."""
  path, arg = specs.split_config_arg(spec)
  hint = (
      'give a config file such as --config=fast_equilibrium:cpu or a config name '
      f'({", ".join(specs.config_names())})'
  )
  if not os.path.isfile(path):
    if os.path.isdir(path):
      why = 'is a directory'
    elif re.fullmatch(r'\w+', path):
      why = 'is neither a file nor a config name'
    else:
      why = 'does not exist'
    raise InputError(
        'ConfigError',
        f'--config={spec}: {path} {why} (working directory ' f'{os.getcwd()}); {hint}',
    )
  try:
    module = specs.load_module(path)
  except SyntaxError as e:
    raise InputError(
        'ConfigError', f'{path}:{e.lineno}: syntax error in the config file: ' f'{e.msg}'
    ) from e
  except Exception as e:  # the config file's own import failed
    raise InputError(
        'ConfigError', f'{path}: importing the config file failed: ' f'{type(e).__name__}: {e}'
    ) from e
  if not hasattr(module, 'get_config'):
    raise InputError('ConfigError', f'{path} defines no get_config(arg); {hint}')
  try:
    config = module.get_config(arg) if arg is not None else module.get_config()
  except Exception as e:
    args = getattr(module, 'ARGS', None)
    known = f' It takes: {", ".join(args)} (or nothing).' if args else ''
    raise InputError(
        'ConfigError',
        f'--config={spec}: get_config({arg!r}) failed: ' f'{type(e).__name__}: {e}.{known}',
    ) from e
  return module, config


def check_overrides(argv: Sequence[str], config: Any) -> None:
  """Checks that every `--config.x.y=v` names a field of `config`, and names it once: absl lets
  the last value of a field win, and ml_collections appends a repeated tuple field's values
  (`(32,)` then `(64,)` gives `(32, 64)`); both are refused, so no value is silently dropped."""
  seen = {}
  for a in argv:
    m = _OVERRIDE.match(a)
    if m:
      field, value = m.group(1), m.group(2)
      try:
        config_lib.check_field(config, field)
      except ConfigError as e:
        raise InputError('ConfigError', str(e)) from None
      if field in seen:
        raise InputError(
            'ConfigError',
            f'--config.{field} is given twice ({seen[field]!r}, then {value!r}): give each field '
            f'once; a tuple as one value, e.g. --config.{field}="(32, 64)"',
        )
      seen[field] = value


# The help flags of absl (and -h): --help and --helpshort print the command's own flags,
# --helpfull every flag (absl's logging flags too).
HELP_FLAGS = {
    '-h': 'short', '-?': 'short', '--help': 'short', '-help': 'short', '--helpshort': 'short',
    '-helpshort': 'short', '--helpfull': 'full', '-helpfull': 'full',
}  # fmt: skip


def help_text(entry: str, full: bool = False) -> str:
  """The help of the command whose module is `entry` (its `__name__`): its docstring and the flags
  of that module and of this one (`full`: every flag defined, absl's too)."""
  doc = (sys.modules[entry].__doc__ or '').strip()
  if full:
    return f'{doc}\n\n{flags.FLAGS.get_help()}'
  modules = flags.FLAGS.flags_by_module_dict()
  own = ''.join(flags.FLAGS.module_help(m) for m in (entry, __name__) if m in modules)
  return f"{doc}\n{own}\n\n--helpfull: every flag, absl's (logging, ...) too."


def parse_flags(argv: Sequence[str], entry: str | None = None) -> list[str]:
  """absl's flag parsing with one-line errors (for `app.run(..., flags_parser=parse_flags)`).

  entry: the `__name__` of the command's module; `--help` / `--helpshort` / `--helpfull` / `-h`
  then print `help_text(entry)` on stdout and exit 0 (absl's own help flags exit 1 and, for a
  console script, list no flag of the command).
  """
  asked = [HELP_FLAGS[a] for a in argv[1:] if a in HELP_FLAGS]
  if entry is not None and asked:
    print(help_text(entry, full='full' in asked))
    sys.exit(0)
  # Re-entrant (tests, notebooks): the per-field flags of an earlier --config parse go first.
  for name in [n for n in flags.FLAGS if n.startswith('config.')]:
    delattr(flags.FLAGS, name)
  try:
    spec = config_spec(argv)
    if spec is not None:
      _, config = load_config_file(spec)
      check_overrides(argv, config)
      argv = with_config_file(argv)
    return flags.FLAGS(list(argv))
  except InputError as e:
    if debug():
      raise
    fail(e.kind, e)
  except flags.Error as e:
    if debug():
      raise
    message = str(e)
    m = re.search(r'flag --config\.([\w.]+)=(.*?): (.*)', message, flags=re.S)
    if m:
      fail(
          'ConfigError',
          f"--config.{m.group(1)}={m.group(2)}: not a value of the field's type "
          f'({m.group(3)}); give e.g. an int for an int field, tuples as --config.x="(a, b)"',
      )
    fail('UsageError', f'{message} (see --helpshort)')


def override_values() -> dict[str, Any]:
  """The `--config.x.y` values given on the command line: {'x.y': value}."""
  return dict(config_flags.get_override_values(flags.FLAGS['config']))


def check_read(config: Any, fields: Sequence[str]) -> None:
  """Refuses command-line overrides of fields the run would not read.

  `config_lib.validate` already refuses an unread field that differs from its default; this also
  refuses overriding an `optim` field that every arm sets (even to its default value): the user
  meant to change the run, and it would not change.
  """
  shadowed = shadowed_fields(config)
  for field in fields:
    if field in shadowed:
      value = config_lib.get_field(config, field)
      raise InputError(
          'ConfigError',
          f'--config.{field}={value!r} is not read: every arm of this '
          f'config sets its own {field.split(".")[-1]}. Set it per arm instead: '
          + ' '.join(f'--config.{f}=...' for f in shadowed[field].split(', ')),
      )


def _os_error_fix(e: OSError) -> str:
  if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
    return 'the location is not writable: choose another --workdir or fix its permissions'
  if e.errno == errno.ENOSPC:
    return (
        'the disk is full: free space and rerun the same command (it resumes from the last '
        'checkpoint; rows already written are kept)'
    )
  if e.errno in (errno.ENOTDIR, errno.EEXIST):
    return 'a file stands where a directory is needed: choose another --workdir'
  if e.errno == errno.ENOENT:
    return 'a file or directory is missing'
  return 'check the path'


def guarded(fn: Callable[[], Any]) -> Any:
  """Runs `fn()`; any error becomes one line (`fail`) unless tracebacks are wanted (`debug`)."""
  from svag_jax.checkpoint import CheckpointError  # noqa: PLC0415 (jax: only when running)
  from svag_jax.data import DataError  # noqa: PLC0415
  from svag_jax.record import WorkdirError  # noqa: PLC0415

  try:
    return fn()
  except (
      InputError,
      ConfigError,
      DataError,
      WorkdirError,
      CheckpointError,
      OSError,
  ) as e:
    if debug():
      raise
    if isinstance(e, InputError):
      fail(e.kind, e)
    if isinstance(e, OSError):
      where = f': {e.filename}' if e.filename else ''
      fail(type(e).__name__, f'{e.strerror or e}{where}; {_os_error_fix(e)}')
    fail(type(e).__name__, e)
  except app.UsageError as e:
    if debug():
      raise
    fail('UsageError', e)
  except KeyboardInterrupt:
    fail('Interrupted', 'stopped by Ctrl-C', 130)
  except Exception as e:  # a bug, not bad input: still one line, with the way to the traceback
    if debug():
      raise
    fail(
        type(e).__name__,
        f'{e} (unexpected; rerun with --verbose or SVAG_DEBUG=1 for the ' 'traceback)',
    )


def quiet_libraries() -> None:
  """Keeps the libraries' INFO chatter out of the console (svag_jax.runlog.QuietLibraries; the
  run's log.txt has the same filter), and Python warnings in the log (and so in log.txt)."""
  logging.get_absl_handler().addFilter(runlog.QuietLibraries())
  logging_std.captureWarnings(True)
