"""2021 paper, Fig. 1: SGD vs NGD (noisy GD with covariance-matched Gaussian noise) vs GD.

All three train the same GroupNorm net (NGD needs per-example losses independent of the batch) on a
fixed training subset without augmentation, from the same initialisation, with the same LR, WD and
number of steps: SGD draws batches of B with replacement; NGD takes the full-batch gradient plus
exact N(0, Sigma_1 / B) noise (the with-replacement batch-B covariance); GD the full-batch gradient.
The paper's finding: NGD matches SGD, GD generalises worse.

Full scale (`get_config()`): SI PreResNet32 with GroupNorm on a 10k CIFAR-10 subset, B = 128;
needs the 'preresnet32' model of the CIFAR issue (until then validation stops at model.name).

CPU (`get_config('cpu')` / `get_sweep('cpu')`): the first 500 bundled MNIST digits (test: all
1,000), SI CNN (8, 16, 16) with GroupNorm (4 groups), B = 25, eta = 0.1, lambda = 5e-4, 15 epochs
of 20 steps (300 steps; an NGD/GD step is a pass over all 500 examples in chunks of 250), 1 trial
each:

    python -m launch.sweep --config=configs/ngd.py:cpu --workdir=runs/ngd_cpu
    python -m analysis.ngd runs/ngd_cpu

Measured on this 2-core CPU: 2.6 min for the 3 points; final train / test accuracy SGD 0.970 /
0.871, NGD 0.968 / 0.865, GD 0.984 / 0.884 (one trial each: NGD tracks SGD; this short small run
shows no generalisation gap of GD).
"""

from configs import base
from launch import sweep

ORACLES = ('sgd', 'ngd', 'gd')


def get_config(arg: str | None = None):
  c = base.get_config()
  c.model.norm = 'group'
  c.model.num_groups = 8
  c.optim.oracle = 'ngd'
  c.optim.momentum = 0.0
  c.train.sampling = 'replacement'  # the noise NGD matches is the with-replacement one
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
  elif arg in (None, '', 'full'):
    base.cifar10_preresnet32(c)
    c.data.num_train = 10000
    c.optim.chunk_size = 1000
    c.train.epochs = 200
    c.train.eval_every = 5.0
  else:
    raise ValueError(f'unknown config argument {arg!r}; use "cpu" or nothing')
  return c


def get_sweep(arg: str | None = None):
  del arg
  return sweep.zip_(**{'optim.oracle': ORACLES})
