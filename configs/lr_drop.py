"""2020 paper, Lemma 5.2, consequence: at equilibrium divide eta by 10 (lambda unchanged).

Prediction: the effective LR eta / ||w||^2 drops by 10 at once (the norm has not moved yet), then
||w||^2 shrinks to its new equilibrium in O(1 / lambda_e') steps and the effective LR recovers to
sqrt(2 lambda_e') / sigma = 1/sqrt(10) = 0.316 of its old value (if sigma, the noise trace of the
unit-norm direction, is unchanged; the analysis also prints the prediction with the measured
sigma before and after). A 'control' arm keeps eta: it shows the pre-drop level stays put.

    python -m svag_jax.launch.main --config=lr_drop:cpu --workdir=runs/lr_drop_cpu
    python -m svag_jax.analysis.lr_drop runs/lr_drop_cpu

CPU (`get_config('cpu')`): the setting of configs/stationary_lr.py:cpu (bundled MNIST, SI MLP
784-128-128 with BatchNorm, batch 32 with replacement, 125 steps per epoch, init_scale 0.25);
arms
  drop_0p02: eta = 0.1, lambda = 0.2 (lambda_e = 0.02 -> 0.002 at the drop),
  drop_0p04: eta = 0.1, lambda = 0.4 (lambda_e = 0.04 -> 0.004),
  control:   eta = 0.1, lambda = 0.2, no drop;
16 trials each, eta x 0.1 at epoch 8 (step 1,000; equilibrium is reached by epoch ~3), 24 epochs
(2,000 steps after the drop: 4 / lambda_e' for the slower arm). An eval every 0.2 epoch (25 steps,
one of them at the drop step itself) resolves the immediate drop; G/N every epoch. Windows: the
last third of the steps before the drop (pre level) and of the steps after it (recovered level);
the ratio is per trial, reported as mean ± 2 SE over trials.
Runtime: 92 s wall (158 s user CPU) on the quiet 2-core CPU. Measured: at the drop eta'/||w||^2 =
0.099 [0.096, 0.101] (drop_0p02) and 0.099 [0.096, 0.103] (drop_0p04) of the pre level; after
recovery 0.326 [0.324, 0.328] and 0.322 [0.319, 0.326] (1/sqrt(10) = 0.316; with the measured
sigma_GN before/after and the 2 - lambda_e factor the prediction is 0.324 [0.309, 0.338] and
0.320 [0.311, 0.330]). The effective LR first overshoots
to ~0.34 of the old level ~1 / lambda_e' steps after the drop, then drifts down slowly.

Full scale (`get_config()`): SI PreResNet32 on CIFAR-10 (B = 128, 391 steps per epoch),
eta = 0.8, lambda = 5e-4 (lambda_e = 4e-4: equilibrium in ~10 epochs) with eta / 10 at epoch 100
and a control arm, 8 trials each, 300 epochs (200 epochs = 78k steps = 3.1 / lambda_e' after the
drop). Not run here (GPU/TPU scale).
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
