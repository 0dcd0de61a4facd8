"""Throughput of many trials under each execution strategy (not a test: it prints numbers).

    python -m benchmarks.trials [--models=cnn,mlp] [--trials=1,8,64,256] [--budget=60]

For the SI CNN of configs/mnist_const.py:cpu (32-64-64, batch 128, 8 unrolled steps per call) and
the SI MLP of configs/fast_equilibrium.py:cpu (784-128-128, batch 32, one epoch per call, rolled),
it prints the total training throughput (images/s summed over trials) for each T and strategy:
  single  one trial, the unbatched one-trial step (the reference cost of one trial);
  vmap    all T trials in one jit(vmap) call;
  chunk8  T/8 calls of 8 vmapped trials;
  loop    T calls of one trial each (chunks of 1);
plus the compile time of the first call, the ratio to `single` (1.0 = T trials cost exactly T
single-trial runs; the target is >= 1/1.05 for the best strategy at T = 64) and the fraction of
this machine's fp32 matmul peak, measured in the same run with a 2048^3 matmul. A cell whose
predicted time exceeds --budget seconds is skipped and says so.
"""

import argparse
import time

import jax
import jax.numpy as jnp

from svag_jax import data as data_lib
from svag_jax import models, schedules, train, trials
from svag_jax.configs import fast_equilibrium, mnist_const


def matmul_peak_gflops(n: int = 2048, repeats: int = 10) -> float:
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  t = time.perf_counter()
  for _ in range(repeats):
    f(a).block_until_ready()
  return 2 * n**3 * repeats / (time.perf_counter() - t) / 1e9


def _setup(name: str):
  cfg = mnist_const.get_config('cpu') if name == 'cnn' else fast_equilibrium.get_config('cpu')
  ds = data_lib.load(cfg.data)
  trainer = train.Trainer(
      models.build(cfg.model, ds.num_classes),
      cfg.train.batch_size,
      ds.num_train,
      cfg.train.sampling,
      unroll=cfg.train.unroll,
  )
  data = data_lib.TrainData(ds.train_images, ds.train_labels, ds.mean, ds.std)
  k = min(cfg.train.steps_per_dispatch, trainer.steps_per_epoch)
  return trainer, data, k


def _schedules(trainer, num_trials):
  one = schedules.Schedules(
      schedules.from_epochs(0.1, (), trainer.steps_per_epoch),
      schedules.from_epochs(0.1, (), trainer.steps_per_epoch),
  )
  return schedules.stack([one] * num_trials)


def _flops_per_image(trainer, data) -> float:
  state = trainer.init(
      jax.random.key(0), jax.tree.map(lambda x: x[0], _schedules(trainer, 1)), data
  )
  compiled = jax.jit(trainer.train_step).lower(state, data).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  return float(cost['flops']) / trainer.batch_size


def time_strategy(trainer, data, k, num_trials, strategy, calls=2):
  """(compile seconds, steady images/s over all trials)."""
  device = jax.devices()[:1]
  if strategy == 'single':
    state = trainer.init(
        jax.random.key(0), jax.tree.map(lambda x: x[0], _schedules(trainer, 1)), data
    )
    step = jax.jit(trainer.train_steps, static_argnums=2, donate_argnums=0)
    run = lambda s: step(s, data, k)[0]
  else:
    chunk = {'vmap': 0, 'chunk8': 8, 'loop': 1}[strategy]
    runner = trials.TrialRunner(trainer, num_trials, chunk, devices=device)
    state = runner.init(0, _schedules(trainer, num_trials), data)
    run = lambda s: runner.train(s, data, k)[0]
  t = time.perf_counter()
  state = jax.block_until_ready(run(state))
  first = time.perf_counter() - t
  t = time.perf_counter()
  for _ in range(calls):
    state = run(state)
  jax.block_until_ready(state)
  steady = (time.perf_counter() - t) / calls
  return max(0.0, first - steady), k * trainer.batch_size * num_trials / steady


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--models', default='cnn,mlp')
  parser.add_argument('--trials', default='1,8,64,256')
  parser.add_argument('--strategies', default='vmap,chunk8,loop')
  parser.add_argument('--budget', type=float, default=60.0, help='max seconds per cell')
  parser.add_argument('--calls', type=int, default=2, help='timed calls per cell (after compile)')
  args = parser.parse_args()
  peak = matmul_peak_gflops()
  print(
      f'# {jax.devices()[0].device_kind} x{len(jax.devices())}, jax {jax.__version__}; '
      f'fp32 matmul peak (2048^3): {peak:.1f} GFLOP/s'
  )
  print(
      f'{"model":5} {"T":>4} {"strategy":8} {"compile s":>9} {"img/s":>9} {"x single":>8} '
      f'{"% peak":>7}'
  )
  for name in args.models.split(','):
    trainer, data, k = _setup(name)
    flops = _flops_per_image(trainer, data)
    _, single = time_strategy(trainer, data, k, 1, 'single')
    compile_s, _ = time_strategy(trainer, data, k, 1, 'single', calls=1)
    print(
        f'{name:5} {1:>4} {"single":8} {compile_s:9.1f} {single:9.0f} {1.0:8.2f} '
        f'{100 * single * flops / 1e9 / peak:7.1f}'
    )
    for num_trials in map(int, args.trials.split(',')):
      for strategy in args.strategies.split(','):
        if strategy == 'chunk8' and num_trials <= 8:
          continue
        predicted = (1 + args.calls) * k * trainer.batch_size * num_trials / single
        if strategy != 'loop' and name == 'cnn' and jax.default_backend() == 'cpu':
          predicted *= 3  # vmapped convs run ~3x slower than a loop on XLA:CPU
        if predicted > args.budget:
          print(f'{name:5} {num_trials:>4} {strategy:8}  skipped (~{predicted:.0f} s > budget)')
          continue
        compile_s, rate = time_strategy(trainer, data, k, num_trials, strategy, args.calls)
        print(
            f'{name:5} {num_trials:>4} {strategy:8} {compile_s:9.1f} {rate:9.0f} '
            f'{rate / single:8.2f} {100 * rate * flops / 1e9 / peak:7.1f}',
            flush=True,
        )


if __name__ == '__main__':
  main()
