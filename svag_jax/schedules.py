"""LR and WD schedules as data: piecewise constant, times an optional smooth curve.

A schedule is given in epochs as `(initial value, ((epoch, factor), ...))`: at each listed epoch the
value is multiplied by `factor` (cumulatively; factor 0 switches the value off). It may be
multiplied by a *curve* c(t) in [0, 1] (Li, Malladi & Arora 2021 run SVAG under such schedules):

  'constant'  c(t) = 1;
  'cosine'    c(t) = (1 + cos(pi * clip((t - start) / (end - start), 0, 1))) / 2: 1 until `start`,
              then half a cosine period down to 0 at `end`, 0 after;
  'triangle'  c(t) = linear from 0 at `start` up to 1 at `peak`, then linearly down to 0 at `end`
              (0 before `start` and after `end`): the one-cycle "triangle" of fast CIFAR training.

Everything is converted once, on the host, into arrays over optimizer steps (the curve's kind is an
int32 code, its start/peak/end float32 steps), so that trials with different schedules and curves
are just different inputs of one compiled program (the arms of the Fast Equilibrium experiment),
and checkpoints hold them. `SvagTime` stretches them for SVAG (l times the steps at LR / l, or
LR / sqrt(l) for the adaptive optimizers).
"""

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from svag_jax import scaling

# Padding boundary for schedules with fewer changes than the longest one: never reached.
_NEVER = np.iinfo(np.int32).max
# Curve kinds, in the order of their int32 codes.
CURVES = ('constant', 'cosine', 'triangle')
CONSTANT, COSINE, TRIANGLE = range(len(CURVES))


class Schedule(NamedTuple):
  """`values[#{k: step >= boundaries[k]}] * curve(step)`: piecewise constant times a curve.

  Attributes:
    boundaries: int32[K], nondecreasing steps at which the value changes (padded with int32 max).
    values: float32[K + 1], the value before the first boundary and after each one.
    curve: int32 scalar, the curve's code: CONSTANT, COSINE or TRIANGLE (`CURVES`).
    curve_steps: float32[3], the curve's (start, peak, end) in optimizer steps (not rounded; the
      peak is unused by the cosine). Ignored by the constant curve.
  """

  boundaries: jax.Array
  values: jax.Array
  curve: jax.Array = np.zeros((), np.int32)
  curve_steps: jax.Array = np.zeros((3,), np.float32)


class Schedules(NamedTuple):
  """The two independent schedules of one trial: learning rate and weight decay."""

  lr: Schedule
  wd: Schedule


def curve_at(schedule: Schedule, step: jax.Array) -> jax.Array:
  """The schedule's curve c(step) in [0, 1], float32 (traceable; works under jit and vmap)."""
  t = jnp.asarray(step, jnp.float32)
  start, peak, end = (schedule.curve_steps[..., i] for i in range(3))

  def ramp(x, x0, x1):  # clip((x - x0) / (x1 - x0), 0, 1); for x1 == x0 a unit step at x0
    span = x1 - x0
    linear = jnp.clip((x - x0) / jnp.where(span > 0, span, 1.0), 0.0, 1.0)
    return jnp.where(span > 0, linear, (x >= x0).astype(jnp.float32))

  cosine = 0.5 * (1.0 + jnp.cos(jnp.pi * ramp(t, start, end)))
  triangle = jnp.where(t < peak, ramp(t, start, peak), 1.0 - ramp(t, peak, end))
  return jnp.select(
      [schedule.curve == COSINE, schedule.curve == TRIANGLE], [cosine, triangle], jnp.ones_like(t)
  )


def value_at(schedule: Schedule, step: jax.Array) -> jax.Array:
  """The schedule's value at `step`: the piecewise-constant value times the curve (traceable;
  works under jit and vmap; exactly the piecewise value for the constant curve)."""
  index = jnp.sum(step >= schedule.boundaries)
  return jnp.asarray(schedule.values)[index] * curve_at(schedule, step)


def curve_from_epochs(
    curve: str, epochs: Sequence[float], steps_per_epoch: float
) -> tuple[np.ndarray, np.ndarray]:
  """`(curve code int32 [], (start, peak, end) float32 [3] in steps)` of a curve given in epochs.

  Args:
    curve: one of `CURVES`.
    epochs: () for 'constant'; (start, end) for 'cosine'; (start, peak, end) for 'triangle'.
      Steps are `epoch * steps_per_epoch`, not rounded, so a schedule stretched by SVAG's l
      (steps_per_epoch x l) takes the same values at the same effective step.
    steps_per_epoch: optimizer steps per epoch.
  """
  if curve not in CURVES:
    raise ValueError(f'unknown curve {curve!r}; choose one of {", ".join(CURVES)}')
  expected = {'constant': 0, 'cosine': 2, 'triangle': 3}[curve]
  if len(epochs) != expected:
    raise ValueError(f'the {curve} curve takes {expected} epochs, got {tuple(epochs)}')
  e = [float(x) for x in epochs]
  if any(b < a for a, b in zip(e, e[1:])) or any(not np.isfinite(x) for x in e):
    raise ValueError(f'the {curve} curve needs finite epochs in nondecreasing order, got {e}')
  if curve == 'cosine':
    e = [e[0], e[0], e[1]]  # no peak: stored as start
  steps = np.asarray(e or [0.0] * 3, np.float64) * steps_per_epoch
  return np.asarray(CURVES.index(curve), np.int32), steps.astype(np.float32)


