"""The papers' optimizer as an optax chain: coupled weight decay, heavy-ball momentum, -LR.

    u_t = g_t + lambda_t w_t              (coupled WD, with its own schedule)
    v_t = beta v_{t-1} + u_t              (heavy ball, PyTorch convention; skipped when beta = 0)
    w_{t+1} = w_t - eta_t v_t

With beta = 0 this is exactly `w <- (1 - eta lambda) w - eta grad L(w; B_t)` (Li, Lyu & Arora 2020;
Li, Malladi & Arora 2021). WD is *coupled*: it is added to the gradient before momentum, not
decoupled as in AdamW. The LR and WD schedules each keep their own step count.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class CoupledWeightDecayState(NamedTuple):
  """State of `add_coupled_weight_decay`: the number of updates so far (int32 scalar)."""

  count: jax.Array


def add_coupled_weight_decay(weight_decay: optax.ScalarOrSchedule) -> optax.GradientTransformation:
  """Adds `lambda_t * w` to the gradient, with `lambda_t = weight_decay(count)` if a schedule.

  Args:
    weight_decay: a float, or a function of the update count (int32 scalar) returning lambda_t.

  Returns:
    A GradientTransformation whose update needs `params`.
  """

  def init_fn(params):
    del params
    return CoupledWeightDecayState(count=jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None):
    if params is None:
      raise ValueError('add_coupled_weight_decay needs params: call update(grads, state, params)')
    wd = weight_decay(state.count) if callable(weight_decay) else weight_decay
    updates = jax.tree.map(lambda g, w: g + wd * w, updates, params)
    return updates, CoupledWeightDecayState(count=optax.safe_increment(state.count))

  return optax.GradientTransformation(init_fn, update_fn)


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
