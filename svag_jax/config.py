"""Config validation: every check runs before anything is loaded onto a device or compiled.

`validate(config)` checks the config alone (schema, ranges, names); `validate_with_data` checks what
depends on the data set (batch size vs training-set size). Both raise `ConfigError`, whose message
names the field, the bad value and what would fix it.
"""

import dataclasses
import difflib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections

DATA_SOURCES = ('mnist5k', 'tfds', 'synthetic')
MODELS = ('cnn', 'mlp', 'preresnet20', 'preresnet32', 'preresnet56',
          'vgg11', 'vgg13', 'vgg16', 'vgg19')
NORMS = ('batch', 'group', 'layer', 'none')
SAMPLING = ('shuffle', 'replacement')
ORACLES = ('sgd', 'svag', 'ngd', 'gd')
BATCH_INDEPENDENT_NORMS = ('group', 'layer', 'none')
ARM_FIELDS = ('lr', 'wd', 'lr_schedule', 'wd_schedule', 'lr_curve', 'lr_curve_epochs')
LR_CURVES = ('constant', 'cosine', 'triangle')  # = svag_jax.schedules.CURVES


# Groups of fields: plain dicts or ConfigDicts (which are not collections.abc.Mapping).
_GROUP = (Mapping, ml_collections.ConfigDict)


class ConfigError(ValueError):
  """A config value is invalid; the message names the field and the fix."""


@dataclasses.dataclass(frozen=True)
class Arm:
  """A named group of trials with its own LR and WD schedules (epochs, cumulative factors).

  `lr_curve` multiplies the LR schedule (`svag_jax.schedules`); `lr_curve_epochs` is resolved:
  () for 'constant', (start, end) for 'cosine', (start, peak, end) for 'triangle'.
  """

  name: str
  lr: float
  wd: float
  lr_schedule: tuple[tuple[float, float], ...]
  wd_schedule: tuple[tuple[float, float], ...]
  lr_curve: str = 'constant'
  lr_curve_epochs: tuple[float, ...] = ()


