"""`run(config, workdir)`: build the pieces from a config and run the training loop.

The loop advances all trials `train.steps_per_dispatch` steps per call without waiting for the
device, evaluates every `train.eval_every` epochs (one metrics row per trial), saves predictions at
`train.predictions_at` and every trial's weights at `train.params_at`, checkpoints, and resumes
from the newest readable checkpoint when the same command is run again on the same workdir.
SIGTERM / Ctrl-C write a checkpoint and status 'preempted'. A trial whose loss becomes non-finite
is marked diverged (its rows say `"diverged": true` with null values from then on); when every
trial has diverged the run stops with status 'diverged'. Rows already written are never lost.

Resume after a crash (`_record_limit`): a partial last metrics line, unreadable predictions/params
files and leftover temporary files are set aside (workdir.Workdir.repair_*), and the run continues
from the newest readable checkpoint whose last evaluation the record holds completely (metrics rows
of every trial, and the files of that evaluation); newer checkpoints are set aside. Everything after
that evaluation is recomputed, so the record ends up as an uninterrupted run's. A command that is
refused or fails before training leaves a `done` or `diverged` status as it is (workdir.py).
"""

import math

import jax
import ml_collections
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from svag_jax import config as config_lib
from svag_jax import data as data_lib
from svag_jax import models, monitor
from svag_jax.checkpoint import Checkpointer
from svag_jax.data import TrainData, make_eval_split
from svag_jax.evaluate import Evaluator
from svag_jax.plan import Plan, dispatch_lengths, trial_schedules  # noqa: F401 (re-exported)
from svag_jax.preemption import Preemption
from svag_jax.progress import Progress
from svag_jax.record import scan_metrics
from svag_jax.runlog import RunLog
from svag_jax.schedules import SGD_TIME, SvagTime
from svag_jax.train import Trainer
from svag_jax.trials import TrialRunner
from svag_jax.workdir import DIVERGED_PREDICTION, FINAL_STATUSES, Workdir, complete_eval_step

METRIC_KEYS = (
    'train_step_loss',
    'train_loss',
    'train_accuracy',
    'test_loss',
    'test_accuracy',
    'lr',
    'wd',
    'w_norm_sq',
    'effective_lr',
    'intrinsic_lr',
    'intrinsic_lr_momentum',
)
# Gradient signal/noise estimates (config.metrics): null in the rows of evals without one, and
# where the estimate is not finite (NSR when Ĝ = 0).
GN_KEYS = ('G', 'N', 'NSR')


def _rows(step, epoch, arm_names, step_loss, evals, diverged, svag_time=SGD_TIME, gn=None):
  """One row per trial. `effective_step` = step / l (SGD time, `svag_time`); G, N, NSR from `gn`
  (None when not estimated at this eval)."""
  rows = []
  values = {'train_step_loss': step_loss, **evals}
  for i, arm in enumerate(arm_names):
    row = {
        'step': step,
        'effective_step': svag_time.effective_step(step),
        'svag_l': svag_time.l,
        'epoch': epoch,
        'trial': i,
        'arm': arm,
        'diverged': bool(diverged[i]),
    }
    for k in METRIC_KEYS:
      row[k] = None if diverged[i] else float(values[k][i])
    for k in GN_KEYS:
      v = None if gn is None or diverged[i] else float(gn[k][i])
      row[k] = v if v is not None and math.isfinite(v) else None
    rows.append(row)
  return rows


def _summary_line(evals, diverged, arm_names) -> str:
  parts = []
  for arm in dict.fromkeys(arm_names):
    ok = [i for i, a in enumerate(arm_names) if a == arm and not diverged[i]]
    if ok:
      acc = evals['test_accuracy'][ok]
      parts.append(f'{arm}: test acc {acc.mean():.4f}±{acc.std():.4f}')
  return '; '.join(parts) + (f' ({int(diverged.sum())} diverged)' if diverged.any() else '')


