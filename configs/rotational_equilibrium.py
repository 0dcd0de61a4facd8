"""Kosson, Messmer & Jaggi (ICML 2024), "Rotational equilibrium": the angular update per step of
each scale-invariant layer under SGD, SGD + momentum, Adam + L2 and AdamW.

Claim: with weight decay every scale-invariant layer relaxes in O(1/lambda_e) steps to a
rotational equilibrium whose RMS angle per step is sqrt(2 eta lambda / (1 + beta)) (SGD, beta = 0
without momentum) or sqrt(2 eta lambda (1 - beta1) / (1 + beta1)) (AdamW): the same for every
layer. Under Adam + L2 the decay passes through the preconditioner, lambda_e = eta lambda p_S
differs per layer, and so do the angles: their explanation of AdamW > Adam + L2.
`theory.rotational_angular_update`; per-layer lambda_e 'group.<name>/intrinsic_lr_adaptive'.

    python -m svag_jax.launch.sweep --config=rotational_equilibrium:cpu --workdir=runs/rot_cpu
    python -m svag_jax.analysis.rotational_equilibrium runs/rot_cpu

CPU (`:cpu`: bundled MNIST, SI MLP 784-256-128-64 with BatchNorm (three layers, 200k / 33k / 8k
weights), B = 100 with replacement, LeCun init, 3,000 steps at constant LR and WD, 16 trials, one
angle per layer every 20 steps; each optimizer's norm dynamics at 2e-3 per step: SGD eta 0.1,
lambda 0.02; momentum 0.9 eta 0.01, lambda 0.02; AdamW eta 2e-3, lambda 1; Adam + L2 eta 2e-3,
lambda 1e-3, its layers' lambda_e measured). Expected: SGD, momentum and AdamW on their predicted
angle in every layer within a few 1/lambda_e; Adam + L2's layers at different angles, each near
its own lambda_e's. Measured (8.4 min on 2 quiet cores): SGD / momentum 0.98-1.00 x predicted in
every layer, AdamW 0.92-0.98 x, balanced (largest / smallest layer 1.02-1.06); Adam + L2 each
layer 0.93-0.99 x its own, unbalanced 1.56 [1.54, 1.58] (predicted 1.47); settled by tau = 2-5.5.
All numbers: docs/experiments.md#rotational_equilibrium.
Full scale (no argument: CIFAR-10, SI PreResNet32, B = 128, 200 epochs; SGD, momentum and AdamW
at 1e-3 per step, Adam + L2 at eta 1e-3, lambda 5e-4): not run.
"""

from svag_jax.configs import base

ARGS = ('cpu',)
OPTIMIZERS = ('sgd', 'sgd_momentum', 'adam_l2', 'adamw')
MOMENTUM = 0.9
BETA1, BETA2 = 0.9, 0.999
# (eta, lambda) per optimizer at the CPU scale: the norm dynamics' rate eta lambda (SGD, AdamW) or
# eta lambda / (1 - beta) (SGD + momentum) is 2e-3 per step; Adam + L2's lambda_e = eta lambda p_S
# depends on each layer's preconditioner p_S ~ ||w_S|| / (RMS gradient), measured, not chosen.
CPU_SETTINGS = {
    'sgd': (0.1, 0.02),
    'sgd_momentum': (0.01, 0.02),
    'adam_l2': (2e-3, 1e-3),
    'adamw': (2e-3, 1.0),
}
FULL_SETTINGS = {
    'sgd': (0.1, 0.01),
    'sgd_momentum': (0.01, 0.01),
    'adam_l2': (1e-3, 5e-4),
    'adamw': (1e-3, 1.0),
}


def get_config(arg: str | None = None):
  if arg not in (None, '', 'full', *ARGS):
    raise ValueError(f'unknown config argument {arg!r}; use one of {ARGS} or nothing')
  c = base.get_config()
  if arg == 'cpu':
    base.mnist_mlp(c)
    c.model.widths = (256, 128, 64)
    c.train.sampling = 'replacement'
    c.train.eval_bn_batches = 8
    c.train.batch_size = 100
    c.train.epochs = 75
    c.train.eval_every = 0.5
    c.train.steps_per_dispatch = 20  # one call per evaluation
    c.checkpoint.every = 25.0
    c.trials.num = 16
    c.trials.vmap_chunk = 16
  else:
    base.cifar10_preresnet32(c)
    c.train.sampling = 'replacement'
    c.train.epochs = 200
    c.trials.num = 8
  c.metrics.gn_every = 0.0
  c.metrics.groups = 'auto'
  c.optim.beta1, c.optim.beta2 = BETA1, BETA2
  return c


def get_sweep(arg: str | None = None):
  settings = CPU_SETTINGS if arg == 'cpu' else FULL_SETTINGS
  points = []
  for name in OPTIMIZERS:
    lr, wd = settings[name]
    optimizer = {'sgd_momentum': 'sgd', 'adam_l2': 'adam'}.get(name, name)
    momentum = MOMENTUM if name == 'sgd_momentum' else 0.0
    points.append({
        'name': name, 'optim.optimizer': optimizer, 'optim.momentum': momentum,
        'optim.lr': lr, 'optim.wd': wd,
    })  # fmt: skip
  return points