def defaults() -> ml_collections.ConfigDict:
  """Every field a config may set, with its default: the schema `validate` checks against."""
  c = ml_collections.ConfigDict()
  c.seed = 0

  c.data = ml_collections.ConfigDict()
  c.data.source = 'mnist5k'      # 'mnist5k' (bundled, offline) | 'tfds' | 'synthetic'
  c.data.name = 'mnist'          # tfds data set name (source='tfds')
  c.data.data_dir = ''           # tfds data_dir ('' = tfds default)
  c.data.download = False        # let tfds try to download and prepare a missing data set
  c.data.num_train = 0           # keep a fixed subset of this many training examples (0 = all)
  c.data.num_test = 0            # likewise for the test split (0 = all)
  c.data.synthetic_shape = (28, 28, 1)
  c.data.synthetic_num_classes = 10
  c.data.synthetic_num_train = 512
  c.data.synthetic_num_test = 128
  # Standard CIFAR augmentation inside the jitted step (svag_jax.augment): random crop with 4 px
  # zero padding and horizontal flip, per example and per trial (sgd / svag oracles only).
  c.data.augment = False

  c.model = ml_collections.ConfigDict()
  c.model.name = 'cnn'           # 'cnn' | 'mlp' | 'preresnet20/32/56' | 'vgg11/13/16/19'
  c.model.widths = (32, 64, 64)  # cnn/mlp only: conv channels (cnn) or hidden units (mlp)
  c.model.widen = 1.0            # preresnet/vgg only: x their standard channels (rounded, >= 1)
  c.model.conv_impl = 'xla'      # convolution implementation (svag_jax.models.conv.CONV_IMPLS)
  c.model.norm = 'batch'         # 'batch' | 'group' | 'layer' | 'none' (not scale invariant)
  c.model.num_groups = 8         # GroupNorm groups (norm='group')
  c.model.norm_eps = 1e-10       # tiny, so loss(c w) = loss(w) holds to ~1e-7 in fp32
  c.model.init_scale = 1.0       # x LeCun-normal std; sets the initial norm, so the initial eff. LR

  # The default arm: SGD with coupled WD. Schedules are ((epoch, factor), ...): at each epoch the
  # value is multiplied by factor (cumulatively); LR and WD schedules are independent.
  c.optim = ml_collections.ConfigDict()
  c.optim.lr = 0.1
  c.optim.wd = 0.1
  c.optim.lr_schedule = ()
  c.optim.wd_schedule = ()
  # A curve multiplying the LR schedule: 'constant' | 'cosine' (from 1 at start to 0 at end) |
  # 'triangle' (0 at start, 1 at peak, 0 at end). lr_curve_epochs: (start, end) for cosine,
  # (start, peak, end) for triangle; () = (0, train.epochs) / (0, train.epochs / 2, train.epochs).
  c.optim.lr_curve = 'constant'
  c.optim.lr_curve_epochs = ()
  c.optim.momentum = 0.0         # heavy ball, PyTorch convention: v = beta v + g; w -= lr v
  # The gradient oracle (Li, Malladi & Arora 2021): 'sgd' (one batch of B), 'svag' (two batches,
  # combined with amplification svag_l, LR / svag_l, svag_l x the steps), 'ngd' (full-batch
  # gradient + covariance-matched Gaussian noise), 'gd' (full-batch gradient). ngd/gd use the whole
  # training set (fix a subset with data.num_train) in chunks of chunk_size examples.
  c.optim.oracle = 'sgd'
  c.optim.svag_l = 1             # SVAG amplification l (int >= 1; 1 = SGD bit for bit)
  c.optim.noise_scale = 0.0      # std of isotropic Gaussian noise added to the gradient (0 = off)
  c.optim.chunk_size = 500       # examples per forward/backward pass of the full-batch oracles

  # Arms: named groups of trials that differ only in their schedules, all trained by ONE compiled
  # program. Each arm is a dict with any of {lr, wd, lr_schedule, wd_schedule, lr_curve,
  # lr_curve_epochs}; missing fields come from `optim`. Empty = a single arm named 'default' built
  # from `optim`.
  c.arms = ml_collections.ConfigDict()

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 128
  c.train.epochs = 10.0          # may be fractional (e.g. 1.5)
  c.train.sampling = 'shuffle'   # 'shuffle' (per-epoch permutation) | 'replacement'
  c.train.eval_every = 1.0       # epochs between evaluations (and metric rows)
  c.train.eval_batch_size = 1000
  c.train.eval_bn_batches = 0    # BatchNorm: refresh running stats on k train batches before eval
  c.train.steps_per_dispatch = 8 # SGD steps per host->device call
  c.train.unroll = True          # unroll the steps of a dispatch (needed on CPU, jax#12868)
  c.train.predictions_at = ()    # epochs at which each trial's test predictions are saved
  # epochs at which every trial's params, batch_stats and frozen head are saved (params/,
  # Workdir.save_params): the weights themselves, e.g. for weight distances and averaging
  c.train.params_at = ()

  c.trials = ml_collections.ConfigDict()
  c.trials.num = 1               # trials per arm
  c.trials.vmap_chunk = 0        # trials vmapped per call: 0 = all (GPU/TPU default), 1 = loop

  # Gradient signal/noise estimates G = ||grad L||^2, N = Tr Sigma_B, NSR = N / G at the training
  # batch size B, from gn_batches independent batches (with replacement), no WD, BatchNorm stats
  # untouched; every gn_every epochs (rounded to evaluations; 0 = off).
  c.metrics = ml_collections.ConfigDict()
  c.metrics.gn_every = 0.0
  c.metrics.gn_batches = 8

  c.checkpoint = ml_collections.ConfigDict()
  c.checkpoint.every = 1.0       # epochs between checkpoints (rounded to evaluations)
  c.checkpoint.max_to_keep = 2
  return c


