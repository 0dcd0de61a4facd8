"""Config validation: every check runs before anything is loaded onto a device or compiled.

`validate(config)` checks the config alone (schema, ranges, names); `validate_with_data` checks what
depends on the data set (batch size vs training-set size). Both raise `ConfigError`, whose message
names the field, the bad value and what would fix it.
"""

import difflib
import importlib.util
import json
import math
from collections.abc import Sequence
from typing import Any

import ml_collections

from svag_jax.arms import ARM_FIELDS, arms, shadowed_fields
from svag_jax.checks import GROUP, ConfigError, choice, differs, fail, positive
from svag_jax.schema import defaults


def registries() -> dict[str, tuple[str, ...]]:
  """The valid names of the choice fields, read from where the things are defined (imported on
  first use: the models import flax). Also module attributes: `config_lib.MODELS` etc."""
  from svag_jax import data, models, oracles, sampling, scaling, schedules  # noqa: PLC0415
  from svag_jax.models import layers  # noqa: PLC0415

  return {
      'DATA_SOURCES': data.SOURCES,
      'MODELS': models.NAMES,
      'NORMS': layers.NORMS,
      'BATCH_INDEPENDENT_NORMS': layers.BATCH_INDEPENDENT_NORMS,
      'SAMPLING': sampling.SAMPLING,
      'ORACLES': tuple(oracles.ORACLES),
      'OPTIMIZERS': scaling.OPTIMIZERS,
      'LR_CURVES': schedules.CURVES,
  }


def __getattr__(name: str) -> tuple[str, ...]:
  names = registries()
  if name in names:
    return names[name]
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def _full_batch(oracle: str) -> bool:
  """Whether `oracle` reads the fixed training set (ngd, gd) instead of sampled batches."""
  from svag_jax import oracles  # noqa: PLC0415

  entry = oracles.ORACLES.get(oracle)
  return entry is not None and entry.full_batch


# Groups of fields whose keys are the config's own (not in the schema).
FREE_FORM = ('arms', 'kwargs')
GROUP_SOURCES = ('auto', 'found', 'none')


def check_keys(
    cfg: ml_collections.ConfigDict, schema: ml_collections.ConfigDict, prefix: str
) -> None:
  """Refuses fields of `cfg` that `schema` lacks (recursively; `arms` and `model.kwargs` are
  free-form)."""
  for key, value in cfg.items():
    field = f'{prefix}{key}'
    if key not in schema:
      close = difflib.get_close_matches(key, list(schema), n=1)
      hint = f' Did you mean {close[0]!r}?' if close else ''
      raise ConfigError(
          f'config.{field}: unknown field.{hint} Known fields here: {", ".join(sorted(schema))}.'
      )
    if isinstance(schema[key], GROUP) and key not in FREE_FORM:
      if not isinstance(value, GROUP):
        fail(field, value, 'must be a group of fields, not a single value')
      check_keys(value, schema[key], field + '.')


def check_field(config: ml_collections.ConfigDict, field: str) -> None:
  """Raises ConfigError unless the dotted `field` names a field of `config` (with a suggestion)."""
  node, path = config, []
  for part in field.split('.'):
    if not isinstance(node, GROUP) or part not in node:
      known = sorted(node) if isinstance(node, GROUP) else []
      close = difflib.get_close_matches(part, known, n=1)
      hint = f' Did you mean {".".join([*path, close[0]])!r}?' if close else ''
      where = f'config.{".".join(path)}' if path else 'config'
      what = (
          f' Known fields of {where}: {", ".join(known)}.'
          if known
          else f' {where} is a value, not a group of fields.'
      )
      raise ConfigError(f'config.{field}: unknown field.{hint}{what}')
    node = node[part]
    path.append(part)


