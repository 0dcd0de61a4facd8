"""Gradient oracles: how the gradient of one optimizer step is estimated, for ONE trial.

Each oracle is a pure function of a loss function, the parameters and the data it needs (and a key
when it draws randomness). It returns `(grads, (loss, model_aux))`; everything applied to the
gradients afterwards (SVAG combination, WD, LR, momentum, isotropic noise) is an optax transform in
`svag_jax/optim.py`. The oracles do not know about the training loop: it is their caller's job to
pick batch indices and to decide what to do with `model_aux` (e.g. the new BatchNorm statistics).

The loss interface (`LossFn`), shared with the G/N estimators of `svag_jax/metrics.py`:

    loss_fn(params, images, labels, weights=None) -> (loss, model_aux)

  - images: any array (or pytree of arrays) with a leading example axis [n, ...] that `loss_fn`
    understands (e.g. uint8 pixels normalised inside `loss_fn`); labels: [n].
  - weights None: `loss` is the mean of the per-example losses l_i(w) (float32 scalar).
  - weights float32 [n]: `loss` is the weighted SUM  sum_i weights_i l_i(w)  (not normalised).
  - model_aux: the model state the pass changed, e.g. `{'batch_stats': ...}` of a BatchNorm net in
    training mode; an EMPTY pytree (`{}`, `None`, `()`) for a batch-independent net. The full-batch
    oracles use this to refuse batch-dependent models.
  - `loss_fn` must be the data loss only: WD is a separate transform
    (`optim.add_coupled_weight_decay`).

Oracles (Li, Malladi & Arora 2021, "On the validity of modeling SGD with SDEs"):
  - `batch_gradient`:      grad L(w; gamma), one batch gamma of size B (oracle 'sgd').
  - `batch_gradient_pair`: grad L(w; gamma_1), grad L(w; gamma_2) for two independent batches of
    size B, each in its own forward pass (a BatchNorm net normalises each with its own statistics),
    stacked on a new leading axis of size 2 for the optax transform `optim.svag(l)` to combine
    (Section 4; oracle 'svag').
  - `ngd`: grad L(w) + eps, eps ~ N(0, Sigma_1 / B), exactly, from Gaussian per-example loss
    weights over a fixed subset of N examples (the noisy GD of Fig. 1); derivation in `ngd`.
  - `gd`:  grad L(w), the full-batch gradient over the same subset.
The names 'sgd' and 'svag' are the methods (config.optim.oracle) and the optax chains
(`optim.sgd`, `optim.svag`); the gradient estimators are named for what they return.
The full-batch oracles run over the subset in chunks of `chunk_size` examples (a `lax.scan` that
sums the chunks' gradients), so memory is that of one chunk, not of N examples.

`ORACLES` is the table of all of them by name (config.optim.oracle): the function with one common
signature, how many independent batches of B a step draws (0: the fixed training set) and hence
its cost in images per step. SVAG's time change (LR / l, l times the steps, schedules stretched by
l) is `schedules.SvagTime`.
"""

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

Params = Any
LossFn = Callable[..., tuple[jax.Array, Any]]


def _value_and_grad(
    loss_fn: LossFn,
    params: Params,
    images: Any,
    labels: jax.Array,
    weights: jax.Array | None = None,
) -> tuple[Params, tuple[jax.Array, Any]]:
  if weights is None:
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, images, labels)
  else:
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, images, labels, weights)
  return grads, (loss, aux)


def batch_gradient(
    loss_fn: LossFn, params: Params, images: Any, labels: jax.Array
) -> tuple[Params, tuple[jax.Array, Any]]:
  """The minibatch gradient grad L(w; gamma) of one batch.

  Args:
    loss_fn: see the module docstring.
    params: the weights w.
    images: the batch's inputs [B, ...]; labels: [B].

  Returns:
    (grads, (loss, model_aux)): grads like `params`, the mean batch loss (scalar) and `loss_fn`'s
    model_aux (e.g. the new BatchNorm statistics).
  """
  return _value_and_grad(loss_fn, params, images, labels)


