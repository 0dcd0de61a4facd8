"""When things happen in a run, in optimizer steps, and the per-trial schedules of the arms.

Limits (`check_limits`, before anything is built): the step counters are int32 (`MAX_STEPS`), and a
run evaluates at most `MAX_EVALUATIONS` times (each writes a metrics row per trial).
"""

import dataclasses

import ml_collections

from svag_jax import schedules
from svag_jax.arms import Arm
from svag_jax.checks import ConfigError

MAX_STEPS = 2**31 - 1  # TrainState.step, the schedules' and optax's counts are int32
MAX_EVALUATIONS = 1_000_000
LISTED = 100  # `listed`: longer step lists are summarised (--print_config)


def check_limits(config: ml_collections.ConfigDict, steps_per_epoch: int) -> None:
  """Refuses a run whose step count overflows the int32 step counters, or that evaluates more
  than MAX_EVALUATIONS times; computed from the config, before any list of steps is built."""
  t = config.train
  total = max(1, round(t.epochs * steps_per_epoch))
  if total > MAX_STEPS:
    raise ConfigError(
        f'config.train.epochs = {t.epochs:g}: {total:,} optimizer steps ({steps_per_epoch:,} per '
        f'epoch) exceed {MAX_STEPS:,}, the most the int32 step counters hold; lower '
        f'train.epochs to at most {MAX_STEPS // steps_per_epoch:,} (or raise train.batch_size).'
    )
  every = max(1, round(t.eval_every * steps_per_epoch))
  evals = total // every + len(t.predictions_at) + len(t.params_at) + 1
  if evals > MAX_EVALUATIONS:
    raise ConfigError(
        f'config.train.eval_every = {t.eval_every:g}: {evals:,} evaluations (one every {every:,} '
        f'of {total:,} steps), more than {MAX_EVALUATIONS:,}, each a metrics row per trial; raise '
        f'train.eval_every to at least {t.epochs / MAX_EVALUATIONS:.3g} epochs.'
    )


def listed(steps) -> list[int] | str:
  """`steps` (sorted ints) as a list, or a one-line summary where longer than LISTED."""
  steps = sorted(steps)
  if len(steps) <= LISTED:
    return list(steps)
  head = ', '.join(f'{s}' for s in steps[:3])
  return f'{len(steps):,} steps: {head}, ..., {steps[-1]}'


@dataclasses.dataclass(frozen=True)
class Plan:
  """When things happen, in optimizer steps."""

  steps_per_epoch: int
  total_steps: int
  eval_steps: tuple[int, ...]  # sorted, ends with total_steps
  checkpoint_steps: frozenset[int]
  prediction_steps: dict[int, float]  # step -> epoch label
  gn_steps: frozenset[int] = frozenset()  # evals at which G, N, NSR are estimated
  params_steps: dict[int, float] = dataclasses.field(default_factory=dict)  # step -> epoch label

  @classmethod
  def make(cls, config: ml_collections.ConfigDict, steps_per_epoch: int) -> 'Plan':
    """`steps_per_epoch` is in optimizer steps: for SVAG, l x the SGD steps per epoch, so every
    interval given in epochs (evals, checkpoints, schedules) is stretched by l."""
    check_limits(config, steps_per_epoch)
    t = config.train
    total = max(1, round(t.epochs * steps_per_epoch))
    every = max(1, round(t.eval_every * steps_per_epoch))
    predictions = {max(1, round(e * steps_per_epoch)): float(e) for e in t.predictions_at}
    params = {max(1, round(e * steps_per_epoch)): float(e) for e in t.params_at}
    evals = sorted(set(range(every, total + 1, every)) | set(predictions) | set(params) | {total})
    ckpt_every = max(1, round(config.checkpoint.every / t.eval_every))
    ckpts = frozenset(s for i, s in enumerate(evals, 1) if i % ckpt_every == 0) | {total}
    gn = frozenset()
    if config.metrics.gn_every:
      gn_every = max(1, round(config.metrics.gn_every / t.eval_every))
      gn = frozenset(s for i, s in enumerate(evals, 1) if i % gn_every == 0)
    return cls(steps_per_epoch, total, tuple(evals), ckpts, predictions, gn, params)


def trial_schedules(
    arms: list[Arm],
    trials_per_arm: int,
    steps_per_epoch: int,
    svag_time: schedules.SvagTime = schedules.SGD_TIME,
) -> tuple[schedules.Schedules, list[str]]:
  """Per-trial schedules (stacked, [T]) and the arm name of each trial, arm-major.

  `svag_time`: SVAG's time change (every LR and WD value at its per-step SVAG value,
  `SvagTime.lr` / `SvagTime.wd`: LR / l for SGD, WD unchanged except adamw's; the boundaries
  follow `steps_per_epoch`, optimizer steps, which the caller has stretched by l). The
  arm's LR curve is in the LR schedule (its epochs stretch with `steps_per_epoch` too, unrounded:
  same value at the same effective step for every l).
  """
  k_lr = max(len(a.lr_schedule) for a in arms)
  k_wd = max(len(a.wd_schedule) for a in arms)
  per_arm = [
      schedules.Schedules(
          schedules.from_epochs(
              svag_time.lr(a.lr),
              a.lr_schedule,
              steps_per_epoch,
              k_lr,
              a.lr_curve,
              a.lr_curve_epochs,
          ),
          schedules.from_epochs(svag_time.wd(a.wd), a.wd_schedule, steps_per_epoch, k_wd),
      )
      for a in arms
  ]
  stacked = schedules.stack([s for s in per_arm for _ in range(trials_per_arm)])
  names = [a.name for a in arms for _ in range(trials_per_arm)]
  return stacked, names


def dispatch_lengths(plan: Plan, steps_per_dispatch: int) -> list[int]:
  """The distinct numbers of steps per train call of the loop (one compiled program each): between
  two evaluations L steps apart, calls of `steps_per_dispatch` steps and one of the remainder."""
  lengths, step = set(), 0
  for next_eval in plan.eval_steps:
    gap, step = next_eval - step, next_eval
    if gap >= steps_per_dispatch:
      lengths.add(steps_per_dispatch)
    if gap % steps_per_dispatch:
      lengths.add(gap % steps_per_dispatch)
  return sorted(lengths)
