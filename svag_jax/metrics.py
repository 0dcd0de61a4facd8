"""Quantities the theory talks about, computed from one trial's state or from saved predictions.

Norms and learning rates (Li, Lyu & Arora 2020):
  - ||w||^2 of the scale-invariant group (all trainable params of the svag_jax models);
  - effective LR  eta / ||w||^2  (the LR felt by the unit-norm direction w / ||w||);
  - intrinsic LR  lambda_e = eta * lambda.

Under the adaptive optimizers (RMSprop, Adam + L2, AdamW; svag_jax.theory, the note on them):
  - effective LR eta / ||w|| (their update does not scale with ||w||);
  - intrinsic LR lambda_e = eta lambda p, p = 1 for AdamW and the w^2-weighted mean of the inverse
    preconditioner 1 / (sqrt(v_hat) + eps) for coupled WD (`inverse_preconditioner`).

Gradient signal and noise at fixed weights (Li, Malladi & Arora 2021, Sec. 5):
  - G = ||grad L(w)||^2, N = Tr Sigma_B(w) (trace of the batch-B gradient covariance), NSR = N / G,
    estimated without bias from K independent batch gradients (`gradient_noise`,
    `batch_gradients`, `gradient_noise_metrics`).

Per scale-invariant group (`svag_jax.invariance`; `Groups`: ((name, ('/'-joined paths, ...)), ...)),
  - the same norms and rates restricted to the group (`group_norms`, `group_gradient_noise`; both
    are additive over a partition: the groups' ||w||^2, G and N sum to those of their union), and
    under an adaptive optimizer the group's own intrinsic LR (`group_adaptive_intrinsic_lrs`);
  - the angular update, the angle between w_t and w_{t+1} (`angle`, `group_angles`): at the
    equilibrium of SGD with coupled WD, sqrt(2 eta lambda / (1 + beta)) per step, and of the
    adaptive optimizers sqrt(2 lambda_e,S (1 - beta1) / (1 + beta1)) (`theory.
    rotational_angular_update`; Kosson, Messmer & Jaggi 2024, "rotational equilibrium").
"""

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import traverse_util

from svag_jax import oracles, theory

Groups = Sequence[tuple[str, Sequence[str]]]


def tree_sq_norm(tree: Any) -> jax.Array:
  """Sum of squares of all leaves of a pytree (float32 scalar)."""
  return sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in jax.tree.leaves(tree))


def learning_rates(
    lr: jax.Array, wd: jax.Array, params: Any, momentum: float = 0.0
) -> dict[str, jax.Array]:
  """The norm-related metrics of one trial at LR `lr`, WD `wd` and weights `params`, trained with
  heavy-ball `momentum`: `intrinsic_lr` = eta lambda (the papers' axis) and
  `intrinsic_lr_momentum` = eta lambda / (1 - beta), the rate of the norm dynamics with momentum
  (svag_jax.theory.intrinsic_lr; the derivation is at the end of svag_jax/theory.py)."""
  sq_norm = tree_sq_norm(params)
  return {
      'lr': lr,
      'wd': wd,
      'w_norm_sq': sq_norm,
      'effective_lr': lr / sq_norm,
      'intrinsic_lr': lr * wd,
      'intrinsic_lr_momentum': theory.intrinsic_lr(lr, wd, momentum),
  }


def second_moment(opt_state: Any) -> tuple[Any, jax.Array] | None:
  """(nu, count) of the first optax state in `opt_state` with a second moment `nu` (optax's
  `ScaleByAdamState` / `ScaleByRmsWithCountState`), or None (SGD)."""

  def visit(node):
    if isinstance(node, tuple) and hasattr(node, '_fields'):  # a NamedTuple state
      if 'nu' in node._fields and 'count' in node._fields:
        return node.nu, node.count
    if isinstance(node, (tuple, list)):
      for child in node:
        found = visit(child)
        if found is not None:
          return found
    return None

  return visit(opt_state)


def inverse_preconditioner(
    params: Any, nu: Any, count: jax.Array, beta2: float, eps: float
) -> jax.Array:
  """p = sum_i w_i^2 / (sqrt(v_hat_i) + eps) / ||w||^2: the rate at which the preconditioner
  passes a radial term lambda w (coupled WD) through, per unit of lambda (float32 scalar).

  v_hat = nu / (1 - beta2^count), optax's bias correction (count >= 1: after the first step).
  """
  correction = 1 - jnp.asarray(beta2, jnp.float32) ** jnp.maximum(count, 1).astype(jnp.float32)
  num = sum(
      jnp.sum(jnp.square(w.astype(jnp.float32)) / (jnp.sqrt(v / correction) + eps))
      for w, v in zip(jax.tree.leaves(params), jax.tree.leaves(nu))
  )
  return num / tree_sq_norm(params)


class AdaptiveSettings(NamedTuple):
  """What `adaptive_learning_rates` needs to know of the run's optimizer (per-step values)."""

  optimizer: str  # 'rmsprop', 'adam' or 'adamw'
  beta2: float
  eps: float


