"""2020 paper, Fig. 2: decaying WD instead of LR, momentum SGD, the `wd_x_y_lr_z_u` family.

Paper (Fig. 2 caption): SGD with momentum 0.9, initial LR 0.1, WD 5e-4; `wd_x_y_lr_z_u` divides
the WD by 10 at epochs x and y and the LR by 10 at z and u. In the caption an epoch 0 means "at the
start" (its blue line: LR / 10 twice at epoch 0, then / 10 at epoch 5000); here 0 means never, and
the run is 200 epochs (the caption gives no length; the rest is in the appendix, not available
here). SI PreResNet32 on CIFAR-10 with crop + flip, B = 128, the four arms of `FAMILY` and
`wd_80_120_lr_0_0_lr0_div100` (initial LR 0.001).

    python -m svag_jax.launch.main --config=wd_lr_family --workdir=runs/wd_lr_family
    python -m svag_jax.launch.main --config=wd_lr_family:blue --workdir=runs/wd_lr_family_blue

Runtime on one H100: ~15 s per epoch for the 10 nets (5 arms x 2 trials;
benchmarks/cifar_runtime.py), ~50 min plus evaluations. Not run here. Expected (paper): dividing the
WD by 10 acts on test accuracy like dividing the LR by 10, and a 100x smaller initial LR ends at the
same accuracy.
`:blue`, the caption's blue line as captioned: eta = 0.001 from epoch 0, / 10 at 5000, WD 5e-4
throughout, 5,500 epochs (the end is not in the caption), 2 trials: ~4.9 h on one H100 (estimated
from the same benchmark); expected (paper): the baseline's accuracy after the decay at 5000.
`get_config('smoke')`: 2 steps on a tiny net (tests).

The arms in words, momentum and lambda_e: docs/experiments.md#wd_lr_family.
"""

from svag_jax.arms import set_arms
from svag_jax.configs import base

ARGS = ('smoke', 'blue')
BLUE = 'wd_0_0_lr_0_0_5000'  # the caption's blue line: LR / 10 twice at 0, once at 5000
FAMILY = ((0, 0, 80, 120), (80, 120, 0, 0), (80, 120, 160, 0), (0, 0, 0, 0))


def arm_name(x: float, y: float, z: float, u: float) -> str:
  return f'wd_{x:g}_{y:g}_lr_{z:g}_{u:g}'


def arm(x: float, y: float, z: float, u: float, lr: float = 0.1, wd: float = 5e-4) -> dict:
  """WD / 10 at epochs x, y and LR / 10 at z, u (0 = never)."""

  def changes(*epochs):
    return tuple(sorted((float(e), 0.1) for e in epochs if e))

  return dict(lr=lr, lr_schedule=changes(z, u), wd=wd, wd_schedule=changes(x, y))


def arms(lr: float = 0.1, wd: float = 5e-4) -> dict:
  result = {arm_name(*xyzu): arm(*xyzu, lr=lr, wd=wd) for xyzu in FAMILY}
  result[arm_name(80, 120, 0, 0) + '_lr0_div100'] = arm(80, 120, 0, 0, lr=lr / 100, wd=wd)
  return result


def get_config(arg: str | None = None):
  if arg not in (None, '', 'full') + ARGS:
    raise ValueError(f'unknown config argument {arg!r}; use one of {ARGS} or nothing')
  c = base.cifar(base.get_config())
  c.optim.lr, c.optim.wd, c.optim.momentum = 0.1, 5e-4, 0.9
  set_arms(c, arms())
  c.trials.num = 2
  c.train.epochs = 200
  c.train.eval_every = 2.0
  if arg == 'blue':
    set_arms(c, {BLUE: dict(lr=0.001, lr_schedule=((5000.0, 0.1),), wd=5e-4, wd_schedule=())})
    c.train.epochs = 5500
    c.train.eval_every = 10.0
    c.checkpoint.every = 50.0
  return base.smoke(c) if arg == 'smoke' else c
