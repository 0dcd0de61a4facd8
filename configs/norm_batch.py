"""Norm type and batch size at fixed intrinsic LR (reviewer 2, Q1 and Q3) and the linear scaling
rule for GroupNorm / LayerNorm (2020 paper, Sec. 5.3).

Paper (Sec. 5.3): where the per-example loss does not depend on the batch (GroupNorm, LayerNorm),
the noise covariance at batch B is Sigma_1 / B, so in the SDE doubling B is halving eta: (B, eta,
lambda) and (k B, k eta, lambda) give one equilibrium per epoch; for BatchNorm the argument does
not hold. Reviewer 2 asked how the theory carries over to other norms (Q3) and to the batch size
(Q1). A sweep over norm x B; in every point arms `a` (eta_B, lambda = 0.1), `b` (4 eta_B, 0.1) and
`b_eq` (16 eta_B, 0.025: b's lambda_e), eta_B proportional to B. Compared per norm: b vs b_eq
(lambda_e alone?), a vs a and b vs b across B (the LSR), B = 25's b vs B = 100's a (one lambda_e,
two batch sizes).

    python -m svag_jax.launch.sweep --config=norm_batch:cpu --workdir=runs/norm_batch_cpu
    python -m svag_jax.analysis.norm_batch runs/norm_batch_cpu
    python -m svag_jax.launch.sweep --config=norm_batch --workdir=runs/norm_batch

CPU (`:cpu`: bundled MNIST, SI MLP 784-128-128 with BatchNorm / GroupNorm (8 groups) /
LayerNorm, B = 25 and 100, eta_25 = 0.025, 15 epochs, 16 trials per arm). Expected (paper): the
LSR holds for GroupNorm and LayerNorm; b and b_eq meet for every norm. Full scale (SI PreResNet32,
CIFAR-10, B = 128 and 512, eta_128 = 0.1, lambda = 5e-4, 200 epochs, 2 trials): not run; ~1.6 s
per epoch per net at B = 128 on one H100 (benchmarks/cifar_runtime.py), ~16 h for all points.
Measured (`:cpu`, 12.2 min wall at load 10-12 on the shared 2 cores): b and b_eq agree at B = 25
for every norm and in TV everywhere; the LSR fails for all three norms, least for BatchNorm (a:
+0.010, b: +0.033 for B = 25 over 100) and most for GroupNorm / LayerNorm (+0.04; +0.14, +0.21):
against the paper's expectation, at these LRs (lambda_e up to 0.04 per step; at eta / 4 smaller).

Measured numbers, runtime and the choices: docs/experiments.md#norm_batch.
"""

from svag_jax.arms import set_arms
from svag_jax.configs import base, stationary_lr

ARGS = ('cpu',)

NORMS = ('batch', 'group', 'layer')
CPU_BATCHES = (25, 100)  # both divide the 4,000 training digits
FULL_BATCHES = (128, 512)


def arms(lr: float, wd: float) -> dict:
  """a: (lr, wd); b: (4 lr, wd); b_eq: (16 lr, wd / 4), b's lambda_e."""
  return {
      'a': dict(lr=lr, wd=wd),
      'b': dict(lr=4 * lr, wd=wd),
      'b_eq': dict(lr=16 * lr, wd=wd / 4),
  }


def get_config(arg: str | None = None):
  c = base.get_config()
  if arg == 'cpu':
    stationary_lr.mnist_mlp(c)
    c.train.batch_size = CPU_BATCHES[0]
    c.train.steps_per_dispatch = 4000 // CPU_BATCHES[0]  # one epoch
    set_arms(c, arms(0.025, 0.1))
    c.trials.num = 16
    c.train.epochs = 15
    c.train.eval_every = 1.0
    c.train.predictions_at = (15,)
    c.checkpoint.every = 5.0
  elif arg in (None, '', 'full'):
    base.cifar10_preresnet32(c)
    set_arms(c, arms(0.1, 5e-4))
    c.trials.num = 2
    c.train.epochs = 200
    c.train.eval_every = 2.0
    c.train.predictions_at = (200,)
  else:
    raise ValueError(f'unknown config argument {arg!r}; use "cpu" or nothing')
  return c


def get_sweep(arg: str | None = None):
  c = get_config(arg)
  batches = CPU_BATCHES if arg == 'cpu' else FULL_BATCHES
  lr0, wd = c.arms.a.lr, c.arms.a.wd
  points = []
  for norm in NORMS:
    for b in batches:
      lr = round(lr0 * b / batches[0], 12)
      point = {'name': f'{norm}_b{b}', 'model.norm': norm, 'train.batch_size': b}
      point.update({f'arms.{k}.lr': v['lr'] for k, v in arms(lr, wd).items()})
      if arg == 'cpu':
        point['train.steps_per_dispatch'] = 4000 // b
        point['train.eval_bn_batches'] = 8 if norm == 'batch' else 0
      else:
        point['train.eval_bn_batches'] = 0
      points.append(point)
  return points
