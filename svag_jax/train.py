"""One trial: its state and its pure training step.

Everything here is written for ONE network. Many trials are a map of these same functions over a
leading trial axis (svag_jax/trials.py), never a second implementation. The other jobs of a trial
have their own modules: which examples a step sees (`svag_jax.sampling`), how its gradient is
estimated (`svag_jax.oracles`, chosen from the table `oracles.ORACLES`), what is applied to the
gradient (`svag_jax.optim`) and how a network is evaluated (`svag_jax.evaluate`).

Step counts: `TrainState.step` is the one source of truth of the trial's step (batch indices,
augmentation and noise keys, the schedules' values in the metrics). The optax transforms keep
their own counts (optax's convention: the LR schedule's `ScaleByScheduleState.count`, the WD
schedule's `WeightDecaySchedule.count`, the noise's `IsotropicNoiseState.count`); every one of
them is incremented once per `train_step`, exactly as `step`, so they stay equal to it
(`optim.opt_state_counts`; asserted by tests/test_step_counts.py). The loop's step counter
(svag_jax/experiment.py) counts the steps it dispatched, and is checkpointed with the states.
"""

import dataclasses
import functools
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from svag_jax import evaluate, metrics, models, optim, oracles, precision, scaling
from svag_jax import sampling as sampling_lib
from svag_jax.data import TrainData, normalize
from svag_jax.models import external
from svag_jax.models.external import train_kwargs
from svag_jax.record import group_key
from svag_jax.schedules import Schedules, value_at


@flax.struct.dataclass
class TrainState:
  """Everything one trial needs to continue training: a pytree, checkpointed as is.

  Attributes:
    step: int32 scalar, optimizer steps taken so far.
    params: trainable weights (the built-in models: all scale invariant).
    batch_stats: BatchNorm running statistics ({} for batch-independent norms).
    frozen: the variables that are never trained, e.g. the built-in models' fixed random head
      ({} for a model without such a collection).
    opt_state: optax state of `Trainer.optimizer` (`optim.sgd`, preceded by svag / noise).
    key: the trial's typed data key: every random number of a step (its batches, SVAG's second
      batch, augmentation, NGD's z, isotropic noise, G/N batches) comes from a stream of it
      (`svag_jax.sampling`), drawn at the step.
    schedules: the trial's LR and WD schedules (arrays, so trials may differ).
  """

  step: jax.Array
  params: Any
  batch_stats: Any
  frozen: Any
  opt_state: optax.OptState
  key: jax.Array
  schedules: Schedules

  @property
  def variables(self) -> evaluate.Variables:
    """The network: {'params', 'batch_stats', 'frozen'} (what `evaluate.Evaluator` reads)."""
    return {'params': self.params, 'batch_stats': self.batch_stats, 'frozen': self.frozen}


