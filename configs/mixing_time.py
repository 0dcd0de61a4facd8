"""2020 paper, Fig. 11's claim (mixing time ~ 1 / lambda_e): eta / 10 and lambda x 10 at once.

Paper (Sec. 6.2; Fig. 11 and its settings are in Appendix F, not available here): nets first reach
the equilibrium of different intrinsic LRs, then divide the LR by 10 and multiply the WD by 10 at
once (lambda_e unchanged, eta / ||w||^2 pushed 10x down); the time to return to equilibrium is
about linear in 1 / (eta lambda). Arms: one per lambda_e plus its unchanged control `ctl_...`.

    python -m svag_jax.launch.main --config=mixing_time:cpu --workdir=runs/mixing_time_cpu
    python -m svag_jax.analysis.mixing_time runs/mixing_time_cpu
    python -m svag_jax.launch.main --config=mixing_time --workdir=runs/mixing_time

CPU (`:cpu`: the stationary_lr.py:cpu setting, lambda_e = 0.0025 ... 0.02, the change at epoch 8 of
16, 32 trials per arm): 29.6 min wall at load 8-11 on the shared 2-core CPU, 9.8 min user CPU
(~6 min on 2 quiet cores by the wall / user ratio of the 8-trial run).
Expected (measured): ||w||^4 relaxes with tau = 0.242 [0.242, 0.242] / lambda_e (R^2 = 0.9999;
SDE: 0.25 / lambda_e); the test error against the control with tau_f = 0.750 [0.668, 0.831] /
lambda_e - 11 (R^2 = 0.954); TV to the control above its permutation null (p < 0.05) from 5-15
steps after the change. Full scale (SI PreResNet32 on CIFAR-10, eta = 0.8, lambda_e = 5e-4, 1e-3,
2e-3, the change at epoch 50 of 100, 32 trials): not run; ~1.6 s per epoch per net on one H100,
~8.5 h for the 192 nets.

The fits, the TV test, what was tried before, all measurements: docs/experiments.md#mixing_time.
"""

from svag_jax.arms import set_arms
from svag_jax.configs import base, stationary_lr

ARGS = ('cpu',)  # get_config arguments besides none (the full-scale variant)

CPU_INTRINSIC_LRS = (0.0025, 0.0035, 0.005, 0.01, 0.02)
FULL_INTRINSIC_LRS = (5e-4, 1e-3, 2e-3)
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
    c.trials.num = 32
    c.train.epochs = 16
    c.train.eval_every = 0.4
    pre = tuple(round(5.6 + 0.4 * i, 6) for i in range(6))  # 5.6 ... 7.6: TV's null before
    c.train.predictions_at = prediction_epochs(8, CPU_OFFSETS, 125, pre)
    c.checkpoint.every = 4.0
  elif arg in (None, '', 'full'):
    base.cifar10_preresnet32(c)
    set_arms(c, arms(0.8, FULL_INTRINSIC_LRS, change_epoch=50, controls=True))
    c.trials.num = 32
    c.train.epochs = 100
    c.train.eval_every = 0.5
    c.train.predictions_at = prediction_epochs(
        50, tuple(range(0, 4000, 200)) + tuple(range(4000, 19501, 1000)), 391, (40, 45)
    )
  else:
    raise ValueError(f'unknown config argument {arg!r}; use "cpu" or nothing')
  return c
