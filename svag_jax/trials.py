"""Many trials: the one-trial functions of `train.Trainer` and `evaluate.Evaluator`, mapped over a
leading trial axis.

How the map runs is two knobs. `chunk` (config.trials.vmap_chunk), how many trials one call holds:
  - chunk = 0 or >= T: all trials in one call, the trial axis sharded over the mesh axis 'trial'
    (the GPU/TPU default: hundreds of small nets fill one accelerator);
  - chunk = k: the host dispatches ceil(T / k) calls of k trials each (k = 1 is a plain loop of
    single-trial steps).
`mode` (config.trials.mode, one of `CHUNK_MODES`), how one call maps its k trials:
  - 'vmap': `jit(vmap(one_trial))`. vmap turns each per-trial convolution into ONE grouped
    convolution (feature_group_count = k), which XLA:CPU and cuDNN run slowly (~3x slower than a
    loop on CPU); model.conv_impl = 'im2col' turns them into batched matmuls instead;
  - 'side_by_side': the k one-trial steps side by side in ONE jitted program (a Python loop over
    the trial slices, results stacked; `side_by_side`): every convolution stays ungrouped, the
    host dispatches one call, and XLA may run the trials' independent ops concurrently. The
    program (and its compile time) grows k-fold, so keep k small (CPU conv nets: k = 8).
    Over several devices each device runs its block of the chunk side by side (`jax.shard_map`).
A chunk whose size is a multiple of the device count is sharded over all devices; otherwise chunks
are placed round-robin, one device each. Trial i always gets the key fold_in(key(seed), i), so its
numbers do not depend on T, on the chunking or on the devices.

Several processes (multi-host, after `jax.distributed.initialize()`): the mesh spans the devices of
all processes (`jax.devices()`), every process runs the same calls on the same host data, and each
device trains its own block of trials (no communication in the train step). Round-robin chunks on
single devices cannot span processes, so every chunk must then be a multiple of the global device
count (`ConfigError` otherwise). Results that reach the host (`evaluate`, `gradient_noise`,
`fetch`) are gathered from all processes: every process gets the numbers of ALL trials.
"""

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, SingleDeviceSharding
from jax.sharding import PartitionSpec as P

from svag_jax.checks import ConfigError
from svag_jax.data import EvalSplit, TrainData
from svag_jax.evaluate import Evaluator
from svag_jax.models import conv
from svag_jax.schedules import Schedules
from svag_jax.train import Trainer, TrainState

CHUNK_MODES = ('vmap', 'side_by_side')


def side_by_side(fn: Callable, in_axes: Sequence[int | None]) -> Callable:
  """`fn` mapped over the leading axis of the arguments whose `in_axes` entry is 0, unbatched.

  Like `jax.vmap(fn, in_axes)` (same arguments, outputs stacked along a new leading axis), but
  traced as one call of `fn` per slice: inside `jax.jit` the slices' computations sit side by side
  in one program, each exactly the one-trial program (no op is batched: convolutions stay
  ungrouped). None entries are passed whole to every call.
  """

  def mapped(*args):
    sizes = {jax.tree.leaves(a)[0].shape[0] for a, ax in zip(args, in_axes) if ax == 0}
    if len(sizes) != 1:
      raise ValueError(f'side_by_side: mapped arguments need one common leading size, got {sizes}')
    outs = []
    for i in range(sizes.pop()):
      sliced = [jax.tree.map(lambda x: x[i], a) if ax == 0 else a for a, ax in zip(args, in_axes)]
      outs.append(fn(*sliced))
    return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)

  return mapped


def trial_keys(seed: int, start: int, size: int) -> jax.Array:
  """Typed keys [size] of trials start..start+size-1: fold_in(key(seed), trial index)."""
  base = jax.random.key(seed)
  return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(start, start + size))