def _record_limit(wd: Workdir, plan: Plan, num_trials: int) -> int:
  """Repairs a crashed run's record; returns the latest evaluation step it holds completely.

  The step is that of the last evaluation with metrics rows of all `num_trials` trials, lowered
  to before the evaluation of every predictions/params file that had to be set aside (those
  files are only rewritten when their evaluation is run again). A checkpoint whose last
  evaluation is later than this is ahead of the record and must not be resumed from: its rows
  or files would be missing for good. The same on every process (process 0 decides).
  """
  limit = 0
  if wd.writer:
    limit = complete_eval_step(wd.repair_metrics(), num_trials)
    for epochs in wd.repair_files().values():
      for epoch in epochs:
        limit = min(limit, max(1, round(epoch * plan.steps_per_epoch)) - 1)
  if jax.process_count() > 1:
    limit = int(multihost_utils.broadcast_one_to_all(np.int32(limit)))
  return limit


def make_trainer(config: ml_collections.ConfigDict, ds: data_lib.Dataset) -> Trainer:
  """The one-trial Trainer a config describes, for the data set `ds` (its evaluation:
  `evaluate.Evaluator.from_config`)."""
  return Trainer(
      model=models.build(config.model, ds.num_classes),
      batch_size=config.train.batch_size,
      num_train=ds.num_train,
      sampling=config.train.sampling,
      momentum=config.optim.momentum,
      unroll=config.train.unroll,
      oracle=config.optim.oracle,
      svag_l=config.optim.svag_l,
      noise_scale=config.optim.noise_scale,
      chunk_size=config.optim.chunk_size,
      gn_batches=config.metrics.gn_batches,
      augment=config.data.augment,
  )


