"""The device memory a run's trials need, estimated before anything is compiled for them.

Per device, a run needs

    data + S x state + C x work

  - data: the training split and the evaluation splits, one copy on every device (exact);
  - state: one trial's TrainState, from `jax.eval_shape` of `Trainer.init` (exact);
  - work: what one trial's largest program needs besides its inputs (temporaries and outputs that
    are not donated): its train step (one step), its evaluation and, where the run estimates G/N,
    its G/N estimate, by XLA's memory analysis of these one-trial programs compiled for this
    device (`jax.jit(...).lower(...).compile().memory_analysis()`);
  - S: the trials whose states live on the device (all chunks keep their states on their devices),
    C: the trials of one call on it (a chunk, split over the devices when it is sharded): a
    vmapped call of k trials needs k times one trial's temporaries.

Compiling the one-trial programs costs a few seconds, so a run (`check`) first bounds `work`
without compiling: by the bytes accessed of the lowered one-trial programs (`Lowered.
cost_analysis()`: every operand and result of every op, so no more can be live at once). Only
where that bound does not fit does it compile them for XLA's numbers. `--print_config` always
compiles (`estimate(..., compiled=True)`). A device's memory is its allocator's limit (GPU, TPU),
or the host's memory (its cgroup limit where lower) shared by the process's CPU devices.
"""

import dataclasses
import json
import math
import os
import pathlib

import jax
import ml_collections
import numpy as np

from svag_jax import arms as arms_lib
from svag_jax import data as data_lib
from svag_jax.checks import ConfigError
from svag_jax.evaluate import Evaluator
from svag_jax.models import conv
from svag_jax.plan import check_limits, trial_schedules
from svag_jax.schedules import SvagTime
from svag_jax.train import Trainer

UPPER_BOUND = 'upper bound (bytes accessed of the lowered one-trial programs)'
XLA = "XLA's memory analysis of the one-trial programs"


def _bytes(n: float) -> str:
  for unit in ('B', 'kB', 'MB', 'GB', 'TB'):
    if abs(n) < 1000 or unit == 'TB':
      return f'{n:.0f} {unit}' if unit == 'B' else f'{n:.3g} {unit}'
    n /= 1000
  raise AssertionError


def _tree_bytes(tree) -> int:
  return sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(tree))


def host_memory() -> int:
  """Bytes of memory of this host, or of this process's cgroup where that is lower."""
  total = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
  for limit in ('/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes'):
    try:
      total = min(total, int(pathlib.Path(limit).read_text().split()[0]))
    except (OSError, ValueError, IndexError):  # no such file, or 'max'
      pass
  return total


def device_memory(device: jax.Device) -> int | None:
  """Bytes one device may use: its allocator's limit, or its share of the host's memory (CPU)."""
  try:
    stats = device.memory_stats()
  except Exception:  # noqa: BLE001 (not every backend implements it)
    stats = None
  if stats and stats.get('bytes_limit'):
    return int(stats['bytes_limit'])
  if device.platform == 'cpu':
    return host_memory() // max(1, len(jax.local_devices(backend='cpu')))
  return None


