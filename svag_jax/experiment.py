"""`run(config, workdir)`: build the pieces from a config and run the training loop.

The loop advances all trials `train.steps_per_dispatch` steps per call without waiting for the
device, evaluates every `train.eval_every` epochs (one metrics row per trial), saves predictions at
`train.predictions_at` and every trial's weights at `train.params_at`, checkpoints, and resumes
from the newest readable checkpoint when the same command is run again on the same workdir.
SIGTERM / Ctrl-C write a checkpoint and status 'preempted'. A trial whose loss becomes non-finite
is marked diverged (its rows say `"diverged": true` with null values from then on); when every
trial has diverged the run stops with status 'diverged'. Rows already written are never lost.

Resume after a crash (`_record_limit`): a partial last metrics line, unreadable predictions/params
files and leftover temporary files are set aside (svag_jax.repair), and the run continues
from the newest readable checkpoint whose last evaluation the record holds completely (metrics rows
of every trial, and the files of that evaluation); newer checkpoints are set aside. Everything after
that evaluation is recomputed, so the record ends up as an uninterrupted run's. A command that is
refused or fails before training leaves a `done` or `diverged` status as it is (workdir.py).
"""

import dataclasses

import jax
import ml_collections
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from svag_jax import arms as arms_lib
from svag_jax import config as config_lib
from svag_jax import data as data_lib
from svag_jax import memory, monitor, provenance, repair, run_setup, software
from svag_jax.checkpoint import Checkpointer
from svag_jax.checks import ConfigError
from svag_jax.plan import Plan, dispatch_lengths, listed
from svag_jax.preemption import Preemption
from svag_jax.progress import Progress
from svag_jax.record import FINAL_STATUSES, complete_eval_step, scan_metrics
from svag_jax.rows import METRIC_KEYS, metric_rows, summary_line
from svag_jax.runlog import RunLog
from svag_jax.train import Trainer, TrainState
from svag_jax.trials import TrialRunner
from svag_jax.workdir import Workdir


def describe(config: ml_collections.ConfigDict) -> dict:
  """The run record and the run plan of a valid `config`, without training (`--print_config`).

  Returns:
    {'config': `config_lib.resolved(config)`, 'plan': steps, evaluations, checkpoints, snapshots,
    G/N estimates (in optimizer steps), trial chunks and the compiled train programs}.
  """
  ds = data_lib.load(config.data)
  config_lib.validate_with_data(config, ds.num_train)
  trainer = Trainer.from_config(config, ds.num_train, ds.num_classes)
  plan = Plan.make(config, trainer.steps_per_epoch * config.optim.svag_l)
  arms = arms_lib.arms(config)
  runner = TrialRunner.from_config(trainer, config.trials.num * len(arms), config.trials)
  lengths = dispatch_lengths(plan, config.train.steps_per_dispatch)
  return {
      'config': config_lib.resolved(config),
      'plan': {
          'data': f'{ds.name}: {ds.num_train} train / {len(ds.test_labels)} test examples',
          'trials': {a.name: config.trials.num for a in arms},
          'steps_per_epoch': plan.steps_per_epoch,
          'total_steps': plan.total_steps,
          'eval_steps': listed(plan.eval_steps),
          'checkpoint_steps': listed(plan.checkpoint_steps),
          'prediction_epochs': sorted(plan.prediction_steps.values()),
          'params_epochs': sorted(plan.params_steps.values()),
          'gn_steps': listed(plan.gn_steps),
          'chunks': [n for _, n in runner.chunks],
          'devices': len(runner.devices),
          'steps_per_dispatch': lengths,
          'train_programs': len(runner.chunk_sizes) * len(lengths),
          'groups': run_setup.GROUP_SOURCES[config.metrics.groups](config),
          'memory': (est := memory.estimate(config, ds)).summary(),
          'memory_bytes': est.numbers(),
      },
  }


def run(
    config: ml_collections.ConfigDict, workdir: str, allow_version_change: bool = False
) -> dict:
  """Trains every trial of `config`, writing the run record to `workdir`; resumes if possible.

  The command's log goes to WORKDIR/log.txt as well, TensorBoard events to WORKDIR/tensorboard/
  (config.logging; svag_jax.runlog, svag_jax.monitor). Limits, lock and the record's checks:
  svag_jax.memory, svag_jax.provenance (`allow_version_change`: resume under other software).

  Returns:
    {'status', 'step', 'metrics': {name: float array [T]} of the last eval, 'arms': [...]}.
  """
  config_lib.validate(config)
  ds = data_lib.load(config.data)
  config_lib.validate_with_data(config, ds.num_train)
  memory.check(config, ds)
  wd = Workdir(workdir, jax.process_index() == 0, software.versions())  # process 0 writes
  with provenance.holding(wd), RunLog(wd.path, enabled=wd.writer) as log:
    return _run(config, ds, wd, log, allow_version_change)


