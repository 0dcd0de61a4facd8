"""Throughput of many trials under each execution strategy (not a test: it prints numbers).

    python -m benchmarks.trials [--models=cnn,mlp] [--trials=1,8,64,256] [--steps=0]
                                [--strategies=loop,vmap,vmap8,sbs8,im2col,im2col8]
                                [--rounds=3] [--calls=1] [--budget=60]

For the SI CNN of configs/mnist_const.py:cpu (32-64-64, BatchNorm, batch 128, unrolled steps) and
the SI MLP of configs/fast_equilibrium.py:cpu (784-128-128, batch 32, one epoch per call, rolled),
it prints the total training throughput (images/s summed over trials) for each T and strategy
(`STRATEGIES`: trials.vmap_chunk, trials.mode and model.conv_impl of `svag_jax.trials`):
  single   one trial, the unbatched one-trial step (the reference cost of one trial);
  loop     T calls of one trial each (chunks of 1);
  vmap     all T trials in one jit(vmap) call (convs become grouped convs);
  vmap8    T/8 calls of 8 vmapped trials;
  sbs8     T/8 calls of 8 trials side by side in one program (trials.mode = 'side_by_side');
  im2col   like vmap, with model.conv_impl = 'im2col' (convs become batched matmuls);
  im2col8  like vmap8, with model.conv_impl = 'im2col'.
vmap8 and im2col8 are left out at T <= 8 (they are then vmap and im2col). Every strategy is compiled
first (the compile time of its first call, minus one steady call), then timed in --rounds
interleaved rounds of --calls calls each, so a change of machine load hits all strategies alike;
each row gives the best and the median round, the best round's ratios to `loop` and to `single`
(1.0 = T trials cost exactly T single-trial runs) and its fraction of this machine's fp32 matmul
peak (a 2048^3 matmul, measured in the same run). `os.getloadavg()` is printed at the start and the
end: compare only numbers of one run. A strategy whose predicted time exceeds --budget seconds is
skipped and says so.

Steps per call: --steps (0 = the config's steps_per_dispatch, capped at an epoch); compile time of
an unrolled side-by-side chunk grows with chunk x steps.
"""

import argparse
import dataclasses
import os
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp

from svag_jax import data as data_lib
from svag_jax import models, schedules, train, trials
from svag_jax.configs import fast_equilibrium, mnist_const

# name: (vmap_chunk (0 = all T), trials.mode, model.conv_impl (None = the config's))
STRATEGIES = {
    'loop': (1, 'vmap', None),
    'vmap': (0, 'vmap', None),
    'vmap8': (8, 'vmap', None),
    'sbs8': (8, 'side_by_side', None),
    'im2col': (0, 'vmap', 'im2col'),
    'im2col8': (8, 'vmap', 'im2col'),
}
# Predicted slowdown of a strategy vs a loop of the same T (for the budget): vmapped convs run
# ~3x slower than a loop on XLA:CPU.
CPU_CONV_SLOWDOWN = {'vmap': 3.0, 'vmap8': 3.0}


def load_avg() -> str:
  return ' '.join(f'{x:.2f}' for x in os.getloadavg())


def matmul_peak_gflops(n: int = 2048, repeats: int = 10, precision=None) -> float:
  """GFLOP/s of an n^3 float32 matmul at `precision` (None: jax's default) on the default device."""
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  f = jax.jit(lambda x: jnp.matmul(x, x, precision=precision))
  f(a).block_until_ready()
  t = time.perf_counter()
  for _ in range(repeats):
    f(a).block_until_ready()
  return 2 * n**3 * repeats / (time.perf_counter() - t) / 1e9


def peak_bytes(device) -> int | None:
  """The device's peak memory in use so far (a process-wide high-water mark; None where the
  backend has no memory stats)."""
  stats = device.memory_stats() if hasattr(device, 'memory_stats') else None
  return (stats or {}).get('peak_bytes_in_use')


def model_config(name: str):
  """The benchmarked config of `name`: 'cnn' (mnist_const:cpu) or 'mlp' (fast_equilibrium:cpu)."""
  if name == 'cnn':
    return mnist_const.get_config('cpu')
  if name == 'mlp':
    return fast_equilibrium.get_config('cpu')
  raise ValueError(f'unknown benchmark model {name!r}; choose cnn or mlp')


