"""2021 paper, Fig. 4 (left): SGD vs SVAG with l in {1, 2, 4, 8}; SVAG converges as l grows.

SVAG (Li, Malladi & Arora 2021, Sec. 4) steps on c1 L(batch 1) + c2 L(batch 2) with LR eta / l for
l x the steps, so curves are compared against effective steps = steps / l. Each l is its own run
(a sweep over optim.svag_l); l = 1 is SGD bit for bit.

Full scale (`get_config(VARIANT)`, VARIANT one of `preresnet32_b128` (the default),
`preresnet32_b1024`, `vgg19_b128`, `vgg19_b1024`, and `preresnet32_cosine` / `preresnet32_triangle`
(B = 128 with a cosine or triangle LR curve over the 160 epochs instead of the step decay);
2021 Fig. 4 and its appendix): SI net (BatchNorm)
on CIFAR-10 with crop + flip augmentation, no momentum, lambda = 5e-4, B = 128 with eta = 0.8 or
B = 1024 with eta = 6.4, 160 epochs with LR x 0.1 at 80 and 120; the sweep runs SGD and SVAG with
l in {1, 2, 4, 8, 16, 32} (l = 32 takes 32 x the steps of SGD, each of two batches):

    python -m svag_jax.launch.sweep --config=svag_convergence:VARIANT --workdir=runs/svag_VARIANT

Expected (paper): test accuracy and train loss vs effective steps converge as l grows (l = 16 and
32 overlap), and for B = 128 they match SGD (the SDE is a good model), for B = 1024 they do not.
Runtime on one H100 (benchmarks/cifar_runtime.py, PreResNet32, B = 128): SGD 1.6 s/epoch, SVAG
l = 4 12.2 s/epoch (l x the steps, two batches each), so l = 32 ~100 s/epoch and the whole sweep
~9 h for 160 epochs. `get_config('smoke')`: tiny net, synthetic data, 2 steps.

CPU (`get_config('cpu')`, the sweep `get_sweep('cpu')`): the 4,000/1,000 bundled MNIST digits,
SI CNN with widths (16, 32, 32) and BatchNorm, B = 128, eta = 0.2, lambda = 5e-3, 4 epochs (124
SGD steps; l = 8 runs 992 SVAG steps of two batches), 1 trial per point:

    python -m svag_jax.launch.sweep --config=svag_convergence:cpu --workdir=runs/svag_cpu
    python -m svag_jax.analysis.svag_convergence runs/svag_cpu

Measured on this 2-core CPU: 9.4 min for the 5 points (while a benchmark and tests shared the
cores); final test accuracy SGD 0.946, l = 1 0.946 (identical to SGD), l = 2 0.950, l = 4 0.947,
l = 8 0.951 (one trial each, so differences of ~0.005 are noise).
"""

from svag_jax.configs import base

L_VALUES = (1, 2, 4, 8)
FULL_L_VALUES = (1, 2, 4, 8, 16, 32)
# Full-scale variants: (model, batch size, LR, LR curve). The step decay (x0.1 at 80 and 120) is
# used with the constant curve; a cosine or triangle curve replaces it (2021 appendix: SVAG with
# other schedules).
VARIANTS = {
    'preresnet32_b128': ('preresnet32', 128, 0.8, 'constant'),
    'preresnet32_b1024': ('preresnet32', 1024, 6.4, 'constant'),
    'vgg19_b128': ('vgg19', 128, 0.8, 'constant'),
    'vgg19_b1024': ('vgg19', 1024, 6.4, 'constant'),
    'preresnet32_cosine': ('preresnet32', 128, 0.8, 'cosine'),
    'preresnet32_triangle': ('preresnet32', 128, 0.8, 'triangle'),
}
ARGS = ('cpu', 'smoke', *VARIANTS)


def get_config(arg: str | None = None):
  c = base.get_config()
  c.optim.momentum = 0.0
  c.train.batch_size = 128
  c.trials.num = 1
  if arg == 'cpu':
    c.data.source = 'mnist5k'
    c.model.name = 'cnn'
    c.model.widths = (16, 32, 32)
    c.model.norm = 'batch'
    c.optim.lr = 0.2
    c.optim.wd = 5e-3
    c.train.epochs = 4
    c.train.eval_every = 0.5
    c.train.steps_per_dispatch = 8
    c.trials.vmap_chunk = 1
  elif arg in (None, '', 'full', 'smoke', *VARIANTS):
    model, batch_size, lr, curve = VARIANTS.get(arg, VARIANTS['preresnet32_b128'])
    base.cifar10_preresnet32(c)
    c.model.name, c.model.norm = model, 'batch'
    c.train.batch_size, c.optim.lr = batch_size, lr
    c.optim.lr_curve = curve  # over the whole run: cosine 1 -> 0; triangle 0 -> 1 at 80 -> 0
    c.optim.lr_schedule = ((80, 0.1), (120, 0.1)) if curve == 'constant' else ()
    c.train.epochs = 160
    c.train.eval_every = 2.0
    if arg == 'smoke':
      base.smoke(c)
  else:
    raise ValueError(f'unknown config argument {arg!r}; use one of {ARGS} or nothing')
  return c


def get_sweep(arg: str | None = None):
  ls = {'cpu': L_VALUES, 'smoke': (2,)}.get(arg, FULL_L_VALUES)
  return [{'name': 'sgd', 'optim.oracle': 'sgd'}] + [
      {'name': f'svag_l{l}', 'optim.oracle': 'svag', 'optim.svag_l': l} for l in ls
  ]
