"""2021 paper, Fig. 1: SGD vs NGD (noisy GD with covariance-matched Gaussian noise) vs GD.

The same GroupNorm net, fixed training set (no augmentation), init, LR, WD and steps for all three:
SGD draws batches of B with replacement; NGD takes the full-batch gradient plus exact
N(0, Sigma_1 / B) noise; GD the full-batch gradient. One sweep point per oracle.
Paper (Fig. 1 caption): CIFAR-10, SGD at B = 125, eta = 0.8 decayed by 0.1 at step 24,000,
GroupNorm, no augmentation; the net, lambda and the number of steps are in Appendix F.3 (not
available here).
Full scale (default): SI PreResNet32-GN on the 50k images, the caption's B = 125, eta = 0.8 and
x 0.1 at step 24,000 (epoch 60); lambda = 5e-4 and 75 epochs are from no caption. `:b500` is the
earlier full scale (B = 500, eta = 3.2, the same eta / B; 300 epochs, x 0.1 at 250).

    python -m svag_jax.launch.sweep --config=ngd --workdir=runs/ngd
    python -m svag_jax.launch.sweep --config=ngd:cpu --workdir=runs/ngd_cpu
    python -m svag_jax.analysis.ngd runs/ngd_cpu

Runtime on one H100 (benchmarks/cifar_runtime.py, measured at B = 500): an NGD or GD step is a
full pass, 0.86 s, so the caption's 30,000 steps (75 epochs at B = 125) take ~7 h per full-batch
oracle (`:b500`: 30,000 steps too); SGD 1.0 s/epoch at B = 500. Not run here. Expected (paper):
test accuracy SGD 89.4%, NGD 89.3%, GD 75.5%. `get_config('smoke')`: tiny net, synthetic data.
CPU (`:cpu`: 1,000 bundled digits, SI MLP 784-64-64 GroupNorm, B = 50, eta = 1.0, lambda = 0.01,
100 epochs with the LR x 0.1 at 85, 32 trials per oracle from the same inits): 23.3 min wall with
the 2 cores shared by other jobs (load ~10), 8.6 min of CPU time. Expected (measured, mean [95%
interval]): test accuracy SGD 0.9153 [0.9136, 0.9170], NGD 0.9154 [0.9137, 0.9171], GD 0.9079
[0.9063, 0.9095]; paired by init NGD - SGD +0.0001 [-0.0019, +0.0021], GD - SGD -0.0074
[-0.0099, -0.0049], NGD - GD +0.0075 [+0.0052, +0.0098] (differences of 0.003 detectable with 80%
power).

The caption check, settings tried on the way, all measurements: docs/experiments.md#ngd.
"""

from svag_jax import schema
from svag_jax.configs import base

ARGS = ('cpu', 'b500', 'smoke')
CAPTION_STEPS = 400  # SGD steps per epoch at the caption's B = 125 on the 50k CIFAR-10 images


def get_config(arg: str | None = None):
  c = base.get_config()
  c.model.norm = 'group'
  c.model.num_groups = 8
  c.optim.oracle = 'ngd'
  c.optim.momentum = 0.0
  c.trials.num = 1
  if arg == 'cpu':
    c.data.source = 'mnist5k'
    c.data.num_train = 1000
    c.model.name, c.model.widths = 'mlp', (64, 64)  # 8 GroupNorm groups of 8 units per layer
    c.train.batch_size = 50
    c.optim.lr = 1.0
    c.optim.wd = 0.01  # eta lambda = 0.01: 1,700 steps = 17 / (eta lambda) before the decay
    c.optim.lr_schedule = ((85, 0.1),)
    c.optim.chunk_size = 1000  # one pass per NGD/GD step
    c.train.epochs = 100
    c.train.eval_every = 5.0
    c.train.steps_per_dispatch = 20  # one epoch per call (rolled: an MLP)
    c.train.unroll = False
    c.trials.num = 32  # paired differences resolve ~0.3 points (docs/experiments.md#ngd)
    c.trials.vmap_chunk = 0
    c.checkpoint.every = 25.0
  elif arg in (None, '', 'full', 'smoke', 'b500'):
    base.cifar10_preresnet32(c)
    c.data.augment = False
    c.model.norm, c.model.num_groups = 'group', 8
    if arg == 'b500':  # the earlier full scale: the caption's eta / B, the LSR runs' decay epoch
      c.train.batch_size, c.optim.lr = 500, 3.2
      c.optim.lr_schedule, c.train.epochs = ((250, 0.1),), 300
    else:  # the caption: B = 125, eta = 0.8, x 0.1 at step 24,000 (epoch 60); the run's length
      # and lambda are in Appendix F.3 (not available here): 75 epochs, lambda = 5e-4
      c.train.batch_size, c.optim.lr = 125, 0.8
      c.optim.lr_schedule, c.train.epochs = ((24_000 / CAPTION_STEPS, 0.1),), 75
    c.optim.wd = 5e-4
    c.optim.chunk_size = 1000
    c.train.eval_every = 1.0 if arg != 'b500' else 5.0
    if arg == 'smoke':
      base.smoke(c)
  else:
    raise ValueError(f'unknown config argument {arg!r}; use one of {ARGS} or nothing')
  return c


def get_sweep(arg: str | None = None):
  """SGD, NGD and GD from the same config. Each point sets what its oracle reads: SGD samples
  batches with replacement (the noise NGD matches) and reads no chunk size."""
  del arg
  chunk = schema.defaults().optim.chunk_size
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
