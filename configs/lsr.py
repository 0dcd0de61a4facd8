"""2021 paper, Fig. 3: where the linear scaling rule (LSR) breaks, predicted from one baseline run.

Batch sizes B with eta = eta0 * B / B0 (lambda fixed, same epochs), a zip sweep; every run logs the
gradient signal G = ||grad L||^2 and noise N = Tr Sigma_B (metrics.gn_every). Theorem 5.6 predicts
the LSR fails beyond B* = C^2 (1 + N/G) B for the baseline's N/G at equilibrium (C^2 = 2):

    python -m svag_jax.analysis.lsr --baseline ROOT/batch_size=32,lr=0.025  # B*, smallest B
    python -m svag_jax.analysis.lsr ROOT  # N/G vs B, test error vs B

Full scale (`get_config(MODEL)`, MODEL one of `preresnet32_bn` (the default), `preresnet32_gn`,
`vgg19_gn`): SI net on CIFAR-10 with crop + flip augmentation, B = 2^k in {32, ..., 8192} with
eta = 0.8 B / 128, lambda = 5e-4, no momentum, 300 epochs with the LR x 0.1 at 250; G/N every 10
epochs (K = 8 batches). One run per B (`launch.sweep`, or `--print` for a cluster):

    python -m svag_jax.launch.sweep --config=lsr:preresnet32_gn --workdir=runs/lsr_preresnet32_gn

Expected (paper): test accuracy flat in B up to a critical B*, then falling; B* from the
smallest-B run's N/G is within ~2x of where it falls. Runtime on one H100 (benchmarks/
cifar_runtime.py): PreResNet32-BN 1.5 s/epoch at B = 128, 0.9 at 1024, 0.8 at 8192 (5-8 min per
300-epoch point from B = 128 up; smaller B take longer per epoch); VGG19-GN 1.1 s/epoch at B = 128.
`get_config('smoke')`: the PreResNet32-BN point on a tiny net and synthetic data, 2 steps (tests).

CPU (`get_config('cpu')` / `get_sweep('cpu')`): bundled MNIST digits (4,000 train), SI CNN
(8, 16, 16) with BatchNorm, B in {32, 64, 128, 256, 512, 1024} with eta = 0.1 * B / 128,
lambda = 0.1, 6 epochs, 2 trials per point (looped), G/N with K = 8 batches every epoch:

    python -m svag_jax.launch.sweep --config=lsr:cpu --workdir=runs/lsr_cpu

Measured on this 2-core CPU: 7.3 min for the 6 points. N/G (last 25% of the G/N evals) falls from
1.98 at B = 32 to 0.02 at B = 1024; predicted B* = 2 (1 + 1.98) 32 = 191 (95% interval over the 2
trials [100, 282]); final test error 0.086, 0.118, 0.114, 0.194, 0.450, 0.750 for B = 32 .. 1024:
the clear break is between 128 and 256, while the 1.2 x best rule already flags B = 64 (6 epochs
do not reach the norm equilibrium: ||w||^2 still falls at the end; the B = 32 trials differ by
0.03).
"""

from svag_jax import sweep
from svag_jax.configs import base

CPU_BATCHES = (32, 64, 128, 256, 512, 1024)
FULL_BATCHES = tuple(2**k for k in range(5, 14))
# Full-scale variants: (model, norm).
MODELS = {
    'preresnet32_bn': ('preresnet32', 'batch'),
    'preresnet32_gn': ('preresnet32', 'group'),
    'vgg19_gn': ('vgg19', 'group'),
}
ARGS = ('cpu', 'smoke', *MODELS)


def get_config(arg: str | None = None):
  c = base.get_config()
  c.optim.momentum = 0.0
  c.metrics.gn_every = 1.0
  c.metrics.gn_batches = 8
  if arg == 'cpu':
    c.data.source = 'mnist5k'
    c.model.widths = (8, 16, 16)
    c.model.norm = 'batch'
    c.train.batch_size = 128
    c.optim.lr = 0.1
    c.optim.wd = 0.1
    c.train.epochs = 6
    c.train.eval_every = 1.0
    c.trials.num = 2
    c.trials.vmap_chunk = 1
  elif arg in (None, '', 'full', 'smoke', *MODELS):
    model, norm = MODELS.get(arg, MODELS['preresnet32_bn'])
    base.cifar10_preresnet32(c)
    c.model.name, c.model.norm = model, norm
    c.optim.lr_schedule = ((250, 0.1),)
    c.train.epochs = 300
    c.train.eval_every = 5.0
    c.metrics.gn_every = 10.0
    c.trials.num = 1
    if arg == 'smoke':
      base.smoke(c)
  else:
    raise ValueError(f'unknown config argument {arg!r}; use one of {ARGS} or nothing')
  return c


def get_sweep(arg: str | None = None):
  c = get_config(arg)
  b0, lr0 = c.train.batch_size, c.optim.lr
  batches = {'cpu': CPU_BATCHES, 'smoke': (8, 16)}.get(arg, FULL_BATCHES)
  return sweep.zip_(
      **{'train.batch_size': batches, 'optim.lr': tuple(lr0 * b / b0 for b in batches)}
  )
