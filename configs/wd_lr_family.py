"""2020 paper, Fig. 2: decaying WD instead of LR, momentum SGD, the `wd_x_y_lr_z_u` family.

SI PreResNet32 (BatchNorm without affine, fixed head) on CIFAR-10 with crop + flip augmentation,
heavy-ball momentum 0.9 (PyTorch convention), initial LR 0.1, WD 5e-4, B = 128, 200 epochs. Arm
`wd_x_y_lr_z_u` divides WD by 10 at epochs x and y and LR by 10 at epochs z and u (0 = never):

  - wd_0_0_lr_80_120:   the classical step decay of the LR;
  - wd_80_120_lr_0_0:   WD decayed instead, LR constant;
  - wd_80_120_lr_160_0: WD decayed, then one LR decay late;
  - wd_0_0_lr_0_0:      nothing decayed (the equilibrium baseline);
  - wd_80_120_lr_0_0_lr0_div100: as wd_80_120_lr_0_0 with a 100x smaller initial LR (0.001).
The paper's claim: dividing WD by 10 acts on test accuracy like dividing the LR by 10 (both divide
the intrinsic LR eta * lambda by 10), and the 100x smaller initial LR ends at the same accuracy:
the norm adapts until the effective LR eta / ||w||^2 reaches its equilibrium, whatever eta is.
With momentum 0.9 the norm dynamics run at lambda_e = eta lambda / (1 - beta) = 10 eta lambda
(svag_jax/theory.py, note at the end): the metric `intrinsic_lr_momentum`; `intrinsic_lr` is the
papers' eta lambda. The figure's statements are ratios of intrinsic LRs (x / 10), which the
factor 1 / (1 - beta) does not change; mixing times scale with 1 / `intrinsic_lr_momentum`.

    python -m svag_jax.launch.main --config=wd_lr_family --workdir=runs/wd_lr_family

2 trials per arm (10 nets in one program, looped over trials); 200 epochs. Runtime on one H100:
~15 s per epoch for the 10 nets (benchmarks/cifar_runtime.py), ~50 min plus evaluations.

`get_config('smoke')`: the same arms on a tiny net and synthetic CIFAR-shaped data, 2 steps (tests).
"""

from svag_jax.arms import set_arms
from svag_jax.configs import base

ARGS = ('smoke',)
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
  return base.smoke(c) if arg == 'smoke' else c