def _run(
    config: ml_collections.ConfigDict, ds: data_lib.Dataset, wd: Workdir, log: RunLog, allow: bool
) -> dict:
  """The loop of `run`: resume, train, evaluate, checkpoint; the status in every outcome."""
  record = config_lib.resolved(config)  # what the run reads, arms resolved
  resuming, meta = provenance.start(wd, record, allow)  # refusals write nothing else
  s = run_setup.setup(config, ds, wd)
  plan, runner, arms = s.plan, s.runner, s.arm_names
  ckpt = Checkpointer(wd.checkpoints_dir, config.checkpoint.max_to_keep, meta)
  evals, status, at, error = None, 'running', None, None
  prior, trained = wd.status(), False
  writers = monitor.Writers([])
  progress = Progress(plan.total_steps, s.images_per_step, len(arms), config.logging.progress)
  try:
    states, at = _resume(s, wd, ckpt, runner.init(config.seed, s.schedules, s.data))
    _rewind_record(wd, plan, at, config.train.epochs)
    if at.step < plan.total_steps:  # a rerun of a finished run with nothing to do keeps its status
      writers = _open_record(config, wd, log, record, resuming, at.step, plan.total_steps)
      trained = True
    progress.restart(at.step)
    preemption = Preemption()
    with preemption.installed():
      while at.step < plan.total_steps:
        next_eval = next(e for e in plan.eval_steps if e > at.step)
        n = min(config.train.steps_per_dispatch, next_eval - at.step)
        what = f'the train step for {n} steps per call ({len(runner.chunk_sizes)} program(s))'
        states = progress.call(('train', n), what, runner.train, states, s.data, n, steps=n)
        at.step += n
        progress.update(at.step, pending=runner.loss_sums)
        if at.step == next_eval:
          evals = _evaluate(s, wd, states, at, writers, progress, config.train.epochs)
          if at.diverged.all():
            status = 'diverged'
            message = (
                f'All {len(arms)} trials diverged by step {at.step} (non-finite loss). '
                "Lower optim.lr (or the arms' lr), or check the data normalisation."
            )
            wd.write_status(status, step=at.step, message=message)
            return _outcome(status, at, evals, arms, message=message)
        if preemption.check() or (at.step == at.last_eval and at.step in plan.checkpoint_steps):
          writers.flush()
          ckpt.save(at.step, {'states': states, 'loss': runner.loss_sums, 'progress': at.tree()})
        if preemption.requested:
          ckpt.wait()
          status = 'preempted'
          wd.write_status(status, step=at.step, total_steps=plan.total_steps)
          logging.warning('Preempted at step %d; rerun the same command to resume.', at.step)
          return _outcome(status, at, evals, arms)
    ckpt.wait()
    status = 'done'
    if evals is None:  # resumed a finished run: report its last evaluation again
      evals, _ = runner.evaluate(states, s.splits, s.data)
    summary = summary_line(evals, at.diverged, arms)
    wd.write_status(status, step=at.step, total_steps=plan.total_steps, summary=summary)
    return _outcome(status, at, evals, arms)
  except BaseException as e:
    error = f'{type(e).__name__}: {e}'
    _record_failure(wd, status, trained, prior, error)
    status = 'failed'
    raise
  finally:
    progress.clear()
    writers.close()
    ckpt.close()
    step = None if at is None else at.step
    wd.record_attempt(status, step=step, **({'error': error} if error else {}))


@dataclasses.dataclass
class _Position:
  """Where the loop is, checkpointed as 'progress': the step, the step of the last evaluation and
  the trials diverged so far (bool [T])."""

  step: int
  last_eval: int
  diverged: np.ndarray

  def tree(self) -> dict:
    return {
        'step': np.asarray(self.step),
        'last_eval': np.asarray(self.last_eval),
        'diverged': self.diverged,
    }


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
    limit = complete_eval_step(repair.repair_metrics(wd), num_trials)
    for epochs in repair.repair_files(wd).values():
      for epoch in epochs:
        limit = min(limit, max(1, round(epoch * plan.steps_per_epoch)) - 1)
  if jax.process_count() > 1:
    limit = int(multihost_utils.broadcast_one_to_all(np.int32(limit)))
  return limit