# Fields that only some settings read: (field, reads(config), when it is read). A field that the
# run does not read must stay at its default (`unread_fields`), so that no setting is silently
# ignored; the run record (`resolved`) writes null for it.
_EXTERNAL = lambda c: ':' in c.model.name  # a model by import path (models.external)
_BUILT_IN = lambda c: not _EXTERNAL(c)
_DEPTH_MODEL = lambda c: _BUILT_IN(c) and c.model.name not in ('cnn', 'mlp')
_BUILT_IN_ONLY = 'model.name is a built-in model (not an import path)'
CONDITIONAL_FIELDS = (
    ('data.name', lambda c: c.data.source == 'tfds', "data.source = 'tfds'"),
    ('data.data_dir', lambda c: c.data.source == 'tfds', "data.source = 'tfds'"),
    ('data.download', lambda c: c.data.source == 'tfds', "data.source = 'tfds'"),
    *(
        (f'data.synthetic_{f}', lambda c: c.data.source == 'synthetic', "data.source = 'synthetic'")
        for f in ('shape', 'num_classes', 'num_train', 'num_test')
    ),
    ('model.kwargs', _EXTERNAL, 'model.name is an import path (package.module:Class)'),
    ('model.widths', lambda c: c.model.name in ('cnn', 'mlp'), "model.name is 'cnn' or 'mlp'"),
    ('model.widen', _DEPTH_MODEL, 'model.name is a preresnet or vgg'),
    (
        'model.conv_impl',
        lambda c: _BUILT_IN(c) and c.model.name != 'mlp',
        'the model is a built-in one with convolutions (not mlp)',
    ),
    ('model.norm', _BUILT_IN, _BUILT_IN_ONLY),
    (
        'model.num_groups',
        lambda c: _BUILT_IN(c) and c.model.norm == 'group',
        "model.norm = 'group' (a built-in model)",
    ),
    (
        'model.norm_eps',
        lambda c: _BUILT_IN(c) and c.model.norm != 'none',
        "model.norm is not 'none' (a built-in model)",
    ),
    ('model.init_scale', _BUILT_IN, _BUILT_IN_ONLY),
    ('optim.momentum', lambda c: c.optim.optimizer == 'sgd', "optim.optimizer = 'sgd'"),
    (
        'optim.beta1',
        lambda c: c.optim.optimizer in ('adam', 'adamw'),
        "optim.optimizer is 'adam' or 'adamw'",
    ),
    *(
        (f'optim.{f}', lambda c: c.optim.optimizer != 'sgd', "optim.optimizer is not 'sgd'")
        for f in ('beta2', 'eps')
    ),
    ('optim.svag_l', lambda c: c.optim.oracle == 'svag', "optim.oracle = 'svag'"),
    (
        'optim.chunk_size',
        lambda c: _full_batch(c.optim.oracle),
        "optim.oracle is 'ngd' or 'gd' (full-batch gradients)",
    ),
    (
        'train.sampling',
        lambda c: not _full_batch(c.optim.oracle),
        "optim.oracle is 'sgd' or 'svag' (random batches)",
    ),
    (
        'train.eval_bn_batches',
        lambda c: _EXTERNAL(c) or c.model.norm == 'batch',
        "model.norm = 'batch' or the model is named by import path",
    ),
    ('metrics.gn_batches', lambda c: c.metrics.gn_every > 0, 'metrics.gn_every > 0'),
    ('logging.wandb_project', lambda c: c.logging.wandb, 'logging.wandb = True'),
    ('logging.wandb_mode', lambda c: c.logging.wandb, 'logging.wandb = True'),
)


def get_field(config: ml_collections.ConfigDict, field: str) -> Any:
  node = config
  for part in field.split('.'):
    node = node[part]
  return node


def unread_fields(config: ml_collections.ConfigDict) -> dict[str, str]:
  """Every field this config's run does not read: {field: why, and what to set instead}."""
  out = {
      f: f'every arm sets its own value; set {instead} instead'
      for f, instead in shadowed_fields(config).items()
  }
  for field, reads, when in CONDITIONAL_FIELDS:
    if not reads(config):
      out[field] = f'only read when {when}'
  return out


def _check_unread(config: ml_collections.ConfigDict) -> None:
  schema = defaults()
  for field, reads, when in CONDITIONAL_FIELDS:
    value = get_field(config, field)
    if not reads(config) and differs(value, get_field(schema, field)):
      fail(
          field,
          value,
          f'not read by this run: it is only read when {when}. Remove the '
          f'setting (default {get_field(schema, field)!r}) or change what it depends on',
      )