class TrialRunner:
  """Initialises, trains and evaluates T trials as a list of chunks of mapped trials.

  The states are a list with one `TrainState` per chunk, each leaf with a leading trial axis.
  `train` adds each trial's step losses to the runner's `loss_sums` (per chunk, on the device),
  which the loop reads as mean losses at an evaluation (`mean_losses`) and checkpoints.
  Evaluation is `evaluator.trials` (the one mapped form of `svag_jax.evaluate`; in mode
  'side_by_side' `evaluator.one` side by side) on the states' variables, plus the schedule
  metrics of `Trainer.schedule_metrics` and (unless `trainer.groups` is None) the angular updates
  of `Trainer.angular_updates` (each trial's next step, taken on the side); `evaluator` defaults
  to the trainer's model without a BatchNorm refresh. Training, evaluation and G/N estimates
  follow `mode`; `init` is always vmapped (it runs once per run, and its only convolutions are a
  discarded forward pass of one image, so grouped convolutions cost nothing there).
  """

  def __init__(
      self,
      trainer: Trainer,
      num_trials: int,
      chunk: int = 0,
      devices: Sequence[jax.Device] | None = None,
      evaluator: Evaluator | None = None,
      mode: str = 'vmap',
  ):
    if mode not in CHUNK_MODES:
      raise ConfigError(
          f'config.trials.mode = {mode!r}: unknown; choose one of {", ".join(CHUNK_MODES)}'
      )
    self.mode = mode
    self.trainer = trainer
    self.evaluator = evaluator or Evaluator(trainer.model, 0, trainer.batch_size)
    self.num_trials = num_trials
    self.devices = list(devices or jax.devices())
    self.mesh = jax.make_mesh(
        (len(self.devices),),
        ('trial',),
        axis_types=(jax.sharding.AxisType.Auto,),
        devices=self.devices,
    )
    # True when the devices belong to several processes (a multi-host run).
    self.multiprocess = len({d.process_index for d in self.devices}) > 1
    size = num_trials if chunk <= 0 else min(chunk, num_trials)
    self.chunks = [(s, min(size, num_trials - s)) for s in range(0, num_trials, size)]
    self.chunk_sizes = sorted({n for _, n in self.chunks})  # one compiled program per size
    if self.multiprocess:
      self._check_multiprocess_chunks(chunk)
    self.shardings = [self._sharding(i, n) for i, (_, n) in enumerate(self.chunks)]
    self.loss_sums = self.zeros()
    self._data_cache: dict = {}
    # XLA:CPU: convolutions on Eigen's thread pool instead of single-threaded YNNPACK kernels
    # (a PreResNet32 step 1.7-2.6x faster on 2 cores; svag_jax/models/conv.py). {} elsewhere.
    options = conv.cpu_compiler_options(self.devices[0].platform)
    # The last static argument of each: whether the chunk is sharded over the mesh.
    self._train = jax.jit(
        self._train_chunk, static_argnums=(2, 3), donate_argnums=0, compiler_options=options
    )
    self._eval = jax.jit(self._evaluate, static_argnums=3, compiler_options=options)
    self._gn = jax.jit(self._gradient_noise, static_argnums=2, compiler_options=options)

  @classmethod
  def from_config(
      cls,
      trainer: Trainer,
      num_trials: int,
      trials_config: ml_collections.ConfigDict,
      devices: Sequence[jax.Device] | None = None,
      evaluator: Evaluator | None = None,
  ) -> 'TrialRunner':
    """The runner of `num_trials` trials as `trials_config` (= config.trials) chunks and maps them
    (its vmap_chunk and mode)."""
    return cls(
        trainer, num_trials, trials_config.vmap_chunk, devices, evaluator, trials_config.mode
    )

  def _map(self, fn: Callable, in_axes: tuple[int | None, ...], sharded: bool) -> Callable:
    """`fn` of one trial mapped over the chunk's leading trial axis as `self.mode` says."""
    if self.mode == 'vmap':
      return jax.vmap(fn, in_axes=in_axes)
    mapped = side_by_side(fn, in_axes)
    if not sharded:
      return mapped
    # Each device runs its own block of trials side by side (the inputs of None axes replicated).
    specs = tuple(P() if ax is None else P('trial') for ax in in_axes)
    return jax.shard_map(mapped, mesh=self.mesh, in_specs=specs, out_specs=P('trial'))

  def _train_chunk(
      self, states: TrainState, data: TrainData, num_steps: int, sharded: bool
  ) -> tuple[TrainState, jax.Array]:
    """`trainer.train_steps` of one chunk of k trials: states [k, ...], loss sums [k]."""
    steps = lambda state, data: self.trainer.train_steps(state, data, num_steps)
    return self._map(steps, (0, None), sharded)(states, data)

  def _evaluate(
      self, states: TrainState, splits: dict[str, EvalSplit], data: TrainData, sharded: bool
  ) -> tuple[dict[str, jax.Array], jax.Array | None]:
    """Metrics [k] and test predictions [k, n] of one chunk of k trials (traced inside jit)."""
    if self.mode == 'vmap':
      result, preds = self.evaluator.trials(states.variables, splits, data)
    else:
      result, preds = self._map(self.evaluator.one, (0, None, None), sharded)(
          states.variables, splits, data
      )
    result.update(jax.vmap(self.trainer.schedule_metrics)(states))
    if self.trainer.groups is not None:
      result.update(self._map(self.trainer.angular_updates, (0, None), sharded)(states, data))
    return result, preds

  def _gradient_noise(
      self, states: TrainState, data: TrainData, sharded: bool
  ) -> dict[str, jax.Array]:
    """`trainer.gradient_noise` of one chunk of k trials: each value [k]."""
    return self._map(self.trainer.gradient_noise, (0, None), sharded)(states, data)

  def _sharded(self, chunk: int) -> bool:
    return isinstance(self.shardings[chunk], NamedSharding)

  def _check_multiprocess_chunks(self, chunk: int) -> None:
    n = len(self.devices)
    bad = sorted({size for _, size in self.chunks if size % n})
    if bad:
      raise ConfigError(
          f'trials.vmap_chunk = {chunk} with {self.num_trials} trials in all (trials.num x number '
          f'of arms) gives chunks of {bad} trials, but a run over {n} devices of '
          f'{jax.process_count()} processes needs every chunk to be a multiple of {n} (one '
          'chunk cannot sit on one device of one process). Set trials.num so that the total is a '
          f'multiple of {n}, and trials.vmap_chunk to 0 (all at once) or a multiple of {n} that '
          'divides the total.'
      )

  def _sharding(self, index: int, size: int) -> jax.sharding.Sharding:
    if size % len(self.devices) == 0:
      return NamedSharding(self.mesh, P('trial'))
    return SingleDeviceSharding(self.devices[index % len(self.devices)])

  def _replicated(self, sharding: jax.sharding.Sharding) -> jax.sharding.Sharding:
    if isinstance(sharding, NamedSharding):
      return NamedSharding(self.mesh, P())
    return sharding

  def place(self, tree, chunk: int):
    """`tree` (data shared by all trials) replicated where chunk `chunk` lives (cached)."""
    target = self._replicated(self.shardings[chunk])
    key = (id(tree), target)
    if key not in self._data_cache:
      # Across processes, a global array is made from the same host data on every process.
      host = jax.tree.map(np.asarray, tree) if self.multiprocess else tree
      self._data_cache[key] = (tree, jax.device_put(host, target))
    return self._data_cache[key][1]

  def init(self, seed: int, schedules: Schedules, data: TrainData) -> list[TrainState]:
    """Fresh states of all trials; `schedules` has a leading trial axis [T]."""
    states, inits = [], {}  # one jitted init per placement: compiled once per shape, not per chunk
    for c, ((start, size), sharding) in enumerate(zip(self.chunks, self.shardings)):
      keys = trial_keys(seed, start, size)
      if sharding not in inits:
        inits[sharding] = jax.jit(
            self._init_from_key_data(jax.random.key_impl(keys)), out_shardings=sharding
        )
      # Per-trial inputs go in as host arrays placed where the chunk lives (valid across processes).
      per_trial = (
          np.asarray(jax.random.key_data(keys)),
          jax.tree.map(lambda x: np.asarray(x)[start : start + size], schedules),
      )
      key_data, sched = jax.device_put(per_trial, sharding)
      states.append(inits[sharding](key_data, sched, self.place(data, c)))
    return states

  def _init_from_key_data(self, impl):
    """vmapped `trainer.init` taking raw key data uint32 [k, 2] (typed keys are not host data)."""
    init = jax.vmap(self.trainer.init, in_axes=(0, 0, None))

    def init_chunk(key_data: jax.Array, sched: Schedules, data: TrainData) -> TrainState:
      return init(jax.random.wrap_key_data(key_data, impl=impl), sched, data)

    return init_chunk

  def train(self, states: list[TrainState], data: TrainData, num_steps: int) -> list[TrainState]:
    """Advances every trial `num_steps` steps (one dispatch per chunk, without waiting).

    Returns the new states (the old ones are donated). The sum over the steps of each trial's
    batch loss is added to `loss_sums` (float32 [chunk size] per chunk, still on the device).
    """
    out = [
        self._train(s, self.place(data, c), num_steps, self._sharded(c))
        for c, s in enumerate(states)
    ]
    self.loss_sums = [total + loss for total, (_, loss) in zip(self.loss_sums, out)]
    return [s for s, _ in out]

  def reset_losses(self, loss_sums: list | None = None) -> None:
    """Starts `loss_sums` again from zeros, or from `loss_sums` (per chunk, e.g. restored from a
    checkpoint)."""
    self.loss_sums = self.zeros() if loss_sums is None else list(loss_sums)

  def mean_losses(self, num_steps: int) -> np.ndarray:
    """Each trial's mean batch loss over the `num_steps` steps summed in `loss_sums` (host
    float32 [T], fetched: waits for the device)."""
    return self.join(self.loss_sums) / num_steps

  def evaluate(
      self, states: list[TrainState], splits: dict[str, EvalSplit], data: TrainData
  ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Metrics of all trials (host float arrays [T]) and test predictions (uint8 [T, n])."""
    outs = [
        self._eval(s, self.place(splits, c), self.place(data, c), self._sharded(c))
        for c, s in enumerate(states)
    ]
    outs = self.fetch(outs)
    result = {k: np.concatenate([m[k] for m, _ in outs]) for k in outs[0][0]}
    preds = np.concatenate([p for _, p in outs])
    return result, preds

  def gradient_noise(self, states: list[TrainState], data: TrainData) -> dict[str, np.ndarray]:
    """G, N, NSR, gn_loss of every trial (host float arrays [T]); the states are not changed."""
    outs = [self._gn(s, self.place(data, c), self._sharded(c)) for c, s in enumerate(states)]
    outs = self.fetch(outs)
    return {k: np.concatenate([m[k] for m in outs]) for k in outs[0]}

  def zeros(self) -> list[np.ndarray]:
    """Per-chunk float32 zeros [chunk size]: accumulators of per-trial values (`loss_sums`)."""
    return [np.zeros(n, np.float32) for _, n in self.chunks]

  def join(self, per_chunk: list) -> np.ndarray:
    """Host array [T] (or [T, ...]) of per-chunk arrays, fetched and joined in trial order."""
    return np.concatenate(self.fetch(list(per_chunk)))

  def weights(self, states: list[TrainState]) -> dict:
    """{'params', 'batch_stats', 'frozen'} of all trials as host arrays [T, ...]."""
    trees = self.fetch(
        [{'params': s.params, 'batch_stats': s.batch_stats, 'frozen': s.frozen} for s in states]
    )
    return jax.tree.map(lambda *xs: np.concatenate(xs), *trees)

  def fetch(self, tree):
    """`tree` with every leaf as a host numpy array holding all trials, on every process.

    Arrays that span devices of several processes are gathered (a collective: every process must
    call this at the same point); the rest is copied to the host as usual.
    """

    def get(x):
      if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return multihost_utils.process_allgather(x, tiled=True)
      return np.asarray(jax.device_get(x))

    return jax.tree.map(get, tree)
