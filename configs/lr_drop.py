"""2020 paper, Lemma 5.2 and Sec. 5.3 (no figure): at equilibrium divide eta by 10, keep lambda.

Prediction: eta / ||w||^2 drops 10x at once, then recovers in O(1 / lambda_e') steps to
sqrt(2 lambda_e') / sigma, i.e. 1/sqrt(10) = 0.316 of its old level at unchanged sigma (the analysis
also prints the prediction with the measured sigma). Arms: `drop_*` (eta x 0.1) and a `control`.

    python -m svag_jax.launch.main --config=lr_drop:cpu --workdir=runs/lr_drop_cpu
    python -m svag_jax.analysis.lr_drop runs/lr_drop_cpu
    python -m svag_jax.launch.main --config=lr_drop --workdir=runs/lr_drop

CPU (`:cpu`: the stationary_lr.py:cpu setting, lambda_e = 0.02 and 0.04, eta x 0.1 at epoch 8 of
24, 16 trials per arm): 92 s wall on the quiet 2-core CPU. Expected (measured, mean [2 SE]): 0.099
of the pre-drop level at the drop; after recovery 0.326 [0.324, 0.328] (lambda_e = 0.02) and 0.322
[0.319, 0.326] (0.04), against 1/sqrt(10) = 0.316 and 0.324 / 0.320 with the measured sigma.
Full scale (SI PreResNet32 on CIFAR-10, eta = 0.8, lambda = 5e-4, drop at epoch 100 of 300, 8
trials): not run, no runtime measured.

Settings in full and all measurements: docs/experiments.md#lr_drop.
"""

from svag_jax.arms import set_arms
from svag_jax.configs import base, stationary_lr

ARGS = ('cpu',)  # get_config arguments besides none (the full-scale variant)


def arms(lr: float, wds: dict[str, float], drop_epoch: float, control_wd: float) -> dict:
  """Arms that divide the LR by 10 at `drop_epoch` (one per {name: lambda}) and a control."""
  result = {
      name: dict(lr=lr, wd=wd, lr_schedule=((drop_epoch, 0.1),), wd_schedule=())
      for name, wd in wds.items()
  }
  result['control'] = dict(lr=lr, wd=control_wd, lr_schedule=(), wd_schedule=())
  return result


def get_config(arg: str | None = None):
  c = base.get_config()
  if arg == 'cpu':
    stationary_lr.mnist_mlp(c)
    set_arms(c, arms(0.1, {'drop_0p02': 0.2, 'drop_0p04': 0.4}, drop_epoch=8, control_wd=0.2))
    c.trials.num = 16
    c.train.epochs = 24
    c.train.eval_every = 0.2
    c.metrics.gn_every = 1.0
    c.checkpoint.every = 4.0
  elif arg in (None, '', 'full'):
    base.cifar10_preresnet32(c)
    set_arms(c, arms(0.8, {'drop': 5e-4}, drop_epoch=100, control_wd=5e-4))
    c.trials.num = 8
    c.train.epochs = 300
    c.train.eval_every = 1.0
    c.metrics.gn_every = 5.0
  else:
    raise ValueError(f'unknown config argument {arg!r}; use "cpu" or nothing')
  return c
