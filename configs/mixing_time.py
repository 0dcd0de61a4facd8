"""2020 paper, mixing time ~ 1 / lambda_e (Fig. 11's claim): eta / 10 and lambda x 10 at once.

Each arm reaches equilibrium at its intrinsic LR lambda_e = eta lambda, then at the same epoch
divides eta by 10 and multiplies lambda by 10: lambda_e is unchanged, so the equilibrium effective
LR sqrt(2 lambda_e) / sigma is too, but eta / ||w||^2 falls 10x at once and recovers only as ||w||^2
shrinks 10x (||w||^4 ~ eta / lambda; ||w||^4 relaxes at rate 4 lambda_e per step): at constant
sigma the return within 10% takes 1.51 / lambda_e steps (`analysis.mixing_time.
predicted_mixing_slope`). `analysis.mixing_time`
detects the return of eta / ||w||^2 (per trial; equivalently of ||w||^2 to its new equilibrium,
||w||^2 / 10) and of the trial-mean test error, and fits steps vs 1 / lambda_e:

    python -m svag_jax.launch.main --config=mixing_time:cpu --workdir=runs/mixing_time_cpu
    python -m svag_jax.analysis.mixing_time runs/mixing_time_cpu

CPU (`get_config('cpu')`): the setting of configs/stationary_lr.py:cpu (bundled MNIST, SI MLP
784-128-128 with BatchNorm, batch 32 with replacement, 125 steps per epoch, init_scale 0.25);
eta = 0.1 and
lambda_e in {0.0025, 0.0035, 0.005, 0.007, 0.01, 0.014, 0.02} (1 / lambda_e from 50 to 400 steps),
8 trials each (56 in all, 7 calls of 8 vmapped trials); the change at epoch 10 (step 1,250 =
3.1 / lambda_e for the smallest lambda_e), 26 epochs (2,000 steps after the change); an eval
every 0.2 epoch (25 steps).
Runtime: 107 s wall (191 s user CPU) on the quiet 2-core CPU. Measured with the analysis defaults
(running mean over 5 evals; eta/||w||^2 per trial within 10%, trial-mean test error within 15%):
eta/||w||^2 returns after 541, 425, 306, 238, 178, 144, 109 steps (mean over 8 trials; 2 SE 6-16
steps) for lambda_e = 0.0025 ... 0.02: steps = 1.243 / lambda_e + 55, R^2 = 0.997 (the
constant-sigma SDE predicts 1.51 / lambda_e, no intercept); the test error after 500, 350, 275,
200, 150, 100, 75 steps: 1.191 / lambda_e + 23, R^2 = 0.996 (its noise leaves the bootstrap
interval of lambda_e = 0.02 open).

Full scale (`get_config()`): SI PreResNet32 on CIFAR-10 (B = 128, 391 steps per epoch), eta = 0.8,
lambda_e in {2e-4, 3e-4, 5e-4, 8e-4, 1.2e-3, 2e-3}, 4 trials each, the change at epoch 100 (>= 7.8 /
lambda_e), 200 epochs; an eval every 0.5 epoch. Not run here.
"""

from svag_jax import config as config_lib
from svag_jax.configs import base, stationary_lr

ARGS = ('cpu',)  # get_config arguments besides none (the full-scale variant)

CPU_INTRINSIC_LRS = (0.0025, 0.0035, 0.005, 0.007, 0.01, 0.014, 0.02)
FULL_INTRINSIC_LRS = (2e-4, 3e-4, 5e-4, 8e-4, 1.2e-3, 2e-3)


def arms(lr: float, intrinsic_lrs, change_epoch: float) -> dict:
  """One arm per lambda_e: LR x 0.1 and WD x 10 at `change_epoch` (lambda_e unchanged)."""
  return stationary_lr.arms(
      lr, intrinsic_lrs, lr_schedule=((change_epoch, 0.1),), wd_schedule=((change_epoch, 10.0),)
  )


def get_config(arg: str | None = None):
  c = base.get_config()
  if arg == 'cpu':
    stationary_lr.mnist_mlp(c)
    config_lib.set_arms(c, arms(0.1, CPU_INTRINSIC_LRS, change_epoch=10))
    c.trials.num = 8
    c.train.epochs = 26
    c.train.eval_every = 0.2
    c.checkpoint.every = 4.0
  elif arg in (None, '', 'full'):
    base.cifar10_preresnet32(c)
    config_lib.set_arms(c, arms(0.8, FULL_INTRINSIC_LRS, change_epoch=100))
    c.trials.num = 4
    c.train.epochs = 200
    c.train.eval_every = 0.5
  else:
    raise ValueError(f'unknown config argument {arg!r}; use "cpu" or nothing')
  return c
