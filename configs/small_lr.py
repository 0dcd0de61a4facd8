"""2020 paper, Fig. 2a-c (CW 2, "a small initial LR generalises as well"), momentum 0.9.

Paper (Fig. 2 caption): (a)-(c) SGD with momentum 0.9, initial LR 0.1, WD 5e-4, a small initial LR
reaching the step decay's test accuracy. The rest is in the appendix (not available here). Arms
(`arms`): `step_decay`, `small_lr_div10`, `small_lr_div100`. Fig. 2d (no momentum, each
equilibrium's own LR / 10) is configs/equilibrium_decay.py.

    python -m svag_jax.launch.main --config=small_lr:cpu --workdir=runs/small_lr_cpu
    python -m svag_jax.analysis.small_lr runs/small_lr_cpu
    python -m svag_jax.launch.main --config=small_lr --workdir=runs/small_lr

CPU (`:cpu`: bundled MNIST, SI MLP 784-128-128, eta_0 = 0.1, lambda = 0.01, E1 = 10, E2 = 50 of 60
epochs, 16 trials per arm): 6.3 min wall at load 9-10 on the shared 2 cores. Expected (paper):
the small-LR arms end at the step decay's test accuracy. Measured (mean [95% interval]):
step_decay 0.9627 [0.9612, 0.9642], small_lr_div10 0.9628 (+0.0001 [-0.0018, +0.0020]),
small_lr_div100 0.9633 (+0.0006 [-0.0011, +0.0024]). Full scale (SI PreResNet32 on CIFAR-10,
eta_0 = 0.1, lambda = 5e-4, E1 = 40, E2 = 300 of 330 epochs, 2 trials): not run; ~1.6 s per epoch
per net on one H100 (benchmarks/cifar_runtime.py), ~4.5 h for the 6 nets.

The arms in words, the phase lengths, all measurements: docs/experiments.md#small_lr.
"""

from svag_jax.arms import set_arms
from svag_jax.configs import base

ARGS = ('cpu',)
MOMENTUM = 0.9


def arms(lr: float, wd: float, e1: float, e2: float) -> dict:
  """The three arms (module docstring) for the initial LR `lr`, WD `wd` and epochs E1, E2."""

  def arm(lr0, lr_schedule, wd0=wd):
    return dict(lr=lr0, lr_schedule=tuple(lr_schedule), wd=wd0, wd_schedule=())

  return {
      'step_decay': arm(lr, ((e1, 0.1), (e2, 0.1))),
      'small_lr_div10': arm(lr / 10, ((e2, 0.1),)),
      'small_lr_div100': arm(lr / 100, ((e2, 0.1),), wd * 10),
  }


def get_config(arg: str | None = None):
  c = base.get_config()
  if arg == 'cpu':
    base.mnist_mlp(c)
    c.optim.momentum = MOMENTUM
    set_arms(c, arms(0.1, 0.01, e1=10, e2=50))
    c.trials.num = 16
    c.train.epochs = 60
    c.train.eval_every = 2.0
    c.train.eval_bn_batches = 8
    c.checkpoint.every = 10.0
  elif arg in (None, '', 'full'):
    base.cifar10_preresnet32(c)
    c.optim.momentum = MOMENTUM
    set_arms(c, arms(0.1, 5e-4, e1=40, e2=300))
    c.trials.num = 2
    c.train.epochs = 330
    c.train.eval_every = 2.0
    c.train.eval_bn_batches = 50
  else:
    raise ValueError(f'unknown config argument {arg!r}; use "cpu" or nothing')
  return c
