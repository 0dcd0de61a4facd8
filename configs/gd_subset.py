"""2020 paper, Fig. 5b/c: full-batch GD with WD on a small fixed subset never settles.

Paper (Sec. 4; the figure and its settings are in Appendix D, not available here): BN nets with WD
trained by full-batch GD on small data sets swing between zero and high loss. Here: arm `wd` keeps
coupled WD, arm `wd_off` drops it at step `WD_OFF`; full-batch GD is the 'sgd' oracle with the batch
= the 1,000-digit subset (one epoch = one step), eta = 0.5, lambda = 0.01, 4,000 steps, one trial
per arm, train accuracy after refreshing the BatchNorm statistics.

    python -m svag_jax.launch.main --config=gd_subset:cpu --workdir=runs/gd_subset_cpu
    python -m svag_jax.analysis.gd_subset runs/gd_subset_cpu
    python -m svag_jax.launch.main --config=gd_subset --workdir=runs/gd_subset
    python -m svag_jax.launch.main --config=gd_subset:cnn --workdir=runs/gd_subset_cnn

CPU (`:cpu`, SI MLP 784-64-64): 75 s wall on the quiet 2-core CPU. Expected (measured): `wd` first
reaches 100% train accuracy at step 40, then drops below 97% 31 times (min 89.8%); `wd_off` does the
same until step 2,000 and stays at 100% from step 2,205 on; test accuracy 91.7% / 90.7%.
Full scale (the blog's Fig. 1b/c caption: a ResNet on 1,000 CIFAR-10 images, full-batch GD
without momentum, WD off at epoch 30,000; here SI PreResNet32, eta = 0.1, lambda = 5e-4, 35,000
steps; eta and lambda are the paper's CIFAR values, not the figure's, which are in the appendix):
not run; ~45 min estimated on one H100 (benchmarks/cifar_runtime.py: 32k img/s). `:cnn`: the MNIST
CNN 32-64-64 on the CPU run's subset and schedule; not run, ~5-6 h estimated on the 2-core CPU.

Mechanism, the eta-lambda sweep behind the choice, all measurements: docs/experiments.md#gd_subset.
"""

from svag_jax.arms import set_arms
from svag_jax.configs import base

ARGS = ('cpu', 'cnn')
WD_OFF = 2000.0  # epochs (= GD steps) at which the wd_off arm drops WD (cpu, cnn)
CIFAR_WD_OFF = 30000.0  # the same for the full-scale CIFAR run (the blog's Fig. 1 caption)


def get_config(arg: str | None = None):
  c = base.get_config()
  c.data.source = 'mnist5k'
  c.model.norm = 'batch'
  c.optim.oracle = 'sgd'
  c.optim.momentum = 0.0
  c.train.sampling = 'shuffle'
  c.trials.num = 1
  if arg == 'cpu':
    c.data.num_train = 1000
    c.model.name = 'mlp'
    c.model.widths = (64, 64)
    lr, wd, wd_off, epochs = 0.5, 0.01, WD_OFF, 4000
    c.train.eval_every = 5.0
    c.train.steps_per_dispatch = 5
    c.train.eval_bn_batches = 40
    c.train.unroll = False  # an MLP: a rolled scan is as fast and compiles in seconds
    c.trials.vmap_chunk = 0
  elif arg == 'cnn':
    c.data.num_train = 1000
    c.model.name = 'cnn'
    c.model.widths = (32, 64, 64)
    lr, wd, wd_off, epochs = 0.5, 0.01, WD_OFF, 4000
    c.train.eval_every = 10.0
    c.train.steps_per_dispatch = 10
    c.train.eval_bn_batches = 20
    c.trials.vmap_chunk = 1  # CPU: looped conv trials are faster; on a GPU set 0
  elif arg in (None, '', 'full'):
    base.cifar(c)  # SI PreResNet32 on tfds CIFAR-10
    c.data.num_train = 1000
    c.data.augment = False  # GD: the same full batch at every step
    lr, wd, wd_off, epochs = 0.1, 5e-4, CIFAR_WD_OFF, 35000
    c.train.eval_every = 50.0
    c.train.steps_per_dispatch = 50
    c.train.eval_bn_batches = 20
  else:
    raise ValueError(f'unknown config argument {arg!r}; use "cpu", "cnn" or nothing')
  c.train.batch_size = c.data.num_train  # full batch: one step = one epoch = the whole subset
  c.train.epochs = epochs
  set_arms(
      c,
      {
          'wd': dict(lr=lr, wd=wd),
          'wd_off': dict(lr=lr, wd=wd, wd_schedule=((wd_off, 0.0),)),
      },
  )
  c.checkpoint.every = 500.0
  return c
