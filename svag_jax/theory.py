"""Closed forms of the two papers: LSR critical batch, SDE-validity test, equilibrium norm,
stationary effective LR.

All functions are plain arithmetic: they take Python floats, NumPy or JAX arrays (elementwise, e.g.
one value per trial) and work under jit. Reading them off a run record (B* from a baseline run's
G and N) is analysis/lsr.py's job: `python -m svag_jax.analysis.lsr --baseline WORKDIR`.

Notation (DESIGN.md section 2): eta LR, lambda WD, B batch size, R = E||w||^2, G = E||grad L(w)||^2
(full-batch gradient), N = E Tr Sigma_B(w) (batch-B gradient noise), lambda_e = eta lambda.
"""

from typing import Any

ArrayLike = Any  # float, np.ndarray or jax.Array


def _check_c2(c2: float) -> None:
  if isinstance(c2, (int, float)) and not c2 > 1:
    raise ValueError(f'C^2 must be > 1, got {c2!r}')


def lsr_critical_batch(n_over_g: ArrayLike, batch_size: ArrayLike, c2: float = 2.0) -> ArrayLike:
  """Predicted batch size beyond which the linear scaling rule fails: B* = C^2 (1 + N/G) B.

  Li, Malladi & Arora 2021, Theorem 5.6: scaling B by kappa (and eta by kappa) from a baseline at
  batch B with noise-to-signal ratio N/G cannot keep (C, kappa)-linear-scaling invariance when
  kappa > C^2 (1 + N/G).

  Args:
    n_over_g: N/G of the baseline run (measured at batch size `batch_size`, at equilibrium).
    batch_size: the baseline batch size B (examples).
    c2: C^2 > 1, the closeness constant; the paper's default 2.

  Returns:
    B* in examples (same shape as the broadcast inputs).
  """
  _check_c2(c2)
  return c2 * (1 + n_over_g) * batch_size


def sde_approximation_fails(n_over_g: ArrayLike, c2: float = 2.0) -> ArrayLike:
  """Theorem 5.2 of Li, Malladi & Arora 2021: SGD and SDE equilibria are not C-close when
  N/G < 1 / (C^2 - 1). Returns a bool (array) per input: True where the SDE view fails."""
  _check_c2(c2)
  return n_over_g < 1 / (c2 - 1)


def equilibrium_residual(
    lr: ArrayLike, wd: ArrayLike, r: ArrayLike, g: ArrayLike, n: ArrayLike
) -> ArrayLike:
  """(2 - eta lambda) lambda R - eta (G + N): zero at the SGD equilibrium of a scale-invariant loss.

  Li, Malladi & Arora 2021, eq. 10-11: for scale-invariant L, <grad L(w; B), w> = 0 for every batch,
  so ||w_{k+1}||^2 = (1 - eta lambda)^2 ||w_k||^2 + eta^2 ||grad L(w_k; B_k)||^2 exactly, and in
  expectation R_{k+1} - R_k = eta lambda (eta lambda - 2) R_k + eta^2 (G_k + N_k). At equilibrium
  (R_{k+1} = R_k) this residual vanishes.

  Args:
    lr: eta; wd: lambda; r: R = E||w||^2; g: G = E||grad L(w)||^2; n: N = E Tr Sigma_B(w).

  Returns:
    The residual, in units of lambda * ||w||^2 (divide by eta (G + N) for a relative one).
  """
  return (2 - lr * wd) * wd * r - lr * (g + n)


def equilibrium_sq_norm(lr: ArrayLike, wd: ArrayLike, unit_g_plus_n: ArrayLike) -> ArrayLike:
  """R at equilibrium, given G + N measured at unit norm (G_1 + N_1; G, N scale as 1/||w||^2).

  Solving (2 - eta lambda) lambda R = eta (G_1 + N_1) / R (treating E 1/||w||^2 as 1/R):
  R = sqrt(eta (G_1 + N_1) / ((2 - eta lambda) lambda)).
  """
  return (lr * unit_g_plus_n / ((2 - lr * wd) * wd)) ** 0.5


def stationary_effective_lr(intrinsic_lr: ArrayLike, sigma2: ArrayLike) -> ArrayLike:
  """The effective LR eta / ||w||^2 at equilibrium: gamma^{-1/2} = sqrt(2 lambda_e) / sigma.

  Li, Lyu & Arora 2020, Lemma 5.2: with lambda_e = eta lambda small and the squared gradient
  (noise) norm of the unit-norm direction ~ sigma^2, the effective LR converges in O(1/lambda_e)
  steps to sqrt(2 lambda_e) / sigma (first order in lambda_e of `equilibrium_sq_norm`).

  Args:
    intrinsic_lr: lambda_e = eta lambda (dimensionless per step).
    sigma2: sigma^2, the squared gradient norm (noise trace) at unit weight norm.

  Returns:
    The stationary effective LR (per step, in units of eta / ||w||^2).
  """
  return (2 * intrinsic_lr / sigma2) ** 0.5
