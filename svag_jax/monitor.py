"""Watching a run's metrics: TensorBoard events and an optional W&B run.

metrics.jsonl stays the run record (svag_jax.workdir); everything here is derived from its rows:

    <workdir>/tensorboard/<arm>/events.out.tfevents.*   per arm, at every evaluation step, the
        mean and the 10/50/90% quantiles over the arm's live (not diverged) trials of every
        metric of the rows (`<metric>/mean`, `<metric>/q10`, `<metric>/q50`, `<metric>/q90`),
        `trials/live`, and the run's config as text (tag `config`, at step 0). The x-axis is the
        optimizer step (`step` of the rows; SVAG runs: `effective_step` = step / l is a metric).
        `tensorboard --logdir WORKDIR/tensorboard` (or a sweep root) shows the arms as runs.
    <workdir>/wandb.json     the W&B run id and the last step sent (config.logging.wandb only)

Resume: the event files are rewritten from metrics.jsonl when a run starts (after the record's
repair and truncation), so the events hold each evaluation step exactly once, whatever an earlier
attempt had written past its last checkpoint; `write_tensorboard(workdir)` (`python -m
svag_jax.monitor WORKDIR`) does the same for any finished workdir. A W&B run is resumed by its id
and gets only steps after the last one it was sent (the recomputed rows are the same numbers).

The other things that watch a run: `svag_jax.progress` (the progress line and compile times) and
`svag_jax.runlog` (WORKDIR/log.txt).
"""

import json
import os
import pathlib
import shutil
import sys
import uuid
from collections.abc import Iterable, Sequence

import ml_collections
import numpy as np

from svag_jax.lock import WorkdirLock
from svag_jax.record import WorkdirError, read_config, scan_metrics

QUANTILES = (10, 50, 90)
TENSORBOARD_DIR = 'tensorboard'
WANDB_FILE = 'wandb.json'
# Row fields that are not metrics (bookkeeping and identifiers).
_NOT_METRICS = ('step', 'epoch', 'trial', 'arm', 'diverged', 'svag_l')


def metric_keys(rows: Sequence[dict]) -> list[str]:
  """The numeric metrics of metric rows, in the order of the first row that has them."""
  keys: dict[str, None] = {}
  for row in rows:
    for k, v in row.items():
      if k not in _NOT_METRICS and (v is None or isinstance(v, int | float)):
        keys[k] = None
  return list(keys)


def arm_summaries(rows: Sequence[dict], keys: Sequence[str]) -> dict[str, dict[str, float]]:
  """{arm: {tag: value}} of one evaluation's rows: per metric in `keys`, the mean and quantiles
  (`QUANTILES`) over the arm's live trials with a finite value, and `trials/live`. A metric with
  no finite value in an arm (all trials diverged, or not estimated at this step) is left out."""
  out: dict[str, dict[str, float]] = {}
  for arm in dict.fromkeys(r['arm'] for r in rows):
    live = [r for r in rows if r['arm'] == arm and not r['diverged']]
    tags = {'trials/live': float(len(live))}
    for k in keys:
      v = np.array([r[k] for r in live if r.get(k) is not None], np.float64)
      v = v[np.isfinite(v)]
      if v.size:
        tags[f'{k}/mean'] = float(v.mean())
        for q, value in zip(QUANTILES, np.percentile(v, QUANTILES)):
          tags[f'{k}/q{q}'] = float(value)
    out[arm] = tags
  return out


def by_step(rows: Iterable[dict]) -> dict[int, list[dict]]:
  """Rows grouped by their step, in the order written."""
  groups: dict[int, list[dict]] = {}
  for row in rows:
    groups.setdefault(row['step'], []).append(row)
  return groups


def _config_markdown(config: dict) -> str:
  # Indented by 4 spaces: TensorBoard's text plugin renders it as a code block.
  text = json.dumps(config, indent=2, sort_keys=True, default=str)
  return '\n'.join('    ' + line for line in text.splitlines())


class TensorBoardWriter:
  """Event files under `directory`, one sub-folder (TensorBoard run) per arm (tensorboardX)."""

  def __init__(self, directory: str | os.PathLike, config: dict):
    from tensorboardX import SummaryWriter  # noqa: PLC0415 (only runs that write events)

    self._summary_writer = SummaryWriter
    self.directory = pathlib.Path(directory)
    self.config_text = _config_markdown(config)
    self._writers: dict = {}

  def _writer(self, arm: str):
    if arm not in self._writers:
      w = self._summary_writer(str(self.directory / arm), flush_secs=30)
      w.add_text('config', self.config_text, 0)
      self._writers[arm] = w
    return self._writers[arm]

  def write(self, step: int, summaries: dict[str, dict[str, float]]) -> None:
    for arm, tags in summaries.items():
      w = self._writer(arm)
      for tag, value in tags.items():
        w.add_scalar(tag, value, step)

  def flush(self) -> None:
    for w in self._writers.values():
      w.flush()

  def close(self) -> None:
    for w in self._writers.values():
      w.close()
    self._writers = {}


