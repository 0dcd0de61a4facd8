"""2021 paper, Fig. 1: SGD vs NGD (noisy GD with covariance-matched Gaussian noise) vs GD.

All three train the same GroupNorm net (NGD needs per-example losses independent of the batch) on a
fixed training subset without augmentation, from the same initialisation, with the same LR, WD and
number of steps: SGD draws batches of B with replacement; NGD takes the full-batch gradient plus
exact N(0, Sigma_1 / B) noise (the with-replacement batch-B covariance); GD the full-batch gradient.
The paper's finding: NGD matches SGD, GD generalises worse.

Full scale (`get_config()`, 2021 Fig. 1): SI PreResNet32 with GroupNorm (8 groups) on the 50k
CIFAR-10 training images, fixed (no augmentation: NGD's noise is the covariance of a fixed data
set), B = 500, eta = 3.2, lambda = 5e-4, 300 epochs with the LR x 0.1 at epoch 250 (the decay
point of the LSR runs; the text of the paper does not fix it), one trial per oracle. An NGD or GD
step is a pass over all 50k images (chunks of 1,000), 100 x the cost of an SGD step:

    python -m svag_jax.launch.sweep --config=ngd --workdir=runs/ngd

Expected (paper): NGD's test accuracy tracks SGD's; GD ends several points lower. Runtime on one
H100 (benchmarks/cifar_runtime.py): SGD 1.0 s/epoch; NGD 86 s/epoch (1.2 full passes/s, 58k
img/s), ~7 h for 300 epochs, GD about the same. `get_config('smoke')`: tiny net, synthetic data.

CPU (`get_config('cpu')` / `get_sweep('cpu')`): the first 500 bundled MNIST digits (test: all
1,000), SI CNN (8, 16, 16) with GroupNorm (4 groups), B = 25, eta = 0.1, lambda = 5e-4, 15 epochs
of 20 steps (300 steps; an NGD/GD step is a pass over all 500 examples in chunks of 250), 1 trial
each:

    python -m svag_jax.launch.sweep --config=ngd:cpu --workdir=runs/ngd_cpu
    python -m svag_jax.analysis.ngd runs/ngd_cpu

Measured on this 2-core CPU: 2.6 min for the 3 points; final train / test accuracy SGD 0.970 /
0.871, NGD 0.968 / 0.865, GD 0.984 / 0.884 (one trial each: NGD tracks SGD; this short small run
shows no generalisation gap of GD).
"""

from svag_jax import config as config_lib
from svag_jax.configs import base

ARGS = ('cpu', 'smoke')


def get_config(arg: str | None = None):
  c = base.get_config()
  c.model.norm = 'group'
  c.model.num_groups = 8
  c.optim.oracle = 'ngd'
  c.optim.momentum = 0.0
  c.trials.num = 1
  if arg == 'cpu':
    c.data.source = 'mnist5k'
    c.data.num_train = 500
    c.model.widths = (8, 16, 16)
    c.model.num_groups = 4
    c.train.batch_size = 25
    c.optim.lr = 0.1
    c.optim.wd = 5e-4
    c.optim.chunk_size = 250
    c.train.epochs = 15
    c.train.eval_every = 1.0
    c.trials.vmap_chunk = 1
  elif arg in (None, '', 'full', 'smoke'):
    base.cifar10_preresnet32(c)
    c.data.augment = False
    c.model.norm, c.model.num_groups = 'group', 8
    c.train.batch_size = 500
    c.optim.lr, c.optim.wd = 3.2, 5e-4
    c.optim.lr_schedule = ((250, 0.1),)
    c.optim.chunk_size = 1000
    c.train.epochs = 300
    c.train.eval_every = 5.0
    if arg == 'smoke':
      base.smoke(c)
  else:
    raise ValueError(f'unknown config argument {arg!r}; use one of {ARGS} or nothing')
  return c


def get_sweep(arg: str | None = None):
  """SGD, NGD and GD from the same config. Each point sets what its oracle reads: SGD samples
  batches with replacement (the noise NGD matches) and reads no chunk size."""
  del arg
  chunk = config_lib.defaults().optim.chunk_size
  return [
      {
          'name': 'oracle=sgd',
          'optim.oracle': 'sgd',
          'train.sampling': 'replacement',
          'optim.chunk_size': chunk,
      },
      {'name': 'oracle=ngd', 'optim.oracle': 'ngd'},
      {'name': 'oracle=gd', 'optim.oracle': 'gd'},
  ]