def resolved(config: ml_collections.ConfigDict) -> dict:
  """The run record of a valid config: what the run reads, as JSON-able plain values.

  `arms` holds every arm with all of its fields resolved (for a config without arms, the single
  'default' arm built from `optim`), so the arm fields of `optim` (lr, wd, their schedules, the LR
  curve) are None: the arms say what each trial used. Every other field the run does not read
  (`unread_fields`) is None too. The LR is SGD's eta; a SVAG run steps at eta / svag_l.
  """
  record = json.loads(json.dumps(config.to_dict(), default=list))
  record['arms'] = {
      a.name: {
          'lr': a.lr,
          'wd': a.wd,
          'lr_schedule': [list(p) for p in a.lr_schedule],
          'wd_schedule': [list(p) for p in a.wd_schedule],
          'lr_curve': a.lr_curve,
          'lr_curve_epochs': list(a.lr_curve_epochs),
      }
      for a in arms(config)
  }
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
  from svag_jax.precision import PRECISIONS  # noqa: PLC0415
  from svag_jax.trials import CHUNK_MODES  # noqa: PLC0415

  check_keys(config, defaults(), '')
  names = registries()
  d, m, o, t = config.data, config.model, config.optim, config.train
  choice('data.source', d.source, names['DATA_SOURCES'])
  if d.source == 'tfds' and not d.name:
    fail('data.name', d.name, 'a tfds data set name is needed when data.source = "tfds"')
  positive('data.num_train', d.num_train, allow_zero=True, integer=True)
  positive('data.num_test', d.num_test, allow_zero=True, integer=True)
  if d.source == 'synthetic':
    if len(d.synthetic_shape) != 3 or any(int(s) < 1 for s in d.synthetic_shape):
      fail('data.synthetic_shape', d.synthetic_shape, 'must be (height, width, channels) >= 1')
    for f in ('synthetic_num_classes', 'synthetic_num_train', 'synthetic_num_test'):
      positive(f'data.{f}', d[f], integer=True)
  if _EXTERNAL(config):
    from svag_jax.models import external  # noqa: PLC0415 (imports flax)

    external.check_config(m)
  else:
    choice('model.name', m.name, names['MODELS'])
    choice('model.norm', m.norm, names['NORMS'])
    choice('model.conv_impl', m.conv_impl, CONV_IMPLS)
    positive('model.widen', m.widen)
    if m.name in ('cnn', 'mlp'):
      if not m.widths or any(not isinstance(w, int) or w < 1 for w in m.widths):
        fail('model.widths', m.widths, 'must be a non-empty tuple of positive integers')
      if m.widen != 1:
        fail(
            'model.widen',
            m.widen,
            f'only preresnet/vgg are widened; for {m.name!r} set '
            'model.widths instead (and model.widen = 1)',
        )
    if m.norm == 'group':
      positive('model.num_groups', m.num_groups, integer=True)
      bad = sorted({w for w in models.layer_widths(m) if w % m.num_groups})
      if bad:
        sizing = 'model.widths' if m.name in ('cnn', 'mlp') else f'model.widen (= {m.widen})'
        fail(
            'model.num_groups',
            m.num_groups,
            f'must divide every layer width of {m.name!r}; '
            f'{bad} are not multiples: change model.num_groups or {sizing}',
        )
    positive('model.norm_eps', m.norm_eps)
    positive('model.init_scale', m.init_scale)
  if not 0 <= o.momentum < 1:
    fail('optim.momentum', o.momentum, 'must be in [0, 1)')
  choice('optim.optimizer', o.optimizer, names['OPTIMIZERS'])
  for f in ('beta1', 'beta2'):
    if not (isinstance(o[f], (int, float)) and 0 <= o[f] < 1):
      fail(f'optim.{f}', o[f], 'must be in [0, 1)')
  positive('optim.eps', o.eps, allow_zero=True)
  choice('optim.oracle', o.oracle, names['ORACLES'])
  positive('optim.svag_l', o.svag_l, integer=True)
  if o.svag_l != 1 and o.oracle != 'svag':
    fail('optim.svag_l', o.svag_l, f'only the svag oracle amplifies; optim.oracle is {o.oracle!r}')
  if o.oracle == 'svag' and o.momentum:
    fail(
        'optim.momentum',
        o.momentum,
        'SVAG (Lemma 4.7) is for plain SGD: set it to 0 (adaptive optimizers: '
        'optim.optimizer = adam, with optim.beta1)',
    )
  batch_independent = names['BATCH_INDEPENDENT_NORMS']
  if _full_batch(o.oracle) and _BUILT_IN(config) and m.norm not in batch_independent:
    fail(
        'model.norm',
        m.norm,
        f'the {o.oracle} oracle needs per-example losses independent '
        f'of the batch: use one of {", ".join(batch_independent)}',
    )
  positive('optim.noise_scale', o.noise_scale, allow_zero=True)
  if not isinstance(d.augment, bool):
    fail('data.augment', d.augment, 'must be True or False')
  if d.augment and _full_batch(o.oracle):
    fail(
        'data.augment',
        d.augment,
        f'the {o.oracle} oracle computes the gradient of a fixed '
        'training set (no random batches to augment): set data.augment = False',
    )
  positive('optim.chunk_size', o.chunk_size, integer=True)
  positive('metrics.gn_every', config.metrics.gn_every, allow_zero=True)
  positive('metrics.gn_batches', config.metrics.gn_batches, integer=True)
  if config.metrics.gn_batches < 2:
    fail('metrics.gn_batches', config.metrics.gn_batches, 'G/N estimates need K >= 2 batches')
  choice('metrics.groups', config.metrics.groups, GROUP_SOURCES)
  arms(config)
  _check_unread(config)
  positive('train.batch_size', t.batch_size, integer=True)
  positive('train.epochs', t.epochs)
  choice('train.sampling', t.sampling, names['SAMPLING'])
  if o.oracle == 'svag' and t.sampling == 'shuffle':
    fail(
        'train.sampling',
        t.sampling,
        'SVAG simulates the SDE of i.i.d. batches (2021, Theorem 4.3); with shuffled epochs each '
        'of its two batch streams covers the data once per epoch, so their noise cancels over '
        'every epoch, l times sooner in SDE time, and SVAG drifts to a colder limit than the SDE '
        "(tests/test_svag.py): set train.sampling = 'replacement' (for the SGD it is compared "
        'with too)',
    )
  positive('train.eval_every', t.eval_every)
  positive('train.eval_batch_size', t.eval_batch_size, integer=True)
  positive('train.eval_bn_batches', t.eval_bn_batches, allow_zero=True, integer=True)
  positive('train.steps_per_dispatch', t.steps_per_dispatch, integer=True)
  choice('train.precision', t.precision, PRECISIONS)
  for field in ('predictions_at', 'params_at'):
    epochs = t[field]
    if not isinstance(epochs, Sequence) or isinstance(epochs, str):
      fail(f'train.{field}', epochs, 'must be a tuple of epochs, e.g. (10, 20)')
    for e in epochs:
      if isinstance(e, bool) or not isinstance(e, (int, float)) or not math.isfinite(e) or e <= 0:
        fail(f'train.{field}', epochs, f'epoch {e!r} must be a number > 0')
      if e > t.epochs:
        fail(
            f'train.{field}',
            epochs,
            f'epoch {e!r} is beyond train.epochs = {t.epochs:g}: '
            f'when shortening the run, change train.{field} too (e.g. '
            f'--config.train.{field}="({t.epochs:g},)" or "()") or raise train.epochs',
        )
  for field, value in (
      ('train.eval_every', t.eval_every),
      ('metrics.gn_every', config.metrics.gn_every),
  ):
    if value > t.epochs:
      fail(
          field,
          value,
          f'longer than the run (train.epochs = {t.epochs:g}): when shortening '
          f'the run, lower {field} too (e.g. --config.{field}={t.epochs:g}) or raise '
          'train.epochs',
      )
  positive('trials.num', config.trials.num, integer=True)
  positive('trials.vmap_chunk', config.trials.vmap_chunk, allow_zero=True, integer=True)
  choice('trials.mode', config.trials.mode, CHUNK_MODES)
  positive('checkpoint.every', config.checkpoint.every)
  positive('checkpoint.max_to_keep', config.checkpoint.max_to_keep, integer=True)
  lg = config.logging
  for f in ('tensorboard', 'wandb'):
    if not isinstance(lg[f], bool):
      fail(f'logging.{f}', lg[f], 'must be True or False')
  choice('logging.wandb_mode', lg.wandb_mode, ('online', 'offline'))
  choice('logging.progress', lg.progress, ('auto', 'always', 'never'))
  if lg.wandb and not lg.wandb_project:
    fail('logging.wandb_project', lg.wandb_project, 'a W&B project name is needed')
  if lg.wandb and importlib.util.find_spec('wandb') is None:
    fail(
        'logging.wandb',
        lg.wandb,
        'the wandb package is not installed: pip install "svag_jax[wandb]", or set it to False',
    )


def validate_with_data(config: ml_collections.ConfigDict, num_train: int) -> None:
  """Checks that need the training-set size (known once the data set's metadata is read)."""
  if config.train.batch_size > num_train:
    fail(
        'train.batch_size',
        config.train.batch_size,
        f'larger than the training set ({num_train} examples); lower it or use more data',
    )