def make_trainer(cfg, ds, conv_impl: str | None = None) -> train.Trainer:
  """The trainer of `cfg` on `ds`, with model.conv_impl replaced by `conv_impl` if given."""
  model_cfg = cfg.model.copy_and_resolve_references()
  if conv_impl and model_cfg.name != 'mlp':
    model_cfg.conv_impl = conv_impl
  return train.Trainer(
      models.build(model_cfg, ds.num_classes),
      cfg.train.batch_size,
      ds.num_train,
      cfg.train.sampling,
      unroll=cfg.train.unroll,
  )


def trial_schedules(trainer: train.Trainer, num_trials: int) -> schedules.Schedules:
  one = schedules.Schedules(
      schedules.from_epochs(0.1, (), trainer.steps_per_epoch),
      schedules.from_epochs(0.1, (), trainer.steps_per_epoch),
  )
  return schedules.stack([one] * num_trials)


def flops_per_image(trainer: train.Trainer, data: data_lib.TrainData) -> float:
  """XLA's FLOP count of one training step of one trial, per training image."""
  sched = jax.tree.map(lambda x: x[0], trial_schedules(trainer, 1))
  state = jax.eval_shape(trainer.init, jax.random.key(0), sched, data)
  cost = jax.jit(trainer.train_step).lower(state, data).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  return float(cost['flops']) / trainer.batch_size


@dataclasses.dataclass
class Cell:
  """One strategy at one T, compiled: `run()` advances all trials by `steps` steps (and waits)."""

  name: str
  num_trials: int
  steps: int
  images_per_call: int
  run: Callable[[], None]
  lower: Callable[[], jax.stages.Lowered]  # the program of one call (of its first chunk)
  chunk_size: int  # trials per program
  compile_s: float = 0.0
  call_s: float = 0.0  # seconds of one steady call
  peak_bytes: int | None = None  # the device's peak_bytes_in_use after compiling (if known)
  rates: list = dataclasses.field(default_factory=list)

  def program_bytes(self) -> int:
    """Device bytes of one call's program (arguments + outputs + temporaries - donated aliases:
    XLA's memory analysis of the compiled program), or 0 where the backend does not say."""
    stats = self.lower().compile().memory_analysis()
    if stats is None:
      return 0
    return int(
        stats.argument_size_in_bytes
        + stats.output_size_in_bytes
        + stats.temp_size_in_bytes
        - stats.alias_size_in_bytes
    )

  def time(self, calls: int) -> float:
    """Runs `calls` calls; appends and returns their images/s."""
    t = time.perf_counter()
    for _ in range(calls):
      self.run()
    rate = calls * self.images_per_call / (time.perf_counter() - t)
    self.rates.append(rate)
    return rate


def prepare(
    name: str, trainer, data, num_trials: int, steps: int, devices, chunk=None, mode='vmap'
) -> Cell:
  """Initialises and compiles strategy `name` (`chunk`/`mode` as in STRATEGIES; 'single': the
  unbatched one-trial step); its compile time is its first call minus a steady call."""
  if name == 'single':
    sched = jax.tree.map(lambda x: x[0], trial_schedules(trainer, 1))
    state = [jax.device_put(jax.jit(trainer.init)(jax.random.key(0), sched, data), devices[0])]
    placed = jax.device_put(data, devices[0])
    step = jax.jit(trainer.train_steps, static_argnums=2, donate_argnums=0)

    def run():
      state[0] = jax.block_until_ready(step(state[0], placed, steps)[0])

    lower = lambda: step.lower(state[0], placed, steps)
    chunk_size = 1
  else:
    runner = trials.TrialRunner(trainer, num_trials, chunk, devices=devices, mode=mode)
    states = [runner.init(0, trial_schedules(trainer, num_trials), data)]

    def run():
      states[0] = jax.block_until_ready(runner.train(states[0], data, steps))

    # the runner's jitted chunk program (trials.TrialRunner._train_chunk), for its memory
    lower = lambda: runner._train.lower(
        states[0][0], runner.place(data, 0), steps, runner._sharded(0)
    )
    chunk_size = runner.chunks[0][1]

  images = steps * trainer.batch_size * num_trials
  cell = Cell(name, num_trials, steps, images, run, lower, chunk_size)
  t = time.perf_counter()
  run()
  first = time.perf_counter() - t
  t = time.perf_counter()
  run()
  cell.call_s = time.perf_counter() - t
  cell.compile_s = max(0.0, first - cell.call_s)
  return cell


