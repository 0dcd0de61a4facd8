"""Tolerances for comparing floats, derived from float32 rounding and the sizes involved.

Two programs that compute the same function in float32 (jit vs eager, vmapped vs unbatched,
different chunkings, devices or CPU ISAs: SSE4.2 / AVX2 / AVX-512 change vector widths, FMA use
and hence the order of every sum) differ by their rounding errors, whose size does not depend on
the order. A sum or dot product of n terms s = sum_k t_k computed in any order has

  |fl(s) - s| <= lambda sqrt(n) u max_k |s_k|,   u = 2^-24 (float32 unit roundoff),

s_k its partial sums, with probability >= 1 - 2 exp(-lambda^2 / 2): the first-order error is
sum_k delta_k s_k with |delta_k| <= u, modelled as independent and mean zero (Higham & Mary 2019,
"A new approach to probabilistic rounding error analysis"), and Azuma's inequality bounds it; with
LAMBDA = 8 the bound fails with probability 3e-14. (The worst case, n u max |s_k|, needs every
rounding error to have the same sign.)
Pairwise / vectorised summation (what XLA emits) only lowers it. For the random-sign terms of
these tests max_k |s_k| is of the order of |s| (condition ~1; a test with a systematic
cancellation says so and passes `kappa`). A chain of such reductions (a net's forward and
backward pass) adds their relative errors: `chain_tol`. Element-wise ops (exp, log, rsqrt, ...)
add a few u each, which the `ELEMENTWISE` ulps per link cover.

Every comparison then reads: |got - want| <= tol * scale, with `scale` the magnitude of the terms
(normwise: max |want| of the array unless the test says otherwise).
"""

import math

import jax
import numpy as np

U32 = 2.0**-24  # float32 unit roundoff: |fl(x) - x| <= U32 |x|
LAMBDA = 8.0  # probabilistic bound's constant: failure probability 2 e^-32 per sum
ELEMENTWISE = 8.0  # ulps of element-wise functions (XLA's exp/log/tanh/rsqrt: <= ~4 ulp) per link


def sum_tol(n: int) -> float:
  """Relative error (to its largest partial sum) of a float32 sum / dot of `n` terms, any order."""
  return LAMBDA * math.sqrt(max(int(n), 1)) * U32


def chain_tol(lengths, kappa: float = 1.0) -> float:
  """Relative error of a chain of float32 reductions of `lengths` terms (plus element-wise ops).

  Each link contributes sum_tol(n_i) + ELEMENTWISE u; links add (first order). `kappa` is the
  condition number of the chain (how much the result cancels relative to its terms), 1 when the
  test's inputs keep every intermediate well conditioned.
  """
  return kappa * sum(sum_tol(n) + ELEMENTWISE * U32 for n in lengths)


def assert_close(got, want, tol: float, scale=None, err_msg: str = ''):
  """|got - want| <= tol (|want| + scale) element-wise, leaf by leaf for pytrees.

  scale: the magnitude of the terms each entry was summed from; default max |want| of the leaf
  (a normwise bound: an entry near 0 by cancellation may carry the error of its larger terms).
  """
  got_leaves, want_leaves = jax.tree.leaves(got), jax.tree.leaves(want)
  assert len(got_leaves) == len(want_leaves), (len(got_leaves), len(want_leaves))
  for g, w in zip(got_leaves, want_leaves):
    g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
    s = np.max(np.abs(w), initial=0.0) if scale is None else scale
    np.testing.assert_allclose(g, w, rtol=tol, atol=tol * s, err_msg=err_msg)
