"""2020 paper, eq. (8): at a fixed intrinsic LR the initial LR acts as the scale of the init.

Paper (Sec. 5.1, eq. 8; no figure): G_t / eta with G_t = ||W_t||^2 evolves by lambda_e alone, so
the initial LR is indistinguishable from the scale of the initialization. Exactly, for SGD with WD
on a scale-invariant loss, (eta, lambda, c w_0) and (eta / c^2, lambda c^2, w_0) give
w_t = c w'_t at every step (tests/test_intrinsic_lr_2020.py checks it bit for bit in the
trainer). Here: one arm per eta at lambda_e = eta lambda = 0.01, the same init: eta spans 10^4,
i.e. init scales x10 ... /10 at eta = 0.1. Reviewer 2 (Q9) asked for experiments.

    python -m svag_jax.launch.main --config=init_lr:cpu --workdir=runs/init_lr_cpu
    python -m svag_jax.analysis.same_intrinsic_lr runs/init_lr_cpu
    python -m svag_jax.launch.main --config=init_lr --workdir=runs/init_lr

CPU (`:cpu`: bundled MNIST, SI MLP 784-128-128, LeCun init, B = 32, no momentum, eta = 0.001 ...
10, 16 epochs = 20 / lambda_e, 16 trials per arm). Expected (paper): the arms reach one
equilibrium (effective LR, test error, prediction distribution), the slower the further the
equivalent init is from it (a log factor, footnote 3). Full scale (SI PreResNet32, CIFAR-10,
lambda_e = 5e-5, eta = 0.01 ... 1.6, 200 epochs, 2 trials): not run; ~1.6 s per epoch per net on
one H100 (benchmarks/cifar_runtime.py), ~1.8 h for the 10 nets. Measured (`:cpu`, 7.7 min wall
at load 12 on the shared 2 cores): one equilibrium — eta / ||w||^2 of every arm within 10% of the
reference's after 0.3 ... 5.3 / lambda_e (the longer the further its start), final test accuracy
0.9018 ... 0.9117 (no difference to eta = 0.1 resolved), TV at its permutation null from epoch 8.

Measured numbers, runtime and the choices: docs/experiments.md#init_lr.
"""

from svag_jax.arms import set_arms
from svag_jax.configs import base

ARGS = ('cpu',)

CPU_LRS = (0.001, 0.01, 0.1, 1.0, 10.0)
FULL_LRS = (0.01, 0.04, 0.1, 0.4, 1.6)


def arm_name(lr: float) -> str:
  return f'lr_{lr:g}'.replace('.', 'p').replace('-', 'm')


def arms(intrinsic_lr: float, lrs) -> dict:
  """One arm per eta at lambda = intrinsic_lr / eta, constant schedules."""
  return {arm_name(lr): dict(lr=lr, wd=round(intrinsic_lr / lr, 12)) for lr in lrs}


def get_config(arg: str | None = None):
  c = base.get_config()
  if arg == 'cpu':
    base.mnist_mlp(c)
    set_arms(c, arms(0.01, CPU_LRS))
    c.trials.num = 16
    c.train.epochs = 16
    c.train.eval_every = 0.25
    c.train.eval_bn_batches = 8
    c.train.predictions_at = (1, 2, 4, 8, 16)
    c.checkpoint.every = 4.0
  elif arg in (None, '', 'full'):
    base.cifar10_preresnet32(c)
    set_arms(c, arms(5e-5, FULL_LRS))
    c.trials.num = 2
    c.train.epochs = 200
    c.train.eval_every = 1.0
    c.train.eval_bn_batches = 50
    c.train.predictions_at = (25, 50, 100, 200)
  else:
    raise ValueError(f'unknown config argument {arg!r}; use "cpu" or nothing')
  return c