def run_rounds(cells: list[Cell], rounds: int, calls: int) -> None:
  """Times every cell `rounds` times, interleaved (round r times every cell once)."""
  for _ in range(rounds):
    for cell in cells:
      cell.time(calls)


def best_and_median(cell: Cell) -> tuple[float, float]:
  return max(cell.rates), statistics.median(cell.rates)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--models', default='cnn,mlp')
  parser.add_argument('--trials', default='1,8,64,256')
  parser.add_argument('--strategies', default=','.join(STRATEGIES))
  parser.add_argument('--steps', type=int, default=0, help="steps per call (0: the config's)")
  parser.add_argument('--rounds', type=int, default=3, help='interleaved timing rounds')
  parser.add_argument('--calls', type=int, default=1, help='calls per strategy and round')
  parser.add_argument('--budget', type=float, default=60.0, help='max seconds per strategy and T')
  args = parser.parse_args(argv)
  for s in args.strategies.split(','):
    if s not in STRATEGIES:
      parser.error(f'unknown strategy {s!r}; choose from {", ".join(STRATEGIES)}')
  print(f'# load average at start: {load_avg()}', flush=True)
  peak = matmul_peak_gflops()
  devices = jax.devices()[:1]
  print(
      f'# {devices[0].device_kind}, jax {jax.__version__}, {os.cpu_count()} CPUs; '
      f'fp32 matmul peak (2048^3): {peak:.1f} GFLOP/s'
  )
  print(
      f'{"model":5} {"T":>4} {"strategy":8} {"steps":>5} {"compile s":>9} {"best img/s":>10} '
      f'{"median":>8} {"x loop":>6} {"x single":>8} {"% peak":>7}',
      flush=True,
  )
  for name in args.models.split(','):
    cfg = model_config(name)
    ds = data_lib.load(cfg.data)
    data = data_lib.TrainData(ds.train_images, ds.train_labels, ds.mean, ds.std)
    trainers = {None: make_trainer(cfg, ds)}
    steps = min(args.steps or cfg.train.steps_per_dispatch, trainers[None].steps_per_epoch)
    flops = flops_per_image(trainers[None], data)
    single = prepare('single', trainers[None], data, 1, steps, devices)
    single_rate = max(single.time(args.calls) for _ in range(args.rounds))
    print(
        f'{name:5} {1:>4} {"single":8} {steps:>5} {single.compile_s:9.1f} {single_rate:10.0f} '
        f'{statistics.median(single.rates):8.0f} {"":>6} {1.0:8.2f} '
        f'{100 * single_rate * flops / 1e9 / peak:7.1f}',
        flush=True,
    )
    for num_trials in map(int, args.trials.split(',')):
      cells = []
      for strategy in args.strategies.split(','):
        chunk, mode, impl = STRATEGIES[strategy]
        if impl and name == 'mlp':
          continue  # no convolutions
        if chunk > 1 and num_trials <= chunk and (0, mode, impl) in STRATEGIES.values():
          continue  # the same as its all-T twin
        images = steps * trainers[None].batch_size * num_trials
        slowdown = CPU_CONV_SLOWDOWN.get(strategy, 1.0) if name == 'cnn' else 1.0
        predicted = (2 + args.rounds * args.calls) * images / single_rate * slowdown
        if predicted > args.budget:
          print(f'{name:5} {num_trials:>4} {strategy:8}  skipped (~{predicted:.0f} s > budget)')
          continue
        if impl not in trainers:
          trainers[impl] = make_trainer(cfg, ds, impl)
        cells.append(
            prepare(strategy, trainers[impl], data, num_trials, steps, devices, chunk, mode)
        )
      run_rounds(cells, args.rounds, args.calls)
      loop = next((best_and_median(c)[0] for c in cells if c.name == 'loop'), None)
      for cell in cells:
        best, median = best_and_median(cell)
        x_loop = f'{best / loop:6.2f}' if loop else f'{"":>6}'
        print(
            f'{name:5} {num_trials:>4} {cell.name:8} {steps:>5} {cell.compile_s:9.1f} '
            f'{best:10.0f} {median:8.0f} {x_loop} {best / single_rate:8.2f} '
            f'{100 * best * flops / 1e9 / peak:7.1f}',
            flush=True,
        )
  print(f'# load average at end: {load_avg()}', flush=True)
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
