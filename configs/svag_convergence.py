"""2021 paper, Fig. 4: SGD vs SVAG (l up to 32) at a batch size where the SDE holds and one past it.

SVAG (2021 paper, Sec. 4) takes l x the steps at LR eta / l on a two-batch combination of losses;
curves are compared against effective steps = steps / l; each l is its own sweep point (l = 1 is
SGD bit for bit). Paper (Fig. 4 caption): PreResNet32 with BN on CIFAR-10, 300 epochs, eta x 0.1 at
250; SVAG matches SGD in one panel and, at B = 1024 where Fig. 3 predicts the LSR break, converges
to a different limit. The left panel's B, eta, lambda, the VGG19 runs and other LR schedules are in
Appendix F (not available here). Variants: `preresnet32_b128` (default), `preresnet32_b1024`,
`vgg19_b128`, `vgg19_b1024` (B = 128 at eta = 0.8 or 1024 at 6.4, lambda = 5e-4), the same with
`_160ep` (the earlier 160-epoch schedule), `preresnet32_cosine`, `preresnet32_triangle`.

    python -m svag_jax.launch.sweep --config=svag_convergence:VARIANT --workdir=runs/svag_VARIANT
    python -m svag_jax.launch.sweep --config=svag_convergence:cpu --workdir=runs/svag_cpu
    python -m svag_jax.analysis.svag_convergence runs/svag_cpu

Runtime on one H100 (benchmarks/cifar_runtime.py, PreResNet32, B = 128): SGD 1.6 s/epoch, SVAG l = 4
12.2 s/epoch, so the sweep with l up to 32 takes ~17 h for 300 epochs. Not run here. Expected
(paper): the curves converge as l grows; at B = 128 they match SGD, at B = 1024 they do not.
`get_config('smoke')`: tiny net, synthetic data, 2 steps.
CPU (`:cpu`: bundled MNIST, SI MLP, B = 50 and 1000 at eta = 0.002 B, lambda = 0.1, 10 epochs with
the LR x 0.1 at 8, l up to 32, 8 trials per point): ~9.5 min on the quiet 2-core CPU. Expected
(measured, test accuracy at the end): B = 1000: SGD 0.9028, SVAG l = 32 0.9643, a limit 6 points
above SGD (N/G = 0.14); B = 50: SGD 0.9590, l = 16 0.9625, l = 32 0.9628 (converged in l; SGD near
the limit but not on it). Unlike the paper, the train loss has not converged in l at l = 32.

Settings in full, all measurements, a probe at eta lambda = 3e-3:
docs/experiments.md#svag_convergence.
"""

from svag_jax.configs import base

L_VALUES = (1, 2, 4, 8, 16)
FULL_L_VALUES = (1, 2, 4, 8, 16, 32)
# CPU: the two batch sizes (LSR-scaled LR eta = CPU_LR_PER_EXAMPLE * B): B = 50 has N/G ~ 8 at
# equilibrium (LSR holds), B = 1000 has N/G ~ 0.1 (past the break; see the docstring).
CPU_BATCHES = (50, 1000)
CPU_LR_PER_EXAMPLE = 0.002
CPU_EXTRA_L = {50: (32,), 1000: (32,)}  # l = 32 at both B: is l = 16 converged?
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
ARGS = ('cpu', 'smoke', *VARIANTS)


def get_config(arg: str | None = None):
  c = base.get_config()
  c.optim.momentum = 0.0
  c.train.batch_size = 128
  c.trials.num = 1
  if arg == 'cpu':
    base.mnist_mlp(c)
    c.train.batch_size = CPU_BATCHES[0]
    c.optim.lr, c.optim.wd = CPU_LR_PER_EXAMPLE * CPU_BATCHES[0], 0.1
    c.optim.lr_schedule = ((8, 0.1),)
    c.train.epochs = 10
    c.train.eval_every = 0.5
    c.train.eval_bn_batches = 8  # the same BN statistics for every l (no EMA over l x the steps)
    c.train.steps_per_dispatch = 4000  # rolled: one call per evaluation interval
    c.metrics.gn_every = 1.0
    c.metrics.gn_batches = 16
    c.trials.num = 8
    c.trials.vmap_chunk = 8
    c.checkpoint.every = 2.0
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


def oracle_points(ls) -> list[dict]:
  """SGD, then SVAG for each l (l = 1 is SGD bit for bit: the check that the SVAG path is exact)."""
  return [{'name': 'sgd', 'optim.oracle': 'sgd'}] + [
      {'name': f'svag_l{l}', 'optim.oracle': 'svag', 'optim.svag_l': l} for l in ls
  ]


def get_sweep(arg: str | None = None):
  if arg != 'cpu':
    return oracle_points({'smoke': (2,)}.get(arg, FULL_L_VALUES))
  points = []
  for b in CPU_BATCHES:
    for p in oracle_points(L_VALUES + CPU_EXTRA_L.get(b, ())):
      over = {'train.batch_size': b, 'optim.lr': CPU_LR_PER_EXAMPLE * b}
      points.append({**p, **over, 'name': f'b{b}_{p["name"]}'})
  return points
