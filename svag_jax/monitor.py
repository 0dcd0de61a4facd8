"""Watching a run: TensorBoard events, an optional W&B run, a live progress line, WORKDIR/log.txt.

metrics.jsonl stays the run record (svag_jax.workdir); everything here is derived from its rows:

    <workdir>/tensorboard/<arm>/events.out.tfevents.*   per arm, at every evaluation step, the
        mean and the 10/50/90% quantiles over the arm's live (not diverged) trials of every
        metric of the rows (`<metric>/mean`, `<metric>/q10`, `<metric>/q50`, `<metric>/q90`),
        `trials/live`, and the run's config as text (tag `config`, at step 0). The x-axis is the
        optimizer step (`step` of the rows; SVAG runs: `effective_step` = step / l is a metric).
        `tensorboard --logdir WORKDIR/tensorboard` (or a sweep root) shows the arms as runs.
    <workdir>/log.txt        every log line of the command (absl INFO and up, warnings), as on
                             the console; the previous commands' logs are log.txt.1, .2, ...
    <workdir>/wandb.json     the W&B run id and the last step sent (config.logging.wandb only)

Resume: the event files are rewritten from metrics.jsonl when a run starts (after the record's
repair and truncation), so the events hold each evaluation step exactly once, whatever an earlier
attempt had written past its last checkpoint; `write_tensorboard(workdir)` (`python -m
svag_jax.monitor WORKDIR`) does the same for any finished workdir. A W&B run is resumed by its id
and gets only steps after the last one it was sent (the recomputed rows are the same numbers).

`Progress` times the compilation of the train step (printed once done, and left out of the rate
and the ETA) and, when stderr is a terminal (config.logging.progress = 'auto'), keeps one live
line between evaluations: steps/s, images/s over all trials, ETA. In non-interactive logs (CI,
SLURM) there is one line per evaluation.
"""

import json
import logging as logging_std
import math
import os
import pathlib
import shutil
import sys
import time
import uuid
from collections.abc import Iterable, Sequence

import jax
import ml_collections
import numpy as np
from absl import logging

from svag_jax.record import scan_metrics

QUANTILES = (10, 50, 90)
LOG_NAME = 'log.txt'
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
  config = json.loads((workdir / 'config.json').read_text())
  settings = ml_collections.ConfigDict({'tensorboard': True, 'wandb': False})
  Writers.open(workdir, settings, config, rows).close()
  return workdir / TENSORBOARD_DIR


# ---- log.txt ----


def _rotate(path: pathlib.Path) -> None:
  """Moves an existing, non-empty `path` to `<name>.<n>`, n = 1, 2, ... the first free one."""
  if path.exists() and path.stat().st_size:
    n = 1
    while path.with_name(f'{path.name}.{n}').exists():
      n += 1
    path.rename(path.with_name(f'{path.name}.{n}'))


class QuietLibraries(logging_std.Filter):
  """Drops INFO records of orbax (its per-save chatter) and of JAX's backend probing ("Unable to
  initialize backend 'tpu'" on a machine without one); warnings and errors pass."""

  QUIET = ('/orbax/', 'xla_bridge.py')

  def filter(self, record: logging_std.LogRecord) -> bool:
    return record.levelno >= logging_std.WARNING or not any(
        q in record.pathname for q in self.QUIET
    )


class RunLog:
  """Appends every log record of the process (absl and Python logging, captured warnings) to
  WORKDIR/log.txt while installed, with the console's format and `QuietLibraries`.

  Records are held in memory until `start()`, which the run calls once it trains: a command
  refused before that (a changed config, a finished run, ...) leaves the workdir as it was (its
  reason is in attempts.jsonl and on the console). `start()` moves an earlier log.txt to
  log.txt.<n> and writes the held records first. `enabled=False` (processes other than the
  writer of a multi-host run) installs nothing.
  """

  def __init__(self, workdir: pathlib.Path, enabled: bool = True):
    self.path = workdir / LOG_NAME
    self.enabled = enabled
    self.handler: logging_std.Handler | None = None
    self._held: list[logging_std.LogRecord] | None = []

  def __enter__(self) -> 'RunLog':
    if self.enabled:
      self.handler = _Handler(self)
      self.handler.setFormatter(logging.PythonFormatter())
      self.handler.addFilter(QuietLibraries())
      logging_std.getLogger().addHandler(self.handler)
    return self

  def start(self) -> None:
    """From now on, write to WORKDIR/log.txt (rotating an earlier one), held records first."""
    if self.handler is None or self._held is None:
      return
    _rotate(self.path)
    self._file = open(self.path, 'a', encoding='utf-8')  # noqa: SIM115 (closed in __exit__)
    held, self._held = self._held, None
    for record in held:
      self.write(self.handler.format(record))

  def write(self, line: str) -> None:
    self._file.write(line + '\n')
    self._file.flush()

  def emit(self, record: logging_std.LogRecord) -> None:
    """Holds `record` until the log starts, then writes it."""
    if self._held is not None:
      self._held.append(record)
    else:
      self.write(self.handler.format(record))

  def __exit__(self, *exc) -> None:
    if self.handler is not None:
      logging_std.getLogger().removeHandler(self.handler)
      self.handler = None
      if self._held is None:
        self._file.close()


