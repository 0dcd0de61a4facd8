"""Warm-up then linear or cosine decay at fixed intrinsic LR: does lambda_e still decide, or the
LR (reviewer 1, Q5)?

Reviewer 1 (Q5): with a linear warm-up and linear decay the result is far more sensitive to the LR
than to the WD, against "lambda_e determines everything". Here: the same LR curve for every arm,
(eta, lambda) pairs at equal peak eta lambda: `*_base` (0.1, 0.1) and `*_lr_x4_wd_d4` (0.4,
0.025) at 0.01; `*_lr_x4` (0.4, 0.1) and `*_wd_x4` (0.1, 0.4) at 0.04. At equal lambda_e two arms
differ only by the scale of the init (init_lr.py: eta x4 is init / 2), so the 2020 theory predicts
LR x4 and WD x4 to act alike. Curves: `tri_*` linear warm-up over 2 epochs, then linear decay to
0; `cos_*` a 4-step warm-up over 2 epochs, then cosine decay to 0 (svag_jax/schedules.py).

    python -m svag_jax.launch.main --config=warmup:cpu --workdir=runs/warmup_cpu
    python -m svag_jax.analysis.same_intrinsic_lr runs/warmup_cpu
    python -m svag_jax.launch.main --config=warmup --workdir=runs/warmup

CPU (`:cpu`: bundled MNIST, SI MLP 784-128-128, LeCun init, B = 32, no momentum, 16 epochs, 16
trials per arm). Expected (theory): arms at the same peak lambda_e end alike; (reviewer) LR x4
moves the result more than WD x4. Full scale (SI PreResNet32, CIFAR-10, peak eta = 0.1 / lambda =
5e-4 and the same multiples, 200 epochs, 2 trials): not run; ~1.6 s per epoch per net on one H100
(benchmarks/cifar_runtime.py), ~1.8 h for the 16 nets. Measured (`:cpu`, 7.7 min wall at load
12 on the shared 2 cores): LR x4 and WD x4 end alike (-0.0001 [-0.0023, +0.0021] triangle, +0.0012
[-0.0012, +0.0036] cosine), as do the pairs at one peak lambda_e; a 4x larger peak lambda_e costs
0.2-0.4 points whether it comes from the LR or the WD. The reviewer's asymmetry does not show here.

Measured numbers, runtime and the choices: docs/experiments.md#warmup.
"""

from svag_jax.arms import set_arms
from svag_jax.configs import base

ARGS = ('cpu',)

# (name, eta factor, lambda factor) at the base (eta, lambda)
PAIRS = (('base', 1, 1), ('lr_x4_wd_d4', 4, 0.25), ('lr_x4', 4, 1), ('wd_x4', 1, 4))


def arms(lr: float, wd: float, epochs: float, warmup: float) -> dict:
  """`tri_<pair>`: linear warm-up to `warmup`, linear decay to 0 at `epochs`; `cos_<pair>`: the
  LR at 1/4, 2/4, 3/4, 1 of its peak over the warm-up, then cosine decay to 0 at `epochs`."""
  stairs = tuple((warmup * k / 4, (k + 1) / k) for k in (1, 2, 3))
  result = {}
  for name, f_lr, f_wd in PAIRS:
    peak, decay = lr * f_lr, wd * f_wd
    result[f'tri_{name}'] = dict(
        lr=peak, wd=decay, lr_curve='triangle', lr_curve_epochs=(0.0, warmup, epochs)
    )
    result[f'cos_{name}'] = dict(
        lr=peak / 4,
        wd=decay,
        lr_schedule=stairs,
        lr_curve='cosine',
        lr_curve_epochs=(warmup, epochs),
    )
  return result


def get_config(arg: str | None = None):
  c = base.get_config()
  if arg == 'cpu':
    base.mnist_mlp(c)
    set_arms(c, arms(0.1, 0.1, epochs=16, warmup=2))
    c.trials.num = 16
    c.train.epochs = 16
    c.train.eval_every = 0.5
    c.train.eval_bn_batches = 8
    c.train.predictions_at = (8, 16)
    c.checkpoint.every = 4.0
  elif arg in (None, '', 'full'):
    base.cifar10_preresnet32(c)
    set_arms(c, arms(0.1, 5e-4, epochs=200, warmup=5))
    c.trials.num = 2
    c.train.epochs = 200
    c.train.eval_every = 1.0
    c.train.eval_bn_batches = 50
    c.train.predictions_at = (100, 200)
  else:
    raise ValueError(f'unknown config argument {arg!r}; use "cpu" or nothing')
  return c
