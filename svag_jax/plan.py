"""When things happen in a run, in optimizer steps, and the per-trial schedules of the arms."""

import dataclasses

import ml_collections

from svag_jax import schedules
from svag_jax.arms import Arm


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
  """The distinct numbers of steps per train call of the loop (one compiled program each)."""
  lengths, step = set(), 0
  for next_eval in plan.eval_steps:
    while step < next_eval:
      n = min(steps_per_dispatch, next_eval - step)
      lengths.add(n)
      step += n
  return sorted(lengths)
