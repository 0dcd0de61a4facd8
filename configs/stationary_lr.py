"""2020 paper, Lemma 5.2: stationary effective LR sqrt(2 lambda_e) / sigma for several lambda_e.

Paper (Lemma 5.2, no figure of its own; Figs. 4 and 11 show it holding approximately): at
equilibrium eta / ||w||^2 ~ sqrt(2 lambda_e) / sigma, sigma^2 the noise trace at the unit-norm
direction. Here: one arm per lambda_e = eta lambda (constant schedules, SGD without momentum), each
logging N = Tr Sigma_B (metrics.gn_every); `analysis.stationary_lr` compares the measured eta /
||w||^2 with the prediction and with its discrete-time form (G + N, factor 2 - lambda_e).

    python -m svag_jax.launch.main --config=stationary_lr:cpu --workdir=runs/stationary_lr_cpu
    python -m svag_jax.analysis.stationary_lr runs/stationary_lr_cpu
    python -m svag_jax.launch.main --config=stationary_lr --workdir=runs/stationary_lr

CPU (`:cpu`: bundled MNIST, SI MLP 784-128-128, B = 32 with replacement, eta = 0.1, lambda_e =
0.0025 ... 0.04, 16 epochs, 16 trials per arm): 79 s wall on the quiet 2-core CPU. Expected
(measured): eta / ||w||^2 = 0.00858 ... 0.0332 (log-log slope 0.491); measured / prediction =
0.91-0.99, measured / discrete prediction = 0.98-1.02. Full scale (SI PreResNet32 on CIFAR-10,
lambda_e = 1e-4 ... 2e-3, 200 epochs, 8 trials; chosen by the same rules, not from the paper): not
run, no runtime measured.

Settings in full, all measurements, why batches with replacement: docs/experiments.md#stationary_lr.
"""

from collections.abc import Sequence

from svag_jax.arms import set_arms
from svag_jax.configs import base

ARGS = ('cpu',)  # get_config arguments besides none (the full-scale variant)

CPU_INTRINSIC_LRS = (0.0025, 0.005, 0.01, 0.02, 0.04)
FULL_INTRINSIC_LRS = (1e-4, 2e-4, 5e-4, 1e-3, 2e-3)


def arm_name(intrinsic_lr: float) -> str:
  """The arm of one lambda_e, e.g. 'le_0p0025' (config keys cannot hold dots; the analysis reads
  lambda_e from the metric rows)."""
  return f'le_{intrinsic_lr:g}'.replace('.', 'p').replace('-', 'm')


def arms(
    lr: float, intrinsic_lrs: Sequence[float], lr_schedule: tuple = (), wd_schedule: tuple = ()
) -> dict:
  """One arm per lambda_e at LR `lr` (lambda = lambda_e / lr), with the given schedules."""
  return {
      arm_name(le): dict(
          lr=lr, wd=round(le / lr, 12), lr_schedule=lr_schedule, wd_schedule=wd_schedule
      )
      for le in intrinsic_lrs
  }


def mnist_mlp(c):
  """The CPU setting shared by the equilibrium configs (stationary_lr, lr_drop, mixing_time):
  bundled MNIST, SI MLP 784-128-128 with BatchNorm, batch 32 drawn with replacement, plain SGD,
  8 vmapped trials per call, one rolled scan per dispatch. Returns `c`."""
  base.mnist_mlp(c)
  # ||w||^2 starts at ~16 instead of ~256 (LeCun init), near the equilibria of lambda_e ~ 0.01,
  # so that every arm reaches its equilibrium within a few hundred steps
  c.model.init_scale = 0.25
  # i.i.d. batches, as in the SDE and in the G/N estimator (metrics.gn_every); per-epoch shuffling
  # measured 2-9% further below the prediction (docs/experiments.md#stationary_lr)
  c.train.sampling = 'replacement'
  c.train.eval_bn_batches = 8  # BatchNorm running stats brought up to date before each eval
  c.metrics.gn_batches = 8
  return c


def get_config(arg: str | None = None):
  c = base.get_config()
  if arg == 'cpu':
    mnist_mlp(c)
    set_arms(c, arms(0.1, CPU_INTRINSIC_LRS))
    c.trials.num = 16
    c.train.epochs = 16
    c.train.eval_every = 0.5
    c.metrics.gn_every = 0.5
    c.checkpoint.every = 4.0
  elif arg in (None, '', 'full'):
    base.cifar10_preresnet32(c)
    c.train.sampling = 'replacement'
    set_arms(c, arms(0.1, FULL_INTRINSIC_LRS))
    c.trials.num = 8
    c.train.epochs = 200
    c.train.eval_every = 1.0
    c.metrics.gn_every = 5.0
  else:
    raise ValueError(f'unknown config argument {arg!r}; use "cpu" or nothing')
  return c