def _fail(field: str, value: Any, why: str) -> None:
  raise ConfigError(f'config.{field} = {value!r}: {why}')


def _check_keys(cfg, schema, prefix: str) -> None:
  for key, value in cfg.items():
    field = f'{prefix}{key}'
    if key not in schema:
      close = difflib.get_close_matches(key, list(schema), n=1)
      hint = f' Did you mean {close[0]!r}?' if close else ''
      raise ConfigError(
          f'config.{field}: unknown field.{hint} Known fields here: {", ".join(sorted(schema))}.'
      )
    if isinstance(schema[key], _GROUP) and key != 'arms':
      if not isinstance(value, _GROUP):
        _fail(field, value, 'must be a group of fields, not a single value')
      _check_keys(value, schema[key], field + '.')


def check_field(config: ml_collections.ConfigDict, field: str) -> None:
  """Raises ConfigError unless the dotted `field` names a field of `config` (with a suggestion)."""
  node, path = config, []
  for part in field.split('.'):
    if not isinstance(node, _GROUP) or part not in node:
      known = sorted(node) if isinstance(node, _GROUP) else []
      close = difflib.get_close_matches(part, known, n=1)
      hint = f' Did you mean {".".join([*path, close[0]])!r}?' if close else ''
      where = f'config.{".".join(path)}' if path else 'config'
      what = (f' Known fields of {where}: {", ".join(known)}.' if known
              else f' {where} is a value, not a group of fields.')
      raise ConfigError(f'config.{field}: unknown field.{hint}{what}')
    node = node[part]
    path.append(part)


def _check_schedule(field: str, changes: Any) -> tuple[tuple[float, float], ...]:
  if not isinstance(changes, Sequence) or isinstance(changes, str):
    _fail(field, changes, 'must be a tuple of (epoch, factor) pairs, e.g. ((40, 0.5), (80, 0.5))')
  pairs = []
  for item in changes:
    if not isinstance(item, Sequence) or len(item) != 2:
      _fail(field, changes, f'entry {item!r} is not an (epoch, factor) pair')
    epoch, factor = float(item[0]), float(item[1])
    if not (math.isfinite(epoch) and epoch > 0):
      _fail(field, changes, f'epoch {item[0]!r} must be finite and > 0')
    if not (math.isfinite(factor) and factor >= 0):
      _fail(field, changes, f'factor {item[1]!r} must be finite and >= 0')
    if pairs and epoch < pairs[-1][0]:
      _fail(field, changes, f'epochs out of order: {pairs[-1][0]:g} then {epoch:g}; sort them')
    pairs.append((epoch, factor))
  return tuple(pairs)


def _positive(field: str, value: Any, allow_zero: bool = False, integer: bool = False) -> None:
  ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
  if isinstance(value, bool) or not ok_type or not math.isfinite(value):
    _fail(field, value, f'must be a finite {"integer" if integer else "number"}')
  if value < 0 or (value == 0 and not allow_zero):
    _fail(field, value, f'must be {">= 0" if allow_zero else "> 0"}')


def _choice(field: str, value: Any, choices: Sequence[str]) -> None:
  if value not in choices:
    _fail(field, value, f'unknown; choose one of {", ".join(choices)}')


