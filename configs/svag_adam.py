"""2022 paper (Malladi, Lyu, Panigrahi & Arora), SVAG for Adam: Adam vs SVAG l up to 16 at a batch
size where the square-root rule holds and one past its break.

SVAG(l) for Adam (`optim.adaptive_svag`, the paper's ell = sqrt(l)): l x the steps on c1 g1 + c2 g2
(l x the noise of one batch) at LR eta / sqrt(l), 1 - beta_i divided by l, eps x sqrt(l); curves
against effective steps = steps / l; l = 1 is Adam bit for bit. Paper: SVAG's curves converge as
l grows and Adam follows them where its SDE holds (their CIFAR runs with ell up to 8). Here each
B's settings are the sqrt rule's from the base of `configs/sqrt_rule.py` (B = 25), so every point
approximates ONE SDE; analysed with the layout of the 2021 figure (`analysis.svag_convergence`).

    python -m svag_jax.launch.sweep --config=svag_adam:cpu --workdir=runs/svag_adam_cpu
    python -m svag_jax.analysis.svag_convergence runs/svag_adam_cpu

CPU (`:cpu`: bundled MNIST, SI MLP, Adam + L2 at B = 200 (the sqrt rule holds) and B = 2000
(past its break), 18 epochs with the LR x 0.1 at 15, l in {1, 2, 4, 8, 16}, 8 trials per point;
batches with replacement, as SVAG needs, at every scale; `:cpu_l8`: the same without l = 16).
Expected: the test accuracy converges in l at both B; at B = 200 Adam on the limit, at 2000 below.
Run here: `:cpu` from scratch, 9.0 min wall at load ~1.5-2.6 on 2 cores (14.3 min CPU).
Measured: test accuracy and train loss converge in l at both B (l = 16 - l = 8 within 0.3
points); Adam on the limit at B = 200 (end: -0.08 [-0.38, +0.23] points), off it at 2000 (-1.04
[-1.45, -0.62], train loss 3.4x); ||w||^2 not converged at l = 16 (+5.4 from l = 8 at B = 200,
+7.9 at 2000). All numbers: docs/experiments.md#svag_adam.
Full scale (no argument: CIFAR-10 SI PreResNet32 at B = 128 and 2048, the settings of
`sqrt_rule`'s full scale): not run. `smoke`: its tiny form, 2 steps (tests).
"""

from svag_jax import scaling
from svag_jax.configs import base, sqrt_rule

L_VALUES = (2, 4, 8, 16)  # plus Adam itself (l = 1)
CPU_BATCHES = (200, 2000)  # sqrt rule within 20% of the lowest error / past it (sqrt_rule:cpu)
FULL_BATCHES = (128, 2048)
ARGS = ('cpu', 'cpu_l8', 'smoke')
# `:cpu_l8`: the :cpu sweep without l = 16 (the same points otherwise): half its compute.
REDUCED_L = (2, 4, 8)


def get_config(arg: str | None = None):
  if arg not in (None, '', 'full', *ARGS):
    raise ValueError(f'unknown config argument {arg!r}; use one of {ARGS} or nothing')
  c = sqrt_rule.get_config('cpu' if arg in ('cpu', 'cpu_l8') else arg)
  c.metrics.gn_every, c.metrics.gn_batches = 0.0, base.get_config().metrics.gn_batches
  c.train.sampling = 'replacement'  # i.i.d. batches (SVAG refuses shuffled ones), Adam's too
  return c


def get_sweep(arg: str | None = None):
  c = get_config(arg)
  batches = {'cpu': CPU_BATCHES, 'cpu_l8': CPU_BATCHES, 'smoke': (16,)}.get(arg, FULL_BATCHES)
  ls = {'smoke': (2,), 'cpu_l8': REDUCED_L}.get(arg, L_VALUES)
  cpu = arg in ('cpu', 'cpu_l8')
  points = []
  for b in batches:
    over = scaling.batch_overrides(c, 'sqrt', b)
    if cpu:
      over['train.steps_per_dispatch'] = max(1, sqrt_rule.NUM_TRAIN // b)  # one call per epoch
    points.append({'name': f'b{b}_adam', **over, 'optim.oracle': 'sgd'})
    for l in ls:
      svag = {'optim.oracle': 'svag', 'optim.svag_l': l}
      if cpu:
        svag['train.steps_per_dispatch'] = over['train.steps_per_dispatch'] * l
      points.append({'name': f'b{b}_svag_l{l}', **over, **svag})
  return points