@dataclasses.dataclass(frozen=True)
class Trainer:
  """The static description of one trial's training (everything that is not data or state).

  Attributes:
    model: a Flax Linen module `(x[, train]) -> logits` with variables 'params' and optionally
      'batch_stats' and 'frozen' (`svag_jax.models.external`: any model, by import path or an
      NNX model through `external.from_nnx`), or `precision.LowPrecision` around one
      (train.precision 'tf32' / 'bf16').
    batch_size: B, examples per step.
    num_train: N, training-set size (for sampling).
    sampling: 'shuffle' or 'replacement' (`svag_jax.sampling.Sampler`).
    momentum: heavy-ball beta (0 = plain SGD; sgd only).
    optimizer_name: 'sgd', 'rmsprop', 'adam' (coupled L2) or 'adamw' (decoupled WD), the
      config's optim.optimizer (`optim.make`; the transform itself is `optimizer(...)`).
    beta1, beta2, eps: the adaptive optimizers' settings at batch B (for SVAG rescaled by
      `scaling.svag`: `settings`).
    unroll: unroll the steps of one dispatch (XLA:CPU runs conv weight-gradients inside rolled
      loops 25-60x slower, jax#12868); False keeps a rolled `lax.scan` (better on GPU/TPU).
    oracle: how a step's gradient is estimated, a key of `oracles.ORACLES`: 'sgd' (one batch),
      'svag' (two independent batches combined by `optim.svag(svag_l)`), 'ngd' / 'gd' (the whole
      training set, chunks of `chunk_size`). Chosen statically: one compiled program per oracle.
    svag_l: SVAG amplification l. The per-step LR and WD (LR / l for SGD, LR / sqrt(l) for the
      adaptive optimizers) and the l-times-longer schedules are the caller's
      (`schedules.SvagTime`; they are data, `schedules`); the adaptive optimizers' betas and eps
      are rescaled here (`settings`). Batch 1 of step t is the batch of step t without SVAG, so
      l = 1 is the optimizer itself.
    noise_scale: std of the isotropic Gaussian noise added to the gradient (0 = none).
    chunk_size: examples per pass of the full-batch oracles.
    gn_batches: K, batches per G/N estimate (`gradient_noise`).
    augment: random crop + flip of every training batch of the sampled oracles and of the G/N
      batches (`Sampler.batch_images`; the noise of the training process includes the
      augmentation); never of evaluation batches or of the BatchNorm refresh. The full-batch
      oracles need a fixed data set (config validation).
    groups: the scale-invariant groups whose metrics are logged, ((name, ('/'-joined paths of
      params, ...)), ...) (`svag_jax.invariance.Groups.partition`); () for none; None: no
      per-group metrics and no angular update at all (`TrialRunner` skips `angular_updates`).
  """

  model: nn.Module
  batch_size: int
  num_train: int
  sampling: str = 'shuffle'
  momentum: float = 0.0
  optimizer_name: str = 'sgd'
  beta1: float = 0.9
  beta2: float = 0.999
  eps: float = 1e-8
  unroll: bool = True
  oracle: str = 'sgd'
  svag_l: int = 1
  noise_scale: float = 0.0
  chunk_size: int = 500
  gn_batches: int = 8
  augment: bool = False
  groups: tuple[tuple[str, tuple[str, ...]], ...] | None = None

  @classmethod
  def from_config(
      cls, config: ml_collections.ConfigDict, num_train: int, num_classes: int
  ) -> 'Trainer':
    """The trainer a run's config describes, for a data set of `num_train` training examples and
    `num_classes` classes (its evaluation: `evaluate.Evaluator.from_config`)."""
    return cls(
        model=precision.wrap(models.build(config.model, num_classes), config.train.precision),
        batch_size=config.train.batch_size,
        num_train=num_train,
        sampling=config.train.sampling,
        momentum=config.optim.momentum,
        optimizer_name=config.optim.optimizer,
        beta1=config.optim.beta1,
        beta2=config.optim.beta2,
        eps=config.optim.eps,
        unroll=config.train.unroll,
        oracle=config.optim.oracle,
        svag_l=config.optim.svag_l,
        noise_scale=config.optim.noise_scale,
        chunk_size=config.optim.chunk_size,
        gn_batches=config.metrics.gn_batches,
        augment=config.data.augment,
    )

  @property
  def sampler(self) -> sampling_lib.Sampler:
    """How this trial draws its batches."""
    return sampling_lib.Sampler(self.num_train, self.batch_size, self.sampling, self.augment)

  @property
  def steps_per_epoch(self) -> int:
    """SGD steps per epoch, floor(N / B) (SVAG's optimizer steps: `schedules.SvagTime.steps`)."""
    return self.sampler.steps_per_epoch

  @property
  def spec(self) -> oracles.Oracle:
    """The oracle's entry of `oracles.ORACLES`."""
    return oracles.get(self.oracle)

  @property
  def settings(self) -> scaling.Settings:
    """beta1, beta2 and eps per step: the config's, or for SVAG those of `scaling.svag` (1 - beta
    divided by l, eps times sqrt(l)); lr and wd are placeholders (the schedules hold them)."""
    base = scaling.Settings(1.0, 1.0, self.beta1, self.beta2, self.eps)
    return scaling.svag(base, self.svag_l if self.spec.batches == 2 else 1, self.optimizer_name)

  def optimizer(self, schedules: Schedules, key: jax.Array) -> optax.GradientTransformation:
    """The trial's optimizer: `[svag(l)] + [add_isotropic_noise] + make(optimizer, lr, wd, ...)`.

    The bracketed parts only for the svag oracle / a non-zero noise scale (plain SGD keeps the
    foundation's chain, `optim.sgd`). The LR and WD are the schedules' (already at their SVAG
    values, `schedules.SvagTime`), the betas and eps `settings`. A function of
    the trial's `TrainState.schedules` and data key `TrainState.key` alone, so `init` and every
    `train_step` build the same transform. The isotropic noise of update t is drawn from
    stream_key(key, STREAM_NOISE, t) (`add_isotropic_noise` keeps fold_in(key, STREAM_NOISE) in
    its state and folds in its count, which equals the step), a stream of the data key like
    NGD's z.
    """
    s = self.settings
    base = optim.make(
        self.optimizer_name,
        functools.partial(value_at, schedules.lr),
        functools.partial(value_at, schedules.wd),
        momentum=self.momentum,
        beta1=s.beta1,
        beta2=s.beta2,
        eps=s.eps,
    )
    front = []
    if self.spec.batches == 2:
      front.append(optim.svag(self.svag_l))
    if self.noise_scale:
      noise_key = sampling_lib.stream_key(key, sampling_lib.STREAM_NOISE)
      front.append(optim.add_isotropic_noise(self.noise_scale, noise_key))
    return optax.chain(*front, base) if front else base

  def init(self, key: jax.Array, schedules: Schedules, data: TrainData) -> TrainState:
    """A fresh trial of trial key `key`: weights from fold_in(key, STREAM_INIT), every random
    number of training from the data key fold_in(key, STREAM_DATA) (`svag_jax.sampling`)."""
    init_key = jax.random.fold_in(key, sampling_lib.STREAM_INIT)
    data_key = jax.random.fold_in(key, sampling_lib.STREAM_DATA)
    x = jnp.zeros((1, *data.images.shape[1:]), jnp.float32)
    variables = self.model.init({'params': init_key}, x, **train_kwargs(self.model, False))
    external.check_collections(variables)
    params = variables['params']
    return TrainState(
        step=jnp.zeros([], jnp.int32),
        params=params,
        batch_stats=variables.get('batch_stats', {}),
        frozen=variables.get('frozen', {}),
        opt_state=self.optimizer(schedules, data_key).init(params),
        key=data_key,
        schedules=schedules,
    )

  def loss(
      self,
      params: Any,
      state: TrainState,
      images: jax.Array,
      labels: jax.Array,
      train: bool,
      weights: jax.Array | None = None,
  ) -> tuple[jax.Array, Any]:
    """`evaluate.model_loss` of the trial's network with weights `params`: cross-entropy of a
    batch of normalised images and the new BatchNorm statistics (train mode; None in eval mode)."""
    variables = {'params': params, 'frozen': state.frozen, 'batch_stats': state.batch_stats}
    return evaluate.model_loss(self.model, variables, images, labels, train, weights)

  def loss_fn(self, state: TrainState, data: TrainData) -> oracles.LossFn:
    """The oracles' loss interface for this trial (training mode, uint8 images normalised inside):
    `loss_fn(params, images, labels, weights=None) -> (loss, model_aux)`, model_aux
    `{'batch_stats': ...}` for a BatchNorm net and `{}` for a batch-independent one."""

    def loss_fn(params, images, labels, weights=None):
      x = normalize(images, data.mean, data.std)
      loss, batch_stats = self.loss(params, state, x, labels, True, weights)
      return loss, ({'batch_stats': batch_stats} if jax.tree.leaves(batch_stats) else {})

    return loss_fn

  def _gradient(
      self, state: TrainState, data: TrainData, idx: list[jax.Array]
  ) -> tuple[Any, jax.Array, Any]:
    """(grads, loss, new batch_stats) of the configured oracle at `state`; `idx`: the indices [B]
    of each of the oracle's batches (none for a full-batch oracle)."""
    spec = self.spec
    if spec.full_batch:
      images, labels = data.images, data.labels
    else:
      keys = sampling_lib.data_keys(state.key, spec.batches)
      batches = [self.sampler.batch_images(data, i, k, state.step) for i, k in zip(idx, keys)]
      images = batches[0] if spec.batches == 1 else jnp.stack(batches)
      labels = data.labels[idx[0] if spec.batches == 1 else jnp.stack(idx)]
    noise_key = sampling_lib.stream_key(state.key, sampling_lib.STREAM_NGD, state.step)  # ngd only
    grads, (loss, aux) = spec.gradient(
        self.loss_fn(state, data),
        state.params,
        images,
        labels,
        noise_key,
        self.batch_size,
        self.chunk_size,
        self.unroll,
    )
    if spec.batches == 2:
      # the reported loss is batch 1's; the BatchNorm statistics: `oracles.svag_model_state`
      # (batch 1's for l = 1, so that l = 1 is SGD bit for bit; else the mean of the two)
      loss = loss[0]
      aux = oracles.svag_model_state(aux, self.svag_l)
    batch_stats = aux['batch_stats'] if aux else state.batch_stats
    return grads, loss, batch_stats

  def train_step(
      self,
      state: TrainState,
      data: TrainData,
      idx: jax.Array | None = None,
      idx2: jax.Array | None = None,
  ) -> tuple[TrainState, jax.Array]:
    """One optimizer step of one trial.

    `idx` [B]: the examples of the (first) batch, default the trial's own sampling; `idx2` [B]:
    SVAG's second batch, default the same sampling with the data key `sampling.svag_key(key)`.
    Both are ignored by the full-batch oracles. Returns the new state and the step's loss
    (float32 scalar: the batch loss; SVAG: batch 1's; NGD: the noise-weighted loss).
    """
    given = [idx, idx2][: self.spec.batches]
    keys = sampling_lib.data_keys(state.key, self.spec.batches)
    idx_list = [
        self.sampler.batch_indices(k, state.step) if i is None else i for i, k in zip(given, keys)
    ]
    grads, loss, batch_stats = self._gradient(state, data, idx_list)
    updates, opt_state = self.optimizer(state.schedules, state.key).update(
        grads, state.opt_state, state.params
    )
    new_state = state.replace(
        step=state.step + 1,
        params=optax.apply_updates(state.params, updates),
        batch_stats=batch_stats,
        opt_state=opt_state,
    )
    return new_state, loss

  def train_steps(
      self, state: TrainState, data: TrainData, num_steps: int
  ) -> tuple[TrainState, jax.Array]:
    """`num_steps` steps in one program; returns the state and the sum of the step losses.

    Same numbers as `num_steps` calls of `train_step`: only the epoch permutations are computed
    once per call (`Sampler.dispatch_permutations`).
    """
    n = self.spec.batches
    perms = first_epoch = None
    if self.sampling == 'shuffle' and n:
      keys = sampling_lib.data_keys(state.key, n)
      both = [self.sampler.dispatch_permutations(k, state.step, num_steps) for k in keys]
      perms, first_epoch = [p for p, _ in both], both[0][1]

    def body(s, _):
      keys = sampling_lib.data_keys(s.key, n)
      idx = [
          self.sampler.batch_indices(k, s.step, None if perms is None else perms[j], first_epoch)
          for j, k in enumerate(keys)
      ]
      return self.train_step(s, data, *idx)

    unroll = num_steps if self.unroll else 1
    state, losses = jax.lax.scan(body, state, None, length=num_steps, unroll=unroll)
    return state, jnp.sum(losses)

  def gradient_noise(self, state: TrainState, data: TrainData) -> dict[str, jax.Array]:
    """G, N, NSR (and gn_loss) of one trial at its current weights (`metrics.gradient_noise`).

    K = gn_batches batches of the training batch size B (also for SVAG runs: B, not 2B)
    (`Sampler.gn_batches`); data loss only (no WD); the state (BatchNorm running statistics
    included) is not changed. N estimates Tr Sigma_B with replacement = Tr Sigma_1 / B.
    """
    images, labels = self.sampler.gn_batches(data, state.key, state.step, self.gn_batches)
    grads, losses = metrics.batch_gradients(
        self.loss_fn(state, data), state.params, images, labels, self.unroll
    )
    out = {**metrics.gradient_noise(grads), 'gn_loss': jnp.mean(losses)}
    for group, values in metrics.group_gradient_noise(grads, self.groups or ()).items():
      out.update({group_key(group, k): v for k, v in values.items()})
    return out

  def schedule_metrics(self, state: TrainState) -> dict[str, jax.Array]:
    """lr, wd at the trial's step and the norm / learning-rate metrics of
    `metrics.learning_rates` (float32 scalars); for an adaptive optimizer also
    `metrics.adaptive_learning_rates` (its effective and intrinsic LR); per group its
    `metrics.group_norms` ('group.<name>/w_norm_sq', 'group.<name>/effective_lr':
    `svag_jax.record.group_key`) and, for an adaptive optimizer, its own intrinsic LR
    ('group.<name>/intrinsic_lr_adaptive', `metrics.group_adaptive_intrinsic_lrs`)."""
    lr = value_at(state.schedules.lr, state.step)
    wd = value_at(state.schedules.wd, state.step)
    out = metrics.learning_rates(lr, wd, state.params, self.momentum)
    if self.optimizer_name != 'sgd':
      s = self.settings
      settings = metrics.AdaptiveSettings(self.optimizer_name, s.beta2, s.eps)
      out.update(metrics.adaptive_learning_rates(lr, wd, state.params, state.opt_state, settings))
      out.update({
          group_key(group, 'intrinsic_lr_adaptive'): value
          for group, value in metrics.group_adaptive_intrinsic_lrs(
              lr, wd, state.params, state.opt_state, settings, self.groups or ()
          ).items()
      })  # fmt: skip
    for group, values in metrics.group_norms(lr, state.params, self.groups or ()).items():
      out.update({group_key(group, k): v for k, v in values.items()})
    return out

  def angular_updates(self, state: TrainState, data: TrainData) -> dict[str, jax.Array]:
    """The angle (radians) between the trial's weights now (step t) and after its next step
    (t + 1, computed here on the side: `train_step` from `state`, which the run then takes
    itself), of the whole net ('angular_update') and of each group ('group.<name>/
    angular_update'): `metrics.angle`. The state is not changed."""
    new, _ = self.train_step(state, data)
    out = {'angular_update': metrics.angle(state.params, new.params)}
    for group, value in metrics.group_angles(state.params, new.params, self.groups or ()).items():
      out[group_key(group, 'angular_update')] = value
    return out
