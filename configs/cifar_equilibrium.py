"""2020 paper, Fig. 1: five LR/WD schedules on CIFAR-10 reach one equilibrium.

Paper (Fig. 1 caption, Sec. 6.1): SI PreResNet32 on CIFAR-10 with augmentation, B = 128, SGD; five
LR/WD schedules differ for epochs 0-500, then share LR and WD; at 1000 the LR is decayed and WD
removed. The schedules and their eta, lambda are in the paper's Table 1 (appendix, not available
here): the five arms in `arms` are this repository's, with eta = 0.1, lambda = 5e-4 from 500 to
1000, then eta / 10, lambda = 0 until 1100.

    python -m svag_jax.launch.main --config=cifar_equilibrium --workdir=runs/cifar_equilibrium
    python -m svag_jax.launch.main --config=cifar_equilibrium:VARIANT --workdir=runs/ce_VARIANT

Runtime on one H100: 15 s per epoch for the 10 nets (5 arms x 2 trials;
benchmarks/cifar_runtime.py), ~4.6 h for the 1100 epochs plus evaluations. Not run here. Expected
(paper): test/train accuracy, norm and effective LR eta / ||w||^2 of the arms meet during 500-1000,
and every arm reaches the same best test accuracy (~95%) after 1000. VARIANT `vgg16`: SI VGG16 on
CIFAR-10 (Fig. 12), `cifar100`: PreResNet32 on CIFAR-100 (Fig. 13), the same arms (the figures'
settings are in the appendix, not available here); not run, no runtime measured.
`get_config('smoke')`: 2 steps on a tiny net (tests).

The arms in words and the choice of the 500-1000 phase: docs/experiments.md#cifar_equilibrium.
"""

from svag_jax.arms import set_arms
from svag_jax.configs import base

ARGS = ('smoke', 'vgg16', 'cifar100')


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
  model = 'vgg16' if arg == 'vgg16' else 'preresnet32'
  name = 'cifar100' if arg == 'cifar100' else 'cifar10'
  c = base.cifar(base.get_config(), model=model, name=name)
  c.optim.lr, c.optim.wd = 0.1, 5e-4
  set_arms(c, arms())
  c.trials.num = 2
  c.train.epochs = 1100
  c.train.eval_every = 10.0
  c.checkpoint.every = 50.0
  return base.smoke(c) if arg == 'smoke' else c
