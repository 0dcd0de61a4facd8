"""The papers' optimizers as optax chains: SGD with coupled weight decay and heavy-ball momentum,
and the adaptive optimizers RMSprop, Adam (L2) and AdamW, each with its own LR and WD schedules.

    u_t = g_t + lambda_t w_t              (coupled WD, with its own schedule)
    v_t = beta v_{t-1} + u_t              (heavy ball, PyTorch convention; skipped when beta = 0)
    w_{t+1} = w_t - eta_t v_t

With beta = 0 this is exactly `w <- (1 - eta lambda) w - eta grad L(w; B_t)` (Li, Lyu & Arora 2020;
Li, Malladi & Arora 2021). WD is *coupled*: it is added to the gradient before momentum, not
decoupled as in AdamW; it is optax's `add_decayed_weights` (`add_coupled_weight_decay` only keeps
the updates' dtypes). The LR and WD schedules each keep their own step count.

The adaptive optimizers (`make`, names `OPTIMIZERS`; Malladi, Lyu, Panigrahi & Arora 2022 study
RMSprop and Adam; Kosson, Messmer & Jaggi 2024 compare Adam + L2 with AdamW) are optax's own
moment transforms between the same WD and LR transforms, in PyTorch's conventions:
  - `rmsprop`: h = g + lambda w; v <- beta2 v + (1 - beta2) h^2;
    w <- w - eta h / (sqrt(v_hat) + eps)
    (`optax.scale_by_rms` with eps outside the root and bias correction v_hat = v / (1 - beta2^t):
    torch.optim.Adam with betas (0, beta2), as the 2022 paper's code runs RMSprop);
  - `adam`: h = g + lambda w (coupled L2); m, v the EMAs of h, h^2 (`optax.scale_by_adam`);
    w <- w - eta m_hat / (sqrt(v_hat) + eps) (torch.optim.Adam with weight_decay);
  - `adamw`: m, v of g alone; w <- w - eta (m_hat / (sqrt(v_hat) + eps) + lambda w) (decoupled:
    the decay per step is eta lambda, optax.adamw's and torch.optim.AdamW's convention).

The SDE toolkit of Li, Malladi & Arora 2021 adds two transforms that go in front of those chains:
  - `svag(l)` combines the two stacked batch gradients of `oracles.batch_gradient_pair` into
    c1 g1 + c2 g2;
  - `add_isotropic_noise(scale, key)` adds scale * N(0, I) (the "fixed Gaussian" view of NGD).
E.g. SVAG: `optax.chain(svag(l), sgd(lr / l, wd))` on `oracles.batch_gradient_pair`; NGD: the
`oracles.ngd` gradient into `sgd`. SVAG of an adaptive optimizer (Malladi et al. 2022) also
rescales its LR, betas and eps with l: `adaptive_svag` (the map is `svag_jax.scaling.svag`).

Where other optax transforms go (e.g. in a training loop of your own):
  - `svag(l)` must come FIRST: its input is the stacked pair [2, *shape] of batch gradients, which
    no other transform understands (clipping that pair would clip the two batches jointly).
  - Between `svag(l)` (or the oracle's gradient) and `sgd`: anything that acts on the gradient
    estimate, e.g. `optax.clip_by_global_norm(c)` (clips c1 g1 + c2 g2, before WD is added),
    `add_isotropic_noise`, or `optax.masked(t, mask)` to apply `t` to some parameters only:
    `optax.chain(svag(l), optax.clip_by_global_norm(c), sgd(lr / l, wd))` (tests/test_optim.py).
  - After `sgd`: only transforms of the final step (it is already multiplied by -eta).
Clipping or masking changes the SDE the run approximates: the papers use none.
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from svag_jax import scaling


def add_coupled_weight_decay(weight_decay: optax.ScalarOrSchedule) -> optax.GradientTransformation:
  """Adds `lambda_t * w` to the gradient: `optax.add_decayed_weights`, keeping the updates' dtypes.

  The schedule (if any) keeps its own count in optax's `WeightDecaySchedule` state (a constant
  has an empty state), independent of the LR schedule's. The only addition to optax's transform
  is a cast of each output leaf back to its input dtype: a schedule returns a float32 scalar,
  which would promote bfloat16 updates to float32 (for float32 leaves the cast is a no-op, so the
  numbers are optax's bit for bit).

  Args:
    weight_decay: lambda, a float, or a function of the update count (int32 scalar).

  Returns:
    A GradientTransformation whose update needs `params`.
  """
  inner = optax.add_decayed_weights(weight_decay)

  def update_fn(
      updates: optax.Updates, state: optax.OptState, params: optax.Params | None = None
  ) -> tuple[optax.Updates, optax.OptState]:
    new, state = inner.update(updates, state, params)
    return optax.tree_utils.tree_cast_like(new, updates), state

  return optax.GradientTransformation(inner.init, update_fn)


def sgd(
    learning_rate: optax.ScalarOrSchedule,
    weight_decay: optax.ScalarOrSchedule,
    momentum: float = 0.0,
) -> optax.GradientTransformation:
  """SGD with coupled WD and optional heavy-ball momentum (PyTorch convention).

  Args:
    learning_rate: eta, a float or a schedule (function of the step count).
    weight_decay: lambda, a float or a schedule with its own count.
    momentum: beta in [0, 1); 0 skips the momentum buffer altogether.
  """
  return optax.chain(
      add_coupled_weight_decay(weight_decay),
      optax.trace(decay=momentum) if momentum else optax.identity(),
      optax.scale_by_learning_rate(learning_rate),
  )


def add_decoupled_weight_decay(
    weight_decay: optax.ScalarOrSchedule,
) -> optax.GradientTransformation:
  """Adds `lambda_t * w` to an update that is already preconditioned: decoupled WD (AdamW).

  The same transform as `add_coupled_weight_decay` (optax's `add_decayed_weights`, dtypes kept);
  what makes it decoupled is its place, AFTER the moment transform and before the LR, so that the
  step is w <- w - eta (u + lambda w): the decay per step is eta lambda (optax.adamw, PyTorch's
  AdamW, and the "eta lambda" of Kosson, Messmer & Jaggi 2024).
  """
  return add_coupled_weight_decay(weight_decay)


def rmsprop(
    learning_rate: optax.ScalarOrSchedule,
    weight_decay: optax.ScalarOrSchedule,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> optax.GradientTransformation:
  """RMSprop with coupled WD (L2): w <- w - eta h / (sqrt(v_hat) + eps), h = g + lambda w,
  v <- beta2 v + (1 - beta2) h^2, v_hat = v / (1 - beta2^t) (module docstring).

  `optax.scale_by_rms(beta2, eps, eps_in_sqrt=False, bias_correction=True)`, which is
  `optax.scale_by_adam(b1=0, b2=beta2)` without storing a first moment.
  """
  return optax.chain(
      add_coupled_weight_decay(weight_decay),
      optax.scale_by_rms(decay=beta2, eps=eps, eps_in_sqrt=False, bias_correction=True),
      optax.scale_by_learning_rate(learning_rate),
  )


def adam(
    learning_rate: optax.ScalarOrSchedule,
    weight_decay: optax.ScalarOrSchedule,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> optax.GradientTransformation:
  """Adam with coupled WD (L2 in the gradient): h = g + lambda w into `optax.scale_by_adam`,
  w <- w - eta m_hat / (sqrt(v_hat) + eps) (torch.optim.Adam with weight_decay = lambda)."""
  return optax.chain(
      add_coupled_weight_decay(weight_decay),
      optax.scale_by_adam(b1=beta1, b2=beta2, eps=eps),
      optax.scale_by_learning_rate(learning_rate),
  )


def adamw(
    learning_rate: optax.ScalarOrSchedule,
    weight_decay: optax.ScalarOrSchedule,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> optax.GradientTransformation:
  """AdamW (decoupled WD): w <- w - eta (m_hat / (sqrt(v_hat) + eps) + lambda w), the moments of
  the data gradient alone (optax.adamw, torch.optim.AdamW: the decay per step is eta lambda)."""
  return optax.chain(
      optax.scale_by_adam(b1=beta1, b2=beta2, eps=eps),
      add_decoupled_weight_decay(weight_decay),
      optax.scale_by_learning_rate(learning_rate),
  )


OPTIMIZERS = scaling.OPTIMIZERS  # 'sgd', 'rmsprop', 'adam', 'adamw' (config.optim.optimizer)


def make(
    name: str,
    learning_rate: optax.ScalarOrSchedule,
    weight_decay: optax.ScalarOrSchedule,
    *,
    momentum: float = 0.0,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> optax.GradientTransformation:
  """The optimizer `name` (one of `OPTIMIZERS`) with its LR and WD (floats or schedules, each with
  its own count); `momentum` is SGD's heavy ball, beta1 / beta2 / eps the adaptive optimizers'
  (each reads only its own: `scaling.uses`)."""
  if name == 'sgd':
    return sgd(learning_rate, weight_decay, momentum)
  if name == 'rmsprop':
    return rmsprop(learning_rate, weight_decay, beta2, eps)
  if name == 'adam':
    return adam(learning_rate, weight_decay, beta1, beta2, eps)
  if name == 'adamw':
    return adamw(learning_rate, weight_decay, beta1, beta2, eps)
  raise ValueError(f'unknown optimizer {name!r}; choose one of {", ".join(OPTIMIZERS)}')


def _times(value: optax.ScalarOrSchedule, factor: float) -> optax.ScalarOrSchedule:
  if factor == 1:
    return value
  if callable(value):
    return lambda count: value(count) * factor
  return value * factor


def adaptive_svag(
    l: float,
    name: str,
    learning_rate: optax.ScalarOrSchedule,
    weight_decay: optax.ScalarOrSchedule,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> optax.GradientTransformation:
  """SVAG(l) of RMSprop / Adam / AdamW (Malladi, Lyu, Panigrahi & Arora 2022): `svag(l)` in front
  of the optimizer run at the SVAG settings of `scaling.svag`.

  Given the optimizer's settings at batch B (eta, lambda, beta1, beta2, eps), the combined gradient
  c1 g1 + c2 g2 (l times the noise covariance of one batch) goes into `make(name, ...)` with
  eta / sqrt(l), 1 - beta_i -> (1 - beta_i) / l, eps -> sqrt(l) eps (adamw also lambda / sqrt(l)):
  l steps of it are one unit of the SDE's time (the paper's ell = sqrt(l); derivation in
  `svag_jax.scaling`). As for `svag`, the caller runs l times the steps and stretches
  step-indexed schedules by l (a schedule given here is multiplied by the LR / WD factor at each
  count). l = 1 is `make(name, ...)` on the first batch, bit for bit.

  Returns:
    A GradientTransformation whose input is the stacked pair [2, *param_shape] of
    `oracles.batch_gradient_pair`; its update needs `params` (WD).
  """
  if name not in scaling.ADAPTIVE:
    raise ValueError(f'adaptive_svag is for {", ".join(scaling.ADAPTIVE)}; use svag + sgd for sgd')
  base = scaling.Settings(1.0, 1.0, beta1, beta2, eps)
  s = scaling.svag(base, l, name)
  return optax.chain(
      svag(l),
      make(
          name,
          _times(learning_rate, s.lr),
          _times(weight_decay, s.wd),
          beta1=s.beta1,
          beta2=s.beta2,
          eps=s.eps,
      ),
  )


class SvagState(NamedTuple):
  """State of `svag`: empty (the combination has no memory)."""


def svag_coefficients(l: float) -> tuple[float, float]:
  """c1 = (1 + sqrt(2l - 1)) / 2, c2 = (1 - sqrt(2l - 1)) / 2 (Python floats, l >= 1).

  c1 + c2 = 1 and c1^2 + c2^2 = l, so for independent batches with gradient mean grad L and
  covariance Sigma, c1 g1 + c2 g2 has mean grad L and covariance l Sigma.
  """
  if not (isinstance(l, (int, float)) and math.isfinite(l) and l >= 1):
    raise ValueError(f'SVAG amplification l must be a finite number >= 1, got {l!r}')
  root = math.sqrt(2.0 * l - 1.0)
  return (1.0 + root) / 2.0, (1.0 - root) / 2.0


def svag(l: float) -> optax.GradientTransformation:
  """SVAG: combines two independent batch gradients into c1 g1 + c2 g2 (Li, Malladi & Arora 2021).

  Step on L^l = c1 L(gamma_1) + c2 L(gamma_2) with LR eta / l (Section 4, Lemma 4.7):

      w <- w - (eta / l) (c1 grad L(w; gamma_1) + c2 grad L(w; gamma_2) + lambda w).

  The step has mean -(eta/l) grad L and covariance (eta^2 / l) Sigma (its second moment is
  (eta^2 / l) Sigma + (eta^2 / l^2) grad L grad L^T), so l SVAG steps are one unit of SGD time and
  l -> infinity approaches the SDE of SGD. This transform only combines the gradients; the LR eta/l
  is the caller's: chain it in front of `sgd(lr / l, wd)` (WD unchanged), run l times the steps and
  stretch step-indexed schedules by l (plot against effective steps = steps / l). Lemma 4.7 is for
  plain SGD: use momentum = 0 with SVAG.

  l = 1 (c1 = 1, c2 = 0) returns g1 itself, bit for bit: the combination is skipped, because
  1 * g1 + 0 * g2 would not be g1 when g2 holds inf or nan (0 * inf = nan) or when g1 = -0.0
  (-0.0 + 0.0 = +0.0). So svag(1) followed by `sgd` is exactly SGD on the first batch.

  Args:
    l: the amplification, a Python number >= 1 (typically 1, 2, 4, 8, ...).

  Returns:
    A GradientTransformation whose input updates have every leaf stacked on a new leading axis of
    size 2 ([2, *param_shape], from `oracles.batch_gradient_pair`) and whose output updates have
    the parameters' shapes. State: `SvagState()` (empty).
  """
  c1, c2 = svag_coefficients(l)

  def init_fn(params):
    del params
    return SvagState()

  def update_fn(updates, state, params=None):
    del params
    for leaf in jax.tree.leaves(updates):
      if leaf.ndim == 0 or leaf.shape[0] != 2:
        raise ValueError(
            'svag expects every gradient leaf stacked on a leading axis of size 2 '
            f'(two batches, see oracles.batch_gradient_pair); got a leaf of shape {leaf.shape}'
        )
    if l == 1:
      return jax.tree.map(lambda g: g[0], updates), state
    return jax.tree.map(lambda g: c1 * g[0] + c2 * g[1], updates), state

  return optax.GradientTransformation(init_fn, update_fn)


class IsotropicNoiseState(NamedTuple):
  """State of `add_isotropic_noise`.

  Attributes:
    count: int32 scalar, updates so far; update t draws its noise from fold_in(key, t).
    key: the PRNG key given to the factory (typed or raw), unchanged across updates.
  """

  count: jax.Array
  key: jax.Array


def add_isotropic_noise(
    scale: optax.ScalarOrSchedule, key: jax.Array
) -> optax.GradientTransformation:
  """Adds scale * xi, xi ~ N(0, I), to the gradient: the "fixed Gaussian" view of the SDE noise.

  Noisy GD with isotropic noise (Li, Malladi & Arora 2021; contrast with the covariance-matched
  `oracles.ngd`): chained in front of `sgd(lr, wd)` on a full-batch gradient it gives
  w <- w - eta (grad L + lambda w + scale * xi), a step noise of covariance eta^2 scale^2 I.
  Noise of update t comes from fold_in(key, t) (split over the leaves), so it is reproducible and a
  resumed run draws the same noise; under vmap, give each trial its own key.

  Why not `optax.add_noise`: the trials of a run are one vmapped program and each trial's noise
  must come from its OWN key, derived from the trial's data key (`sampling.STREAM_NOISE`) and
  indexed by the update count, so that trial i draws the same noise whatever the number of trials,
  the chunking or a resume. `optax.add_noise` carries a key that it splits every update (the noise
  of update t depends on the whole chain of splits) and anneals its variance as
  eta / (1 + t)^gamma; here the noise of update t is a function of (key, t) alone and the scale a
  float or a schedule.

  Args:
    scale: the noise standard deviation per coordinate (float, or schedule of the update count).
    key: PRNG key (typed `jax.random.key` or raw uint32[2]).

  Returns:
    A GradientTransformation with state `IsotropicNoiseState`; noise has each leaf's dtype.
  """

  def init_fn(params):
    del params
    return IsotropicNoiseState(count=jnp.zeros([], jnp.int32), key=key)

  def update_fn(updates, state, params=None):
    del params
    s = scale(state.count) if callable(scale) else scale
    leaves, treedef = jax.tree.flatten(updates)
    keys = jax.random.split(jax.random.fold_in(state.key, state.count), len(leaves))
    noisy = [
        g + (s * jax.random.normal(k, g.shape, jnp.float32)).astype(g.dtype)
        for g, k in zip(leaves, keys)
    ]
    new_state = IsotropicNoiseState(count=optax.safe_increment(state.count), key=state.key)
    return jax.tree.unflatten(treedef, noisy), new_state

  return optax.GradientTransformation(init_fn, update_fn)


def opt_state_counts(opt_state: optax.OptState) -> list[jax.Array]:
  """Every `count` field in an optax state (the schedules' and the noise's update counts)."""
  found = []

  def visit(node):
    if hasattr(node, '_fields'):  # a NamedTuple state
      if 'count' in node._fields:
        found.append(node.count)
      for child in node:
        visit(child)
    elif isinstance(node, (tuple, list)):
      for child in node:
        visit(child)

  visit(opt_state)
  return found