def _resume(
    s: run_setup.Setup, wd: Workdir, ckpt: Checkpointer, states: list[TrainState]
) -> tuple[list[TrainState], _Position]:
  """The states and position to train from: those of the newest checkpoint that the repaired run
  record holds completely (`_record_limit`), with its loss sums put back in the runner; else the
  fresh `states` at step 0."""
  limit = _record_limit(wd, s.plan, len(s.arm_names))

  def ahead_of_record(tree) -> str | None:
    last = int(tree['progress']['last_eval'])
    if last > limit:
      return (
          f'it is ahead of the run record: its last evaluation is at step {last}, the '
          f'record (metrics.jsonl rows of all trials, predictions, params) is complete only '
          f'to step {limit}'
      )
    return None

  at = _Position(0, 0, np.zeros(len(s.arm_names), bool))
  target = {'states': states, 'loss': s.runner.zeros(), 'progress': at.tree()}
  restored = ckpt.restore_latest(target, accept=ahead_of_record)
  s.runner.reset_losses()
  if restored is not None:
    _, tree = restored
    states, p = tree['states'], tree['progress']
    s.runner.reset_losses(tree['loss'])
    at = _Position(int(p['step']), int(p['last_eval']), np.asarray(p['diverged'], bool).copy())
    logging.info('Resuming from step %d.', at.step)
  return states, at


def _rewind_record(wd: Workdir, plan: Plan, at: _Position, epochs: float) -> None:
  """Refuses a run that is already past `epochs`; drops the metric rows written after the
  checkpoint of `at` (they are recomputed)."""
  if at.step > plan.total_steps:
    raise ConfigError(
        f'config.train.epochs = {epochs}: the run in {wd.path} is already at step {at.step} > '
        f'{plan.total_steps}; raise train.epochs to continue it or use a new --workdir.'
    )
  dropped = repair.truncate_metrics(wd, at.last_eval)
  if dropped:
    logging.info(
        'Dropped %d metric rows written after the checkpoint; they are recomputed.', dropped
    )


def _evaluate(
    s: run_setup.Setup,
    wd: Workdir,
    states: list[TrainState],
    at: _Position,
    writers: monitor.Writers,
    progress: Progress,
    epochs: float,
) -> dict[str, np.ndarray]:
  """The evaluation at step `at.step` and its record: one metrics row per trial (metrics.jsonl and
  the writers), the planned predictions and params files, the log line. Marks the trials found
  diverged in `at`, restarts the runner's loss sums. Returns the metrics {name: float [T]}."""
  step, epoch = at.step, at.step / s.plan.steps_per_epoch
  evals, preds = progress.call(
      'eval', 'the evaluation', s.runner.evaluate, states, s.splits, s.data
  )
  step_loss = s.runner.mean_losses(step - at.last_eval)
  checked = [v for k, v in evals.items() if k in METRIC_KEYS]  # not the angles and group norms
  finite = np.isfinite(step_loss) & np.all([np.isfinite(v) for v in checked], axis=0)
  for i in np.flatnonzero(~finite & ~at.diverged):
    logging.warning(
        'Trial %d (%s) diverged before step %d (non-finite loss).', i, s.arm_names[i], step
    )
  at.diverged |= ~finite
  gn = s.runner.gradient_noise(states, s.data) if step in s.plan.gn_steps else None
  rows = metric_rows(step, epoch, s.arm_names, step_loss, evals, at.diverged, s.svag_time, gn)
  wd.append_metrics(rows)
  writers.write(step, rows)
  if step in s.plan.prediction_steps:
    test_preds = preds[:, : s.splits['test'].size]
    wd.save_predictions(s.plan.prediction_steps[step], test_preds, s.arm_names, at.diverged)
  if step in s.plan.params_steps:
    wd.save_params(s.plan.params_steps[step], s.runner.weights(states), s.arm_names)
  s.runner.reset_losses()
  at.last_eval = step
  progress.clear()
  logging.info(
      'epoch %.2f/%g  %s  %s',
      epoch,
      epochs,
      progress.status(step),
      summary_line(evals, at.diverged, s.arm_names),
  )
  return evals


def _open_record(
    config: ml_collections.ConfigDict,
    wd: Workdir,
    log: RunLog,
    record: dict,
    resuming: bool,
    step: int,
    total_steps: int,
) -> monitor.Writers:
  """A command that trains: its config and 'running' status in the record, WORKDIR/log.txt, and
  the metric writers, rewritten from the record as it now stands."""
  if resuming:
    wd.write_config(record)  # resumable fields (e.g. train.epochs) may have changed
  wd.write_status('running', step=step, total_steps=total_steps)
  log.start()
  if not wd.writer:
    return monitor.Writers([])
  return monitor.Writers.open(wd.path, config.logging, record, scan_metrics(wd.metrics_path)[0])


def _record_failure(wd: Workdir, status: str, trained: bool, prior: str | None, error: str) -> None:
  """Status 'failed' for a command that trained (or a run that was not finished); a finished run
  that this command did not train keeps its status (the failure is in attempts.jsonl)."""
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


def _outcome(status: str, at: _Position, evals: dict | None, arms: list[str], **extra) -> dict:
  return {'status': status, 'step': at.step, 'metrics': evals, 'arms': arms, **extra}