def batch_gradient_pair(
    loss_fn: LossFn, params: Params, images: Any, labels: jax.Array
) -> tuple[Params, tuple[jax.Array, Any]]:
  """The two independent minibatch gradients that SVAG combines (Li, Malladi & Arora 2021, Sec. 4).

  Each batch has its own forward and backward pass (two unrolled calls, not a vmap: XLA:CPU runs
  vmapped convolutions as slow grouped convolutions), so a BatchNorm net normalises each batch
  with its own statistics, as SVAG requires.

  Args:
    loss_fn: see the module docstring.
    params: the weights w.
    images: the two batches' inputs [2, B, ...] (two INDEPENDENT draws); labels: [2, B].

  Returns:
    (grads, (losses, model_aux)): every grads leaf is [2, *param_shape] (batch 1, batch 2), to be
    combined by `optim.svag(l)`; losses float32 [2]; model_aux stacked on a leading axis [2, ...]
    (merged into the step's model state by `svag_model_state`).
  """
  n = labels.shape[0]
  if n != 2:
    raise ValueError(f'batch_gradient_pair needs two batches stacked on axis 0, got {n}')
  outs = [
      _value_and_grad(loss_fn, params, jax.tree.map(lambda x: x[j], images), labels[j])
      for j in range(2)
  ]
  return jax.tree.map(lambda a, b: jnp.stack([a, b]), outs[0], outs[1])


def svag_model_state(model_aux: Any, l: int) -> Any:
  """The model state after one SVAG step (e.g. a BatchNorm net's running statistics), from the
  `model_aux` of its two passes (`batch_gradient_pair`: leaves stacked [2, ...]).

  SVAG normalises each of its two batches with that batch's own statistics (each pass is a
  training pass of its batch); the running statistics then take batch 1's update for l = 1, so
  that SVAG with l = 1 is SGD bit for bit (batch 1 is SGD's batch), and the mean of the two
  updates for l > 1 (both batches are the step's data). A batch-independent model has an empty
  model_aux, returned as it is. `svag_jax.train.Trainer` applies this rule.

  Example (run by tests/test_docstring_examples.py)::

    >>> import jax.numpy as jnp
    >>> aux = {'batch_stats': {'mean': jnp.array([[0.0, 2.0], [4.0, 6.0]])}}  # [2 passes, C]
    >>> svag_model_state(aux, l=1)['batch_stats']['mean'].tolist()
    [0.0, 2.0]
    >>> svag_model_state(aux, l=4)['batch_stats']['mean'].tolist()
    [2.0, 4.0]
  """
  take = (lambda x: x[0]) if l == 1 else (lambda x: jnp.mean(x, axis=0))
  return jax.tree.map(take, model_aux)


def ngd_weights(key: jax.Array, num_examples: int, batch_size: int) -> jax.Array:
  """Per-example loss weights float32 [N] of NGD: 1/N + (z_i - mean(z)) / sqrt(N B), z ~ N(0, I_N).

  sum_i weights_i = 1 exactly in expectation and up to rounding for every draw.
  """
  z = jax.random.normal(key, (num_examples,), jnp.float32)
  return 1.0 / num_examples + (z - jnp.mean(z)) / math.sqrt(num_examples * batch_size)


