"""2020 paper, Fig. 8: an early large LR (or WD) rescues nets initialised at an extreme scale.

On a scale-invariant net the initial scale sets the initial effective LR eta / ||w||^2: weights
c x larger train as if eta were c^2 smaller (SGD with WD maps (eta, lambda, c w_0) to
(eta / c^2, lambda c^2, w_0) exactly), so a net initialised at c = 30 barely moves until WD has
shrunk ||w||^2 by ~c^2, which at rate 2 lambda_e per step takes ~ln(c^2 R_0 / R_eq) / (2 lambda_e)
steps. A short phase at a 10x larger intrinsic LR at the start does that shrinking 10x faster; after
it the net trains as a normally initialised one. Two sweep points (normal init, init x 30), each
with the same three arms (one compiled program per point), heavy-ball momentum 0.9
(lambda_e = eta lambda / (1 - beta), the metric `intrinsic_lr_momentum`):

  - constant:     eta, lambda throughout (lambda_e = 1e-3);
  - early_lr_x10: eta x 10 for the first R epochs (lambda_e = 1e-2), then eta;
  - early_wd_x10: lambda x 10 for the first R epochs (lambda_e = 1e-2), then lambda.

The paper's claim: at extreme init scale the constant schedule learns slowly (its test accuracy
lags far behind the normal init's), an early large LR brings it to the normal init's curve.

    python -m svag_jax.launch.sweep --config=scale_rescue:cpu --workdir=runs/scale_rescue_cpu
    python -m svag_jax.analysis.scale_rescue runs/scale_rescue_cpu

CPU (`get_config('cpu')` / `get_sweep('cpu')`): bundled MNIST digits (4,000 train / 1,000 test),
SI MLP 784-128-128 with BatchNorm (no affine) and a fixed head, B = 32 shuffled (125 steps per
epoch), eta = 0.01, lambda = 0.01, momentum 0.9 (lambda_e = 1e-3), R = 4 epochs (500 steps =
5 / lambda_e at 1e-2), 40 epochs (5,000 steps); points init_scale = 1 (||w||^2 ~ 256 at init)
and 30 (~2.3e5: WD alone needs ~4,700 steps to bring it to the equilibrium ~20). 12 trials per arm
and point (72 nets) in calls of 6 vmapped trials; evaluation every epoch with BatchNorm statistics
refreshed on 8 training batches.
Measured on this 2-core CPU: 2.3 min wall (3.5 min user CPU) for the two points on quiet cores (15.2
min while four other training jobs shared them, load ~6; the same numbers). Test accuracy, mean [+-
2 SE] over 12 trials; "reaches" = the median epoch at which a trial first gets within 0.01 of the
normal-init constant arm's final accuracy: init x 1: constant reaches it at epoch 4, final 0.9494
[0.9466, 0.9522]; init x 30: constant at epoch 1 0.114, epoch 8 0.563, epoch 16 0.882, reaches it
only at epoch 26.5 (||w||^2 still 24 at the end vs 16), final 0.9489 [0.9458, 0.9521]; early_lr_x10
reaches it at epoch 5 (0.909 at epoch 2), final 0.9528 [0.9498, 0.9559]; early_wd_x10 at epoch 5.5,
final 0.9489 [0.9445, 0.9534]. The rescue holds as in the paper (5x sooner); with 40 epochs the
unrescued net catches up by the end here, so the gap is in time to accuracy, not in final accuracy.

Full scale (`get_config()` / `get_sweep()`, not run here): SI PreResNet32 with BatchNorm on
CIFAR-10 with crop + flip (configs/base.py: cifar10_preresnet32, B = 128), eta = 0.1,
lambda = 5e-4, momentum 0.9 (lambda_e = 5e-4), R = 10 epochs (3.9k steps = 2 / lambda_e at 5e-3),
init_scale 0.577 (PyTorch's default) and 30 x 0.577 (WD alone: ~ln(900) / (2 lambda_e) ~ 6.8k
steps, 17 epochs), 100 epochs, 2 trials per arm and point.
"""

from svag_jax.arms import set_arms
from svag_jax.configs import base

ARGS = ('cpu',)
MOMENTUM = 0.9
INIT_FACTORS = (1.0, 30.0)  # x the config's own init_scale


def arms(lr: float, wd: float, rescue: float) -> dict:
  """The three arms: constant, LR x 10 and WD x 10 for the first `rescue` epochs."""
  return {
      'constant': dict(lr=lr, lr_schedule=(), wd=wd, wd_schedule=()),
      'early_lr_x10': dict(lr=10 * lr, lr_schedule=((rescue, 0.1),), wd=wd, wd_schedule=()),
      'early_wd_x10': dict(lr=lr, lr_schedule=(), wd=10 * wd, wd_schedule=((rescue, 0.1),)),
  }


def get_config(arg: str | None = None):
  c = base.get_config()
  if arg == 'cpu':
    base.mnist_mlp(c)
    c.optim.momentum = MOMENTUM
    set_arms(c, arms(0.01, 0.01, rescue=4))
    c.trials.num = 12
    c.trials.vmap_chunk = 6
    c.train.epochs = 40
    c.train.eval_every = 1.0
    c.train.eval_bn_batches = 8
    c.checkpoint.every = 10.0
  elif arg in (None, '', 'full'):
    base.cifar10_preresnet32(c)
    c.optim.momentum = MOMENTUM
    set_arms(c, arms(0.1, 5e-4, rescue=10))
    c.trials.num = 2
    c.train.epochs = 100
    c.train.eval_every = 1.0
    c.train.eval_bn_batches = 50
  else:
    raise ValueError(f'unknown config argument {arg!r}; use "cpu" or nothing')
  return c


def get_sweep(arg: str | None = None):
  """One point per initial scale, x `INIT_FACTORS` of the config's init_scale (a model field:
  each point is its own program)."""
  scale = get_config(arg).model.init_scale
  return [{'name': f'init_x{f:g}', 'model.init_scale': round(f * scale, 6)} for f in INIT_FACTORS]
