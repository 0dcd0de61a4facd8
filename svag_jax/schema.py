"""The config schema: every field a config may set, with its default.

Config files start from `defaults()` (configs/base.py) and override a few fields;
`svag_jax.config.validate` checks a config against it.
"""

import inspect
import re

import ml_collections


def defaults() -> ml_collections.ConfigDict:
  """Every field a config may set, with its default: the schema `validate` checks against."""
  c = ml_collections.ConfigDict()
  c.seed = 0  # trial i of a run gets the key fold_in(key(seed), i)

  c.data = ml_collections.ConfigDict()
  c.data.source = 'mnist5k'  # 'mnist5k' (bundled, offline) | 'tfds' | 'synthetic'
  c.data.name = 'mnist'  # tfds data set name (source='tfds')
  c.data.data_dir = ''  # tfds data_dir ('' = tfds default)
  c.data.download = False  # let tfds try to download and prepare a missing data set
  c.data.num_train = 0  # keep a fixed subset of this many training examples (0 = all)
  c.data.num_test = 0  # likewise for the test split (0 = all)
  c.data.synthetic_shape = (28, 28, 1)  # source='synthetic': image shape (H, W, C)
  c.data.synthetic_num_classes = 10  # source='synthetic': number of classes
  c.data.synthetic_num_train = 512  # source='synthetic': training examples
  c.data.synthetic_num_test = 128  # source='synthetic': test examples
  # Standard CIFAR augmentation inside the jitted step (svag_jax.augment): random crop with 4 px
  # zero padding and horizontal flip, per example and per trial (sgd / svag oracles only).
  c.data.augment = False

  c.model = ml_collections.ConfigDict()
  # 'cnn' | 'mlp' | 'preresnet20/32/56' | 'vgg11/13/16/19', or a model of your own by import path:
  # 'package.module:Class' or 'path/to/file.py:Class' (svag_jax.models.external; docs/byom.md)
  c.model.name = 'cnn'
  # model.name by import path only: the keyword arguments of Class (num_classes is passed when
  # Class takes it and this does not set it)
  c.model.kwargs = ml_collections.ConfigDict()
  c.model.widths = (32, 64, 64)  # cnn/mlp only: conv channels (cnn) or hidden units (mlp)
  c.model.widen = 1.0  # preresnet/vgg only: x their standard channels (rounded, >= 1)
  c.model.conv_impl = 'xla'  # convolution implementation (svag_jax.models.conv.CONV_IMPLS)
  c.model.norm = 'batch'  # 'batch' | 'group' | 'layer' | 'none' (not scale invariant)
  c.model.num_groups = 8  # GroupNorm groups (norm='group')
  c.model.norm_eps = 1e-10  # tiny, so loss(c w) = loss(w) holds to ~1e-7 in fp32
  c.model.init_scale = 1.0  # x LeCun-normal std; sets the initial norm, so the initial eff. LR

  # The default arm: SGD with coupled WD. Schedules are ((epoch, factor), ...): at each epoch the
  # value is multiplied by factor (cumulatively); LR and WD schedules are independent.
  c.optim = ml_collections.ConfigDict()
  c.optim.lr = 0.1  # initial learning rate eta
  c.optim.wd = 0.1  # initial coupled weight decay lambda (the gradient gets + lambda w)
  c.optim.lr_schedule = ()  # ((epoch, factor), ...) for the LR
  c.optim.wd_schedule = ()  # ((epoch, factor), ...) for the WD
  # A curve multiplying the LR schedule: 'constant' | 'cosine' (from 1 at start to 0 at end) |
  # 'triangle' (0 at start, 1 at peak, 0 at end). lr_curve_epochs: (start, end) for cosine,
  # (start, peak, end) for triangle; () = (0, train.epochs) / (0, train.epochs / 2, train.epochs).
  c.optim.lr_curve = 'constant'
  c.optim.lr_curve_epochs = ()  # the epochs of lr_curve (above)
  c.optim.momentum = 0.0  # heavy ball, PyTorch convention: v = beta v + g; w -= lr v
  # The optimizer (svag_jax.optim.make): 'sgd' (coupled WD, heavy-ball momentum) | 'rmsprop'
  # (coupled WD) | 'adam' (coupled WD, i.e. L2 in the gradient) | 'adamw' (decoupled WD: w -= lr
  # (u + wd w), the decay per step is lr * wd), PyTorch's conventions; the adaptive ones read
  # beta1 (adam, adamw), beta2 and eps, and not momentum.
  c.optim.optimizer = 'sgd'
  c.optim.beta1 = 0.9  # adam/adamw: decay of the first moment (EMA of the gradient)
  c.optim.beta2 = 0.999  # rmsprop/adam/adamw: decay of the second moment (EMA of its square)
  c.optim.eps = 1e-8  # rmsprop/adam/adamw: added to sqrt(v_hat) in the denominator
  # The gradient oracle (Li, Malladi & Arora 2021): 'sgd' (one batch of B), 'svag' (two batches,
  # combined with amplification svag_l, svag_l x the steps, the LR / svag_l; adaptive optimizers:
  # LR / sqrt(svag_l), 1 - beta / svag_l, eps x sqrt(svag_l), adamw WD / sqrt(svag_l), Malladi et
  # al. 2022, whose ell is sqrt(svag_l); svag_jax.scaling), 'ngd' (full-batch
  # gradient + covariance-matched Gaussian noise), 'gd' (full-batch gradient). ngd/gd use the whole
  # training set (fix a subset with data.num_train) in chunks of chunk_size examples.
  c.optim.oracle = 'sgd'
  c.optim.svag_l = 1  # SVAG amplification l (int >= 1; 1 = the optimizer bit for bit)
  c.optim.noise_scale = 0.0  # std of isotropic Gaussian noise added to the gradient (0 = off)
  c.optim.chunk_size = 500  # examples per forward/backward pass of the full-batch oracles

  # Arms: named groups of trials that differ only in their schedules, all trained by ONE compiled
  # program. Each arm is a dict with any of {lr, wd, lr_schedule, wd_schedule, lr_curve,
  # lr_curve_epochs}; missing fields come from `optim`. Empty = a single arm named 'default' built
  # from `optim`.
  c.arms = ml_collections.ConfigDict()

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 128  # B: examples per SGD step and trial
  c.train.epochs = 10.0  # may be fractional (e.g. 1.5)
  c.train.sampling = 'shuffle'  # 'shuffle' (per-epoch permutation) | 'replacement'
  c.train.eval_every = 1.0  # epochs between evaluations (and metric rows)
  c.train.eval_batch_size = 1000  # examples per forward pass of the evaluation
  c.train.eval_bn_batches = 0  # BatchNorm: refresh running stats on k train batches before eval
  c.train.steps_per_dispatch = 8  # SGD steps per host->device call
  c.train.unroll = True  # unroll the steps of a dispatch (needed on CPU, jax#12868)
  # The arithmetic of the forward/backward passes (svag_jax/precision.py); weights, optimizer state,
  # gradients and metrics stay float32 in all: 'fp32' (as before: jax's default matmul precision,
  # float32 on CPU, TF32 tensor cores on NVIDIA GPUs since Ampere unless
  # JAX_DEFAULT_MATMUL_PRECISION=highest) | 'tf32' (dots and convs explicitly at TF32; on CPU the
  # same arithmetic as 'fp32') | 'bf16' (bfloat16 activations and weight copies, float32 master
  # weights and norm statistics).
  c.train.precision = 'fp32'
  c.train.predictions_at = ()  # epochs at which each trial's test predictions are saved
  # epochs at which every trial's params, batch_stats and frozen head are saved (params/,
  # Workdir.save_params): the weights themselves, e.g. for weight distances and averaging
  c.train.params_at = ()

  c.trials = ml_collections.ConfigDict()
  c.trials.num = 1  # trials per arm
  c.trials.vmap_chunk = 0  # trials per call: 0 = all (GPU/TPU default), 1 = loop
  # How one call maps its trials (svag_jax/trials.py): 'vmap' (one vmapped program; per-trial convs
  # become grouped convs, slow on CPU and GPU unless model.conv_impl = 'im2col') | 'side_by_side'
  # (the call's one-trial steps side by side in one program, convs ungrouped; its compile time
  # grows with vmap_chunk x steps_per_dispatch, so keep both small; CPU conv nets, vmap_chunk = 8:
  # ~1.2x a loop's throughput on 2 cores, benchmarks/trials.py).
  c.trials.mode = 'vmap'

  # Gradient signal/noise estimates G = ||grad L||^2, N = Tr Sigma_B, NSR = N / G at the training
  # batch size B, from gn_batches independent batches (with replacement), no WD, BatchNorm stats
  # untouched; every gn_every epochs (rounded to evaluations; 0 = off).
  c.metrics = ml_collections.ConfigDict()
  c.metrics.gn_every = 0.0  # epochs between G/N estimates (0 = off)
  c.metrics.gn_batches = 8  # K: batches per G/N estimate
  # Per-group metrics (norm, effective LR, angular update, G/N of every scale-invariant group;
  # WORKDIR/groups.json): 'auto' (a built-in model's declared groups; found at the start by
  # svag_jax.invariance.find_groups for a model named by import path) | 'found' (found for any
  # model) | 'none' (no per-group columns and no angular_update)
  c.metrics.groups = 'auto'

  c.checkpoint = ml_collections.ConfigDict()
  c.checkpoint.every = 1.0  # epochs between checkpoints (rounded to evaluations)
  c.checkpoint.max_to_keep = 2  # newest checkpoints kept (older ones deleted)

  # What a run shows while it runs (svag_jax.monitor); metrics.jsonl is written whatever these say,
  # and all of them may change when a run is resumed.
  c.logging = ml_collections.ConfigDict()
  c.logging.tensorboard = True  # event files under WORKDIR/tensorboard/, one run per arm
  c.logging.wandb = False  # also log to Weights & Biases (needs the wandb extra)
  c.logging.wandb_project = 'svag_jax'  # the W&B project
  # W&B's mode: 'online' or 'offline' (sync later with `wandb sync`)
  c.logging.wandb_mode = 'online'
  # 'auto': a live progress line when stderr is a terminal; 'always' / 'never'
  c.logging.progress = 'auto'
  return c


