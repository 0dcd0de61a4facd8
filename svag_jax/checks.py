"""The primitive checks of config values: each raises ConfigError naming the field and the fix."""

import math
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import ml_collections

# Groups of fields: plain dicts or ConfigDicts (which are not collections.abc.Mapping).
GROUP = (Mapping, ml_collections.ConfigDict)


class ConfigError(ValueError):
  """A config value is invalid; the message names the field and the fix."""


def fail(field: str, value: Any, why: str) -> NoReturn:
  raise ConfigError(f'config.{field} = {value!r}: {why}')


def positive(field: str, value: Any, allow_zero: bool = False, integer: bool = False) -> None:
  ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
  if isinstance(value, bool) or not ok_type or not math.isfinite(value):
    fail(field, value, f'must be a finite {"integer" if integer else "number"}')
  if value < 0 or (value == 0 and not allow_zero):
    fail(field, value, f'must be {">= 0" if allow_zero else "> 0"}')


def choice(field: str, value: Any, choices: Sequence[str]) -> None:
  if value not in choices:
    fail(field, value, f'unknown; choose one of {", ".join(choices)}')


def differs(value: Any, default: Any) -> bool:
  """Whether a config value differs from the schema default (tuples and lists compare equal; groups
  by their content: a ConfigDict's equality also compares whether it is locked, and the config
  files' dicts are locked by the flag parser)."""

  def norm(v):
    if isinstance(v, (list, tuple)):
      return tuple(norm(x) for x in v)
    if isinstance(v, GROUP):
      return {k: norm(x) for k, x in v.items()}
    return v

  return norm(value) != norm(default)
