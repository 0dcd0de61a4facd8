"""What a run builds from its config and data before it trains (`experiment.run`): the plan, the
trial runner, the per-trial schedules, the training data and evaluation splits, and the run's
scale-invariant groups (declared, found by `svag_jax.invariance`, or read back from
WORKDIR/groups.json)."""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from svag_jax import arms as arms_lib
from svag_jax import data as data_lib
from svag_jax import invariance, models
from svag_jax.checks import ConfigError
from svag_jax.data import EvalSplit, TrainData, make_eval_split, normalize
from svag_jax.evaluate import Evaluator
from svag_jax.models.external import train_kwargs
from svag_jax.plan import Plan, dispatch_lengths, trial_schedules
from svag_jax.record import DIVERGED_PREDICTION, read_groups
from svag_jax.sampling import STREAM_INIT
from svag_jax.schedules import Schedules, SvagTime
from svag_jax.train import Trainer
from svag_jax.trials import TrialRunner
from svag_jax.workdir import Workdir


@dataclasses.dataclass(frozen=True)
class Setup:
  """The pieces a run builds from its config (`setup`)."""

  plan: Plan
  runner: TrialRunner
  schedules: Schedules  # per trial, [T]
  arm_names: list[str]
  svag_time: SvagTime
  data: TrainData
  splits: dict[str, EvalSplit]
  images_per_step: int  # forward/backward passes of one step, in images (for the log)


# Where a run's groups come from, by config.metrics.groups (`experiment.describe`, --print_config).
GROUP_SOURCES = {
    'auto': lambda c: 'found at start'
    if models.invariance_groups(c.model, {}) is None
    else 'declared',
    'found': lambda c: 'found at start',
    'none': lambda c: 'none',
}


def run_groups(
    config: ml_collections.ConfigDict, trainer: Trainer, ds: data_lib.Dataset, wd: Workdir
):
  """The run's scale-invariant groups (config.metrics.groups), as `Trainer.groups` takes them.

  Read from WORKDIR/groups.json when the record has it (a resumed run keeps its groups);
  otherwise the built-in model's declared groups ('auto') or those `invariance.find_groups`
  finds for the weights of trial 0 on the first training examples ('auto' for a model named by
  import path, 'found' for any), written to groups.json (and the log). None for 'none' (no
  per-group metrics and no angular update).
  """
  if config.metrics.groups == 'none':
    return None
  recorded = read_groups(wd.path)
  if recorded is not None:
    return invariance.Groups.from_json(recorded).partition()
  model = trainer.model
  key = jax.random.fold_in(jax.random.fold_in(jax.random.key(config.seed), 0), STREAM_INIT)
  x = normalize(ds.train_images[:1], ds.mean, ds.std)
  variables = model.init({'params': key}, x, **train_kwargs(model, False))
  params = variables['params']
  declared = models.invariance_groups(config.model, params)
  if config.metrics.groups == 'auto' and declared is not None:
    groups = invariance.declared(declared, params)
  else:
    n = min(ds.num_train, max(_FIND_EXAMPLES, len(jax.tree.leaves(params))))
    idx = np.linspace(0, ds.num_train - 1, n).astype(int)  # spread over the training set
    images = normalize(jnp.asarray(ds.train_images[idx]), ds.mean, ds.std)
    labels = jnp.asarray(ds.train_labels[idx])
    groups = invariance.find_groups(model, variables, (images, labels))
    logging.info('%s', groups.summary())
  wd.write_groups(groups.to_json())
  return groups.partition()


# Examples of the batch find_groups tests the model on (at least one per parameter tensor).
_FIND_EXAMPLES = 64


def setup(config: ml_collections.ConfigDict, ds: data_lib.Dataset, wd: Workdir) -> Setup:
  """The plan, the trial runner and the data of a run (logged); the run's groups (`run_groups`)."""
  trainer = Trainer.from_config(config, ds.num_train, ds.num_classes)
  trainer = dataclasses.replace(trainer, groups=run_groups(config, trainer, ds, wd))
  svag_time = SvagTime.of(config.optim)
  plan = Plan.make(config, svag_time.steps(trainer.steps_per_epoch))
  sched, arm_names = trial_schedules(
      arms_lib.arms(config), config.trials.num, plan.steps_per_epoch, svag_time
  )
  if config.train.predictions_at and ds.num_classes >= DIVERGED_PREDICTION:
    raise ConfigError(
        f'{ds.name} has {ds.num_classes} classes: predictions are saved as uint8 with '
        f'{DIVERGED_PREDICTION} marking diverged trials, so train.predictions_at needs at most '
        f'{DIVERGED_PREDICTION - 1} classes; set train.predictions_at = ().'
    )
  evaluator = Evaluator.from_config(config, ds.num_classes)
  runner = TrialRunner.from_config(trainer, len(arm_names), config.trials, evaluator=evaluator)
  eb = config.train.eval_batch_size
  splits = {
      'train': make_eval_split(ds.train_images, ds.train_labels, eb),
      'test': make_eval_split(ds.test_images, ds.test_labels, eb),
  }
  logging.info(
      '%s: %d train / %d test examples; %d trials (%s) in %d chunk(s) on %d device(s); '
      'oracle %s (l = %d); %d steps/epoch, %d steps.',
      ds.name,
      ds.num_train,
      len(ds.test_labels),
      len(arm_names),
      ', '.join(dict.fromkeys(arm_names)),
      len(runner.chunks),
      len(runner.devices),
      config.optim.oracle,
      svag_time.l,
      plan.steps_per_epoch,
      plan.total_steps,
  )
  lengths = dispatch_lengths(plan, config.train.steps_per_dispatch)
  logging.info(
      'compiling the init, the train step for %d program(s) (chunks of %s trials x %s steps '
      'per call) and the evaluation ...',
      len(runner.chunk_sizes) * len(lengths),
      '/'.join(map(str, runner.chunk_sizes)),
      '/'.join(map(str, lengths)),
  )
  data = TrainData(ds.train_images, ds.train_labels, ds.mean, ds.std)
  images = trainer.spec.images_per_step(trainer.batch_size, ds.num_train)
  return Setup(plan, runner, sched, arm_names, svag_time, data, splits, images)
