"""The array work of the search for scale-invariant groups (`svag_jax.invariance`, whose module
docstring gives the algorithm): the rescaling derivatives V of one probe (step 2), the losses of
rescaled tensors (step 4), the null space of V and the smallest group in it, a linear program
(step 3)."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

# The linear program's slack on x >= 0, and how close to 0 / 1 its solution must be.
_SLACK = 1e-3
_INTEGRAL_TOL = 1e-2


def rescaling_jvps(per_example: Callable, leaves: list[jax.Array]) -> jax.Array:
  """V of one probe: [n, m], column i = d/dt per_example(leaf i -> (1 + t) leaf i) at t = 0 (one
  forward-mode pass per tensor, in one compiled loop)."""
  m = len(leaves)

  def column(i):
    tangents = [jnp.where(i == j, x, jnp.zeros_like(x)) for j, x in enumerate(leaves)]
    return jax.jvp(per_example, (leaves,), (tangents,))[1]

  return jax.jit(lambda ls: jax.lax.map(column, jnp.arange(m)).T)(leaves)


def scaled_losses(per_example: Callable) -> Callable:
  """(leaves, scales [k, m]) -> [k, n]: the per-example losses with tensor j times scales[r, j]."""

  def losses(leaves, scales):
    def one(row):
      return per_example([x * row[j] for j, x in enumerate(leaves)])

    return jax.lax.map(one, scales)

  return losses


def null_space(matrix: np.ndarray, tol: float) -> np.ndarray:
  """Orthonormal basis [columns, d] of the right null space (singular values <= tol)."""
  if matrix.shape[1] == 0:
    return np.zeros((0, 0))
  _, s, vt = np.linalg.svd(matrix, full_matrices=True)
  s = np.concatenate([s, np.zeros(vt.shape[0] - s.size)])
  return vt[s <= tol].T


def smallest_set(basis: np.ndarray, seed: int, taken: np.ndarray) -> np.ndarray | None:
  """Indices of the smallest set containing `seed` and none of `taken` whose indicator is
  `basis @ theta` for some theta (a linear program), or None (no such 0/1 vector).

  The indicator of a group is in the numerical null space only up to rounding (~1e-6 relative),
  so the program asks for x >= -_SLACK instead of x >= 0 and rounds its solution.
  """
  from scipy import optimize  # noqa: PLC0415 (scipy: only when groups are searched)

  free = ~taken
  a_ub = np.concatenate([-basis[free], basis[taken], -basis[taken]])
  b_ub = np.full(a_ub.shape[0], _SLACK)
  result = optimize.linprog(
      c=basis[free].sum(axis=0),
      A_ub=a_ub,
      b_ub=b_ub,
      A_eq=basis[seed : seed + 1],
      b_eq=[1.0],
      bounds=[(None, None)] * basis.shape[1],
      method='highs',
  )
  if result.status != 0:
    return None
  x = basis @ result.x
  ones = np.abs(x - 1) <= _INTEGRAL_TOL
  if not np.all(ones | (np.abs(x) <= _INTEGRAL_TOL)):
    return None
  return np.flatnonzero(ones)
