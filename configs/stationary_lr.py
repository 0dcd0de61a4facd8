"""2020 paper, Lemma 5.2: stationary effective LR sqrt(2 lambda_e) / sigma for several lambda_e.

One arm per intrinsic LR lambda_e = eta * lambda (constant schedules, SGD without momentum), all in
one program; every arm logs the gradient noise N = Tr Sigma_B at the training batch size
(metrics.gn_every). At equilibrium the measured effective LR eta / ||w||^2 is compared with
sqrt(2 lambda_e) / sigma, where sigma^2 = ||w||^2 N is the batch-B noise trace at the unit-norm
direction (N scales as 1 / ||w||^2 on a scale-invariant net; `analysis.stationary_lr`, which also
prints the discrete-time prediction with G + N and the factor (2 - lambda_e)):

    python -m svag_jax.launch.main --config=stationary_lr:cpu --workdir=runs/stationary_lr_cpu
    python -m svag_jax.analysis.stationary_lr runs/stationary_lr_cpu

CPU (`get_config('cpu')`): the bundled MNIST digits (4,000 train / 1,000 test), SI MLP 784-128-128
with BatchNorm (no affine) and a fixed head, batch 32 drawn with replacement (i.i.d. batches, as
in the SDE and the G/N estimator; 125 steps per epoch), eta = 0.1 and
lambda_e in {0.0025, 0.005, 0.01, 0.02, 0.04} (lambda = lambda_e / eta), 16 trials per arm in calls
of 8 vmapped trials, init_scale 0.25 (||w||^2 starts at ~16, near the equilibria), 16 epochs
(2,000 steps = 5 / lambda_e for the smallest lambda_e; near equilibrium ||w||^2 relaxes at rate
4 lambda_e per step), an eval with G/N (K = 8 batches) every 0.5 epoch; the equilibrium window is
the last third of the run (epochs 10.7-16).
Runtime: 79 s wall (122 s user CPU) on the quiet 2-core CPU. Measured (16 trials per arm, window
epochs 10.7-16, mean ± 2 SE): eta/||w||^2 = 0.00858, 0.0120, 0.0170, 0.0242, 0.0332 for
lambda_e = 0.0025 ... 0.04 (log-log slope 0.491); measured / (sqrt(2 lambda_e) / sigma) = 0.99,
0.94, 0.95, 0.94, 0.91 (sigma^2 = ||w||^2 N ~ 60-66; N/G = 15 ... 6, so G, left out by the SDE,
adds 7-17% to the step's squared norm); measured / discrete prediction (G + N, 2 - lambda_e) =
1.02, 0.98, 0.99, 1.00, 1.00.

Full scale (`get_config()`): CIFAR-10, SI PreResNet32, B = 128 (with replacement), eta = 0.1,
lambda_e in {1e-4, 2e-4, 5e-4, 1e-3, 2e-3} (lambda = lambda_e / eta), 8 trials per arm, 200 epochs
(~78k steps: >= 7.8 / lambda_e), G/N every 5 epochs; equilibrium window epochs 134-200. Not run
here (GPU/TPU scale): the settings are chosen by the same rules, not taken from the paper.
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
  # i.i.d. batches, as in the SDE and in the G/N estimator (metrics.gn_every). With per-epoch
  # shuffling the next batches are the examples not yet seen this epoch, whose gradients are larger
  # than those of a uniform draw: measured at lambda_e = 0.0025-0.04, the stationary eta/||w||^2
  # then sits 2-9% below sqrt(lambda_e (2 - lambda_e)) / sigma_GN, against 0-3% with replacement.
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
