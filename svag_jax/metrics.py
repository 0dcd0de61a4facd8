"""Quantities the theory talks about, computed from one trial's state or from saved predictions.

Norms and learning rates (Li, Lyu & Arora 2020):
  - ||w||^2 of the scale-invariant group (all trainable params of the svag_jax models);
  - effective LR  eta / ||w||^2  (the LR felt by the unit-norm direction w / ||w||);
  - intrinsic LR  lambda_e = eta * lambda.
"""

from typing import Any

import jax
import jax.numpy as jnp


def tree_sq_norm(tree: Any) -> jax.Array:
  """Sum of squares of all leaves of a pytree (float32 scalar)."""
  return sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in jax.tree.leaves(tree))


def learning_rates(lr: jax.Array, wd: jax.Array, params: Any) -> dict[str, jax.Array]:
  """The norm-related metrics of one trial at LR `lr`, WD `wd` and weights `params`."""
  sq_norm = tree_sq_norm(params)
  return {
      'lr': lr,
      'wd': wd,
      'w_norm_sq': sq_norm,
      'effective_lr': lr / sq_norm,
      'intrinsic_lr': lr * wd,
  }
