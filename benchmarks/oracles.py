"""Time per step of each gradient oracle, as ratios to one SGD step (not a test: it prints numbers).

    python -m benchmarks.oracles [--batch=128] [--num_train=1000] [--gn_batches=8] [--repeats=5]

One trial of the SI CNN (16, 32, 32) with GroupNorm (so that every oracle applies) on the first
--num_train bundled MNIST digits, batch B. Measured in one run, each after a compile/warm-up call:
  grad    one batch gradient (oracles.batch_gradient alone, jitted), the unit of the G/N target;
  sgd     one SGD step (8 unrolled steps per call, per step);
  svag    one SVAG step, l = 2 (two batches, each its own pass);    target <= 2.1 x sgd;
  adam    one Adam step (coupled L2; 8 unrolled steps per call, per step);
  svag_adam  one SVAG-Adam step, l = 2 (Malladi et al. 2022: LR / sqrt(2), 1 - beta / 2, eps x
          sqrt(2));                                                 target <= 2.2 x adam;
  ngd     one NGD step (a pass over all N examples in chunks of 500 + Gaussian weights);
  gd      one full-batch GD step (same passes, fixed weights);
  gn      one G/N estimate from K batches (Trainer.gradient_noise); target <= (K + 0.1) x grad.
"""

import argparse
import time

import jax

from svag_jax import data as data_lib
from svag_jax import models, oracles, schedules, train
from svag_jax.configs import ngd as ngd_config


def _time(fn, repeats: int) -> float:
  jax.block_until_ready(fn())  # compile + warm up
  best = float('inf')
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn())
    best = min(best, time.perf_counter() - t)
  return best


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--batch', type=int, default=128)
  p.add_argument('--num_train', type=int, default=1000)
  p.add_argument('--gn_batches', type=int, default=8)
  p.add_argument('--steps', type=int, default=8, help='unrolled steps per call (sgd, svag)')
  p.add_argument('--repeats', type=int, default=5)
  a = p.parse_args(argv)

  cfg = ngd_config.get_config('cpu')
  cfg.data.num_train = a.num_train
  ds = data_lib.load(cfg.data)
  model = models.build(cfg.model, ds.num_classes)
  td = data_lib.TrainData(ds.train_images, ds.train_labels, ds.mean, ds.std)
  spe = max(1, ds.num_train // a.batch)
  sched = schedules.Schedules(
      schedules.from_epochs(0.1, (), spe), schedules.from_epochs(5e-4, (), spe)
  )
  key = jax.random.key(0)

  def trainer(oracle, **kw):
    return train.Trainer(
        model,
        a.batch,
        ds.num_train,
        sampling='replacement',
        oracle=oracle,
        chunk_size=cfg.optim.chunk_size,
        gn_batches=a.gn_batches,
        **kw,
    )

  times = {}
  base = trainer('sgd')
  state = base.init(key, sched, td)
  idx = base.sampler.batch_indices(state.key, state.step)
  grad = jax.jit(
      lambda s, d, i: oracles.batch_gradient(
          base.loss_fn(s, d), s.params, d.images[i], d.labels[i]
      )[0]
  )
  times['grad'] = _time(lambda: grad(state, td, idx), a.repeats)
  steppers = [
      ('sgd', base),
      ('svag', trainer('svag', svag_l=2)),
      ('adam', trainer('sgd', optimizer_name='adam')),
      ('svag_adam', trainer('svag', svag_l=2, optimizer_name='adam')),
  ]
  for name, t in steppers:
    s0 = t.init(key, sched, td)
    steps = jax.jit(t.train_steps, static_argnums=2)
    times[name] = _time(lambda: steps(s0, td, a.steps), a.repeats) / a.steps
  for name in ('ngd', 'gd'):
    t = trainer(name)
    s0 = t.init(key, sched, td)
    step = jax.jit(t.train_step)
    times[name] = _time(lambda: step(s0, td), a.repeats)
  gn = jax.jit(base.gradient_noise)
  times['gn'] = _time(lambda: gn(state, td), a.repeats)

  k, n = a.gn_batches, ds.num_train
  targets = {'svag': ('sgd', 2.1), 'svag_adam': ('adam', 2.2), 'gn': ('grad', k + 0.1)}
  print(
      f'SI CNN (16, 32, 32) GroupNorm, B = {a.batch}, N = {n}, K = {k}, '
      f'{jax.devices()[0].platform} x{len(jax.devices())}'
  )
  print(f'{"oracle":<9} {"ms/step":>9} {"x sgd":>7} {"x grad":>7}  target')
  for name, t in times.items():
    target = ''
    if name in targets:
      ref, bound = targets[name]
      ratio = t / times[ref]
      target = f'<= {bound:g} x {ref}: {"met" if ratio <= bound else "MISSED"} ({ratio:.3f})'
    print(f'{name:<9} {1e3 * t:>9.2f} {t / times["sgd"]:>7.2f} {t / times["grad"]:>7.2f}  {target}')
  print(f'(ngd/gd pass over {n} examples = {n / a.batch:.1f} batches of B)')
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
