"""2020 paper, Fig. 2 (CW 2, "a small initial LR generalises as well") and Fig. 2d (an equilibrium
at a smaller intrinsic LR gives better test accuracy after the final decay), momentum 0.9.

Heavy-ball momentum beta = 0.9 (PyTorch convention), so the norm dynamics run at
lambda_e = eta lambda / (1 - beta) (svag_jax/theory.py, the note at the end; the metric
`intrinsic_lr_momentum`); everything below is in lambda_e. Arms (one compiled program), all with
the same final phase from epoch E2 on (eta = eta_0 / 100, lambda_e = 1e-4), so that they differ only
in what comes before it:

  item 5 (is a large initial LR needed?):
  - step_decay:      eta_0, lambda; eta / 10 at E1 and at E2 (lambda_e 1e-2 -> 1e-3 -> 1e-4): the
                     classical large-LR step decay;
  - small_lr_div10:  eta_0 / 10 from the start, same lambda, eta / 10 at E2: the step decay's
                     second-phase equilibrium (lambda_e = 1e-3) without any large-LR phase;
  - small_lr_div100: eta_0 / 100 from the start with lambda x 10 (the same lambda_e = 1e-3; with
                     lambda unchanged lambda_e would be 1e-4, whose equilibrium needs >= 5e4 steps,
                     beyond the budget), eta / 10 at E2;
  Fig. 2d (which equilibrium before the final decay?):
  - eq_0p01:  eta_0 until E2 (equilibrium at lambda_e = 1e-2), then eta / 100;
  - eq_0p003: eta_0 until E1, eta_0 x 0.3 until E2 (lambda_e = 3e-3), then eta_0 / 100;
  - step_decay above is the lambda_e = 1e-3 point.

The paper's claims: the small-LR arms end at the step decay's test accuracy (the LR alone does not
matter, the equilibrium of eta lambda does, and it is reached in O(1 / lambda_e) steps whatever the
initial LR); and the smaller the intrinsic LR of the equilibrium before the final decay, the higher
the test accuracy after it.

    python -m svag_jax.launch.main --config=small_lr:cpu --workdir=runs/small_lr_cpu
    python -m svag_jax.analysis.small_lr runs/small_lr_cpu

CPU (`get_config('cpu')`): bundled MNIST digits (4,000 train / 1,000 test), SI MLP 784-128-128 with
BatchNorm (no affine) and a fixed head, LeCun init (||w||^2 ~ 256), B = 32 shuffled (125 steps per
epoch), eta_0 = 0.1, lambda = 0.01, momentum 0.9; E1 = 10, E2 = 50, 60 epochs (7,500 steps):
phase 1 is 1,250 steps = 12.5 / lambda_e, phase 2 5,000 steps = 5 / lambda_e at lambda_e = 1e-3
(about 4 mixing times, configs/mixing_time.py), the final phase 1,250 steps. 16 trials per arm (80
nets) in calls of 8 vmapped trials; evaluation every 2 epochs and at E2 with BatchNorm statistics
refreshed on 8 training batches.
Measured on this 2-core CPU: 3.2 min wall (4.9 min user CPU) on quiet cores (20.6 min while four
other training jobs shared them, load ~6; the same numbers). Final test accuracy, mean [+- 2 SE]
over 16 trials: step_decay 0.9636 [0.9629, 0.9643]; small_lr_div10 0.9614 [0.9596, 0.9632] (-0.0022
[-0.0041, -0.0003] vs step_decay); small_lr_div100 0.9626 [0.9611, 0.9642] (-0.0009 [-0.0026,
+0.0008]): a 10-100x smaller initial LR ends within 0.2 points of the step decay (the 100x arm's
norm settles at ||w||^2 = 1.66 instead of 15.9, at the same eta / ||w||^2 = 5.3e-4). Fig. 2d:
eq_0p01 (lambda_e = 1e-2 before the final decay) 0.9530 [0.9513, 0.9547], eq_0p003 0.9631 [0.9618,
0.9644], step_decay (1e-3) 0.9636: the smaller equilibrium intrinsic LR ends better from 1e-2 to
3e-3, and is flat from 3e-3 to 1e-3 at this scale.

Full scale (`get_config()`, not run here): SI PreResNet32 with BatchNorm on CIFAR-10 with crop +
flip (configs/base.py: cifar10_preresnet32, B = 128), the paper's eta_0 = 0.1, lambda = 5e-4,
momentum 0.9 (lambda_e = 5e-4, 5e-5, 5e-6); E1 = 40 (15.6k steps = 7.8 / lambda_e), E2 = 300
(102k steps = 5.1 / lambda_e at 5e-5: the paper's 200-epoch budget is too short for the
second-phase equilibrium), 330 epochs, 2 trials per arm; ~1.6 s per epoch per net on one H100
(benchmarks/cifar_runtime.py), ~7.5 h for the 10 nets. The paper's own arms (wd_x_y_lr_z_u) are
configs/wd_lr_family.py.
"""

from svag_jax.arms import set_arms
from svag_jax.configs import base

ARGS = ('cpu',)
MOMENTUM = 0.9


def arms(lr: float, wd: float, e1: float, e2: float) -> dict:
  """The five arms (module docstring) for the initial LR `lr`, WD `wd` and epochs E1, E2."""

  def arm(lr0, lr_schedule, wd0=wd):
    return dict(lr=lr0, lr_schedule=tuple(lr_schedule), wd=wd0, wd_schedule=())

  return {
      'step_decay': arm(lr, ((e1, 0.1), (e2, 0.1))),
      'small_lr_div10': arm(lr / 10, ((e2, 0.1),)),
      'small_lr_div100': arm(lr / 100, ((e2, 0.1),), wd * 10),
      'eq_0p01': arm(lr, ((e2, 0.01),)),
      'eq_0p003': arm(lr, ((e1, 0.3), (e2, 1 / 30))),
  }


def get_config(arg: str | None = None):
  c = base.get_config()
  if arg == 'cpu':
    base.mnist_mlp(c)
    c.optim.momentum = MOMENTUM
    set_arms(c, arms(0.1, 0.01, e1=10, e2=50))
    c.trials.num = 16
    c.train.epochs = 60
    c.train.eval_every = 2.0
    c.train.eval_bn_batches = 8
    c.checkpoint.every = 10.0
  elif arg in (None, '', 'full'):
    base.cifar10_preresnet32(c)
    c.optim.momentum = MOMENTUM
    set_arms(c, arms(0.1, 5e-4, e1=40, e2=300))
    c.trials.num = 2
    c.train.epochs = 330
    c.train.eval_every = 2.0
    c.train.eval_bn_batches = 50
  else:
    raise ValueError(f'unknown config argument {arg!r}; use "cpu" or nothing')
  return c