def _check_curve_epochs(field: str, curve: str, epochs: Any, total: float) -> tuple[float, ...]:
  """The LR curve's epochs, defaults filled in: () / (start, end) / (start, peak, end)."""
  names = {'constant': (), 'cosine': ('start', 'end'), 'triangle': ('start', 'peak', 'end')}[curve]
  if not isinstance(epochs, Sequence) or isinstance(epochs, str):
    _fail(field, epochs, f'must be a tuple of epochs ({", ".join(names) or "empty"})')
  if not names:
    if len(epochs):
      _fail(field, epochs, 'the constant LR curve takes no epochs: set optim.lr_curve (or the '
            "arm's lr_curve) to 'cosine' or 'triangle', or leave lr_curve_epochs = ()")
    return ()
  if not len(epochs):
    return (0.0, float(total)) if curve == 'cosine' else (0.0, total / 2, float(total))
  if len(epochs) != len(names):
    _fail(field, epochs, f'the {curve} LR curve takes {len(names)} epochs '
          f'({", ".join(names)}), or () for the default')
  values = []
  for name, e in zip(names, epochs):
    if isinstance(e, bool) or not isinstance(e, (int, float)) or not math.isfinite(e):
      _fail(field, epochs, f'{name} = {e!r} must be a finite number of epochs')
    if not 0 <= e <= total:
      _fail(field, epochs, f'{name} = {e!r} is not in [0, train.epochs = {total}]')
    values.append(float(e))
  if any(b < a for a, b in zip(values, values[1:])) or values[0] >= values[-1]:
    _fail(field, epochs, f'need {" <= ".join(names)} with start < end; reorder them')
  return tuple(values)


def _arm_specs(config: ml_collections.ConfigDict) -> dict[str, dict]:
  if not len(config.arms):
    return {'default': {}}
  specs = {}
  for name, spec in config.arms.items():
    if not isinstance(spec, _GROUP):
      _fail(f'arms.{name}', spec, 'must be a dict of arm fields')
    specs[name] = dict(spec)
    for key in specs[name]:
      if key not in ARM_FIELDS:
        _fail(f'arms.{name}.{key}', spec[key], f'unknown arm field; use {", ".join(ARM_FIELDS)}')
  return specs


def set_arms(config: ml_collections.ConfigDict, arm_specs: Mapping[str, Mapping]
             ) -> ml_collections.ConfigDict:
  """Sets `config.arms` and puts back to their defaults the `optim` fields that every arm sets.

  For config files: those `optim` fields are read by no arm (`shadowed_fields`), so a config file
  that set them (e.g. through a shared base setting) must not leave a value that nobody reads.
  Returns `config`.
  """
  config.arms = {name: dict(spec) for name, spec in arm_specs.items()}
  schema = defaults().optim
  for field in shadowed_fields(config):
    key = field.split('.')[1]
    config.optim[key] = schema[key]
  return config


def shadowed_fields(config: ml_collections.ConfigDict) -> dict[str, str]:
  """The `optim.*` arm fields that no arm reads, because every arm sets its own value.

  Returns {'optim.lr': 'arms.const.lr, arms.lr_decay.lr', ...}: the field and the arm fields to set
  instead.
  """
  if not len(config.arms):
    return {}
  specs = _arm_specs(config)
  return {f'optim.{f}': ', '.join(f'arms.{name}.{f}' for name in specs)
          for f in ARM_FIELDS if all(f in spec for spec in specs.values())}


def arms(config: ml_collections.ConfigDict) -> list[Arm]:
  """The validated arms of a config (a single 'default' arm when `config.arms` is empty).

  An arm field an arm does not set comes from `optim` (inheritance); an `optim` field that every
  arm sets is read by no arm and must stay at its default (`shadowed_fields`): a changed value
  would be silently ignored, so it is a ConfigError naming the arm fields to set instead.
  """
  optim, schema = config.optim, defaults().optim
  for field, instead in shadowed_fields(config).items():
    key = field.split('.')[1]
    if _differs(optim[key], schema[key]):
      _fail(field, optim[key], f'not read: every arm sets its own {key}. Set it per arm instead '
            f'({instead}), e.g. --config.{instead.split(", ")[0]}=...')
  result = []
  for name, spec in _arm_specs(config).items():
    lr, wd = spec.get('lr', optim.lr), spec.get('wd', optim.wd)
    where = f'arms.{name}.' if len(config.arms) else 'optim.'
    _positive(where + 'lr', lr)
    _positive(where + 'wd', wd, allow_zero=True)
    lr_s = _check_schedule(where + 'lr_schedule', spec.get('lr_schedule', optim.lr_schedule))
    wd_s = _check_schedule(where + 'wd_schedule', spec.get('wd_schedule', optim.wd_schedule))
    curve = spec.get('lr_curve', optim.lr_curve)
    _choice(where + 'lr_curve', curve, LR_CURVES)
    curve_epochs = _check_curve_epochs(
        where + 'lr_curve_epochs', curve, spec.get('lr_curve_epochs', optim.lr_curve_epochs),
        config.train.epochs)
    result.append(Arm(name, float(lr), float(wd), lr_s, wd_s, curve, curve_epochs))
  return result