def _per_device(total: int, chunk: int, devices: int) -> tuple[int, int]:
  """(S, C) of the module docstring for `total` trials in chunks of `chunk` (0: all in one), as
  `trials.TrialRunner` places them: a chunk of a multiple of `devices` trials is sharded over all
  devices, any other chunk goes to one device, round-robin."""
  size = total if chunk <= 0 else min(chunk, total)
  full, rest = divmod(total, size)
  states = np.zeros(devices, np.int64)
  if size % devices == 0:
    states += full * (size // devices)
  else:
    states += size * (full // devices)
    states[: full % devices] += size
  calls = size // devices if size % devices == 0 else size
  if rest:
    if rest % devices == 0:
      states += rest // devices
    else:
      states[full % devices] += rest
    calls = max(calls, rest // devices if rest % devices == 0 else rest)
  return int(states.max()), calls


@dataclasses.dataclass(frozen=True)
class Estimate:
  """The memory of a run per device (module docstring); sizes in bytes."""

  state: int
  work: int
  data: int
  method: str
  per_arm: int  # trials.num
  arms: int
  chunk: int  # trials.vmap_chunk
  devices: int
  device_memory: int | None
  device_kind: str

  def needed(self, per_arm: int | None = None, chunk: int | None = None) -> int:
    """Bytes per device with `per_arm` trials per arm in chunks of `chunk` (default: the run's)."""
    per_arm = self.per_arm if per_arm is None else per_arm
    chunk = self.chunk if chunk is None else chunk
    states, calls = _per_device(per_arm * self.arms, chunk, self.devices)
    return self.data + states * self.state + calls * self.work

  @property
  def fits(self) -> bool:
    return self.device_memory is None or self.needed() <= self.device_memory

  def _fits(self, per_arm: int | None = None, chunk: int | None = None) -> bool:
    return self.needed(per_arm, chunk) <= self.device_memory

  def max_trials(self) -> int:
    """The largest trials.num that fits with the run's vmap_chunk (0 if not even one), among
    those whose trials split evenly over the devices (the others sit on one device)."""
    step = self.devices // math.gcd(self.devices, self.arms)
    lo, hi = 0, self.per_arm // step  # in units of `step`; memory grows with them
    while lo < hi:
      mid = (lo + hi + 1) // 2
      lo, hi = (mid, hi) if self._fits(mid * step) else (lo, mid - 1)
    while lo and not self._fits(lo * step):  # a last, smaller chunk may sit on one device
      lo -= 1
    return lo * step or int(self._fits(1))

  def max_chunk(self) -> int:
    """The largest trials.vmap_chunk (a multiple of the device count) that fits with the run's
    trials.num (0 if the trials' states alone do not fit)."""
    d = self.devices
    room = self.device_memory - self.needed(chunk=d) + self.work  # one trial per device per call
    k = min(d * (room // max(1, self.work)), self.per_arm * self.arms) // d * d
    while k > 0 and not self._fits(chunk=k):  # a last, smaller chunk may sit on one device
      k = k // 2 // d * d
    return max(0, k)

  def summary(self) -> str:
    """One line: per trial, per device, the device's memory and what fits."""
    total = self.per_arm * self.arms
    line = (
        f'~{_bytes(self.state + self.work)} per trial ({_bytes(self.state)} state + '
        f'{_bytes(self.work)} while it trains or is evaluated; {self.method}) + {_bytes(self.data)}'
        f' of data per device: {total:,} trials need ~{_bytes(self.needed())} per device'
    )
    if self.device_memory is None:
      return f'{line} ({self.device_kind}: its memory is unknown)'
    line += f' of the {_bytes(self.device_memory)} of a {self.device_kind} device'
    return f'{line}: fits' if self.fits else f'{line}: does NOT fit ({self.advice()})'

  def advice(self) -> str:
    n, k = self.max_trials(), self.max_chunk()
    if n == 0 and k == 0:
      return (
          'not even one trial fits: lower train.batch_size / train.eval_batch_size or use a '
          'smaller model'
      )
    out = f'the largest trials.num that fits is {n:,}'
    if k:
      out += f', or keep trials.num and set trials.vmap_chunk to at most {k:,}'
    return out

  def numbers(self) -> dict:
    return {
        'state_per_trial': self.state,
        'work_per_trial': self.work,
        'data_per_device': self.data,
        'needed_per_device': self.needed(),
        'device_memory': self.device_memory,
        'method': self.method,
        'fits': self.fits,
    }


def _abstract(tree):
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), np.asarray(x).dtype), tree)


def _eval_split(ds_images: np.ndarray, batch_size: int) -> data_lib.EvalSplit:
  """The shapes of `data.make_eval_split` of a split, without copying it."""
  n, shape = ds_images.shape[0], ds_images.shape[1:]
  eb = min(batch_size, n)
  nb = -(-n // eb)
  s = jax.ShapeDtypeStruct
  return data_lib.EvalSplit(
      s((nb, eb, *shape), np.uint8), s((nb, eb), np.int32), s((nb, eb), np.bool_)
  )


# Fields that do not change the one-trial programs (how long, how many, what is logged).
_NOT_PROGRAMS = ('trials', 'logging', 'checkpoint', 'seed', 'train.epochs', 'train.eval_every')
_NOT_PROGRAMS += ('train.predictions_at', 'train.params_at', 'train.steps_per_dispatch')
_MEASURED: dict = {}  # (programs, method) -> (state, work): a process measures each program once


def _programs_key(config: ml_collections.ConfigDict, ds: data_lib.Dataset) -> str:
  tree = config.to_dict()
  for field in _NOT_PROGRAMS:
    *groups, name = field.split('.')
    node = tree
    for g in groups:
      node = node.get(g, {})
    node.pop(name, None)
  shapes = [ds.train_images.shape, ds.test_images.shape, ds.num_classes]
  flags = [jax.devices()[0].device_kind, jax.config.read('jax_disable_most_optimizations')]
  return json.dumps([tree, shapes, flags], sort_keys=True, default=str)


def _measure(config: ml_collections.ConfigDict, ds: data_lib.Dataset, method: str) -> tuple:
  """(state, work) of one trial, by `method` (UPPER_BOUND: (state, None) where the lowered
  programs have no cost analysis)."""
  trainer = Trainer.from_config(config, ds.num_train, ds.num_classes)
  evaluator = Evaluator.from_config(config, ds.num_classes)
  svag_time = SvagTime.of(config.optim)
  sched, _ = trial_schedules(
      arms_lib.arms(config), 1, svag_time.steps(trainer.steps_per_epoch), svag_time
  )
  sched = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), sched)
  data, splits = _abstract_data(config, ds)
  key = jax.eval_shape(lambda: jax.random.key(0))
  state = jax.eval_shape(trainer.init, key, sched, data)
  options = conv.cpu_compiler_options(jax.devices()[0].platform)
  jit = lambda f, **kw: jax.jit(f, compiler_options=options, **kw)
  lowered = [
      jit(trainer.train_step, donate_argnums=0).lower(state, data),
      jit(evaluator.one).lower(state.variables, splits, data),
  ]
  if config.metrics.gn_every:
    lowered.append(jit(trainer.gradient_noise).lower(state, data))
  if method == UPPER_BOUND:
    costs = [low.cost_analysis() for low in lowered]
    costs = [c[0] if isinstance(c, list) and c else c for c in costs]
    if not all(c and c.get('bytes accessed') for c in costs):
      return _tree_bytes(state), None
    return _tree_bytes(state), int(max(c['bytes accessed'] for c in costs))
  work = 0
  for low in lowered:
    m = low.compile().memory_analysis()
    work = max(work, m.temp_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes)
  return _tree_bytes(state), int(work)


def _abstract_data(config: ml_collections.ConfigDict, ds: data_lib.Dataset) -> tuple:
  """The shapes of the training data and of the evaluation splits (`TrainData`, {split:
  EvalSplit}) that every device holding trials gets."""
  data = _abstract(data_lib.TrainData(ds.train_images, ds.train_labels, ds.mean, ds.std))
  eb = config.train.eval_batch_size
  splits = {'train': _eval_split(ds.train_images, eb), 'test': _eval_split(ds.test_images, eb)}
  return data, splits


def estimate(
    config: ml_collections.ConfigDict, ds: data_lib.Dataset, compiled: bool = True
) -> Estimate:
  """The memory estimate of a valid `config` on data `ds` (module docstring); `compiled=False`:
  the upper bound where it fits, XLA's analysis where it does not. Each program is measured once
  per process (a resumed or repeated run reuses the numbers)."""
  trainer = Trainer.from_config(config, ds.num_train, ds.num_classes)
  check_limits(config, SvagTime.of(config.optim).steps(trainer.steps_per_epoch))
  devices = jax.devices()
  result = dict(
      data=sum(_tree_bytes(t) for t in _abstract_data(config, ds)),
      per_arm=config.trials.num,
      arms=len(arms_lib.arms(config)),
      chunk=config.trials.vmap_chunk,
      devices=len(devices),
      device_memory=device_memory(devices[0]),
      device_kind=devices[0].device_kind,
  )
  key = _programs_key(config, ds)
  for method in (XLA,) if compiled else (UPPER_BOUND, XLA):
    if (key, method) not in _MEASURED:
      _MEASURED[key, method] = _measure(config, ds, method)
    state, work = _MEASURED[key, method]
    if work is not None:
      est = Estimate(state=state, work=work, method=method, **result)
      if est.fits or method == XLA:
        return est
  raise AssertionError('unreachable: the XLA estimate is always returned')


def check(config: ml_collections.ConfigDict, ds: data_lib.Dataset) -> Estimate:
  """Refuses (ConfigError) a run whose trials do not fit in its devices' memory, in one line that
  says the largest trials.num / trials.vmap_chunk that fits; the estimate otherwise."""
  est = estimate(config, ds, compiled=False)
  if not est.fits:
    raise ConfigError(
        f'config.trials.num = {config.trials.num}: {est.arms} arm(s) x {config.trials.num:,} '
        f'trials do not fit in memory: {est.summary()}.'
    )
  return est
