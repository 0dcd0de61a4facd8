"""Fast Equilibrium in a deep BatchNorm MLP (reviewer 1, Q2: does the equilibrium still hold at
depth 50-100, where BatchNorm makes gradients explode at initialization?).

The 2020 Fig. 3 protocol (configs/fast_equilibrium.py: arms const / lr_decay / wd_decay, equal
eta lambda from the second decay on, then eta / 10 and lambda = 0) on an SI MLP of depth 50 with
BatchNorm (no affine) after every hidden layer and a fixed head; TV of the test predictions
against the split-half floor and the permutation null at the ends of the phases.

    python -m svag_jax.launch.main --config=deep_bn:cpu --workdir=runs/deep_bn_cpu
    python -m svag_jax.analysis.fast_equilibrium runs/deep_bn_cpu
    python -m svag_jax.launch.main --config=deep_bn --workdir=runs/deep_bn

CPU (`:cpu`: bundled MNIST, 50 hidden layers of 64 units, B = 32, eta = lambda = 0.1 as in
fast_equilibrium.py:cpu, decays at 6 and 12, fine-tuning from 18 to 24, 16 trials per arm).
Expected (paper's conjecture, if it holds at depth): TV at its floor once eta lambda agree (18)
and after fine-tuning. Full scale (tfds MNIST, 100 hidden layers of 256 units, the paper's epochs
40 / 80 / 120 / 200, B = 128, 32 trials per arm): not run, no runtime measured. Measured (`:cpu`,
13.6 min wall at load 11-12 on the shared 2 cores): no arm trains (test accuracy 0.10 at epoch 18,
0.11-0.12 after fine-tuning); ||w||^2 jumps from ~3e3 at init to up to 1e10, WD shrinks it 10x
per epoch, and each time it is back below ~1e3 it explodes again: no equilibrium.

Measured numbers, runtime and the choices: docs/experiments.md#deep_bn.
"""

from svag_jax.arms import set_arms
from svag_jax.configs import base, fast_equilibrium

ARGS = ('cpu',)


def get_config(arg: str | None = None):
  c = base.get_config()
  c.optim.lr, c.optim.wd, c.optim.momentum = 0.1, 0.1, 0.0
  c.model.name, c.model.norm = 'mlp', 'batch'
  if arg == 'cpu':
    base.mnist_mlp(c)
    c.model.widths = (64,) * 50
    set_arms(c, fast_equilibrium.arms(every=6, switch=18))
    c.trials.num = 16
    c.train.epochs = 24
    c.train.eval_every = 1.0
    c.train.predictions_at = (6, 12, 18, 24)
    c.checkpoint.every = 3.0
  elif arg in (None, '', 'full'):
    c.data.source, c.data.name = 'tfds', 'mnist'
    c.model.widths = (256,) * 100
    set_arms(c, fast_equilibrium.arms())
    c.trials.num = 32
    c.trials.vmap_chunk = 32
    c.train.batch_size = 128
    c.train.epochs = 200
    c.train.eval_every = 5.0
    c.train.eval_batch_size = 500
    c.train.predictions_at = (40, 80, 120, 200)
    c.train.steps_per_dispatch = 100
    c.train.unroll = False
    c.checkpoint.every = 10.0
  else:
    raise ValueError(f'unknown config argument {arg!r}; use "cpu" or nothing')
  return c
