"""2021 paper, Fig. 3: where the linear scaling rule (LSR) breaks, predicted from baseline runs.

Paper (Fig. 3 caption): SI PreResNet-32 and VGG-19 on CIFAR-10, three settings, LR 0.8 decayed by
0.1 at epoch 250 of 300; G and N at equilibrium before the decay; B* ~ C^2 B N/G (Theorem 5.6,
approximate form; exact: C^2 (1 + N/G) B) with C^2 = 2; LSR fails where the final test error
exceeds the lowest by more than 20% of it. Batch sizes, lambda, the three settings' norms and the
scaling of the LR with B are in Appendix F (not available here); this config: B = 32 ... 8192 with
eta = 0.8 B / 128, lambda = 5e-4, crop + flip, settings `preresnet32_bn` (default),
`preresnet32_gn`, `vgg19_gn`. One run per B (a zip sweep):

    python -m svag_jax.launch.sweep --config=lsr:preresnet32_gn --workdir=runs/lsr_preresnet32_gn
    python -m svag_jax.launch.sweep --config=lsr:cpu --workdir=runs/lsr_cpu
    python -m svag_jax.analysis.lsr runs/lsr_cpu     # figure, table, both B* forms, the break
    python -m svag_jax.analysis.lsr --baseline runs/lsr_cpu/batch_size=25   # B* of one run

Runtime on one H100 (benchmarks/cifar_runtime.py): PreResNet32-BN 1.5 s/epoch at B = 128, 0.9 at
1024, 0.8 at 8192 (5-8 min per 300-epoch point from B = 128 up); VGG19-GN 1.1 s/epoch at B = 128.
Not run here. Expected (paper): test error flat in B up to a critical B, then rising; the max/min B*
predicted from the baselines bracket where it rises.
CPU (`:cpu`: bundled MNIST, SI MLP, B = 25 ... 2000 with eta = 0.1 B / 25, lambda = 0.025, 18
epochs with the LR x 0.1 at 15, 8 trials per B): 1.9 min wall on the quiet 2-core CPU. Expected
(measured): lowest final test error 3.87%; LSR fails at B = 800 (last B within: 400); predicted
from B = 25, 50, 100: B* ~ C^2 B N/G in [665, 1092], exact form in [865, 1142].
`get_config('smoke')`: the PreResNet32-BN point on a tiny net, 2 steps (tests).

Settings in full, N/G and error per B: docs/experiments.md#lsr.
"""

from svag_jax.configs import base, stationary_lr

CPU_BATCHES = (25, 50, 100, 200, 400, 800, 2000)
CPU_NUM_TRAIN = 4000  # mnist5k: every CPU_BATCHES entry divides it
CPU_GN_EXAMPLES = 3200  # K * B per G/N estimate
FULL_BATCHES = tuple(2**k for k in range(5, 14))
FULL_GN_EXAMPLES = 4096
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
  if arg == 'cpu':
    stationary_lr.mnist_mlp(c)
    c.train.batch_size = CPU_BATCHES[0]
    c.train.steps_per_dispatch = CPU_NUM_TRAIN // CPU_BATCHES[0]  # one epoch
    c.optim.lr = 0.1
    c.optim.wd = 0.025
    c.optim.lr_schedule = ((15, 0.1),)
    c.train.epochs = 18
    c.train.eval_every = 1.0
    c.metrics.gn_every = 1.0
    c.metrics.gn_batches = CPU_GN_EXAMPLES // CPU_BATCHES[0]
    c.trials.num = 8
    c.trials.vmap_chunk = 8
    c.checkpoint.every = 6.0
  elif arg in (None, '', 'full', 'smoke', *MODELS):
    model, norm = MODELS.get(arg, MODELS['preresnet32_bn'])
    base.cifar10_preresnet32(c)
    c.model.name, c.model.norm = model, norm
    c.optim.lr_schedule = ((250, 0.1),)
    c.train.epochs = 300
    c.train.eval_every = 5.0
    c.metrics.gn_every = 10.0
    c.metrics.gn_batches = FULL_GN_EXAMPLES // c.train.batch_size
    c.trials.num = 1
    if arg == 'smoke':
      base.smoke(c)
  else:
    raise ValueError(f'unknown config argument {arg!r}; use one of {ARGS} or nothing')
  return c


def get_sweep(arg: str | None = None):
  c = get_config(arg)
  b0, lr0 = c.train.batch_size, c.optim.lr
  if arg == 'cpu':
    return [
        {
            'name': f'batch_size={b}',
            'train.batch_size': b,
            'optim.lr': round(lr0 * b / b0, 12),
            'metrics.gn_batches': max(4, CPU_GN_EXAMPLES // b),
            'train.steps_per_dispatch': CPU_NUM_TRAIN // b,
        }
        for b in CPU_BATCHES
    ]
  if arg == 'smoke':
    batches, k = (8, 16), (2, 2)
  else:
    batches = FULL_BATCHES
    k = tuple(max(8, FULL_GN_EXAMPLES // b) for b in batches)
  return [
      {
          'name': f'batch_size={b}',
          'train.batch_size': b,
          'optim.lr': round(lr0 * b / b0, 12),
          'metrics.gn_batches': kb,
      }
      for b, kb in zip(batches, k)
  ]
