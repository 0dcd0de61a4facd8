"""The common base of every svag_jax config: all fields with their defaults, and shared settings.

Experiment configs call `get_config()` from here and override a few fields. The schema itself lives
in `svag_jax.config.defaults` (the library validates configs against it), so this file stays tiny.

Every config module declares `ARGS`, the arguments its `get_config(arg)` accepts besides None (the
full-scale run); tests/test_configs.py validates each of them (and every point of a `get_sweep`).
"""

import ml_collections

from svag_jax.schema import defaults

# The CIFAR-shaped smoke runs: a few steps of a tiny version of a full-scale config, on synthetic
# 32x32x3 images, so that a broken full-scale config fails in tests on a CPU.
SMOKE_WIDEN = 0.125  # PreResNet 2/4/8 channels, VGG 8..64
SMOKE_GROUPS = 2  # GroupNorm groups that divide the smoke widths
SMOKE_TRAIN = 32  # synthetic training images: one epoch = SMOKE_TRAIN / B steps


def get_config() -> ml_collections.ConfigDict:
  return defaults()


def cifar(
    c: ml_collections.ConfigDict,
    model: str = 'preresnet32',
    norm: str = 'batch',
    name: str = 'cifar10',
) -> ml_collections.ConfigDict:
  """The papers' full-scale CIFAR setting: SI `model` with `norm` on tfds `name` with the standard
  crop + flip augmentation, B = 128, no momentum, PyTorch-scale init, rolled steps (GPU/TPU);
  returns `c`. GroupNorm uses 8 groups (every PreResNet/VGG width is a multiple of 8)."""
  c.data.source, c.data.name, c.data.augment = 'tfds', name, True
  c.model.name, c.model.norm, c.model.num_groups = model, norm, 8
  c.model.init_scale = 0.577  # PyTorch's default conv init, std 1 / sqrt(3 fan_in)
  c.train.batch_size = 128
  c.train.eval_batch_size = 500
  c.train.steps_per_dispatch = 50
  c.train.unroll = False
  # Trials in a loop: on one H100 10 vmapped PreResNet32 trials train 23k img/s in all (per-trial
  # convs become grouped convolutions), 10 looped ones 33k (benchmarks/cifar_runtime.py).
  c.trials.vmap_chunk = 1
  c.optim.momentum = 0.0
  c.checkpoint.every = 10.0
  return c


def cifar10_preresnet32(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The 2021 paper's setting shared by its CIFAR figures: SI PreResNet32 (BatchNorm) on CIFAR-10,
  B = 128, eta = 0.8, lambda = 5e-4, no momentum; returns `c`."""
  cifar(c)
  c.optim.lr, c.optim.wd = 0.8, 5e-4
  return c


def mnist_mlp(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The CPU setting of the MNIST dynamics experiments: the bundled digits (4,000 train / 1,000
  test), SI MLP 784-128-128 with BatchNorm (no affine) and a fixed head, plain SGD with B = 32
  (125 steps per epoch), one epoch per dispatch in a rolled scan (an MLP: as fast as unrolled and
  compiles in seconds), chunks of 8 vmapped trials (the fastest strategy here,
  benchmarks/trials.py); returns `c`."""
  c.data.source = 'mnist5k'
  c.model.name, c.model.widths, c.model.norm = 'mlp', (128, 128), 'batch'
  c.optim.momentum = 0.0
  c.train.batch_size = 32
  c.train.steps_per_dispatch = 125
  c.train.unroll = False
  c.trials.vmap_chunk = 8
  return c


def smoke(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Shrinks a full-scale CIFAR config in place to a CPU smoke run of one short epoch.

  Keeps what defines the experiment (model family and depth, norm, optimizer, oracle, arms and
  their schedules, augmentation, G/N logging) and replaces the data by `SMOKE_TRAIN` synthetic
  CIFAR-shaped images, the widths by `SMOKE_WIDEN` x, and the run by one trial per arm, batch
  <= 16, one epoch (2 steps at B = 16).
  """
  schema = defaults()
  c.data.source = 'synthetic'
  c.data.name, c.data.data_dir = schema.data.name, schema.data.data_dir  # read by tfds alone
  c.data.synthetic_shape = (32, 32, 3)
  c.data.synthetic_num_train, c.data.synthetic_num_test = SMOKE_TRAIN, 32
  c.data.num_train = c.data.num_test = 0
  c.model.widen = SMOKE_WIDEN
  if c.model.norm == 'group':
    c.model.num_groups = SMOKE_GROUPS
  c.train.batch_size = min(c.train.batch_size, SMOKE_TRAIN // 2)
  c.train.epochs = 1
  c.train.eval_every = 1.0
  c.train.eval_batch_size = 32
  c.train.steps_per_dispatch = 1  # one compiled step (compile-bound): its 2 steps, 2 calls
  c.train.unroll = True  # CPU: conv gradients in rolled loops are 25-60x slower (jax#12868)
  c.train.predictions_at = tuple(e for e in c.train.predictions_at if e <= c.train.epochs)
  if c.optim.oracle in ('ngd', 'gd'):
    c.optim.chunk_size = min(c.optim.chunk_size, 32)
  if c.metrics.gn_every:
    c.metrics.gn_every, c.metrics.gn_batches = 1.0, 2
  c.trials.num, c.trials.vmap_chunk = 1, 0
  c.checkpoint.every = 1.0
  return c
