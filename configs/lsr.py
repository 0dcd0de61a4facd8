"""2021 paper, Fig. 3: where the linear scaling rule (LSR) breaks, predicted from baseline runs.

Batch sizes B with eta = eta0 * B / B0 (lambda fixed, same epochs: the same continuous time
eta * steps for every B), a zip sweep; every run logs the gradient signal G = ||grad L||^2 and
noise N = Tr Sigma_B at its own B (metrics.gn_every) and, like the paper, decays the LR by 0.1 once
after an equilibrium phase. Theorem 5.6 (C^2 = 2): scaling up from a baseline at B whose N/G at
equilibrium (before the decay) is N/G cannot keep the LSR beyond B* = C^2 (1 + N/G) B (exact
bound); the paper's figure uses B* ~ C^2 B N/G. LSR "fails" at the B whose final test error
exceeds the lowest final test error by more than 20% of it:

    python -m svag_jax.launch.sweep --config=lsr:cpu --workdir=runs/lsr_cpu
    python -m svag_jax.analysis.lsr runs/lsr_cpu            # figure, table, both B* forms
    python -m svag_jax.theory lsr runs/lsr_cpu              # predicted interval vs observed break
    python -m svag_jax.analysis.lsr --baseline runs/lsr_cpu/batch_size=25   # B* of one run

Full scale (`get_config(MODEL)`, MODEL one of `preresnet32_bn` (the default), `preresnet32_gn`,
`vgg19_gn`), the paper's caption: SI net on CIFAR-10 with crop + flip augmentation, B = 2^k in
{32, ..., 8192} with eta = 0.8 B / 128, lambda = 5e-4, no momentum, 300 epochs with the LR x 0.1 at
epoch 250 (G and N from the evals before 250: every 10 epochs, K = max(8, 4096 / B) batches). One
run per B (`launch.sweep`, or `--print` for a cluster):

    python -m svag_jax.launch.sweep --config=lsr:preresnet32_gn --workdir=runs/lsr_preresnet32_gn

Not checked against the official code: these settings follow the caption only. The full-scale
runs keep the default per-epoch shuffling, so for B that do not divide 50,000 the partial last
batch is dropped (at most 8192 / 50000 = 16% of an epoch at B = 8192).
Expected (paper): test error flat in B up to a critical B, then rising; the max/min B* predicted
from the baselines bracket where it rises. Runtime on one H100 (benchmarks/cifar_runtime.py):
PreResNet32-BN 1.5 s/epoch at B = 128, 0.9 at 1024, 0.8 at 8192 (5-8 min per 300-epoch point from
B = 128 up; smaller B take longer per epoch); VGG19-GN 1.1 s/epoch at B = 128.
`get_config('smoke')`: the PreResNet32-BN point on a tiny net and synthetic data, 2 steps (tests).

CPU (`get_config('cpu')` / `get_sweep('cpu')`): bundled MNIST digits (4,000 train / 1,000 test),
SI MLP 784-128-128 with BatchNorm (stationary_lr.mnist_mlp: batches drawn with replacement,
init_scale 0.25, BatchNorm statistics refreshed before each eval), B in CPU_BATCHES = 25 * 2^k up
to 800, and 2000 (every B divides 4,000, so an epoch is exactly 4000 / B steps and every B trains
the same continuous time), eta = 0.1 B / 25, lambda = 0.025 (eta lambda = 1e-4 B per step), 18
epochs with LR x 0.1 at epoch 15 (the paper's 250/300 ratio, rounded): the equilibrium phase is
15 * 4000 * 1e-4 = 6 / (eta lambda) steps at every B. G/N every epoch with K = max(4, 3200 / B)
batches (3,200+ examples per estimate), N/G of a trial = mean N / mean G over the last 25% of its
G/N evals before the decay (epochs 12-14); 8 trials per B (one vmapped call).

Measured on this 2-core CPU: 1.9 min wall (2.7 min user CPU) for the 7 points on quiet cores (16.6
min while four other training jobs shared them, load ~6; the same numbers). N/G before the decay
(95% interval over 8 trials) 21.8 [18.8, 24.9] at B = 25, 9.69 [8.67, 10.72] at 50, 3.32 [3.00,
3.65] at 100, then 1.56, 0.55, 0.22, 0.054 at 200 ... 2000; final test error 4.07, 3.87, 4.06, 4.19,
4.46, 6.16, 14.5%. Predicted from the three baselines B = 25, 50, 100: B* ~ C^2 B N/G in [665,
1092], exact C^2 (1 + N/G) B in [865, 1142]; observed (error > 1.2 x the lowest 3.87% = 4.65%): the
LSR fails at B = 800 (last B within: 400). The prediction brackets the break to within its factor-2
grid (800 lies in the approximate interval, just below the exact bound's), as the paper's Fig. 3.
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
