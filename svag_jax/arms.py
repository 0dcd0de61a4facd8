"""Arms: named groups of trials that differ only in their LR / WD schedules (`config.arms`).

Each arm is a dict with any of ARM_FIELDS; a field an arm does not set comes from `config.optim`.
An `optim` field that every arm sets is read by no arm (`shadowed_fields`) and must stay at its
default, so that a changed value is never silently ignored.
"""

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections

from svag_jax.checks import GROUP, choice, differs, fail, positive
from svag_jax.schema import defaults

ARM_FIELDS = ('lr', 'wd', 'lr_schedule', 'wd_schedule', 'lr_curve', 'lr_curve_epochs')


@dataclasses.dataclass(frozen=True)
class Arm:
  """A named group of trials with its own LR and WD schedules (epochs, cumulative factors).

  `lr_curve` multiplies the LR schedule (`svag_jax.schedules`); `lr_curve_epochs` is resolved:
  () for 'constant', (start, end) for 'cosine', (start, peak, end) for 'triangle'.
  """

  name: str
  lr: float
  wd: float
  lr_schedule: tuple[tuple[float, float], ...]
  wd_schedule: tuple[tuple[float, float], ...]
  lr_curve: str = 'constant'
  lr_curve_epochs: tuple[float, ...] = ()


def check_schedule(field: str, changes: Any) -> tuple[tuple[float, float], ...]:
  if not isinstance(changes, Sequence) or isinstance(changes, str):
    fail(field, changes, 'must be a tuple of (epoch, factor) pairs, e.g. ((40, 0.5), (80, 0.5))')
  pairs = []
  for item in changes:
    if not isinstance(item, Sequence) or len(item) != 2:
      fail(field, changes, f'entry {item!r} is not an (epoch, factor) pair')
    epoch, factor = float(item[0]), float(item[1])
    if not (math.isfinite(epoch) and epoch > 0):
      fail(field, changes, f'epoch {item[0]!r} must be finite and > 0')
    if not (math.isfinite(factor) and factor >= 0):
      fail(field, changes, f'factor {item[1]!r} must be finite and >= 0')
    if pairs and epoch < pairs[-1][0]:
      fail(field, changes, f'epochs out of order: {pairs[-1][0]:g} then {epoch:g}; sort them')
    pairs.append((epoch, factor))
  return tuple(pairs)


def check_curve_epochs(field: str, curve: str, epochs: Any, total: float) -> tuple[float, ...]:
  """The LR curve's epochs, defaults filled in: () / (start, end) / (start, peak, end)."""
  names = {'constant': (), 'cosine': ('start', 'end'), 'triangle': ('start', 'peak', 'end')}[curve]
  if not isinstance(epochs, Sequence) or isinstance(epochs, str):
    fail(field, epochs, f'must be a tuple of epochs ({", ".join(names) or "empty"})')
  if not names:
    if len(epochs):
      fail(
          field,
          epochs,
          'the constant LR curve takes no epochs: set optim.lr_curve (or the '
          "arm's lr_curve) to 'cosine' or 'triangle', or leave lr_curve_epochs = ()",
      )
    return ()
  if not len(epochs):
    return (0.0, float(total)) if curve == 'cosine' else (0.0, total / 2, float(total))
  if len(epochs) != len(names):
    fail(
        field,
        epochs,
        f'the {curve} LR curve takes {len(names)} epochs '
        f'({", ".join(names)}), or () for the default',
    )
  values = []
  for name, e in zip(names, epochs):
    if isinstance(e, bool) or not isinstance(e, (int, float)) or not math.isfinite(e):
      fail(field, epochs, f'{name} = {e!r} must be a finite number of epochs')
    if not 0 <= e <= total:
      fail(field, epochs, f'{name} = {e!r} is not in [0, train.epochs = {total}]')
    values.append(float(e))
  if any(b < a for a, b in zip(values, values[1:])) or values[0] >= values[-1]:
    fail(field, epochs, f'need {" <= ".join(names)} with start < end; reorder them')
  return tuple(values)


def _arm_specs(config: ml_collections.ConfigDict) -> dict[str, dict]:
  if not len(config.arms):
    return {'default': {}}
  specs = {}
  for name, spec in config.arms.items():
    if not isinstance(spec, GROUP):
      fail(f'arms.{name}', spec, 'must be a dict of arm fields')
    specs[name] = dict(spec)
    for key in specs[name]:
      if key not in ARM_FIELDS:
        fail(f'arms.{name}.{key}', spec[key], f'unknown arm field; use {", ".join(ARM_FIELDS)}')
  return specs


def set_arms(
    config: ml_collections.ConfigDict, arm_specs: Mapping[str, Mapping]
) -> ml_collections.ConfigDict:
  """Sets `config.arms` and puts back to their defaults the `optim` fields that every arm sets.

  For config files: those `optim` fields are read by no arm (`shadowed_fields`), so a config file
  that set them (e.g. through a shared base setting) must not leave a value that nobody reads.
  Returns `config`.
  """
  config.arms = {name: dict(spec) for name, spec in arm_specs.items()}
  schema = defaults().optim
  for field in shadowed_fields(config):
    key = field.split('.')[1]
    config.optim[key] = schema[key]
  return config


def shadowed_fields(config: ml_collections.ConfigDict) -> dict[str, str]:
  """The `optim.*` arm fields that no arm reads, because every arm sets its own value.

  Returns {'optim.lr': 'arms.const.lr, arms.lr_decay.lr', ...}: the field and the arm fields to set
  instead.
  """
  if not len(config.arms):
    return {}
  specs = _arm_specs(config)
  return {
      f'optim.{f}': ', '.join(f'arms.{name}.{f}' for name in specs)
      for f in ARM_FIELDS
      if all(f in spec for spec in specs.values())
  }


def arms(config: ml_collections.ConfigDict) -> list[Arm]:
  """The validated arms of a config (a single 'default' arm when `config.arms` is empty).

  An arm field an arm does not set comes from `optim` (inheritance); an `optim` field that every
  arm sets is read by no arm and must stay at its default (`shadowed_fields`): a changed value
  would be silently ignored, so it is a ConfigError naming the arm fields to set instead.
  """
  from svag_jax import schedules  # noqa: PLC0415 (jax: imported when validating)

  optim, schema = config.optim, defaults().optim
  for field, instead in shadowed_fields(config).items():
    key = field.split('.')[1]
    if differs(optim[key], schema[key]):
      fail(
          field,
          optim[key],
          f'not read: every arm sets its own {key}. Set it per arm instead '
          f'({instead}), e.g. --config.{instead.split(", ")[0]}=...',
      )
  result = []
  for name, spec in _arm_specs(config).items():
    lr, wd = spec.get('lr', optim.lr), spec.get('wd', optim.wd)
    where = f'arms.{name}.' if len(config.arms) else 'optim.'
    positive(where + 'lr', lr)
    positive(where + 'wd', wd, allow_zero=True)
    lr_s = check_schedule(where + 'lr_schedule', spec.get('lr_schedule', optim.lr_schedule))
    wd_s = check_schedule(where + 'wd_schedule', spec.get('wd_schedule', optim.wd_schedule))
    curve = spec.get('lr_curve', optim.lr_curve)
    choice(where + 'lr_curve', curve, schedules.CURVES)
    curve_epochs = check_curve_epochs(
        where + 'lr_curve_epochs',
        curve,
        spec.get('lr_curve_epochs', optim.lr_curve_epochs),
        config.train.epochs,
    )
    result.append(Arm(name, float(lr), float(wd), lr_s, wd_s, curve, curve_epochs))
  return result
