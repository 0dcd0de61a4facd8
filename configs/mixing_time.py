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
eta = 0.1 and lambda_e in {0.0025, 0.0035, 0.005, 0.007, 0.01, 0.014, 0.02} (1 / lambda_e from 50
to 400 steps), each arm with its unchanged control arm `ctl_...` (same eta, lambda throughout), 8
trials each (112 nets); the change at epoch 8 (step 1,000 = 2.5 / lambda_e for the smallest
lambda_e), 16 epochs (1,000 steps after the change); an eval every 0.4 epoch plus an eval with
saved test predictions at 6 epochs before the change and at CPU_OFFSETS steps after it (every 5
steps for the first 100, shorter than the fastest relaxation time 1 / (4 * 0.02) = 12.5 steps).
Runtime: 2.1 min wall (3.4 min user CPU) on the quiet 2-core CPU (6.5 min while four other
training jobs shared the cores).
Measured (`python -m svag_jax.analysis.mixing_time`):
  - the time constant of ||w||^4 (fitted per trial as an exponential over 0.1 < y < 0.9, no
    smoothing window): 96.7, 69.9, 49.1, 35.0, 24.5, 17.5, 12.2 steps (2 SE <= 0.1) for
    lambda_e = 0.0025 ... 0.02, i.e. tau * 4 lambda_e = 0.97-0.98; tau = 0.242 [0.242, 0.242] /
    lambda_e + 0.4 [0.3, 0.4], R^2 = 0.9999 (95% bootstrap over trials), against the constant-
    sigma SDE's 0.25 / lambda_e + 0. The earlier detector fit (1.24 / lambda_e + 55 with a
    125-step running mean, on an eval every 25 steps) was shaped by its window and tolerance.
  - function space: TV(changed arm, its control) at 8 vs 8 trials stays within 0.71-1.32x of its
    level before the change (0.037 at lambda_e = 0.0025 ... 0.097 at 0.02) at every saved step:
    at this trial count the change is not visible in the prediction distribution, so the
    function-space mixing time cannot be read here (the lowest ratios, 0.7x, come within 30-65
    steps of the change at lambda_e >= 0.007, when the changed arm's effective LR is 10x lower).
  - the threshold detector (`mixing`) needs evenly spaced evals; on this run's mixed spacing its
    window (5 x the median spacing) is too short for the fast arms and its fit is not meaningful
    (0.86 / lambda_e + 198, R^2 = 0.71).
Full scale (`get_config()`): SI PreResNet32 on CIFAR-10 (B = 128, 391 steps per epoch), eta = 0.8,
lambda_e in {2e-4, 3e-4, 5e-4, 8e-4, 1.2e-3, 2e-3}, 4 trials each, the change at epoch 100 (>= 7.8 /
lambda_e), 200 epochs; an eval every 0.5 epoch. Not run here.
"""

from svag_jax.arms import set_arms
from svag_jax.configs import base, stationary_lr

ARGS = ('cpu',)  # get_config arguments besides none (the full-scale variant)

CPU_INTRINSIC_LRS = (0.0025, 0.0035, 0.005, 0.007, 0.01, 0.014, 0.02)
FULL_INTRINSIC_LRS = (2e-4, 3e-4, 5e-4, 8e-4, 1.2e-3, 2e-3)
CONTROL_PREFIX = 'ctl_'  # the unperturbed arm of lambda_e: CONTROL_PREFIX + its perturbed arm

# Steps after the change at which the CPU run evaluates and saves predictions: dense where the
# fastest arms relax (1 / (4 lambda_e) = 12.5 steps for lambda_e = 0.02), sparse later.
CPU_OFFSETS = tuple(range(0, 100, 5)) + tuple(range(100, 300, 10)) + tuple(range(300, 1001, 50))


def arms(lr: float, intrinsic_lrs, change_epoch: float, controls: bool = False) -> dict:
  """One arm per lambda_e: LR x 0.1 and WD x 10 at `change_epoch` (lambda_e unchanged); with
  `controls`, also its unperturbed arm (CONTROL_PREFIX + name: eta, lambda constant)."""
  result = stationary_lr.arms(
      lr, intrinsic_lrs, lr_schedule=((change_epoch, 0.1),), wd_schedule=((change_epoch, 10.0),)
  )
  if controls:
    result.update({CONTROL_PREFIX + k: v for k, v in stationary_lr.arms(lr, intrinsic_lrs).items()})
  return result


def prediction_epochs(
    change_epoch: float, offsets, steps_per_epoch: int, pre: tuple = ()
) -> tuple[float, ...]:
  """Epochs `pre` and change_epoch + offset / steps_per_epoch (offsets in steps), sorted."""
  post = {round(change_epoch + s / steps_per_epoch, 6) for s in offsets}
  return tuple(sorted(set(pre) | post))


def get_config(arg: str | None = None):
  c = base.get_config()
  if arg == 'cpu':
    stationary_lr.mnist_mlp(c)
    set_arms(c, arms(0.1, CPU_INTRINSIC_LRS, change_epoch=8, controls=True))
    c.trials.num = 8
    c.train.epochs = 16
    c.train.eval_every = 0.4
    pre = tuple(round(5.6 + 0.4 * i, 6) for i in range(6))  # 5.6 ... 7.6: TV's null before
    c.train.predictions_at = prediction_epochs(8, CPU_OFFSETS, 125, pre)
    c.checkpoint.every = 4.0
  elif arg in (None, '', 'full'):
    base.cifar10_preresnet32(c)
    set_arms(c, arms(0.8, FULL_INTRINSIC_LRS, change_epoch=100, controls=True))
    c.trials.num = 4
    c.train.epochs = 200
    c.train.eval_every = 0.5
    c.train.predictions_at = prediction_epochs(
        100, tuple(range(0, 4000, 200)) + tuple(range(4000, 39001, 1000)), 391, (90, 95)
    )
  else:
    raise ValueError(f'unknown config argument {arg!r}; use "cpu" or nothing')
  return c
