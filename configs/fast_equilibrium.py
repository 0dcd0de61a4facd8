"""Fast Equilibrium (Li, Lyu & Arora 2020, Fig. 3): three LR/WD schedules, one equilibrium.

Arms (SGD, no momentum, scale-invariant nets; the first arm is the TV reference):
  - const:    eta = 0.1, lambda = 0.1;
  - lr_decay: eta = 4 x 0.1, halved at "epochs" 40 and 80; lambda = 0.1;
  - wd_decay: lambda = 4 x 0.1, halved at 40 and 80; eta = 0.1.
All three have intrinsic LR eta*lambda = 0.01 from 80 to 120. At 120 every arm switches to
eta/10 = 0.01, lambda = 0 (fine-tuning) until 200. Predictions of every trial on every test input
are saved at 120 and 200 for the total-variation estimate, and at 40 and 80, where the arms'
intrinsic LRs still differ (4x and 2x): there TV must stand above its split-half floor.

Full scale (`get_config()`, the paper's setting): full MNIST (tfds, 60k/10k), the SI 4-layer CNN
(32-64-64, BatchNorm without affine, fixed head), batch 128, 500 trials per arm, 200 epochs, all
arms in one program, chunks of 250 vmapped trials per call. Needs MNIST prepared for tfds (README,
"Data"). Runtime estimate on one H100 from benchmarks/trials.py (vmapped CNN trials: ~380k img/s
summed; they become grouped convolutions, which batch poorly): 1,500 trials x 200 epochs x 60k
images ~ 13 h; a trial-batched im2col formulation of the convs is the known next speed-up. Command:

    python -m svag_jax.launch.main --config=fast_equilibrium --workdir=runs/fast_equilibrium

Expected (paper): the three arms' test errors coincide from epoch ~80 and after fine-tuning; TV
between arms at T = 500 is far below the sum of their test errors and falls with T.

CPU (`get_config('cpu')`, what `make run` runs): the 5,000 bundled MNIST digits (4,000 train /
1,000 test), 64 trials per arm (192 in all). Model: the SI MLP 784-128-128 with BatchNorm, not the
CNN, chosen by measurement (benchmarks/trials.py, 2 cores): a CNN trial trains ~900 img/s and
vmapped convs are 4x slower still, so 192 CNN trials could not train long enough in 15 minutes,
while the MLP at batch 32 trains 134k img/s for one trial and 154k img/s summed over trials in
calls of 8 vmapped trials (the fastest strategy: all 192 vmapped give 119k, a loop 110k), hence
vmap_chunk = 8. Batch 32 gives 125 steps per epoch; the paper's 40 epochs become 6 CPU epochs (750
steps), i.e. 7.5 x 1/(eta*lambda) = 7.5 x 100 steps at the common intrinsic LR 0.01 and 30 x
1/(eta*lambda) in the first phase of the decay arms, so each phase has time to equilibrate.
Schedule: decays at 6 and 12, switch at 18, end at 30 epochs (3,750 steps); predictions at 6 and
12 (the ends of the two phases where the arms' intrinsic LRs differ 4x and 2x: the power control
of the TV estimate) and at 18 and 30. Data order: a new permutation per epoch (dispatches of one
epoch, rolled scan: no convs).
Runtime: 3.5-4.5 minutes for the 3,750 steps of all 192 trials (12-19 steps/s) on 2 cores,
measured by `make run` in a fresh clone (~1 more minute to create the venv).
Expected (measured): final test error 3.80 / 3.73 / 3.82% (const / lr_decay / wd_decay) on an
AMX Xeon, 3.85 / 3.80 / 3.91% on an AVX-512 Xeon without AMX (CPU rounding, README);
train/test error curves of the three arms coincide from epoch ~12; TV(const, other arm) at 64
trials is a few percent at epoch 18 and < 0.5% at 30, about the split-half floor of const with
itself, and far below the sum of the arms' test errors.

`get_config('cpu_weights')`: the cpu settings with 16 trials per arm and every trial's weights
saved at the prediction epochs (train.params_at; ~90 MB), for the weight distances that
`analysis.fast_equilibrium` prints when params/ exists:

    python -m svag_jax.launch.main --config=fast_equilibrium:cpu_weights --workdir=runs/fe_weights
    python -m svag_jax.analysis.fast_equilibrium runs/fe_weights

Runtime: 2.4 min wall (2.7 min user CPU) on the quiet 2-core CPU. Measured: ||w_i - w_j|| /
||w|| = 1.40 (10-90% of pairs 1.39-1.41) within every arm and across every pair of arms at each
of epochs 6, 12, 18 and 30 (sqrt(2) = 1.414: independent directions), while TV(const, arm) vs
the floor at t = 8 reads 2.1x / 2.2x at epoch 6, 1.8x / 1.5x at 12 and 1.0x / 0.9x at 18: the
arms reach one distribution of functions without their weights coming together.
"""

from svag_jax import schedules
from svag_jax.arms import set_arms
from svag_jax.configs import base

ARGS = ('cpu', 'cpu_weights')


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
  if arg in ('cpu', 'cpu_weights'):
    c.data.source = 'mnist5k'
    c.model.name = 'mlp'
    c.model.widths = (128, 128)
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
    if arg == 'cpu_weights':  # the weights too, of fewer trials (48 x 4 snapshots: ~90 MB)
      c.trials.num = 16
      c.train.params_at = c.train.predictions_at
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
    raise ValueError(f'unknown config argument {arg!r}; use "cpu", "cpu_weights" or nothing')
  return c