def adaptive_learning_rates(
    lr: jax.Array, wd: jax.Array, params: Any, opt_state: Any, settings: AdaptiveSettings
) -> dict[str, jax.Array]:
  """`effective_lr_adaptive` = eta / ||w|| and `intrinsic_lr_adaptive` = eta lambda p of one trial
  trained by an adaptive optimizer (`theory.adaptive_effective_lr`, `theory.adaptive_intrinsic_lr`;
  p = 1 for AdamW, `inverse_preconditioner` of the optimizer's second moment otherwise)."""
  sq_norm = tree_sq_norm(params)
  p = jnp.ones([], jnp.float32)
  if settings.optimizer != 'adamw':
    nu, count = second_moment(opt_state)
    p = inverse_preconditioner(params, nu, count, settings.beta2, settings.eps)
  return {
      'effective_lr_adaptive': theory.adaptive_effective_lr(lr, sq_norm),
      'intrinsic_lr_adaptive': theory.adaptive_intrinsic_lr(lr, wd, p),
  }


def group_adaptive_intrinsic_lrs(
    lr: jax.Array,
    wd: jax.Array,
    params: Any,
    opt_state: Any,
    settings: AdaptiveSettings,
    groups: Groups,
) -> dict[str, jax.Array]:
  """{group: lambda_e of the group} under an adaptive optimizer: eta lambda p_S, p_S the
  `inverse_preconditioner` of the group's own weights and second moments (p_S = 1 for AdamW).
  The whole net's p is the ||w_S||^2-weighted mean of the groups' p_S over a partition, so the
  groups of one net can relax at different rates under coupled WD (Adam + L2, RMSprop)."""
  if settings.optimizer == 'adamw':
    return {name: lr * wd for name, _ in groups}
  nu, count = second_moment(opt_state)
  w, v = leaves_by_path(params), leaves_by_path(nu)
  return {
      name: theory.adaptive_intrinsic_lr(
          lr, wd, inverse_preconditioner(
              [w[p] for p in members], [v[p] for p in members], count, settings.beta2,
              settings.eps,
          ),
      )
      for name, members in groups
  }  # fmt: skip


def leaves_by_path(tree: Any) -> dict[str, jax.Array]:
  """{'/'-joined path: leaf} of a pytree of nested dicts (Flax params)."""
  return traverse_util.flatten_dict(tree, sep='/')


def group_norms(lr: jax.Array, params: Any, groups: Groups) -> dict[str, dict[str, jax.Array]]:
  """{group: {'w_norm_sq': ||w_S||^2, 'effective_lr': lr / ||w_S||^2}} (float32 scalars)."""
  leaves = leaves_by_path(params)
  out = {}
  for name, members in groups:
    sq = tree_sq_norm([leaves[p] for p in members])
    out[name] = {'w_norm_sq': sq, 'effective_lr': lr / sq}
  return out


def angle(old: Any, new: Any) -> jax.Array:
  """The angle (radians, float32) between two weight vectors given as pytrees of equal structure.

  atan2(||u_perp||, ||w|| + <u, w>/||w||) with u = new - old and u_perp its part orthogonal to
  old: accurate for the small angles of one SGD step, where arccos of the cosine is not (1 - cos
  ~ 1e-7 is at float32's resolution for an angle of ~5e-4).

    >>> import jax.numpy as jnp
    >>> round(float(angle({'w': jnp.array([1.0, 0.0])}, {'w': jnp.array([1.0, 1.0])})), 6)  # pi/4
    0.785398
  """
  w = [x.astype(jnp.float32) for x in jax.tree.leaves(old)]
  u = [y.astype(jnp.float32) - x for x, y in zip(w, jax.tree.leaves(new))]
  norm = jnp.sqrt(tree_sq_norm(w))
  radial = sum(jnp.vdot(a, b) for a, b in zip(u, w)) / norm
  perp = jnp.sqrt(tree_sq_norm([a - (radial / norm) * b for a, b in zip(u, w)]))
  return jnp.arctan2(perp, norm + radial)


def group_angles(old: Any, new: Any, groups: Groups) -> dict[str, jax.Array]:
  """{group: `angle` between the group's weights in params `old` and `new`}."""
  a, b = leaves_by_path(old), leaves_by_path(new)
  return {name: angle([a[p] for p in ps], [b[p] for p in ps]) for name, ps in groups}


def group_gradient_noise(batch_grads: Any, groups: Groups) -> dict[str, dict[str, jax.Array]]:
  """{group: `gradient_noise` of the K batch gradients restricted to the group's tensors}."""
  leaves = leaves_by_path(batch_grads)
  return {name: gradient_noise([leaves[p] for p in members]) for name, members in groups}


