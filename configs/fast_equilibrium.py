"""2020 paper, Fig. 3 (Fast Equilibrium): three LR/WD schedules, one equilibrium.

Paper (Fig. 3 caption, Sec. 6.1): SI 4-layer CNN on MNIST, SGD, 500 trials per schedule. Const:
eta = lambda = 0.1; LR-decay / WD-decay: 4x the LR / WD, halved every 40 epochs, so all three share
eta lambda from epoch 81 to 120; from 121 eta = 0.01, lambda = 0 (fine-tuning) until 200; TV of
the test predictions at 120 and 200. Batch size, widths and init are not in the main text
(appendix, not available here; this config: B = 128, CNN 32-64-64, PyTorch init). Arms: `arms`.

    python -m svag_jax.launch.main --config=fast_equilibrium --workdir=runs/fast_equilibrium
    python -m svag_jax.launch.main --config=fast_equilibrium:cpu --workdir=runs/fast_equilibrium_cpu
    python -m svag_jax.analysis.fast_equilibrium runs/fast_equilibrium_cpu

Full scale (tfds MNIST, README "Data"): ~13 h estimated on one H100 (benchmarks/trials.py); not run.
Expected (paper): the arms' test errors coincide from epoch ~80 and after fine-tuning; TV between
arms falls with the number of trials, far below the sum of their test errors.
CPU (`:cpu`, what `make run` runs: 4,000 bundled digits, SI MLP 784-128-128, B = 32, 64 trials per
arm, epochs 6 / 12 / 18 / 30 for 40 / 80 / 120 / 200): 3.5-4.5 min on 2 cores. Expected
(measured): final test error 3.80 / 3.73 / 3.82% (const / lr_decay / wd_decay) on an AMX Xeon,
3.85 / 3.80 / 3.91% on an AVX-512 Xeon; TV(const, other arm) a few percent at epoch 18, < 0.5% at
30, about its split-half floor.
`:cpu_weights` (16 trials per arm, weights saved; same two commands): 4.1 min wall at load ~9 on
the shared 2-core CPU (1.9 min user CPU). Expected (measured): along one trajectory at eta lambda =
0.01 the relative distance ||W_i(T) - W_i(T+delta)|| / ||W|| from epoch 12 grows to 0.82-0.90 at
18, far from sqrt(2), while TV to const falls to its permutation null (p = 0.24 / 0.19).

`:cpu_adamw` (the :cpu arms with AdamW at eta lambda = 0.01; same commands): 5.0 min at load ~1.8
on 2 cores. Measured: TV at the floor from epoch 18 (1.0x / 1.0x, permutation p = 0.38 / 0.90),
2.5x / 2.6x at 6; final test error 4.12 / 4.07 / 4.15% (+- 0.08%, 95%).
Why the MLP, the scaled epochs, all measurements: docs/experiments.md#fast_equilibrium.
"""

from svag_jax import schedules
from svag_jax.arms import set_arms
from svag_jax.configs import base

ARGS = ('cpu', 'cpu_weights', 'cpu_adamw')
# AdamW (`:cpu_adamw`): the same arms at eta lambda = 0.01 (eta = 0.01, lambda = 1: the decay per
# step is eta lambda, svag_jax.optim.adamw), beta2 = 0.99 so that the second moment follows the
# norm (~100 steps) within each 750-step phase.
ADAMW = dict(lr=0.01, wd=1.0, beta1=0.9, beta2=0.99, eps=1e-8)


def arms(lr: float = 0.1, wd: float = 0.1, every: float = 40, switch: float = 120) -> dict:
  """The three arms, with the decay period `every` and the fine-tuning switch at `switch`."""
  decay = dict(every=every, until=switch)
  const_lr = schedules.then(schedules.const(lr), switch, 0.1)
  const_wd = schedules.then(schedules.const(wd), switch, 0.0)
  decayed_lr = schedules.then(schedules.step_decay(lr, **decay), switch, 0.1)
  decayed_wd = schedules.then(schedules.step_decay(wd, **decay), switch, 0.0)

  def arm(lr_s, wd_s):
    return dict(lr=lr_s[0], lr_schedule=lr_s[1], wd=wd_s[0], wd_schedule=wd_s[1])

  return {
      'const': arm(const_lr, const_wd),
      'lr_decay': arm(decayed_lr, const_wd),
      'wd_decay': arm(const_lr, decayed_wd),
  }


def get_config(arg: str | None = None):
  c = base.get_config()
  c.optim.lr, c.optim.wd, c.optim.momentum = 0.1, 0.1, 0.0
  c.model.norm = 'batch'
  c.train.sampling = 'shuffle'
  if arg in ('cpu', 'cpu_weights', 'cpu_adamw'):
    c.data.source = 'mnist5k'
    c.model.name = 'mlp'
    c.model.widths = (128, 128)
    if arg == 'cpu_adamw':
      c.optim.optimizer = 'adamw'
      c.optim.beta1, c.optim.beta2, c.optim.eps = ADAMW['beta1'], ADAMW['beta2'], ADAMW['eps']
      set_arms(c, arms(ADAMW['lr'], ADAMW['wd'], every=6, switch=18))
    else:
      set_arms(c, arms(every=6, switch=18))
    c.trials.num = 64
    c.trials.vmap_chunk = 8  # the fastest strategy here (benchmarks/trials.py)
    c.train.batch_size = 32
    c.train.epochs = 30
    c.train.eval_every = 1.0  # = one dispatch: a single train program; 6, 12, 18, 30 on the grid
    c.train.predictions_at = (6, 12, 18, 30)
    c.train.steps_per_dispatch = 125  # one epoch per call
    c.train.unroll = False  # an MLP: a rolled scan is as fast and compiles in seconds
    c.checkpoint.every = 3.0
    if arg == 'cpu_weights':  # the weights too, of fewer trials (48 x 9 snapshots: ~200 MB)
      c.trials.num = 16
      # every prediction epoch, and from 12 (all arms at eta lambda = 0.01 until 18) after
      # 0.2 ... 3.2 epochs = 25 ... 400 steps = 0.25 ... 4 / (eta lambda)
      c.train.params_at = (6, 12, 12.2, 12.4, 12.8, 13.6, 15.2, 18, 30)
  elif arg in (None, '', 'full'):
    c.data.source = 'tfds'
    c.data.name = 'mnist'
    c.model.name = 'cnn'
    c.model.widths = (32, 64, 64)
    c.model.init_scale = 0.577  # PyTorch's default conv init, std 1/sqrt(3 fan_in), as in the paper
    set_arms(c, arms())
    c.trials.num = 500
    c.trials.vmap_chunk = 250
    c.train.batch_size = 128
    c.train.epochs = 200
    c.train.eval_every = 5.0
    c.train.eval_batch_size = 500
    c.train.predictions_at = (40, 80, 120, 200)
    c.train.steps_per_dispatch = 100
    c.train.unroll = False
    c.checkpoint.every = 10.0
  else:
    raise ValueError(f'unknown config argument {arg!r}; use one of {ARGS} or nothing')
  return c
