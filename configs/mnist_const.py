"""2020 paper, MNIST, Const schedule: scale-invariant 4-layer CNN, SGD, eta = 0.1, lambda = 0.1.

Paper (Fig. 3 caption, Sec. 6.1): the Const schedule of Fig. 3 (here without its fine-tuning phase
from epoch 121); batch size, widths and init are in the appendix (not available here; this config:
B = 128, CNN 32-64-64, PyTorch's conv init).

    python -m svag_jax.launch.main --config=mnist_const --workdir=runs/mnist_const
    python -m svag_jax.launch.main --config=mnist_const:cpu --workdir=$(mktemp -d)

Full scale (tfds MNIST 60k / 10k, README "Data"; 8 trials, 200 epochs): ~5 min estimated on one
H100 (benchmarks/trials.py); expected test error ~1% once the norm reaches its equilibrium.
CPU (`:cpu`: 4,000 bundled digits, 8 looped trials, 5 epochs): 3.6 min on 2 cores. Expected
(measured): test accuracy 0.941 +- 0.038 over the 8 trials after 5 epochs.

Why the PyTorch init and the BatchNorm refresh (measured): docs/experiments.md#mnist_const.
"""

from svag_jax.configs import base

ARGS = ('cpu',)


def get_config(arg: str | None = None):
  c = base.get_config()
  c.model.name = 'cnn'
  c.model.widths = (32, 64, 64)
  c.model.norm = 'batch'
  # PyTorch's default conv init, std 1/sqrt(3 fan_in), as in the paper's code (why: docstring)
  c.model.init_scale = 0.577
  # the running BatchNorm statistics lag the weights at eta*lambda = 0.01: refresh them before evals
  c.train.eval_bn_batches = 16
  c.optim.lr = 0.1
  c.optim.wd = 0.1
  c.train.batch_size = 128
  c.trials.num = 8
  if arg == 'cpu':
    c.data.source = 'mnist5k'
    c.train.epochs = 5
    c.train.eval_every = 1.0
    c.trials.vmap_chunk = 1
  elif arg in (None, '', 'full'):
    c.data.source = 'tfds'
    c.data.name = 'mnist'
    c.train.epochs = 200
    c.train.eval_every = 5.0
    c.checkpoint.every = 10.0
    c.trials.vmap_chunk = 0
    c.train.unroll = False
  else:
    raise ValueError(f'unknown config argument {arg!r}; use "cpu" or nothing')
  return c