def weighted_gradient(
    loss_fn: LossFn,
    params: Params,
    images: Any,
    labels: jax.Array,
    weights: jax.Array,
    chunk_size: int,
    unroll: int | bool = 1,
) -> tuple[Params, jax.Array]:
  """grad_w sum_i weights_i l_i(w) over N examples, in chunks of `chunk_size` examples.

  The sum is taken chunk by chunk in a `lax.scan` (memory of one chunk). If N is not a multiple of
  `chunk_size` the last chunk is padded with copies of the first examples with weight 0 (real
  examples, so their losses are finite and 0 * grad is exactly 0).

  Args:
    loss_fn: see the module docstring; must return an empty model_aux (batch-independent model):
      a batch-dependent normalization (BatchNorm in training mode) would normalise each chunk with
      that chunk's statistics, so the result would be neither the full-batch gradient nor NGD.
    params: the weights w.
    images: inputs [N, ...]; labels: [N]; weights: float32 [N].
    chunk_size: examples per forward/backward pass (clipped to N).
    unroll: `lax.scan` unroll over chunks (True on CPU for conv nets, jax#12868).

  Returns:
    (grads, loss): grads like `params`; loss = sum_i weights_i l_i(w) (float32 scalar).

  Raises:
    ValueError: if `loss_fn` returns a non-empty model_aux (e.g. BatchNorm statistics).
  """
  n = labels.shape[0]
  chunk = max(1, min(int(chunk_size), n))
  num_chunks = -(-n // chunk)
  pad = num_chunks * chunk - n
  if pad:
    take = jnp.arange(num_chunks * chunk) % n
    images = jax.tree.map(lambda x: x[take], images)
    labels = labels[take]
    weights = jnp.concatenate([weights, jnp.zeros((pad,), weights.dtype)])
  chunked = jax.tree.map(
      lambda x: x.reshape(num_chunks, chunk, *x.shape[1:]), (images, labels, weights)
  )

  def body(carry, xs):
    grads_sum, loss_sum = carry
    x, y, w = xs
    grads, (loss, aux) = _value_and_grad(loss_fn, params, x, y, w)
    if jax.tree.leaves(aux):
      raise ValueError(
          'full-batch and NGD gradients need per-example losses that do not depend on the batch, '
          'but loss_fn returned model state (BatchNorm statistics?): '
          f'{jax.tree.structure(aux)}. Use a batch-independent normalization '
          "(config.model.norm = 'group' or 'layer')."
      )
    grads_sum = jax.tree.map(jnp.add, grads_sum, grads)
    return (grads_sum, loss_sum + loss), None

  zeros = jax.tree.map(jnp.zeros_like, params)
  (grads, loss), _ = jax.lax.scan(body, (zeros, jnp.zeros([], jnp.float32)), chunked, unroll=unroll)
  return grads, loss


def ngd(
    loss_fn: LossFn,
    params: Params,
    images: Any,
    labels: jax.Array,
    key: jax.Array,
    batch_size: int,
    chunk_size: int,
    unroll: int | bool = 1,
) -> tuple[Params, tuple[jax.Array, Any]]:
  """Noisy GD with covariance-matched Gaussian noise: grad L(w) + eps, eps ~ N(0, Sigma_1 / B).

  With z_i ~ N(0, 1) i.i.d. (fresh each step: pass a fresh `key`) and g_i = grad l_i(w),
  ḡ = grad L(w) = mean_i g_i, the gradient of the weighted loss with weights
  `1/N + (z_i - z̄)/sqrt(N B)` is

      sum_i [1/N + (z_i - z̄)/sqrt(N B)] g_i = ḡ + eps,   eps = (N B)^{-1/2} sum_i z_i (g_i - ḡ)

  (because sum_i (z_i - z̄) g_i = sum_i z_i (g_i - ḡ)). eps is an exact Gaussian with mean 0 and

      Cov eps = (1 / (N B)) sum_i (g_i - ḡ)(g_i - ḡ)^T = Sigma_1 / B,

  where Sigma_1 = (1/N) sum_i (g_i - ḡ)(g_i - ḡ)^T is the covariance of ONE uniformly drawn
  example's gradient: Sigma_1 / B is exactly the covariance of the minibatch gradient of B examples
  drawn uniformly WITH replacement (the NGD of Li, Malladi & Arora 2021, Fig. 1). Without
  replacement the SGD covariance is smaller by (N - B)/(N - 1). No per-example gradient is formed.

  Args:
    loss_fn: see the module docstring; the model must be batch-independent (no BatchNorm).
    params: the weights w.
    images: the fixed subset's inputs [N, ...] (no augmentation); labels: [N].
    key: PRNG key of this step's z.
    batch_size: B of the SGD whose noise is matched.
    chunk_size: examples per pass (memory bound); the result does not depend on it (up to
      float32 summation order).
    unroll: `lax.scan` unroll over chunks.

  Returns:
    (grads, (loss, {})): the noisy gradient and the weighted loss sum_i weights_i l_i(w).

  Raises:
    ValueError: for a batch-dependent model (BatchNorm statistics in model_aux).
  """
  n = labels.shape[0]
  weights = ngd_weights(key, n, batch_size)
  grads, loss = weighted_gradient(loss_fn, params, images, labels, weights, chunk_size, unroll)
  return grads, (loss, {})


def gd(
    loss_fn: LossFn,
    params: Params,
    images: Any,
    labels: jax.Array,
    chunk_size: int,
    unroll: int | bool = 1,
) -> tuple[Params, tuple[jax.Array, Any]]:
  """The full-batch gradient grad L(w) = mean_i grad l_i(w) over a fixed subset, chunked.

  Args:
    loss_fn: see the module docstring; the model must be batch-independent (a BatchNorm net would
      normalise each chunk separately).
    params: the weights w.
    images: the subset's inputs [N, ...]; labels: [N].
    chunk_size: examples per pass; unroll: `lax.scan` unroll over chunks.

  Returns:
    (grads, (loss, {})): grad L(w) and the full-batch mean loss L(w).

  Raises:
    ValueError: for a batch-dependent model (BatchNorm statistics in model_aux).
  """
  n = labels.shape[0]
  weights = jnp.full((n,), 1.0 / n, jnp.float32)
  grads, loss = weighted_gradient(loss_fn, params, images, labels, weights, chunk_size, unroll)
  return grads, (loss, {})


# ---- The table: name -> oracle. ----


def _sgd_entry(loss_fn, params, images, labels, key, batch_size, chunk_size, unroll):
  del key, batch_size, chunk_size, unroll
  return batch_gradient(loss_fn, params, images, labels)


def _svag_entry(loss_fn, params, images, labels, key, batch_size, chunk_size, unroll):
  del key, batch_size, chunk_size, unroll
  return batch_gradient_pair(loss_fn, params, images, labels)


def _ngd_entry(loss_fn, params, images, labels, key, batch_size, chunk_size, unroll):
  return ngd(loss_fn, params, images, labels, key, batch_size, chunk_size, unroll)


def _gd_entry(loss_fn, params, images, labels, key, batch_size, chunk_size, unroll):
  del key, batch_size
  return gd(loss_fn, params, images, labels, chunk_size, unroll)


class Oracle(NamedTuple):
  """An entry of `ORACLES`.

  Attributes:
    gradient: `gradient(loss_fn, params, images, labels, key, batch_size, chunk_size, unroll)
      -> (grads, (loss, model_aux))`, one signature for all: images / labels are the step's
      batch [B, ...] (one batch), the two batches [2, B, ...] (two) or the whole fixed training set
      [N, ...] (full batch); `key` is the step's noise key (read by ngd only); batch_size is B
      (ngd: the B whose noise is matched); chunk_size and unroll are the full-batch passes'.
    batches: independent batches of B drawn per step: 1 (sgd), 2 (svag), 0 (full batch).
  """

  gradient: Callable[..., tuple[Params, tuple[jax.Array, Any]]]
  batches: int

  @property
  def full_batch(self) -> bool:
    """Whether the oracle reads the fixed training set instead of sampled batches."""
    return self.batches == 0

  def images_per_step(self, batch_size: int, num_train: int) -> int:
    """Forward/backward passes of one step, in images: batches x B, or N for full batch."""
    return self.batches * batch_size if self.batches else num_train


ORACLES: dict[str, Oracle] = {
    'sgd': Oracle(_sgd_entry, 1),
    'svag': Oracle(_svag_entry, 2),
    'ngd': Oracle(_ngd_entry, 0),
    'gd': Oracle(_gd_entry, 0),
}


def get(name: str) -> Oracle:
  """`ORACLES[name]`, with an error naming the known oracles."""
  if name not in ORACLES:
    raise ValueError(f'unknown oracle {name!r}; choose one of {", ".join(ORACLES)}')
  return ORACLES[name]