class _Handler(logging_std.Handler):
  """RunLog's handler (RunLog.emit)."""

  def __init__(self, log: RunLog):
    super().__init__()
    self.log = log

  def emit(self, record: logging_std.LogRecord) -> None:
    try:
      self.log.emit(record)
    except Exception:  # noqa: BLE001 (logging must not break the run)
      self.handleError(record)


# ---- progress ----


def format_eta(seconds: float) -> str:
  if not math.isfinite(seconds):
    return '?'
  days, rest = divmod(int(max(0, seconds)), 86400)
  clock = time.strftime('%H:%M:%S', time.gmtime(rest))
  return f'{days}d {clock}' if days else clock


class Progress:
  """Rate, ETA and compile times of the training loop, and the live line on a terminal.

  Calls that compile (the first of each dispatch length, and the first evaluation) are timed
  apart, blocking before and after them, and left out of the rate: steps/s and the ETA are those
  of the compiled program, the evaluations between included.
  """

  def __init__(
      self,
      total_steps: int,
      images_per_step: float,
      num_trials: int,
      mode: str = 'auto',
      stream=None,
      min_interval: float = 0.5,
      clock=time.perf_counter,
  ):
    self.stream = stream or sys.stderr
    self.clock = clock
    isatty = getattr(self.stream, 'isatty', lambda: False)()
    self.live = mode == 'always' or (mode == 'auto' and isatty)
    self.total_steps, self.num_trials = total_steps, num_trials
    self.images_per_step = images_per_step
    self.restart(0)
    self.compiled: set = set()
    self.min_interval, self._last_draw = min_interval, 0.0
    self._line_shown = False

  def restart(self, step: int) -> None:
    """Counts the rate from now, at `step` (where a resumed run starts)."""
    self.start_step, self.t0 = step, self.clock()
    self.excluded_s, self.excluded_steps = 0.0, 0

  def compiles(self, key) -> bool:
    """True the first time `key` (e.g. ('train', steps per call)) is seen."""
    return key not in self.compiled

  def call(self, key, what: str, fn, *args, steps: int = 0):
    """`fn(*args)`, through `timed_compile` the first time `key` is seen (it compiles `what`)."""
    if self.compiles(key):
      return self.timed_compile(key, what, fn, *args, steps=steps)
    return fn(*args)

  def timed_compile(self, key, what: str, fn, *args, steps: int = 0):
    """Runs `fn(*args)` (a call that compiles `what`), blocked, and logs its time."""
    jax.block_until_ready(args)
    t = self.clock()
    out = jax.block_until_ready(fn(*args))
    dt = self.clock() - t
    self.compiled.add(key)
    self.excluded_s += dt
    self.excluded_steps += steps
    self.clear()
    logging.info('compiled %s in %.1f s (compile + first call).', what, dt)
    return out

  def rate(self, step: int) -> float:
    """Steps/s since the start, compile calls left out (nan before a compiled call)."""
    steps = step - self.start_step - self.excluded_steps
    seconds = self.clock() - self.t0 - self.excluded_s
    return steps / seconds if steps > 0 and seconds > 0 else math.nan

  def status(self, step: int) -> str:
    rate = self.rate(step)
    if not math.isfinite(rate):
      return f'step {step}/{self.total_steps}  (rate after the first compiled call)'
    return (
        f'step {step}/{self.total_steps}  {rate:.1f} steps/s '
        f'({rate * self.images_per_step * self.num_trials:.0f} img/s over {self.num_trials} '
        f'trials)  ETA {format_eta((self.total_steps - step) / rate)}'
    )

  def update(self, step: int, pending=None) -> None:
    """Redraws the live line (at most every `min_interval` s; waits for `pending` first, so the
    line counts steps done, not dispatched). Does nothing unless live."""
    if not self.live:
      return
    now = self.clock()
    if now - self._last_draw < self.min_interval:
      return
    if pending is not None:
      jax.block_until_ready(pending)
    self._last_draw = now
    frac = step / self.total_steps if self.total_steps else 1.0
    bar = '#' * int(20 * frac)
    self.stream.write(f'\r[{bar:<20}] {self.status(step)}\x1b[K')
    self.stream.flush()
    self._line_shown = True

  def clear(self) -> None:
    """Erases the live line, so that a log line starts on a clean line."""
    if self._line_shown:
      self.stream.write('\r\x1b[K')
      self.stream.flush()
      self._line_shown = False


def main(argv: Sequence[str] | None = None) -> int:
  args = list(sys.argv[1:] if argv is None else argv)
  if not args or args[0] in ('-h', '--help'):
    print(
        'usage: python -m svag_jax.monitor WORKDIR [WORKDIR ...]: (re)writes the TensorBoard '
        'events of finished or running workdirs from their metrics.jsonl.'
    )
    return 0 if args else 2
  for w in args:
    print(write_tensorboard(w))
  return 0


if __name__ == '__main__':
  sys.exit(main())
