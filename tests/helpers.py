"""Helpers shared by the tests: a tiny config that trains in seconds, fast compiles, tiny runs.

Plain functions (fixtures live in conftest.py). Importing this module does not start JAX, so
test modules may import it after conftest.py has set XLA_FLAGS.
"""

import contextlib
import pathlib

from svag_jax.configs import base


def tiny_config(**overrides):
  """A config that trains in seconds: tiny CNN on synthetic 8x8 images.

  Without per-group metrics (metrics.groups = 'none': no angular-update step compiled into the
  evaluation, ~2.5 s of CPU per run); the tests of the per-group columns
  (tests/test_byom.py) set 'auto', the default of every config.
  """
  c = base.get_config()
  c.data.source = 'synthetic'
  c.data.synthetic_shape = (8, 8, 1)
  c.data.synthetic_num_train = 256
  c.data.synthetic_num_test = 64
  c.data.synthetic_num_classes = 4
  c.model.widths = (4, 8)
  c.model.init_scale = 0.5
  c.train.batch_size = 32
  c.train.epochs = 2
  c.train.eval_every = 1.0
  c.train.steps_per_dispatch = 4
  c.trials.num = 2
  c.trials.vmap_chunk = 0  # one chunk: one compile (round-robin chunks compile per device)
  c.metrics.groups = 'none'
  for key, value in overrides.items():
    node = c
    *path, last = key.split('.')
    for p in path:
      node = node[p]
    node[last] = value
  return c


@contextlib.contextmanager
def most_optimizations_disabled():
  """Skip most XLA optimisations: for tests whose cost is compiling tiny programs."""
  import jax  # noqa: PLC0415

  previous = jax.config.read('jax_disable_most_optimizations')
  jax.config.update('jax_disable_most_optimizations', True)
  try:
    yield
  finally:
    jax.config.update('jax_disable_most_optimizations', previous)


def run_tiny(workdir, **overrides):
  """Trains tiny_config (1 epoch, 1 trial, plus overrides) into `workdir`: (result, metric rows)."""
  from svag_jax import experiment, record  # noqa: PLC0415 (jax: after conftest set XLA_FLAGS)

  cfg = tiny_config(**{'train.epochs': 1, 'trials.num': 1, **overrides})
  result = experiment.run(cfg, str(workdir))
  return result, record.read_metrics(workdir)


TRIALS_PER_ARM = 4
ARMS = {'Const': {'lr': 0.1}, 'LR-decay': {'lr': 0.4, 'lr_schedule': ((1, 0.5),)}}


def make_tiny_workdir(path: pathlib.Path) -> pathlib.Path:
  """Trains 2 arms x 4 trials of a tiny MLP for 2 epochs (predictions at epochs 1, 2) into `path`.

  A few seconds: all 8 trials in one vmapped program, most XLA optimisations off.
  """
  config = tiny_config(
      **{
          'model.name': 'mlp',
          'model.widths': (16,),
          'trials.num': TRIALS_PER_ARM,
          'trials.vmap_chunk': 0,
          'train.steps_per_dispatch': 8,
          'train.predictions_at': (1, 2),
      }
  )
  config.arms = ARMS
  from svag_jax import experiment  # noqa: PLC0415

  with most_optimizations_disabled():
    result = experiment.run(config, str(path))
  assert result['status'] == 'done', result
  return path


# ---- the command-line entry points, in this process (tests/test_bad_inputs.py, test_faults.py)

TINY = '--config=tests/tiny_config.py'
SHORT = [
    '--config.train.epochs=1',
    '--config.trials.num=1',
    '--config.train.eval_every=0.5',
    '--config.checkpoint.every=0.5',
]  # 8 steps; evals and checkpoints at 4 and 8 (conftest.py's `finished_tiny`)


def short(*more: str) -> list[str]:
  """SHORT with the `--config.*` fields of `more` replaced by them (a field given twice is
  refused), e.g. short('--config.train.epochs=1.5')."""
  fields = {a.partition('=')[0] for a in more}
  return [a for a in SHORT if a.partition('=')[0] not in fields] + list(more)


def run_cli(argv: list[str], entry: str = 'main') -> int:
  """Runs `launch.<entry>` with `argv` in this process (its flag parser and error handling);
  returns its exit code."""
  import sys  # noqa: PLC0415

  from absl import flags  # noqa: PLC0415

  from svag_jax.launch import cli  # noqa: PLC0415
  from svag_jax.launch import main as launch_main  # noqa: PLC0415
  from svag_jax.launch import sweep as launch_sweep  # noqa: PLC0415

  flags.FLAGS.unparse_flags()
  saved = sys.argv
  sys.argv = [f'launch.{entry}', *argv]
  try:
    if entry == 'sweep':
      return launch_sweep.main(argv)
    launch_main.main(cli.parse_flags(sys.argv))
  except SystemExit as e:
    return 0 if e.code is None else (e.code if isinstance(e.code, int) else 1)
  finally:
    sys.argv = saved
    flags.FLAGS.unparse_flags()
  return 0


def one_line(err: str) -> str:
  """The svag_jax line of stderr, checking there is exactly one and no traceback."""
  assert 'Traceback' not in err, err
  lines = [line for line in err.splitlines() if line.startswith('svag_jax: ')]
  assert len(lines) == 1, err
  return lines[0]


def snapshot(workdir: pathlib.Path) -> dict[str, bytes]:
  """The bytes of every file of a run record except the checkpoints and the attempts log (which
  gains a row per command)."""
  return {
      str(p.relative_to(workdir)): p.read_bytes()
      for p in sorted(workdir.rglob('*'))
      if p.is_file() and 'checkpoints' not in p.parts and p.name != 'attempts.jsonl'
  }


def event_steps(directory) -> dict[str, list[int]]:
  """{tag: [step of every event of the tag, in file order]} of all event files under
  `directory`, raw (no purging of orphaned steps, unlike EventAccumulator)."""
  steps: dict[str, list[int]] = {}
  from tensorboard.backend.event_processing import event_file_loader  # noqa: PLC0415

  for f in sorted(directory.rglob('events.out.tfevents.*')):
    for event in event_file_loader.EventFileLoader(str(f)).Load():
      for v in event.summary.value:
        steps.setdefault(f'{f.parent.name}:{v.tag}', []).append(event.step)
  return steps
