"""2022 paper (Malladi, Lyu, Panigrahi & Arora), Sec. 5: the square-root scaling rule and its break.

Paper: when the batch grows by kappa, RMSprop / Adam keep their SDE with eta x sqrt(kappa),
1 - beta_i x kappa, eps / sqrt(kappa) (`svag_jax.scaling`), trained the same number of epochs; its
experiments (CIFAR, ImageNet, language models) show the rule holding over a wide range of B. Here
each rule (none / linear / sqrt) maps one base setting at B = 25 to B = 50 ... 2000, and the break
is read off the final test error with the 2021 paper's criterion (> 1.2 x the lowest).

    python -m svag_jax.launch.sweep --config=sqrt_rule:cpu --workdir=runs/sqrt_rule_cpu
    python -m svag_jax.analysis.sqrt_rule runs/sqrt_rule_cpu

CPU (`:cpu`: bundled MNIST, Adam with L2 lambda = 1e-4, base B = 25: eta = 1e-3, beta1 = 0.99,
beta2 = 0.999, eps = 1e-8; the SI MLP 784-128-128 (BatchNorm) and the plain MLP (no norm), 18
epochs with the LR x 0.1 at 15, 8 trials per point; `:cpu_rmsprop`: RMSprop on the SI MLP, same
grid). Expected: the sqrt rule keeps the final test error within 20% of the lowest to larger B
than the linear rule or none. Measured (:cpu, 8.7 min at load ~2 on 2 cores): sqrt holds to
B = 800 and fails at 2000 on both nets, linear fails at 400, none at 100-200; (:cpu_rmsprop, ~18
min): sqrt and linear both hold to 800. All numbers: docs/experiments.md#sqrt_rule.
Full scale (no argument: CIFAR-10, SI PreResNet32, base B = 128, B up to 4096, 200 epochs, LR x
0.1 at 150; this repository's setting, not the paper's): not run. `smoke`: its tiny form (tests).
"""

from svag_jax import scaling
from svag_jax.configs import base, stationary_lr

BASE_BATCH = 25
BATCHES = (25, 50, 100, 200, 400, 800, 2000)  # every one divides the 4,000 training digits
NUM_TRAIN = 4000
RULES = ('none', 'linear', 'sqrt')
GN_UP_TO = 100  # G/N estimated at the sqrt rule's B <= this (the noise-scale reading)
GN_EXAMPLES = 3200  # K x B per G/N estimate
MODELS = {'si': 'batch', 'plain': 'none'}  # name -> model.norm
FULL_BATCHES = (128, 256, 512, 1024, 2048, 4096)
ARGS = ('cpu', 'cpu_rmsprop', 'smoke')


def _adam(c, optimizer: str = 'adam'):
  """The base setting: Adam + L2 (or RMSprop), eta = 1e-3, beta1 = 0.99 (kappa (1 - beta1) <= 1
  up to kappa = 100), beta2 = 0.999, eps = 1e-8, lambda = 1e-4 (the paper's code's default WD)."""
  c.optim.optimizer = optimizer
  c.optim.lr, c.optim.wd, c.optim.eps = 1e-3, 1e-4, 1e-8
  c.optim.beta2 = 0.999
  if optimizer == 'adam':
    c.optim.beta1 = 0.99


def get_config(arg: str | None = None):
  c = base.get_config()
  if arg in ('cpu', 'cpu_rmsprop'):
    stationary_lr.mnist_mlp(c)  # SI MLP, batches with replacement, BN refresh before evals
    _adam(c, 'rmsprop' if arg == 'cpu_rmsprop' else 'adam')
    c.optim.lr_schedule = ((15, 0.1),)
    c.train.batch_size = BASE_BATCH
    c.train.epochs = 18
    c.train.eval_every = 1.0
    c.train.steps_per_dispatch = NUM_TRAIN // BASE_BATCH  # one epoch per call
    c.metrics.gn_every = 1.0
    c.metrics.gn_batches = GN_EXAMPLES // BASE_BATCH
    c.trials.num = 8
    c.trials.vmap_chunk = 8
    c.checkpoint.every = 6.0
  elif arg in (None, '', 'full', 'smoke'):  # CIFAR-10, SI PreResNet32 (not the paper's models)
    base.cifar10_preresnet32(c)
    _adam(c)
    c.optim.lr_schedule = ((150, 0.1),)
    c.train.epochs = 200
    c.train.eval_every = 5.0
    c.metrics.gn_every, c.metrics.gn_batches = 10.0, 32
    if arg == 'smoke':
      base.smoke(c)
  else:
    raise ValueError(f'unknown config argument {arg!r}; use one of {ARGS} or nothing')
  return c


def model_overrides(model: str) -> dict:
  """The overrides of one model: the SI MLP as configured, or the plain MLP without normalization
  (nothing scale invariant; its BN refresh is unread)."""
  if MODELS[model] == 'batch':
    return {}
  return {'model.norm': 'none', 'train.eval_bn_batches': 0}


def point(model: str, rule: str, batch: int, c=None) -> dict:
  """One sweep point: `rule` applied from the base batch to `batch` (`scaling.batch_overrides`),
  one epoch per call, G/N only at the base and the sqrt rule's B <= GN_UP_TO (~3,200 examples per
  estimate)."""
  c = c or get_config('cpu')
  name = f'{model}_{"base" if batch == BASE_BATCH else rule}_b{batch}'
  over = {'name': name, **model_overrides(model), **scaling.batch_overrides(c, rule, batch)}
  over['train.steps_per_dispatch'] = max(1, NUM_TRAIN // batch)
  if batch == BASE_BATCH or (rule == 'sqrt' and batch <= GN_UP_TO):
    over['metrics.gn_batches'] = max(4, GN_EXAMPLES // batch)
  else:
    over['metrics.gn_every'], over['metrics.gn_batches'] = 0.0, 8
  return over


def get_sweep(arg: str | None = None):
  c = get_config(arg)
  if arg not in ('cpu', 'cpu_rmsprop'):  # full scale: one run per rule and B, no G/N pruning
    batches = (16,) if arg == 'smoke' else FULL_BATCHES[1:]
    points = [{'name': f'base_b{c.train.batch_size}'}]
    for rule in RULES:
      for b in batches:
        points.append({'name': f'{rule}_b{b}', **scaling.batch_overrides(c, rule, b)})
    return points
  models = ('si', 'plain') if arg == 'cpu' else ('si',)
  points = []
  for model in models:
    points.append(point(model, 'sqrt', BASE_BATCH, c))
    for rule in RULES:
      for b in BATCHES[1:]:
        if rule != 'sqrt' and b == 50:  # the rules differ little at 2x; the sqrt curve has it
          continue
        points.append(point(model, rule, b, c))
  return points
