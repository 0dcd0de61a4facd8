"""Part 'runs' of benchmarks/gpu_trials.py (rows '# runs:'): each full-scale config of `RUNS` as its
run builds it (`Trainer` / `Evaluator.from_config`, `TrialRunner` with its trials.vmap_chunk and
mode) on synthetic data of its real shape and size: `fast_equilibrium` (one arm: all 500 trials,
timed --fe_s seconds after compiling), one point of the SVAG sweep
(`svag_convergence:preresnet32_b128`, l = 2) and of the LSR sweep (`lsr:preresnet32_bn`,
B = 128), and NGD (`ngd`, full batch over 50,000 images); the others timed --run_s seconds.

Each row: trials, arms, compile seconds, SGD steps/s of every trial, images/s summed over trials,
seconds per evaluation (train + test splits), peak device memory (MB, and per trial; '-' where the
backend has no memory stats; a process-wide high-water mark), and the extrapolated hours of one arm
and of the whole run (its epochs x steps per epoch at this rate, plus its evaluations; G/N
estimates, checkpoints and saved predictions excluded). Runs in --estimate also print the memory
estimate of `--print_config` (svag_jax.memory). A run that fails (e.g. out of device memory) prints
FAILED and its error, and the rest go on.
"""

import dataclasses
import math
import time

import jax

from benchmarks import cifar_runtime
from benchmarks import trials as bench
from svag_jax import arms as arms_lib
from svag_jax import config as config_lib
from svag_jax import data as data_lib
from svag_jax import memory, schema, sweep, train, trials
from svag_jax.evaluate import Evaluator
from svag_jax.launch import specs
from svag_jax.plan import trial_schedules
from svag_jax.schedules import SvagTime

SMOKE_DEPTH = 8  # the smoke run's PreResNet (every part of gpu_trials): one block per stage
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
      peak=bench.peak_bytes(device),
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