# ---- The field reference (docs/config.md), generated from this file's code and comments ----

_FIELD = re.compile(r'^\s*c\.([\w.]+) = (.*?)(?:\s+#\s?(.*))?$')


def reference() -> str:
  """docs/config.md: every field of `defaults()` with its type, default and the comments beside and
  above it here (`python -m svag_jax.schema > docs/config.md`; tests/test_config.py checks it)."""
  values = defaults()
  lines = [
      '# Config fields',
      '',
      'Generated from `svag_jax/schema.py` by `python -m svag_jax.schema > docs/config.md` (a test',
      'checks that they agree). Config files start from these defaults (`configs/base.py`) and',
      'override a few fields; `--config.GROUP.FIELD=VALUE` overrides one on the command line, and',
      '`svag_jax.config.validate` refuses unknown fields, values out of range and fields a run',
      'would not read.',
  ]
  above: list[str] = []
  for line in inspect.getsource(defaults).splitlines():
    stripped = line.strip()
    if stripped.startswith('#'):
      above.append(stripped[1:].strip())
      continue
    m = _FIELD.match(line)
    if not m:
      above = []
      continue
    name, _, beside = m.groups()
    text = ' '.join([*above, beside or ''])
    text = ' '.join(text.split())
    above = []
    value = values[name]
    if isinstance(value, ml_collections.ConfigDict):
      lines += ['', f'## `{name}`', '']
      if text:
        lines += [text, '']
      lines += ['| field | type | default | meaning |', '|---|---|---|---|']
      continue
    if '.' not in name:  # a top-level scalar (seed)
      lines += ['', f'`{name}` ({type(value).__name__}, default `{value!r}`): {text}']
      continue
    cell = text.replace('|', '\\|')
    lines.append(f'| `{name}` | {type(value).__name__} | `{value!r}` | {cell} |')
  return '\n'.join(lines) + '\n'


if __name__ == '__main__':
  print(reference(), end='')
