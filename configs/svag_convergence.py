"""2021 paper, Fig. 4: SGD vs SVAG (l up to 32) where the SDE describes SGD, and where N/G < 1.

SVAG (2021, Sec. 4) takes l x the steps at LR eta / l on a two-batch combination of losses; curves
are compared against effective steps = steps / l; each l is a sweep point (l = 1 is SGD bit for
bit). Batches are i.i.d. (train.sampling = 'replacement', Theorem 4.3's assumption; shuffled SVAG
is refused, see docs/experiments.md). Paper (Fig. 4 caption): PreResNet32 with BN on CIFAR-10,
300 epochs, eta x 0.1 at 250; SVAG matches SGD in one panel and, at B = 1024, converges to another
limit. The left panel's B, eta, lambda and the VGG19 runs are in Appendix F (not available here).
Variants `preresnet32_b128` (default), `preresnet32_b1024`, `vgg19_b128`, `vgg19_b1024` (B = 128 at
eta = 0.8, 1024 at 6.4, lambda = 5e-4), with `_160ep`, `preresnet32_cosine`, `preresnet32_triangle`.

    python -m svag_jax.launch.sweep --config=svag_convergence:VARIANT --workdir=runs/svag_VARIANT
    python -m svag_jax.launch.sweep --config=svag_convergence:cpu --workdir=runs/svag_cpu
    python -m svag_jax.launch.sweep --config=svag_convergence:cpu_large_batch --workdir=runs/svag_lb
    python -m svag_jax.analysis.svag_convergence runs/svag_cpu --also runs/svag_lb

Runtime on one H100 (benchmarks/cifar_runtime.py): SGD 1.6 s/epoch, SVAG l = 4 12.2 s/epoch, the
sweep ~17 h (not run). CPU: SI MLP 784-64-64 (BN) on the bundled digits, eta = 0.1, lambda = 0.03
(eta lambda = 3e-3 per step, as the paper's B = 1024 panel), 2000 steps (6 / (eta lambda)) of
equilibrium then LR x 0.1 for 400, 8 trials per point; `:cpu` B = 50, l up to 32 (35 min wall on the
2 shared cores, 12.8 min of CPU time); `:cpu_large_batch` B = 800, l up to 8 (same eta, lambda: only
N/G differs; l = 8 alone 21.5 min wall at load ~10, 19.1 min of CPU time). Expected (measured, 95%
intervals, equilibrium window): at B = 50 (N/G 8.5) SVAG has converged in l (acc_32 - acc_16 =
+0.0007 [-0.0054, +0.0067]) and SGD sits on the limit in test accuracy (SGD - l=32 = -0.0029
[-0.0091, +0.0034]; end +0.0010 [-0.0035, +0.0055]), its ||w||^2 9% above it; at B = 800 (N/G 0.30)
SVAG converges (||w||^2 = 1.05 + 2.22 / l) to a limit that is not SGD's: ||w||^2 2.9x below SGD's,
train loss SGD / l=8 1.34, C of Definition 5.1 2.29 (>= the 2.07 Theorem 5.2 demands); test accuracy
equal during the equilibrium, SGD above l = 8 by +0.0094 [+0.0039, +0.0149] at the end.

Settings, the search that led here, all measurements: docs/experiments.md#svag_convergence.
"""

from svag_jax.configs import base

FULL_L_VALUES = (1, 2, 4, 8, 16, 32)
# CPU: one SI MLP (784-64-64, BatchNorm) and one per-step intrinsic LR eta lambda = 3e-3 (the 2021
# Fig. 4 failure panel's, eta = 6.4 and lambda = 5e-4 at B = 1024) at two batch sizes, so that
# only the noise, N/G, differs between them; i.i.d. batches (Theorem 4.3's assumption).
CPU_LR, CPU_WD = 0.1, 0.03
CPU_EQUILIBRIUM_STEPS = 2000  # 6 / (eta lambda): the equilibrium phase, then LR x 0.1
CPU_DECAY_STEPS = 400
CPU_TRAIN = 4000  # the bundled digits' training split
# variant: (batch size, the SVAG l values of its sweep)
CPU_VARIANTS = {'cpu': (50, (2, 4, 8, 16, 32)), 'cpu_large_batch': (800, (2, 4, 8))}
# Full-scale variants: (model, batch size, LR, LR curve). The constant curve comes with the
# caption's single decay (x0.1 at 250 of 300 epochs; `_160ep`: x0.1 at 80 and 120 of 160); a
# cosine or triangle curve replaces it (2021 appendix: SVAG with other schedules).
VARIANTS = {
    'preresnet32_b128': ('preresnet32', 128, 0.8, 'constant'),
    'preresnet32_b1024': ('preresnet32', 1024, 6.4, 'constant'),
    'vgg19_b128': ('vgg19', 128, 0.8, 'constant'),
    'vgg19_b1024': ('vgg19', 1024, 6.4, 'constant'),
    'preresnet32_cosine': ('preresnet32', 128, 0.8, 'cosine'),
    'preresnet32_triangle': ('preresnet32', 128, 0.8, 'triangle'),
}
SHORT = '_160ep'  # suffix of the 160-epoch, two-decay schedule of each constant-curve variant
VARIANTS |= {k + SHORT: v for k, v in VARIANTS.items() if v[3] == 'constant'}
ARGS = (*CPU_VARIANTS, 'smoke', *VARIANTS)


