"""2020 paper, Fig. 2d as captioned: which equilibrium before an LR decay by 10 ends best; and an
LR decay by 10 before the equilibrium (reviewer 1, Q3 and Q4).

Paper (Fig. 2d caption): PreResNet32 on CIFAR-10, SGD without momentum, WD 5e-4: after LR / 10
the test accuracy is higher the smaller the intrinsic LR of the equilibrium the decay started from.
The LRs of the figure are in the appendix (not available here): the `eq_*` arms train at lambda
fixed and eta = lambda_e / lambda until equilibrium, then divide their own eta by 10; the `drop_*`
arms divide eta by 10 at one lambda_e before its equilibrium.

    python -m svag_jax.launch.main --config=equilibrium_decay:cpu --workdir=runs/eq_decay_cpu
    python -m svag_jax.analysis.equilibrium_decay runs/eq_decay_cpu
    python -m svag_jax.launch.main --config=equilibrium_decay --workdir=runs/equilibrium_decay

CPU (`:cpu`: stationary_lr.py:cpu without momentum, lambda = 0.1, lambda_e = 0.0025 ... 0.04
decayed at epoch 16 (>= 5 / lambda_e); drops at lambda_e = 0.01 after 0.5 ... 8 epochs; 24 epochs,
16 trials per arm): 13.9 min wall at load 9-12 on the shared 2 cores. Expected (paper, Fig. 2d):
test accuracy after the decay higher for a smaller lambda_e. Measured, 8 epochs after the decay:
0.9618 [0.9600, 0.9636], 0.9611, 0.9499, 0.9376, 0.9254 for lambda_e = 0.0025 ... 0.04 (the
paper's order, flat between the two smallest); a drop after 0.6 / lambda_e ends 0.5 points below
waiting 20 / lambda_e, from 2.5 / lambda_e on no difference is resolved. Full scale (SI
PreResNet32, CIFAR-10, B = 128, lambda = 5e-4, eta = 0.1 ... 1.6, decay at epoch 300 of 350, drops
at eta = 0.8 after 5 ... 80 epochs, 2 trials per arm): not run; ~1.6 s per epoch per net on one
H100 (benchmarks/cifar_runtime.py), ~3 h for the 20 nets.

Measured numbers, runtime and the choices: docs/experiments.md#equilibrium_decay.
"""

from svag_jax.arms import set_arms
from svag_jax.configs import base, stationary_lr

ARGS = ('cpu',)

CPU_INTRINSIC_LRS = (0.0025, 0.005, 0.01, 0.02, 0.04)
CPU_DROPS = (
    0.5,
    1,
    2,
    4,
    8,
)  # epochs at lambda_e = 0.01: 62 ... 1,000 steps = 0.6 ... 10 / lambda_e
FULL_LRS = (0.1, 0.2, 0.4, 0.8, 1.6)  # lambda_e = 5e-5 ... 8e-4 at lambda = 5e-4
FULL_DROPS = (5, 10, 20, 40, 80)  # epochs at eta = 0.8: 2k ... 31k steps = 0.8 ... 12.5 / lambda_e


def arms(wd: float, lrs, decay: float, drop_lr: float, drops) -> dict:
  """`eq_<lambda_e>`: eta from `lrs` at WD `wd`, eta / 10 at epoch `decay`; `drop_<epoch>`: eta =
  `drop_lr`, eta / 10 at each epoch of `drops` (before its equilibrium). lambda never changes."""

  def name(prefix, value):
    return f'{prefix}_{value:g}'.replace('.', 'p').replace('-', 'm')

  result = {
      name('eq', lr * wd): dict(lr=lr, wd=wd, lr_schedule=((decay, 0.1),), wd_schedule=())
      for lr in lrs
  }
  for epoch in drops:
    result[name('drop', epoch)] = dict(
        lr=drop_lr, wd=wd, lr_schedule=((epoch, 0.1),), wd_schedule=()
    )
  return result


def get_config(arg: str | None = None):
  c = base.get_config()
  if arg == 'cpu':
    stationary_lr.mnist_mlp(c)
    wd = 0.1
    lrs = tuple(round(le / wd, 12) for le in CPU_INTRINSIC_LRS)
    set_arms(c, arms(wd, lrs, decay=16, drop_lr=0.1, drops=CPU_DROPS))
    c.trials.num = 16
    c.train.epochs = 24
    c.train.eval_every = 0.5
    c.checkpoint.every = 4.0
  elif arg in (None, '', 'full'):
    base.cifar10_preresnet32(c)
    set_arms(c, arms(5e-4, FULL_LRS, decay=300, drop_lr=0.8, drops=FULL_DROPS))
    c.trials.num = 2
    c.train.epochs = 350
    c.train.eval_every = 1.0
    c.train.eval_bn_batches = 50
  else:
    raise ValueError(f'unknown config argument {arg!r}; use "cpu" or nothing')
  return c