def gradient_noise(batch_grads: Any) -> dict[str, jax.Array]:
  """Unbiased G, N and NSR from K >= 2 independent batch gradients at the same weights.

  With g_1..g_K i.i.d. of mean grad L and covariance Sigma_B (DESIGN.md section 2):

      ḡ = mean_k g_k,   N̂ = sum_k ||g_k - ḡ||^2 / (K - 1),   Ĝ = ||ḡ||^2 - N̂ / K,

  E N̂ = Tr Sigma_B = N and E Ĝ = ||grad L||^2 = G (as E||ḡ||^2 = G + N / K). NSR = N̂ / Ĝ is a
  ratio of estimates (consistent, not unbiased; Ĝ can be <= 0 when N / K >> G: then NSR is
  negative or inf, meaning "K too small"). N̂ estimates the covariance of whatever batches were
  drawn: Sigma_1 / B with replacement, (N - B) / (N - 1) of that without.

  Args:
    batch_grads: pytree whose leaves are [K, *param_shape] (e.g. from `batch_gradients`).

  Returns:
    {'G': Ĝ, 'N': N̂, 'NSR': N̂ / Ĝ}, float32 scalars (squared gradient units).

  Example (run by tests/test_docstring_examples.py): K = 4 gradients of one 2-vector, mean (2, 0),
  N̂ = (1 + 1 + 4 + 4) / 3, Ĝ = 4 - N̂ / 4::

    >>> import jax.numpy as jnp
    >>> g = {'w': jnp.array([[1.0, 0.0], [3.0, 0.0], [2.0, 2.0], [2.0, -2.0]])}
    >>> {k: round(float(v), 4) for k, v in gradient_noise(g).items()}
    {'G': 3.1667, 'N': 3.3333, 'NSR': 1.0526}
  """
  leaves = [x.astype(jnp.float32) for x in jax.tree.leaves(batch_grads)]
  k = leaves[0].shape[0]
  if k < 2:
    raise ValueError(f'G/N estimation needs K >= 2 batch gradients, got K = {k}')
  means = [jnp.mean(x, axis=0) for x in leaves]
  mean_sq = sum(jnp.sum(jnp.square(m)) for m in means)
  noise = sum(jnp.sum(jnp.square(x - m)) for x, m in zip(leaves, means)) / (k - 1)
  signal = mean_sq - noise / k
  return {'G': signal, 'N': noise, 'NSR': noise / signal}


def batch_gradients(
    loss_fn: oracles.LossFn, params: Any, images: Any, labels: jax.Array, unroll: int | bool = 1
) -> tuple[Any, jax.Array]:
  """The K minibatch gradients of one trial at fixed weights: data loss only, nothing updated.

  Each batch is one `oracles.batch_gradient` pass (a BatchNorm net normalises it with its own batch
  statistics, as in training), the model_aux (new running statistics) is dropped, so the trial's
  state is untouched; no WD term is added (`loss_fn` is the data loss).

  Args:
    loss_fn: the oracles' loss interface (see `svag_jax.oracles`).
    params: the weights w.
    images: K independent batches [K, B, ...] at the training batch size B (for SVAG runs: B,
      not 2B); labels: [K, B].
    unroll: `lax.scan` unroll over the K batches (True on CPU for conv nets, jax#12868).

  Returns:
    (grads, losses): every grads leaf is [K, *param_shape]; losses float32 [K] (batch mean losses).
  """

  def body(_, batch):
    x, y = batch
    grads, (loss, _) = oracles.batch_gradient(loss_fn, params, x, y)
    return None, (grads, loss)

  _, (grads, losses) = jax.lax.scan(body, None, (images, labels), unroll=unroll)
  return grads, losses


def gradient_noise_metrics(
    loss_fn: oracles.LossFn, params: Any, images: Any, labels: jax.Array, unroll: int | bool = 1
) -> dict[str, jax.Array]:
  """`gradient_noise` of the K `batch_gradients` of [K, B, ...] batches, plus 'gn_loss' (their mean
  batch loss). The trial's parameters and BatchNorm statistics are not changed (per group:
  `group_gradient_noise` of the same batch gradients).

  Example, in your own loop (`loss_fn` as the oracles take it; run by
  tests/test_docstring_examples.py): a linear least-squares model, K = 8 batches of B = 16::

    >>> import jax, jax.numpy as jnp
    >>> def loss_fn(params, x, y, weights=None):
    ...   return jnp.mean((x @ params['w'] - y) ** 2), {}  # (loss, model_aux): no BatchNorm
    >>> x = jax.random.normal(jax.random.key(0), (8, 16, 3))  # [K, B, features]
    >>> y = x @ jnp.array([1.0, -2.0, 0.5]) + jax.random.normal(jax.random.key(1), (8, 16))
    >>> out = gradient_noise_metrics(loss_fn, {'w': jnp.zeros(3)}, x, y)
    >>> sorted(out), bool(out['G'] > 0 and out['N'] > 0)
    (['G', 'N', 'NSR', 'gn_loss'], True)
  """
  grads, losses = batch_gradients(loss_fn, params, images, labels, unroll)
  return {**gradient_noise(grads), 'gn_loss': jnp.mean(losses)}