def get_config(arg: str | None = None):
  c = base.get_config()
  c.optim.momentum = 0.0
  c.train.batch_size = 128
  c.train.sampling = 'replacement'  # SVAG simulates the SDE of i.i.d. batches (config validation)
  c.trials.num = 1
  if arg in CPU_VARIANTS:
    batch, _ = CPU_VARIANTS[arg]
    epoch = CPU_TRAIN / batch  # SGD steps per epoch
    base.mnist_mlp(c)
    c.model.widths = (64, 64)
    c.model.init_scale = 0.25  # ||w||^2 starts near its equilibrium
    c.train.batch_size = batch
    c.train.sampling = 'replacement'
    c.optim.lr, c.optim.wd = CPU_LR, CPU_WD
    c.optim.lr_schedule = ((CPU_EQUILIBRIUM_STEPS / epoch, 0.1),)
    c.train.epochs = (CPU_EQUILIBRIUM_STEPS + CPU_DECAY_STEPS) / epoch
    c.train.eval_every = 80 / epoch  # 80 SGD steps: 4 evaluations per mixing time 1/(eta lambda)
    c.train.eval_bn_batches = 8  # the same BN statistics for every l (no EMA over l x the steps)
    c.train.steps_per_dispatch = 4000  # rolled: one call per evaluation interval
    c.metrics.gn_every = 160 / epoch
    c.metrics.gn_batches = 16
    c.trials.num = 8
    c.trials.vmap_chunk = 8
    c.checkpoint.every = 800 / epoch
  elif arg in (None, '', 'full', 'smoke', *VARIANTS):
    model, batch_size, lr, curve = VARIANTS.get(arg, VARIANTS['preresnet32_b128'])
    base.cifar10_preresnet32(c)
    c.model.name, c.model.norm = model, 'batch'
    c.train.batch_size, c.optim.lr = batch_size, lr
    c.optim.lr_curve = curve  # over the whole run: cosine 1 -> 0; triangle 0 -> 1 -> 0
    if curve != 'constant':
      c.optim.lr_schedule, c.train.epochs = (), 160
    elif (arg or '').endswith(SHORT):
      c.optim.lr_schedule, c.train.epochs = ((80, 0.1), (120, 0.1)), 160
    else:
      c.optim.lr_schedule, c.train.epochs = ((250, 0.1),), 300
    c.train.eval_every = 2.0
    c.metrics.gn_every, c.metrics.gn_batches = 10.0, 8
    if arg == 'smoke':
      base.smoke(c)
  else:
    raise ValueError(f'unknown config argument {arg!r}; use one of {ARGS} or nothing')
  return c


def oracle_points(ls, prefix: str = '') -> list[dict]:
  """SGD, then SVAG for each l (l = 1 is SGD bit for bit: the check that the SVAG path is exact);
  point names start with `prefix` (the CPU variants': the batch size, so both can share a root)."""
  return [{'name': f'{prefix}sgd', 'optim.oracle': 'sgd'}] + [
      {'name': f'{prefix}svag_l{l}', 'optim.oracle': 'svag', 'optim.svag_l': l} for l in ls
  ]


def get_sweep(arg: str | None = None):
  if arg in CPU_VARIANTS:
    batch, ls = CPU_VARIANTS[arg]
    return oracle_points(ls, f'b{batch}_')
  return oracle_points({'smoke': (2,)}.get(arg, FULL_L_VALUES))
