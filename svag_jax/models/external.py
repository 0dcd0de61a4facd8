"""Models svag_jax did not ship: named by import path, called with or without a train flag, NNX.

A config names a model of its own by import path, `config.model.name = 'package.module:Class'`
(or `'path/to/file.py:Class'`), with its constructor's keyword arguments in `config.model.kwargs`.
`build` imports it and returns a Flax Linen module; the rest of svag_jax (the trainer, the trial
runner, the evaluation, the run record) treats it like a built-in model:

  - `Class` is a Linen module class, a function returning a Linen module, or an NNX module class
    (`flax.nnx.Module`: converted by `from_nnx`). It gets `num_classes` (the data set's number of
    classes) when it takes that argument and `config.model.kwargs` does not set it.
  - Its `__call__` maps a float batch [B, ...] (normalised images) to logits [B, num_classes]. A
    parameter named `train` (or `training`) gets True in training steps and False in evaluation
    (`train_kwargs`): that is where BatchNorm switches between batch statistics and running
    averages; a model without one is called with the batch alone.
  - Its variables are 'params' (trained), optionally 'batch_stats' (BatchNorm statistics, updated
    in training) and optionally 'frozen' (never trained: e.g. the fixed random head of
    `svag_jax.models.layers.FixedDense`). Other collections are refused at init (`COLLECTIONS`).
    No dropout RNG is passed: the model must be deterministic given its variables.

Which of its parameters are scale invariant is found at the start of a run
(`svag_jax.invariance.find_groups`) and recorded in WORKDIR/groups.json.
"""

import functools
import importlib
import importlib.util
import inspect
import pathlib
import sys
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import ml_collections

from svag_jax.checks import GROUP, fail

# The variable collections a model may have: trained, updated in training, fixed.
COLLECTIONS = ('params', 'batch_stats', 'frozen')
# The names of a model's train flag, in the order they are looked for.
TRAIN_FLAGS = ('train', 'training')


def is_import_path(name: str) -> bool:
  """Whether a `config.model.name` names a model by import path ('module:attr') rather than a
  built-in model."""
  return ':' in name


def resolve(path: str) -> Any:
  """The object at `path`: 'package.module:Attr' (an importable module) or 'dir/file.py:Attr' (a
  Python file, loaded as a module named after it); Attr may be dotted ('Outer.Inner').

  Raises:
    ImportError: the module cannot be imported (its message says why, e.g. a syntax error).
    AttributeError: the module has no such attribute.
    ValueError: `path` is not of the form 'module:attr'.
  """
  module_name, sep, attr = path.rpartition(':')
  if not sep or not module_name or not attr:
    raise ValueError(f"{path!r} is not an import path 'package.module:Class'")
  if module_name.endswith('.py'):
    file = pathlib.Path(module_name).expanduser().absolute()
    if not file.is_file():
      raise ImportError(f'no file {file}')
    name = f'svag_jax_user_model_{file.stem}'
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses (Linen modules) look their module up by name
    try:
      spec.loader.exec_module(module)
    except BaseException:
      del sys.modules[name]
      raise
  else:
    module = importlib.import_module(module_name)
  obj = module
  for part in attr.split('.'):
    if not hasattr(obj, part):
      raise AttributeError(f'{module_name} has no attribute {attr!r}')
    obj = getattr(obj, part)
  return obj


def _is_nnx_class(obj: Any) -> bool:
  if not isinstance(obj, type):
    return False
  from flax import nnx  # noqa: PLC0415 (NNX is only needed for NNX models)

  return issubclass(obj, nnx.Module)


def _takes(fn: Any, name: str) -> bool:
  """Whether callable `fn` has a parameter called `name` (a dataclass field counts: a Linen
  module class's __init__ has one per field)."""
  try:
    return name in inspect.signature(fn).parameters
  except (TypeError, ValueError):
    return False