def from_epochs(
    init: float,
    changes: Sequence[tuple[float, float]],
    steps_per_epoch: int,
    num_boundaries: int | None = None,
    curve: str = 'constant',
    curve_epochs: Sequence[float] = (),
) -> Schedule:
  """Converts `(init, ((epoch, factor), ...))` and a curve into a step schedule.

  Args:
    init: value before the first change.
    changes: (epoch, factor) pairs with nondecreasing epochs; at `epoch` the value is multiplied
      by `factor`. The boundary step is `round(epoch * steps_per_epoch)`.
    steps_per_epoch: optimizer steps per epoch.
    num_boundaries: pad to this many boundaries (>= len(changes)), so schedules of different
      lengths stack into one array. There is always at least one (padding) boundary: zero-size
      arrays cannot be checkpointed.
    curve, curve_epochs: the multiplicative curve and its epochs (`curve_from_epochs`).

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
  code, curve_steps = curve_from_epochs(curve, curve_epochs, steps_per_epoch)
  return Schedule(np.asarray(bounds, np.int32), np.asarray(values, np.float32), code, curve_steps)


def stack(schedules: Sequence[Schedules]) -> Schedules:
  """Stacks per-trial schedules (equal lengths: use `num_boundaries`) along a new trial axis."""
  return jax.tree.map(lambda *xs: np.stack(xs), *schedules)


@dataclasses.dataclass(frozen=True)
class SvagTime:
  """SVAG's time change (Li, Malladi & Arora 2021, Sec. 4): one unit of SGD time is l steps.

  With amplification l the optimizer runs l times the SGD steps, every step-indexed interval
  (epochs, schedules, evals, checkpoints) is stretched by l, and curves are plotted against
  effective steps = steps / l. The per-step LR and WD are `svag_jax.scaling.svag`'s: SGD at
  LR eta / l (WD unchanged); RMSprop / Adam / AdamW at eta / sqrt(l) (Malladi, Lyu, Panigrahi &
  Arora 2022, their ell = sqrt(l)), AdamW's decoupled WD lambda / sqrt(l). l = 1 (every other
  oracle) is the identity.

  Attributes:
    l: the amplification, int >= 1.
    optimizer: config.optim.optimizer ('sgd', 'rmsprop', 'adam' or 'adamw').
  """

  l: int = 1
  optimizer: str = 'sgd'

  @classmethod
  def of(cls, optim_config: Any) -> 'SvagTime':
    """The time change of a config's `optim` group (l = optim.svag_l for svag, else 1)."""
    return cls(optim_config.svag_l if optim_config.oracle == 'svag' else 1, optim_config.optimizer)

  def lr(self, lr: float) -> float:
    """The per-step LR of an LR eta at batch B: eta / l (sgd), eta / sqrt(l) (adaptive)."""
    return scaling.svag(scaling.Settings(lr), self.l, self.optimizer).lr

  def wd(self, wd: float) -> float:
    """The per-step WD of a WD lambda: lambda, except adamw's lambda / sqrt(l)."""
    return scaling.svag(scaling.Settings(1.0, wd), self.l, self.optimizer).wd

  def steps(self, sgd_steps: int) -> int:
    """Optimizer steps of `sgd_steps` units of SGD time (e.g. steps per epoch): l x sgd_steps."""
    return sgd_steps * self.l

  def effective_step(self, step: int) -> float:
    """SGD time of optimizer step `step`: step / l."""
    return step / self.l

  def lr_schedule(self, sgd_lr: float | Callable[[Any], Any]) -> Callable[[Any], jax.Array]:
    """SVAG's per-step LR as an optax schedule: k -> sgd_lr(k / l) / l.

    `sgd_lr` is a number or an optax schedule of the SGD step (e.g.
    `optax.piecewise_constant_schedule`, `optax.cosine_decay_schedule`); it is read at the SGD
    time k / l of SVAG step k (a float: a boundary at SGD step b moves to SVAG step b l, a curve
    is stretched l-fold), so SVAG runs l times the steps at LR / l under the same schedule in SGD
    time. Use it as the LR of `svag_jax.optim.sgd` (or any optax transform) in your own loop; the
    configs' runs build the same numbers as arrays (`from_epochs` with l x the steps per epoch).

    Example (run by tests/test_docstring_examples.py)::

      >>> import optax
      >>> sgd_lr = optax.piecewise_constant_schedule(0.4, {100: 0.5})  # halved at SGD step 100
      >>> lr = SvagTime(4).lr_schedule(sgd_lr)
      >>> [round(float(lr(k)), 6) for k in (0, 399, 400)]  # SGD time 0, 99.75, 100
      [0.1, 0.1, 0.05]
    """
    schedule = sgd_lr if callable(sgd_lr) else (lambda _: sgd_lr)
    return lambda count: jnp.asarray(schedule(jnp.asarray(count) / self.l), jnp.float32) / self.l

  def wd_schedule(self, sgd_wd: float | Callable[[Any], Any]) -> Callable[[Any], jax.Array]:
    """SVAG's per-step WD as an optax schedule: k -> sgd_wd(k / l) (WD is not divided by l: the
    step's decay is (eta / l) lambda, l times smaller per step, the same per unit of SGD time).

      >>> SvagTime(4).wd_schedule(5e-4)(123).item()  # doctest: +ELLIPSIS
      0.0005...
    """
    schedule = sgd_wd if callable(sgd_wd) else (lambda _: sgd_wd)
    return lambda count: jnp.asarray(schedule(jnp.asarray(count) / self.l), jnp.float32)


SGD_TIME = SvagTime(1)  # the identity: every oracle but svag

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