def _differs(value: Any, default: Any) -> bool:
  """Whether a config value differs from the schema default (tuples and lists compare equal)."""
  norm = lambda v: tuple(norm(x) for x in v) if isinstance(v, (list, tuple)) else v
  return norm(value) != norm(default)


# Fields that only some settings read: (field, reads(config), when it is read). A field that the
# run does not read must stay at its default (`unread_fields`), so that no setting is silently
# ignored; the run record (`resolved`) writes null for it.
_DEPTH_MODEL = lambda c: c.model.name not in ('cnn', 'mlp')
CONDITIONAL_FIELDS = (
    ('data.name', lambda c: c.data.source == 'tfds', "data.source = 'tfds'"),
    ('data.data_dir', lambda c: c.data.source == 'tfds', "data.source = 'tfds'"),
    ('data.download', lambda c: c.data.source == 'tfds', "data.source = 'tfds'"),
    *((f'data.synthetic_{f}', lambda c: c.data.source == 'synthetic',
       "data.source = 'synthetic'") for f in ('shape', 'num_classes', 'num_train', 'num_test')),
    ('model.widths', lambda c: not _DEPTH_MODEL(c), "model.name is 'cnn' or 'mlp'"),
    ('model.widen', _DEPTH_MODEL, 'model.name is a preresnet or vgg'),
    ('model.conv_impl', lambda c: c.model.name != 'mlp', 'the model has convolutions (not mlp)'),
    ('model.num_groups', lambda c: c.model.norm == 'group', "model.norm = 'group'"),
    ('model.norm_eps', lambda c: c.model.norm != 'none', "model.norm is not 'none'"),
    ('optim.svag_l', lambda c: c.optim.oracle == 'svag', "optim.oracle = 'svag'"),
    ('optim.chunk_size', lambda c: c.optim.oracle in ('ngd', 'gd'),
     "optim.oracle is 'ngd' or 'gd' (full-batch gradients)"),
    ('train.sampling', lambda c: c.optim.oracle in ('sgd', 'svag'),
     "optim.oracle is 'sgd' or 'svag' (random batches)"),
    ('train.eval_bn_batches', lambda c: c.model.norm == 'batch', "model.norm = 'batch'"),
    ('metrics.gn_batches', lambda c: c.metrics.gn_every > 0, 'metrics.gn_every > 0'),
)


def get_field(config: ml_collections.ConfigDict, field: str) -> Any:
  node = config
  for part in field.split('.'):
    node = node[part]
  return node


def unread_fields(config: ml_collections.ConfigDict) -> dict[str, str]:
  """Every field this config's run does not read: {field: why, and what to set instead}."""
  out = {f: f'every arm sets its own value; set {instead} instead'
         for f, instead in shadowed_fields(config).items()}
  for field, reads, when in CONDITIONAL_FIELDS:
    if not reads(config):
      out[field] = f'only read when {when}'
  return out


def _check_unread(config: ml_collections.ConfigDict) -> None:
  schema = defaults()
  for field, reads, when in CONDITIONAL_FIELDS:
    value = get_field(config, field)
    if not reads(config) and _differs(value, get_field(schema, field)):
      _fail(field, value, f'not read by this run: it is only read when {when}. Remove the '
            f'setting (default {get_field(schema, field)!r}) or change what it depends on')