def from_nnx(cls: type, *args, **kwargs) -> nn.Module:
  """An NNX module class as a Linen module (`flax.nnx.bridge.to_linen`) that svag_jax can train.

  The NNX module is constructed inside `init` from `cls(*args, **kwargs, rngs=...)`; its
  `nnx.Param`s become the collection 'params' and its `nnx.BatchStat`s (nnx.BatchNorm's running
  averages) 'batch_stats'. Give its `__call__` a `train` argument and pass
  `use_running_average=not train` to its BatchNorms, as a Linen model does.

  Example (run by tests/test_docstring_examples.py)::

    >>> import jax, jax.numpy as jnp
    >>> from flax import nnx
    >>> class Net(nnx.Module):
    ...   def __init__(self, num_classes: int, rngs: nnx.Rngs):
    ...     self.dense = nnx.Linear(64, 16, use_bias=False, rngs=rngs)
    ...     self.norm = nnx.BatchNorm(16, use_scale=False, use_bias=False, rngs=rngs)
    ...     self.head = nnx.Linear(16, num_classes, rngs=rngs)
    ...   def __call__(self, x, train: bool = False):
    ...     h = self.norm(self.dense(x.reshape(x.shape[0], -1)), use_running_average=not train)
    ...     return self.head(nnx.relu(h))
    >>> model = from_nnx(Net, num_classes=10)
    >>> variables = model.init(jax.random.key(0), jnp.zeros((2, 8, 8, 1)), train=False)
    >>> sorted(variables), sorted(variables['params'])
    (['batch_stats', 'params'], ['dense', 'head'])
  """
  from flax.nnx import bridge  # noqa: PLC0415

  return bridge.to_linen(cls, *args, **kwargs)


@functools.cache
def _train_flag(call: Any) -> str | None:
  return next((flag for flag in TRAIN_FLAGS if _takes(call, flag)), None)


def train_kwargs(model: nn.Module, train: bool) -> dict[str, bool]:
  """The keyword arguments that tell `model` whether it is training: {'train': train} (or
  {'training': train}) when its `__call__` (an NNX model's, through `from_nnx`) takes one, else {}.
  """
  if not isinstance(model, nn.Module) and isinstance(getattr(model, 'module', None), nn.Module):
    model = model.module  # a wrapper around the module (precision.LowPrecision)
  call = getattr(model, 'nnx_class', type(model)).__call__
  flag = _train_flag(call)
  return {flag: train} if flag else {}


def build(path: str, kwargs: Mapping[str, Any], num_classes: int) -> nn.Module:
  """The model at import path `path`, constructed with `kwargs` (and `num_classes` where it takes
  one and `kwargs` does not set it); see the module docstring.

  Raises:
    ImportError / AttributeError / ValueError: as `resolve`.
    TypeError: the object is not a Linen module class, an NNX module class or a function
      returning a Linen module, or does not take `kwargs`.
  """
  obj = resolve(path)
  kwargs = dict(kwargs)
  if _is_nnx_class(obj):
    if 'num_classes' not in kwargs and _takes(obj.__init__, 'num_classes'):
      kwargs['num_classes'] = num_classes
    return from_nnx(obj, **kwargs)
  if not callable(obj):
    raise TypeError(f'{path} is a {type(obj).__name__}, not a model class or function')
  if 'num_classes' not in kwargs and _takes(obj, 'num_classes'):
    kwargs['num_classes'] = num_classes
  model = obj(**kwargs)
  if not isinstance(model, nn.Module):
    raise TypeError(
        f'{path}(**config.model.kwargs) returned a {type(model).__name__}, not a Flax Linen '
        'module (an NNX module class is converted by svag_jax.models.external.from_nnx)'
    )
  return model


def check_collections(variables: dict) -> None:
  """Raises ValueError when a model has variable collections other than `COLLECTIONS`."""
  other = sorted(set(variables) - set(COLLECTIONS))
  if other:
    raise ValueError(
        f'the model has variable collections {other}: svag_jax trains "params", updates '
        '"batch_stats" in training steps and keeps "frozen" fixed, and knows no others (a '
        'dropout model needs no collection, but svag_jax passes it no dropout RNG either)'
    )


def check_config(m: ml_collections.ConfigDict) -> None:
  """A model named by import path must import and take `model.kwargs` (built here once: a Linen
  module is a dataclass, nothing is initialised)."""
  if not isinstance(m.kwargs, GROUP):
    fail('model.kwargs', m.kwargs, 'must be a group of keyword arguments of the model')
  try:
    build(m.name, m.kwargs.to_dict(), num_classes=2)
  except Exception as e:  # noqa: BLE001 (any error of the user's module: one line, not a traceback)
    why = ' '.join(f'{type(e).__name__}: {e}'.split())
    fail(
        'model.name',
        m.name,
        f'cannot be imported or built ({why}). Name a Flax model as "package.module:Class" '
        '(importable: installed or on PYTHONPATH) or "path/to/file.py:Class", with its keyword '
        'arguments in config.model.kwargs',
    )
