"""2020 paper, Fig. 8: an early large LR (or WD) rescues nets initialised at an extreme scale.

Paper (footnote 3 and Sec. 5.3; Fig. 8 and its settings are in the appendix, not available here):
with an initial norm of extreme magnitude a normalised net learns slowly unless an early large LR
brings the norm to its equilibrium. Here: sweep points init x 1 and x 30, each with arms `constant`,
`early_lr_x10` and `early_wd_x10` (LR or WD x 10 for the first R epochs), momentum 0.9.

    python -m svag_jax.launch.sweep --config=scale_rescue:cpu --workdir=runs/scale_rescue_cpu
    python -m svag_jax.analysis.scale_rescue runs/scale_rescue_cpu
    python -m svag_jax.launch.sweep --config=scale_rescue --workdir=runs/scale_rescue

CPU (`:cpu`: bundled MNIST, SI MLP 784-128-128, eta = lambda = 0.01, R = 4 of 40 epochs, 12 trials
per arm and point): 2.3 min wall on the quiet 2-core CPU. Expected (measured): within 0.01 of the
normal init's final accuracy at epoch 4 (init x 1); at init x 30 the constant arm gets there only
at epoch 26.5, early_lr_x10 at 5 and early_wd_x10 at 5.5; final test accuracy 0.949-0.953 in every
arm (the rescue is in time to accuracy). Full scale (SI PreResNet32 on CIFAR-10, eta = 0.1,
lambda = 5e-4, R = 10 of 100 epochs, 2 trials): not run, no runtime measured.

The scale argument, settings in full, all measurements: docs/experiments.md#scale_rescue.
"""

from svag_jax.arms import set_arms
from svag_jax.configs import base

ARGS = ('cpu',)
MOMENTUM = 0.9
INIT_FACTORS = (1.0, 30.0)  # x the config's own init_scale


def arms(lr: float, wd: float, rescue: float) -> dict:
  """The three arms: constant, LR x 10 and WD x 10 for the first `rescue` epochs."""
  return {
      'constant': dict(lr=lr, lr_schedule=(), wd=wd, wd_schedule=()),
      'early_lr_x10': dict(lr=10 * lr, lr_schedule=((rescue, 0.1),), wd=wd, wd_schedule=()),
      'early_wd_x10': dict(lr=lr, lr_schedule=(), wd=10 * wd, wd_schedule=((rescue, 0.1),)),
  }


def get_config(arg: str | None = None):
  c = base.get_config()
  if arg == 'cpu':
    base.mnist_mlp(c)
    c.optim.momentum = MOMENTUM
    set_arms(c, arms(0.01, 0.01, rescue=4))
    c.trials.num = 12
    c.trials.vmap_chunk = 6
    c.train.epochs = 40
    c.train.eval_every = 1.0
    c.train.eval_bn_batches = 8
    c.checkpoint.every = 10.0
  elif arg in (None, '', 'full'):
    base.cifar10_preresnet32(c)
    c.optim.momentum = MOMENTUM
    set_arms(c, arms(0.1, 5e-4, rescue=10))
    c.trials.num = 2
    c.train.epochs = 100
    c.train.eval_every = 1.0
    c.train.eval_bn_batches = 50
  else:
    raise ValueError(f'unknown config argument {arg!r}; use "cpu" or nothing')
  return c


def get_sweep(arg: str | None = None):
  """One point per initial scale, x `INIT_FACTORS` of the config's init_scale (a model field:
  each point is its own program)."""
  scale = get_config(arg).model.init_scale
  return [{'name': f'init_x{f:g}', 'model.init_scale': round(f * scale, 6)} for f in INIT_FACTORS]