def resolved(config: ml_collections.ConfigDict) -> dict:
  """The run record of a valid config: what the run reads, as JSON-able plain values.

  `arms` holds every arm with all of its fields resolved (for a config without arms, the single
  'default' arm built from `optim`), so the arm fields of `optim` (lr, wd, their schedules, the LR
  curve) are None: the arms say what each trial used. Every other field the run does not read
  (`unread_fields`) is None too. The LR is SGD's eta; a SVAG run steps at eta / svag_l.
  """
  record = json.loads(json.dumps(config.to_dict(), default=list))
  record['arms'] = {a.name: {'lr': a.lr, 'wd': a.wd,
                             'lr_schedule': [list(p) for p in a.lr_schedule],
                             'wd_schedule': [list(p) for p in a.wd_schedule],
                             'lr_curve': a.lr_curve, 'lr_curve_epochs': list(a.lr_curve_epochs)}
                    for a in arms(config)}
  for field in [*unread_fields(config), *(f'optim.{f}' for f in ARM_FIELDS)]:
    *path, last = field.split('.')
    node = record
    for p in path:
      node = node[p]
    node[last] = None
  return record


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks a config on its own; raises ConfigError naming the first bad field."""
  from svag_jax import models  # noqa: PLC0415 (models import flax: only when validating)
  from svag_jax.models.conv import CONV_IMPLS  # noqa: PLC0415

  _check_keys(config, defaults(), '')
  d, m, o, t = config.data, config.model, config.optim, config.train
  _choice('data.source', d.source, DATA_SOURCES)
  if d.source == 'tfds' and not d.name:
    _fail('data.name', d.name, 'a tfds data set name is needed when data.source = "tfds"')
  _positive('data.num_train', d.num_train, allow_zero=True, integer=True)
  _positive('data.num_test', d.num_test, allow_zero=True, integer=True)
  if d.source == 'synthetic':
    if len(d.synthetic_shape) != 3 or any(int(s) < 1 for s in d.synthetic_shape):
      _fail('data.synthetic_shape', d.synthetic_shape, 'must be (height, width, channels) >= 1')
    for f in ('synthetic_num_classes', 'synthetic_num_train', 'synthetic_num_test'):
      _positive(f'data.{f}', d[f], integer=True)
  _choice('model.name', m.name, MODELS)
  _choice('model.norm', m.norm, NORMS)
  _choice('model.conv_impl', m.conv_impl, CONV_IMPLS)
  _positive('model.widen', m.widen)
  if m.name in ('cnn', 'mlp'):
    if not m.widths or any(not isinstance(w, int) or w < 1 for w in m.widths):
      _fail('model.widths', m.widths, 'must be a non-empty tuple of positive integers')
    if m.widen != 1:
      _fail('model.widen', m.widen, f'only preresnet/vgg are widened; for {m.name!r} set '
            'model.widths instead (and model.widen = 1)')
  if m.norm == 'group':
    _positive('model.num_groups', m.num_groups, integer=True)
    bad = sorted({w for w in models.layer_widths(m) if w % m.num_groups})
    if bad:
      sizing = 'model.widths' if m.name in ('cnn', 'mlp') else f'model.widen (= {m.widen})'
      _fail('model.num_groups', m.num_groups, f'must divide every layer width of {m.name!r}; '
            f'{bad} are not multiples: change model.num_groups or {sizing}')
  _positive('model.norm_eps', m.norm_eps)
  _positive('model.init_scale', m.init_scale)
  if not 0 <= o.momentum < 1:
    _fail('optim.momentum', o.momentum, 'must be in [0, 1)')
  _choice('optim.oracle', o.oracle, ORACLES)
  _positive('optim.svag_l', o.svag_l, integer=True)
  if o.svag_l != 1 and o.oracle != 'svag':
    _fail('optim.svag_l', o.svag_l, f'only the svag oracle amplifies; optim.oracle is {o.oracle!r}')
  if o.oracle == 'svag' and o.momentum:
    _fail('optim.momentum', o.momentum, 'SVAG (Lemma 4.7) is for plain SGD: set it to 0')
  if o.oracle in ('ngd', 'gd') and m.norm not in BATCH_INDEPENDENT_NORMS:
    _fail('model.norm', m.norm, f'the {o.oracle} oracle needs per-example losses independent '
          f'of the batch: use one of {", ".join(BATCH_INDEPENDENT_NORMS)}')
  _positive('optim.noise_scale', o.noise_scale, allow_zero=True)
  if not isinstance(d.augment, bool):
    _fail('data.augment', d.augment, 'must be True or False')
  if d.augment and o.oracle in ('ngd', 'gd'):
    _fail('data.augment', d.augment, f'the {o.oracle} oracle computes the gradient of a fixed '
          'training set (no random batches to augment): set data.augment = False')
  _positive('optim.chunk_size', o.chunk_size, integer=True)
  _positive('metrics.gn_every', config.metrics.gn_every, allow_zero=True)
  _positive('metrics.gn_batches', config.metrics.gn_batches, integer=True)
  if config.metrics.gn_batches < 2:
    _fail('metrics.gn_batches', config.metrics.gn_batches, 'G/N estimates need K >= 2 batches')
  arms(config)
  _check_unread(config)
  _positive('train.batch_size', t.batch_size, integer=True)
  _positive('train.epochs', t.epochs)
  _choice('train.sampling', t.sampling, SAMPLING)
  _positive('train.eval_every', t.eval_every)
  _positive('train.eval_batch_size', t.eval_batch_size, integer=True)
  _positive('train.eval_bn_batches', t.eval_bn_batches, allow_zero=True, integer=True)
  _positive('train.steps_per_dispatch', t.steps_per_dispatch, integer=True)
  for field in ('predictions_at', 'params_at'):
    epochs = t[field]
    if not isinstance(epochs, Sequence) or isinstance(epochs, str):
      _fail(f'train.{field}', epochs, 'must be a tuple of epochs, e.g. (10, 20)')
    for e in epochs:
      if isinstance(e, bool) or not isinstance(e, (int, float)) or not math.isfinite(e) or e <= 0:
        _fail(f'train.{field}', epochs, f'epoch {e!r} must be a number > 0')
      if e > t.epochs:
        _fail(f'train.{field}', epochs, f'epoch {e!r} is beyond train.epochs = {t.epochs:g}: '
              f'when shortening the run, change train.{field} too (e.g. '
              f'--config.train.{field}="({t.epochs:g},)" or "()") or raise train.epochs')
  for field, value in (('train.eval_every', t.eval_every),
                       ('metrics.gn_every', config.metrics.gn_every)):
    if value > t.epochs:
      _fail(field, value, f'longer than the run (train.epochs = {t.epochs:g}): when shortening '
            f'the run, lower {field} too (e.g. --config.{field}={t.epochs:g}) or raise '
            'train.epochs')
  _positive('trials.num', config.trials.num, integer=True)
  _positive('trials.vmap_chunk', config.trials.vmap_chunk, allow_zero=True, integer=True)
  _positive('checkpoint.every', config.checkpoint.every)
  _positive('checkpoint.max_to_keep', config.checkpoint.max_to_keep, integer=True)


def validate_with_data(config: ml_collections.ConfigDict, num_train: int) -> None:
  """Checks that need the training-set size (known once the data set's metadata is read)."""
  if config.train.batch_size > num_train:
    _fail(
        'train.batch_size',
        config.train.batch_size,
        f'larger than the training set ({num_train} examples); lower it or use more data',
    )
