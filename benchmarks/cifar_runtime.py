"""Step rates of the full-scale CIFAR configs, and the runtimes they imply (not a test).

    python -m benchmarks.cifar_runtime [--configs=configs/cifar_equilibrium.py,...] [--calls=3]

For each full-scale config (each point of its sweep), it builds exactly the run's trainer and trial
runner (`train.Trainer.from_config`, `TrialRunner` with the config's trials and vmap_chunk) on
synthetic CIFAR-shaped data of CIFAR-10's size (50,000 train images of 32x32x3, so full-batch NGD/GD
steps cost what they will), times `--calls` dispatches of `train.steps_per_dispatch` steps after a
warm-up call, and prints steps/s, images/s summed over trials, seconds per epoch and the implied
training time (epochs x l x steps per epoch / steps/s; evaluations excluded). Meant for a GPU/TPU:
the README's and configs' runtime estimates come from its output on one H100.
"""

import argparse
import time

import jax

from svag_jax import arms as arms_lib
from svag_jax import config as config_lib
from svag_jax import data as data_lib
from svag_jax import schedules, sweep, train, trials
from svag_jax.launch import specs
from svag_jax.plan import trial_schedules

DEFAULT_CONFIGS = (
    'configs/cifar_equilibrium.py',
    'configs/wd_lr_family.py',
    'configs/lr_vs_wd_halving.py',
    'configs/lsr.py:preresnet32_bn',
    'configs/lsr.py:vgg19_gn',
    'configs/svag_convergence.py:preresnet32_b128',
    'configs/svag_convergence.py:vgg19_b1024',
    'configs/ngd.py',
)
CIFAR10_TRAIN = 50_000


def synthetic_cifar(cfg):
  """`cfg` with its data replaced by synthetic images of CIFAR-10's shape and size."""
  cfg.data.source = 'synthetic'
  cfg.data.synthetic_shape = (32, 32, 3)
  cfg.data.synthetic_num_train, cfg.data.synthetic_num_test = CIFAR10_TRAIN, 1000
  cfg.data.synthetic_num_classes = 10
  return cfg


def time_point(cfg, calls: int) -> dict:
  """Measured step rate of one run's training dispatches."""
  config_lib.validate(cfg)
  ds = data_lib.load(cfg.data)
  trainer = train.Trainer.from_config(cfg, ds.num_train, ds.num_classes)
  svag_time = schedules.SvagTime.of(cfg.optim)
  steps_per_epoch = svag_time.steps(trainer.steps_per_epoch)
  sched, names = trial_schedules(arms_lib.arms(cfg), cfg.trials.num, steps_per_epoch, svag_time)
  runner = trials.TrialRunner.from_config(trainer, len(names), cfg.trials)
  data = data_lib.TrainData(ds.train_images, ds.train_labels, ds.mean, ds.std)
  states = runner.init(cfg.seed, sched, data)
  k = cfg.train.steps_per_dispatch
  t = time.perf_counter()
  states = runner.train(states, data, k)
  jax.block_until_ready(states)
  compile_s = time.perf_counter() - t
  t = time.perf_counter()
  for _ in range(calls):
    states = runner.train(states, data, k)
  jax.block_until_ready(states)
  rate = calls * k / (time.perf_counter() - t)
  images = {'sgd': trainer.batch_size, 'svag': 2 * trainer.batch_size}.get(
      cfg.optim.oracle, ds.num_train
  )
  hours = cfg.train.epochs * steps_per_epoch / rate / 3600
  return dict(
      trials=len(names),
      steps_per_s=rate,
      img_per_s=rate * images * len(names),
      epoch_s=steps_per_epoch / rate,
      hours=hours,
      compile_s=compile_s,
  )


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--configs', default=','.join(DEFAULT_CONFIGS))
  parser.add_argument('--calls', type=int, default=3)
  parser.add_argument('--points', default='', help='|-separated sweep point names to keep')
  parser.add_argument(
      '--vmap_chunk', type=int, default=-1, help="override trials.vmap_chunk (-1: the config's)"
  )
  args = parser.parse_args(argv)
  print(f'devices: {jax.devices()}')
  keep = set(filter(None, args.points.split('|')))
  for spec in args.configs.split(','):
    total = 0.0
    for point in specs.points(spec):
      name = sweep.point_name(point)
      if keep and name not in keep:
        continue
      cfg = synthetic_cifar(specs.build_config(spec, point))
      if args.vmap_chunk >= 0:
        cfg.trials.vmap_chunk = args.vmap_chunk
      r = time_point(cfg, args.calls)
      total += r['hours']
      print(
          f'{spec} [{name}] {cfg.model.name}/{cfg.model.norm} B={cfg.train.batch_size} '
          f'{cfg.optim.oracle} l={cfg.optim.svag_l} T={r["trials"]}: '
          f'{r["steps_per_s"]:.1f} steps/s, {r["img_per_s"]:.0f} img/s, '
          f'{r["epoch_s"]:.1f} s/epoch, {cfg.train.epochs:g} epochs = {r["hours"]:.1f} h '
          f'(compile {r["compile_s"]:.0f} s)',
          flush=True,
      )
    print(f'{spec}: {total:.1f} h in all', flush=True)
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