class WandbWriter:
  """The same summaries to a W&B run (config.logging.wandb), resumed by the id in wandb.json."""

  def __init__(self, workdir: pathlib.Path, config: dict, settings: ml_collections.ConfigDict):
    try:
      import wandb  # noqa: PLC0415 (an optional extra)
    except ImportError as e:
      raise ImportError(
          'config.logging.wandb = True needs the wandb package: pip install "svag_jax[wandb]" '
          '(or set config.logging.wandb = False).'
      ) from e
    self.path = workdir / WANDB_FILE
    state = json.loads(self.path.read_text()) if self.path.exists() else {}
    run_id = state.get('id') or uuid.uuid4().hex[:12]
    self.last_step = int(state.get('last_step', -1))
    self.run = wandb.init(
        project=settings.wandb_project,
        name=workdir.name,
        id=run_id,
        resume='allow',
        dir=str(workdir),
        mode=settings.wandb_mode,
        config=config,
    )
    self.run.define_metric('*', step_metric='step')
    self._save(run_id)

  def _save(self, run_id: str) -> None:
    tmp = self.path.with_name(self.path.name + '.tmp')
    tmp.write_text(json.dumps({'id': run_id, 'last_step': self.last_step}))
    os.replace(tmp, self.path)

  def write(self, step: int, summaries: dict[str, dict[str, float]]) -> None:
    if step <= self.last_step:  # sent by an earlier attempt (the same numbers)
      return
    data = {f'{arm}/{tag}': v for arm, tags in summaries.items() for tag, v in tags.items()}
    self.run.log({'step': step, **data}, step=step)
    self.last_step = step
    self._save(self.run.id)

  def flush(self) -> None:
    pass

  def close(self) -> None:
    self.run.finish()


class Writers:
  """The metric writers a config asks for, fed one evaluation's rows at a time."""

  def __init__(self, writers: list):
    self.writers = writers

  @classmethod
  def open(
      cls,
      workdir: pathlib.Path,
      settings: ml_collections.ConfigDict,
      config: dict,
      rows: Sequence[dict],
  ) -> 'Writers':
    """The writers of `settings` (config.logging) for `workdir`, holding `rows` (the record so
    far: the event files are rewritten from them; W&B gets the steps it has not had)."""
    writers = []
    if settings.tensorboard:
      directory = workdir / TENSORBOARD_DIR
      shutil.rmtree(directory, ignore_errors=True)  # derived from metrics.jsonl: rewritten
      writers.append(TensorBoardWriter(directory, config))
    if settings.wandb:
      writers.append(WandbWriter(workdir, config, settings))
    out = cls(writers)
    if writers:
      keys = metric_keys(rows)
      for step, group in by_step(rows).items():
        out.write(step, group, keys)
      out.flush()
    return out

  def write(self, step: int, rows: Sequence[dict], keys: Sequence[str] | None = None) -> None:
    if self.writers:
      summaries = arm_summaries(rows, metric_keys(rows) if keys is None else keys)
      for w in self.writers:
        w.write(step, summaries)

  def flush(self) -> None:
    for w in self.writers:
      w.flush()

  def close(self) -> None:
    for w in self.writers:
      w.close()


def write_tensorboard(workdir: str | os.PathLike) -> pathlib.Path:
  """(Re)writes WORKDIR/tensorboard/ from the workdir's metrics.jsonl and config.json."""
  workdir = pathlib.Path(workdir)
  rows, _, _, _ = scan_metrics(workdir / 'metrics.jsonl')
  if not rows:
    raise FileNotFoundError(f'{workdir / "metrics.jsonl"} has no metric rows to write.')
  config = read_config(workdir)
  settings = ml_collections.ConfigDict({'tensorboard': True, 'wandb': False})
  Writers.open(workdir, settings, config, rows).close()
  return workdir / TENSORBOARD_DIR


def main(argv: Sequence[str] | None = None) -> int:
  args = list(sys.argv[1:] if argv is None else argv)
  if not args or args[0] in ('-h', '--help'):
    print(
        'usage: python -m svag_jax.monitor WORKDIR [WORKDIR ...]: (re)writes the TensorBoard '
        'events of finished or running workdirs from their metrics.jsonl.'
    )
    return 0 if args else 2
  for w in args:  # a writer of the record: it holds the workdir's lock (svag_jax.lock)
    try:
      if not pathlib.Path(w).is_dir():
        raise FileNotFoundError(f'{w} is not a directory: give the workdir of a run.')
      with WorkdirLock(w):
        print(write_tensorboard(w))
    except (OSError, ValueError, WorkdirError) as e:
      where = f'{e.strerror}: {e.filename}' if isinstance(e, OSError) and e.filename else e
      print(f'svag_jax: {type(e).__name__}: {" ".join(str(where).split())}', file=sys.stderr)
      return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())
