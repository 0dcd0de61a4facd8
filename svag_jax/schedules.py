"""Piecewise-constant LR and WD schedules as data.

A schedule is given in epochs as `(initial value, ((epoch, factor), ...))`: at each listed epoch the
value is multiplied by `factor` (cumulatively; factor 0 switches the value off). It is converted
once, on the host, into arrays over optimizer steps, so that trials with different schedules are
just different inputs of one compiled program (the arms of the Fast Equilibrium experiment).
"""

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

# Padding boundary for schedules with fewer changes than the longest one: never reached.
_NEVER = np.iinfo(np.int32).max


class Schedule(NamedTuple):
  """A piecewise-constant function of the step: `values[#{k: step >= boundaries[k]}]`.

  Attributes:
    boundaries: int32[K], nondecreasing steps at which the value changes (padded with int32 max).
    values: float32[K + 1], the value before the first boundary and after each one.
  """

  boundaries: jax.Array
  values: jax.Array


class Schedules(NamedTuple):
  """The two independent schedules of one trial: learning rate and weight decay."""

  lr: Schedule
  wd: Schedule


def value_at(schedule: Schedule, step: jax.Array) -> jax.Array:
  """The schedule's value at `step` (traceable; works under jit and vmap)."""
  index = jnp.sum(step >= schedule.boundaries)
  return schedule.values[index]


def from_epochs(
    init: float,
    changes: Sequence[tuple[float, float]],
    steps_per_epoch: int,
    num_boundaries: int | None = None,
) -> Schedule:
  """Converts `(init, ((epoch, factor), ...))` into a step schedule.

  Args:
    init: value before the first change.
    changes: (epoch, factor) pairs with nondecreasing epochs; at `epoch` the value is multiplied
      by `factor`. The boundary step is `round(epoch * steps_per_epoch)`.
    steps_per_epoch: optimizer steps per epoch.
    num_boundaries: pad to this many boundaries (>= len(changes)), so schedules of different
      lengths stack into one array. There is always at least one (padding) boundary: zero-size
      arrays cannot be checkpointed.

  Returns:
    A `Schedule` of numpy arrays (float32 values computed in float64, then rounded once).
  """
  num_boundaries = max(1, len(changes) if num_boundaries is None else num_boundaries)
  if num_boundaries < len(changes):
    raise ValueError(f'num_boundaries={num_boundaries} < {len(changes)} changes')
  bounds, values, value = [], [float(init)], float(init)
  for epoch, factor in changes:
    bounds.append(int(round(float(epoch) * steps_per_epoch)))
    value *= float(factor)
    values.append(value)
  pad = num_boundaries - len(changes)
  bounds += [_NEVER] * pad
  values += [value] * pad
  return Schedule(np.asarray(bounds, np.int32), np.asarray(values, np.float32))


def stack(schedules: Sequence[Schedules]) -> Schedules:
  """Stacks per-trial schedules (equal lengths: use `num_boundaries`) along a new trial axis."""
  return jax.tree.map(lambda *xs: np.stack(xs), *schedules)


# ---- The named schedules of the 2020 paper (Li, Lyu & Arora), as (init, changes) pairs. ----


def const(value: float) -> tuple[float, tuple]:
  """Const: the value never changes."""
  return value, ()


def step_decay(
    value: float, *, boost: float = 4.0, factor: float = 0.5, every: float = 40, until: float = 120
) -> tuple[float, tuple]:
  """Start at `boost * value` and multiply by `factor` every `every` epochs before `until`.

  The paper's LR-decay / WD-decay: 4x the base value, halved every 40 epochs, so that the value
  equals the base from epoch 80 to 120.
  """
  changes, epoch = [], every
  while epoch < until - 1e-9:
    changes.append((epoch, factor))
    epoch += every
  return boost * value, tuple(changes)


def then(schedule: tuple[float, tuple], epoch: float, factor: float) -> tuple[float, tuple]:
  """Appends one more change, e.g. the two-phase switch (LR x 0.1, WD x 0 at epoch 120)."""
  init, changes = schedule
  return init, tuple(changes) + ((epoch, factor),)