def describe(config: ml_collections.ConfigDict) -> dict:
  """The run record and the run plan of a valid `config`, without training (`--print_config`).

  Returns:
    {'config': `config_lib.resolved(config)`, 'plan': steps, evaluations, checkpoints, snapshots,
    G/N estimates (in optimizer steps), trial chunks and the compiled train programs}.
  """
  ds = data_lib.load(config.data)
  config_lib.validate_with_data(config, ds.num_train)
  trainer = make_trainer(config, ds)
  plan = Plan.make(config, trainer.steps_per_epoch * config.optim.svag_l)
  arms = config_lib.arms(config)
  runner = TrialRunner.from_config(trainer, config.trials.num * len(arms), config.trials)
  lengths = dispatch_lengths(plan, config.train.steps_per_dispatch)
  return {
      'config': config_lib.resolved(config),
      'plan': {
          'data': f'{ds.name}: {ds.num_train} train / {len(ds.test_labels)} test examples',
          'trials': {a.name: config.trials.num for a in arms},
          'steps_per_epoch': plan.steps_per_epoch,
          'total_steps': plan.total_steps,
          'eval_steps': list(plan.eval_steps),
          'checkpoint_steps': sorted(plan.checkpoint_steps),
          'prediction_epochs': sorted(plan.prediction_steps.values()),
          'params_epochs': sorted(plan.params_steps.values()),
          'gn_steps': sorted(plan.gn_steps),
          'chunks': [n for _, n in runner.chunks],
          'devices': len(runner.devices),
          'steps_per_dispatch': lengths,
          'train_programs': len(runner.chunk_sizes) * len(lengths),
      },
  }


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains every trial of `config`, writing the run record to `workdir`; resumes if possible.

  The command's log goes to WORKDIR/log.txt as well, TensorBoard events to WORKDIR/tensorboard/
  (config.logging; svag_jax.runlog, svag_jax.monitor).

  Returns:
    {'status', 'step', 'metrics': {name: float array [T]} of the last eval, 'arms': [...]}.
  """
  config_lib.validate(config)
  ds = data_lib.load(config.data)
  config_lib.validate_with_data(config, ds.num_train)
  wd = Workdir(workdir, writer=jax.process_index() == 0)  # multi-host: process 0 writes
  with RunLog(wd.path, enabled=wd.writer) as log:
    return _run(config, ds, wd, log)


def _run(config: ml_collections.ConfigDict, ds: data_lib.Dataset, wd: Workdir, log: RunLog) -> dict:
  record = config_lib.resolved(config)  # what the run reads, arms resolved
  resuming = wd.config_path.exists()
  wd.start(record, write=not resuming)  # a resumed record is rewritten once the run goes on

  trainer = make_trainer(config, ds)
  svag_time = SvagTime.of(config.optim)
  # forward/backward passes per step, for the log
  images_per_step = trainer.spec.images_per_step(trainer.batch_size, ds.num_train)
  plan = Plan.make(config, svag_time.steps(trainer.steps_per_epoch))
  sched, arm_names = trial_schedules(
      config_lib.arms(config), config.trials.num, plan.steps_per_epoch, svag_time
  )
  num_trials = len(arm_names)
  if config.train.predictions_at and ds.num_classes >= DIVERGED_PREDICTION:
    raise config_lib.ConfigError(
        f'{ds.name} has {ds.num_classes} classes: predictions are saved as uint8 with '
        f'{DIVERGED_PREDICTION} marking diverged trials, so train.predictions_at needs at most '
        f'{DIVERGED_PREDICTION - 1} classes; set train.predictions_at = ().'
    )
  runner = TrialRunner.from_config(
      trainer,
      num_trials,
      config.trials,
      evaluator=Evaluator.from_config(config, ds.num_classes),
  )
  data = TrainData(ds.train_images, ds.train_labels, ds.mean, ds.std)
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
      num_trials,
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
  states = runner.init(config.seed, sched, data)
  progress = {
      'step': np.asarray(0),
      'last_eval': np.asarray(0),
      'diverged': np.zeros(num_trials, bool),
  }
  ckpt = Checkpointer(wd.checkpoints_dir, config.checkpoint.max_to_keep)
  evals, status = None, 'running'
  prior, trained, step, error = wd.status(), False, None, None
  writers = monitor.Writers([])
  progress_line = Progress(plan.total_steps, images_per_step, num_trials, config.logging.progress)
  try:
    limit = _record_limit(wd, plan, num_trials)

    def ahead_of_record(tree) -> str | None:
      last = int(tree['progress']['last_eval'])
      if last > limit:
        return (
            f'it is ahead of the run record: its last evaluation is at step {last}, the '
            f'record (metrics.jsonl rows of all trials, predictions, params) is complete only '
            f'to step {limit}'
        )
      return None

    restored = ckpt.restore_latest(
        {'states': states, 'loss': runner.zeros(), 'progress': progress}, accept=ahead_of_record
    )
    loss_sums = runner.zeros()
    if restored is not None:
      _, tree = restored
      states, loss_sums, progress = tree['states'], tree['loss'], tree['progress']
      logging.info('Resuming from step %d.', int(progress['step']))
    step, last_eval = int(progress['step']), int(progress['last_eval'])
    diverged = np.asarray(progress['diverged'], bool).copy()
    if step > plan.total_steps:
      raise config_lib.ConfigError(
          f'config.train.epochs = {config.train.epochs}: the run in {wd.path} is already at step '
          f'{step} > {plan.total_steps}; raise train.epochs to continue it or use a new --workdir.'
      )
    dropped = wd.truncate_metrics(last_eval)
    if dropped:
      logging.info(
          'Dropped %d metric rows written after the checkpoint; they are recomputed.', dropped
      )
    if step < plan.total_steps:  # a rerun of a finished run with nothing to do keeps its status
      if resuming:
        wd.write_config(record)  # resumable fields (e.g. train.epochs) may have changed
      wd.write_status('running', step=step, total_steps=plan.total_steps)
      trained = True
      log.start()  # the log of a command that trains: WORKDIR/log.txt
      if wd.writer:  # the event files are rewritten from the record as it now stands
        writers = monitor.Writers.open(
            wd.path, config.logging, record, scan_metrics(wd.metrics_path)[0]
        )
    k = config.train.steps_per_dispatch
    progress_line.restart(step)
    preemption = Preemption()
    with preemption.installed():
      while step < plan.total_steps:
        next_eval = next(s for s in plan.eval_steps if s > step)
        n = min(k, next_eval - step)
        states, losses = progress_line.call(
            ('train', n),
            f'the train step for {n} steps per call ({len(runner.chunk_sizes)} program(s))',
            runner.train,
            states,
            data,
            n,
            steps=n,
        )
        loss_sums = [a + b for a, b in zip(loss_sums, losses)]
        step += n
        progress_line.update(step, pending=losses)
        if step == next_eval:
          evals, preds = progress_line.call(
              'eval', 'the evaluation', runner.evaluate, states, splits, data
          )
          step_loss = runner.join(loss_sums) / (step - last_eval)
          finite = np.isfinite(step_loss) & np.all([np.isfinite(v) for v in evals.values()], axis=0)
          for i in np.flatnonzero(~finite & ~diverged):
            logging.warning(
                'Trial %d (%s) diverged before step %d (non-finite loss).', i, arm_names[i], step
            )
          diverged |= ~finite
          epoch = step / plan.steps_per_epoch
          gn = runner.gradient_noise(states, data) if step in plan.gn_steps else None
          rows = _rows(step, epoch, arm_names, step_loss, evals, diverged, svag_time, gn)
          wd.append_metrics(rows)
          writers.write(step, rows)
          if step in plan.prediction_steps:
            wd.save_predictions(
                plan.prediction_steps[step], preds[:, : splits['test'].size], arm_names, diverged
            )
          if step in plan.params_steps:
            wd.save_params(plan.params_steps[step], runner.weights(states), arm_names)
          loss_sums, last_eval = runner.zeros(), step
          progress_line.clear()
          logging.info(
              'epoch %.2f/%g  %s  %s',
              epoch,
              config.train.epochs,
              progress_line.status(step),
              _summary_line(evals, diverged, arm_names),
          )
          if diverged.all():
            status = 'diverged'
            message = (
                f'All {num_trials} trials diverged by step {step} (non-finite loss). '
                "Lower optim.lr (or the arms' lr), or check the data normalisation."
            )
            wd.write_status(status, step=step, message=message)
            return {
                'status': status,
                'step': step,
                'metrics': evals,
                'arms': arm_names,
                'message': message,
            }
        at_ckpt = step == last_eval and step in plan.checkpoint_steps
        if preemption.check() or at_ckpt:
          writers.flush()
          progress = {
              'step': np.asarray(step),
              'last_eval': np.asarray(last_eval),
              'diverged': diverged,
          }
          ckpt.save(step, {'states': states, 'loss': loss_sums, 'progress': progress})
        if preemption.requested:
          ckpt.wait()
          status = 'preempted'
          wd.write_status(status, step=step, total_steps=plan.total_steps)
          logging.warning('Preempted at step %d; rerun the same command to resume.', step)
          return {'status': status, 'step': step, 'metrics': evals, 'arms': arm_names}
    ckpt.wait()
    status = 'done'
    if evals is None:  # resumed a finished run: report its last evaluation again
      evals, _ = runner.evaluate(states, splits, data)
    wd.write_status(
        status,
        step=step,
        total_steps=plan.total_steps,
        summary=_summary_line(evals, diverged, arm_names),
    )
    return {'status': status, 'step': step, 'metrics': evals, 'arms': arm_names}
  except BaseException as e:
    error = f'{type(e).__name__}: {e}'
    if status == 'running' and (trained or prior not in FINAL_STATUSES):
      wd.write_status('failed', error=error, **({'previous': prior} if prior else {}))
    elif status == 'running':
      logging.warning(
          'The run in %s keeps its status %r; this attempt failed (%s), see %s.',
          wd.path,
          prior,
          error[:300],
          wd.attempts_path.name,
      )
    status = 'failed'
    raise
  finally:
    progress_line.clear()
    writers.close()
    ckpt.close()
    wd.record_attempt(status, step=step, **({'error': error} if error else {}))
