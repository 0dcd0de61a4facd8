"""2020 paper, Fig. 1: five LR/WD schedules on CIFAR-10 reach one equilibrium.

SI PreResNet32 (BatchNorm without affine, fixed head) on CIFAR-10 with crop + flip augmentation,
SGD without momentum, B = 128. Five arms differ for epochs 0-500 and are identical afterwards:

  - const:        eta = 0.1,   lambda = 5e-4 throughout;
  - lr_decay:     eta = 0.4, halved at 250 and 375 (0.1 from 375);     lambda = 5e-4;
  - wd_decay:     eta = 0.1;   lambda = 2e-3, halved at 250 and 375 (5e-4 from 375);
  - lr_small:     eta = 0.01 until 250, then x10 (0.1);                lambda = 5e-4;
  - same_lambda_e: eta = 0.025, lambda = 2e-3 (the same eta*lambda = 5e-5) until 500, then eta x4,
                  lambda / 4.
From 500 to 1000 every arm trains with eta = 0.1, lambda = 5e-4 (intrinsic LR 5e-5: one mixing
time 1 / (eta lambda) = 20,000 steps ~ 51 epochs, so 500 epochs are ~10 of them); at 1000 WD is
removed and the LR divided by 10, until 1100. The paper's claim (Sec. 3): the arms' test accuracy
and effective LR eta / ||w||^2 meet during 500-1000 whatever happened before, and their fine-tuned
accuracies agree. (The exact schedules of the paper's figure are not given in the text; these
five cover its cases: LR and WD decays, a small initial LR and an equal-lambda_e start.)

    python -m svag_jax.launch.main --config=cifar_equilibrium --workdir=runs/cifar_equilibrium

2 trials per arm (10 nets in one program, looped over trials). Runtime on one H100: 15 s per
epoch for the 10 nets (33k img/s, measured by benchmarks/cifar_runtime.py), ~4.6 h for the 1100
epochs plus evaluations.

`get_config('smoke')`: the same arms on a tiny net and synthetic CIFAR-shaped data, 2 steps (tests).
"""

from svag_jax.arms import set_arms
from svag_jax.configs import base

ARGS = ('smoke',)


def arms(lr: float = 0.1, wd: float = 5e-4, split: float = 500, switch: float = 1000) -> dict:
  """The five arms: different until `split`, then (lr, wd) until `switch`, then LR/10 and WD 0."""
  half, three_q = split / 2, 3 * split / 4
  end = ((switch, 0.1),), ((switch, 0.0),)

  def arm(lr0, lr_changes, wd0, wd_changes):
    return dict(
        lr=lr0,
        lr_schedule=tuple(lr_changes) + end[0],
        wd=wd0,
        wd_schedule=tuple(wd_changes) + end[1],
    )

  return {
      'const': arm(lr, (), wd, ()),
      'lr_decay': arm(4 * lr, ((half, 0.5), (three_q, 0.5)), wd, ()),
      'wd_decay': arm(lr, (), 4 * wd, ((half, 0.5), (three_q, 0.5))),
      'lr_small': arm(lr / 10, ((half, 10.0),), wd, ()),
      'same_lambda_e': arm(lr / 4, ((split, 4.0),), 4 * wd, ((split, 0.25),)),
  }


def get_config(arg: str | None = None):
  if arg not in (None, '', 'full') + ARGS:
    raise ValueError(f'unknown config argument {arg!r}; use one of {ARGS} or nothing')
  c = base.cifar(base.get_config())
  c.optim.lr, c.optim.wd = 0.1, 5e-4
  set_arms(c, arms())
  c.trials.num = 2
  c.train.epochs = 1100
  c.train.eval_every = 10.0
  c.checkpoint.every = 50.0
  return base.smoke(c) if arg == 'smoke' else c
