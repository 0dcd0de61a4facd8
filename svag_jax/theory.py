"""Closed forms of the two papers: LSR critical batch, SDE-validity test, equilibrium norm,
stationary effective LR, relaxation and mixing times after a schedule change; and for the adaptive
optimizers (RMSprop, Adam + L2, AdamW): their effective and intrinsic LR, the rotational
equilibrium (Kosson, Messmer & Jaggi 2024) and the SDE constants that SVAG and the square-root
rule keep (Malladi, Lyu, Panigrahi & Arora 2022).

All functions are plain arithmetic: they take Python floats, NumPy or JAX arrays (elementwise, e.g.
one value per trial) and work under jit. Reading them off run records is analysis/'s job: e.g. the
B* interval predicted from the baseline runs of an LSR sweep against the observed break,
`python -m svag_jax.analysis.lsr SWEEP_ROOT`, and B* of one baseline run,
`python -m svag_jax.analysis.lsr --baseline WORKDIR`.

Notation (DESIGN.md section 2): eta LR, lambda WD, B batch size, R = E||w||^2, G = E||grad L(w)||^2
(full-batch gradient), N = E Tr Sigma_B(w) (batch-B gradient noise), lambda_e = eta lambda.
"""

import math
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


def lsr_critical_batch_approx(
    n_over_g: ArrayLike, batch_size: ArrayLike, c2: float = 2.0
) -> ArrayLike:
  """B* ~ C^2 B N/G: `lsr_critical_batch` for N/G >> 1, the form on the paper's Fig. 3 (Li,
  Malladi & Arora 2021, Sec. 5.2). Same arguments; smaller than the exact bound by C^2 B."""
  _check_c2(c2)
  return c2 * n_over_g * batch_size


def sde_approximation_fails(n_over_g: ArrayLike, c2: float = 2.0) -> ArrayLike:
  """Theorem 5.2 of Li, Malladi & Arora 2021: SGD and SDE equilibria are not C-close when
  N/G < 1 / (C^2 - 1). Returns a bool (array) per input: True where the SDE view fails."""
  _check_c2(c2)
  return n_over_g < 1 / (c2 - 1)


def intrinsic_lr(lr: ArrayLike, wd: ArrayLike, momentum: ArrayLike = 0.0) -> ArrayLike:
  """lambda_e = eta lambda / (1 - beta): the rate of the norm dynamics per step (derivation:
  docs/derivations.md, heavy-ball momentum).

  Without momentum this is the papers' intrinsic LR eta lambda; with heavy-ball momentum beta
  (v <- beta v + grad + lambda w, w <- w - eta v) the weights move as under SGD with LR
  eta / (1 - beta), so ||w||^2 relaxes on the time scale 1 / lambda_e with the 1 / (1 - beta).
  """
  return lr * wd / (1 - momentum)


def gradient_weight(momentum: ArrayLike = 0.0) -> ArrayLike:
  """(1 - beta) / (1 + beta): the weight of G beside N in the equilibrium relation with momentum.

  The full-batch gradient enters the norm balance through the momentum buffer's correlation with
  the current gradient, E<w_k - w_{k-1}, grad L(w_k)> = eta G / (1 + beta) to second order in the
  step (docs/derivations.md); the gradient noise of different steps is
  uncorrelated and keeps weight 1. 1 without momentum (the 2021 paper's eq. 11).
  """
  return (1 - momentum) / (1 + momentum)


def equilibrium_residual(
    lr: ArrayLike,
    wd: ArrayLike,
    r: ArrayLike,
    g: ArrayLike,
    n: ArrayLike,
    momentum: ArrayLike = 0.0,
) -> ArrayLike:
  """(1 - beta) (2 - eta lambda / (1 + beta)) lambda R - eta (N + G (1 - beta) / (1 + beta)):
  zero at the equilibrium of SGD with heavy-ball momentum beta on a scale-invariant loss.

  beta = 0 is Li, Malladi & Arora 2021, eq. 10-11: for scale-invariant L, <grad L(w; B), w> = 0
  for every batch, so ||w_{k+1}||^2 = (1 - eta lambda)^2 ||w_k||^2 + eta^2 ||grad L(w_k; B_k)||^2
  exactly, and at equilibrium (2 - eta lambda) lambda R = eta (G + N): exact. With momentum the
  relation is exact up to one term, E<w_k - w_{k-1}, grad L(w_k)>, which is eta G / (1 + beta) to
  second order in the step (`gradient_weight`; derivation: docs/derivations.md): G enters
  with weight (1 - beta) / (1 + beta) (0.33 at beta = 0.5, 0.053 at 0.9), N with weight 1.

  Args:
    lr: eta; wd: lambda; r: R = E||w||^2; g: G = E||grad L(w)||^2; n: N = E Tr Sigma_B(w);
    momentum: beta (heavy ball, PyTorch convention: svag_jax.optim.sgd).

  Returns:
    The residual, in units of lambda * ||w||^2 (divide by eta (N + G (1 - beta)/(1 + beta)) for a
    relative one).
  """
  lhs = (1 - momentum) * (2 - lr * wd / (1 + momentum)) * wd * r
  return lhs - lr * (n + gradient_weight(momentum) * g)


def equilibrium_sq_norm(
    lr: ArrayLike,
    wd: ArrayLike,
    unit_g: ArrayLike,
    unit_n: ArrayLike,
    momentum: ArrayLike = 0.0,
) -> ArrayLike:
  """R at equilibrium, given G and N measured at unit norm (G_1, N_1; both scale as 1/||w||^2).

  Solving `equilibrium_residual` = 0 with G = G_1 / R, N = N_1 / R (treating E 1/||w||^2 as 1/R):
  R = sqrt(eta (N_1 + G_1 (1 - beta)/(1 + beta)) / ((1 - beta) (2 - eta lambda/(1 + beta)) lambda)).
  """
  unit = unit_n + gradient_weight(momentum) * unit_g
  return (lr * unit / ((1 - momentum) * (2 - lr * wd / (1 + momentum)) * wd)) ** 0.5


def equilibrium_angular_update(
    lr: ArrayLike, wd: ArrayLike, momentum: ArrayLike = 0.0
) -> ArrayLike:
  """sqrt(2 eta lambda / (1 + beta)): the RMS relative step ||w_{k+1} - w_k|| / ||w_k|| at the
  equilibrium of SGD with coupled WD and heavy-ball momentum on a scale-invariant loss.

  Exact in expectation, E||w_{k+1} - w_k||^2 = 2 eta lambda R / (1 + beta) (docs/derivations.md;
  of this file: it needs only <grad L(w; B), w> = 0 and a stationary R). The step is almost
  orthogonal to w (its radial part is O(eta lambda)), so this is also the angle per step between
  w_k and w_{k+1}: the "rotational equilibrium" (Kosson, Messmer & Jaggi 2024, for SGD with
  momentum sqrt(2 eta lambda / (1 + beta))).
  """
  return (2 * lr * wd / (1 + momentum)) ** 0.5


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


def sde_nsr_threshold(c2: float = 2.0) -> float:
  """1 / (C^2 - 1): the N/G below which Theorem 5.2 of Li, Malladi & Arora 2021 says SGD and SDE
  equilibria are not C-close (`sde_approximation_fails` compares N/G with it)."""
  _check_c2(c2)
  return 1 / (c2 - 1)


def min_closeness(n_over_g: ArrayLike) -> ArrayLike:
  """sqrt(1 + G/N): the smallest C for which SGD's equilibrium, at its N/G, can be C-close to the
  SDE's (Definition 5.1 of Li, Malladi & Arora 2021: R, G and eta N within a factor C). Theorem
  5.2 (ii) read the other way: N/G < 1 / (C^2 - 1) exactly when C < sqrt(1 + G/N)."""
  return (1 + 1 / n_over_g) ** 0.5


def stationary_effective_lr_discrete(intrinsic_lr: ArrayLike, sigma2_gn: ArrayLike) -> ArrayLike:
  """The effective LR eta / ||w||^2 at the exact discrete-time equilibrium of SGD with coupled WD
  on a scale-invariant loss: sqrt(lambda_e (2 - lambda_e)) / sigma_GN.

  `equilibrium_sq_norm` without momentum, written for eta / R: it keeps the full-batch gradient
  and the lambda_e^2 term that `stationary_effective_lr` (Lemma 5.2) drops.

  Args:
    intrinsic_lr: lambda_e = eta lambda.
    sigma2_gn: sigma_GN^2 = ||w||^2 (G + N), the squared gradient norm (full-batch part plus
      noise trace) at unit weight norm.
  """
  return (intrinsic_lr * (2 - intrinsic_lr) / sigma2_gn) ** 0.5


def norm4_relaxation_time(intrinsic_lr: ArrayLike) -> ArrayLike:
  """1 / (4 lambda_e): the time constant (steps) of ||w||^4 relaxing to its equilibrium after a
  change of eta and lambda, at constant sigma (the SDE of Li, Lyu & Arora 2020, Lemma 5.2).

  With y = ||w||^4: dy/dt = 2 ||w||^2 d||w||^2/dt = -4 lambda_e y + 2 eta^2 sigma^2, linear in y,
  so y relaxes exactly exponentially, at rate 4 lambda_e, to y* = eta^2 sigma^2 / (2 lambda_e).
  """
  return 1 / (4 * intrinsic_lr)


def mixing_time_slope(tol: float, factor: float = 10.0) -> float:
  """c in "steps = c / lambda_e" for eta / ||w||^2 to return within `tol` of its level after
  eta / factor, lambda x factor at equilibrium (lambda_e unchanged), at constant sigma.

  ||w||^4 relaxes as in `norm4_relaxation_time`. The change leaves y = factor^2 y*' (the new
  y*' = y* / factor^2), and eta / ||w||^2 over its level is sqrt(y*' / y): it is within `tol` once
  y / y*' - 1 <= (1 - tol)^-2 - 1, i.e. after ln((factor^2 - 1) / ((1 - tol)^-2 - 1)) / 4 /
  lambda_e steps (1.51 / lambda_e for tol = 0.1, factor = 10; no intercept).
  """
  return math.log((factor**2 - 1) / ((1 - tol) ** -2 - 1)) / 4


# ---- Adaptive optimizers (derivations: docs/derivations.md) ----


def adaptive_effective_lr(lr: ArrayLike, sq_norm: ArrayLike) -> ArrayLike:
  """eta / ||w||: the effective LR of a scale-invariant group under RMSprop / Adam / AdamW.

  Their update u = m_hat / (sqrt(v_hat) + eps) does not scale with the weights: with w = c w_1
  (||w_1|| = 1) the gradient, m and sqrt(v) all scale as 1/c, so u(w) is the update at w_1 with
  eps replaced by c eps, and the unit direction moves by (eta / ||w||) u per step (SGD's
  eta / ||w||^2 has one more 1/||w||, from its gradient). Note on the adaptive optimizers below.
  """
  return lr / sq_norm**0.5


def adaptive_intrinsic_lr(
    lr: ArrayLike, wd: ArrayLike, inverse_preconditioner: ArrayLike = 1.0
) -> ArrayLike:
  """lambda_e = eta lambda p: the fraction of the weights' norm that WD removes per step.

  AdamW (decoupled): p = 1, lambda_e = eta lambda exactly. RMSprop and Adam with coupled L2: the
  WD term lambda w passes through the preconditioner 1 / (sqrt(v_hat) + eps), so its radial rate
  is eta lambda p with p = sum_i w_i^2 / (sqrt(v_hat_i) + eps) / ||w||^2, the w^2-weighted mean
  of the inverse preconditioner (`metrics.inverse_preconditioner`); p scales as ||w|| (v_hat as
  1/||w||^2), so Adam + L2 relaxes on a time scale that depends on each layer's gradient size.
  At equilibrium 2 lambda_e R = (the squared norm the updates add per step), as for SGD's
  eta lambda; the angular update follows from lambda_e (`adaptive_angular_update`).
  """
  return lr * wd * inverse_preconditioner


def adaptive_angular_update(
    intrinsic_lr: ArrayLike, beta1: ArrayLike = 0.0, decoupled: bool = True, exact: bool = False
) -> ArrayLike:
  """The RMS angular update per step at rotational equilibrium, ||w_{k+1} - w_k|| / ||w_k||.

  sqrt(2 lambda_e (1 - beta1) / (1 + beta1)): Kosson, Messmer & Jaggi 2024 for AdamW
  (lambda_e = eta lambda, the `avg_rotation` of their code, github.com/epfml/REQ,
  shared/optimizers/rotational_adamw.py); with lambda_e = `adaptive_intrinsic_lr` the same holds
  for Adam + L2 and RMSprop (beta1 = 0). `exact=True` keeps the discrete-time term of decoupled
  WD: sqrt(2 lambda_e (1 - beta1) / (1 + beta1 (1 - lambda_e))), exact in expectation when the
  preconditioned gradient is orthogonal to w and the preconditioner constant (note at the end of
  this file); coupled WD has no such term (its exact form is the first-order one, as for SGD with
  momentum, `equilibrium_angular_update`).

  Args:
    intrinsic_lr: lambda_e (eta lambda for AdamW).
    beta1: Adam's first-moment decay (0 for RMSprop).
    decoupled: AdamW (True) or WD in the gradient (False); only matters with `exact`.
    exact: keep the O(lambda_e) term of decoupled WD.
  """
  denominator = 1 + beta1 * (1 - intrinsic_lr) if (exact and decoupled) else 1 + beta1
  return (2 * intrinsic_lr * (1 - beta1) / denominator) ** 0.5


def rotational_angular_update(
    optimizer: str,
    lr: ArrayLike,
    wd: ArrayLike,
    momentum: ArrayLike = 0.0,
    beta1: ArrayLike = 0.9,
    intrinsic_lr: ArrayLike | None = None,
) -> ArrayLike:
  """The predicted RMS angular update per step of a scale-invariant group at rotational
  equilibrium, for the optimizer named as config.optim.optimizer (Kosson, Messmer & Jaggi 2024):

    sgd      sqrt(2 eta lambda / (1 + beta))                 `equilibrium_angular_update`
    adamw    sqrt(2 eta lambda (1 - beta1) / (1 + beta1))    `adaptive_angular_update`
    adam     sqrt(2 lambda_e (1 - beta1) / (1 + beta1))      lambda_e = `intrinsic_lr`
    rmsprop  sqrt(2 lambda_e)                                lambda_e = `intrinsic_lr`

  For SGD and AdamW the value is the same for every group of a net ("balanced"); with coupled WD
  through a preconditioner (adam, rmsprop) lambda_e = eta lambda p_S is the group's own
  (`adaptive_intrinsic_lr`, logged as 'group.<name>/intrinsic_lr_adaptive'), so the groups'
  angles differ as their p_S do.
  """
  if optimizer == 'sgd':
    return equilibrium_angular_update(lr, wd, momentum)
  if optimizer == 'adamw':
    return adaptive_angular_update(lr * wd, beta1)
  if optimizer not in ('adam', 'rmsprop'):
    raise ValueError(f'unknown optimizer {optimizer!r}; one of sgd, rmsprop, adam, adamw')
  if intrinsic_lr is None:
    raise ValueError(f'{optimizer}: the equilibrium angle needs the lambda_e = eta lambda p')
  return adaptive_angular_update(intrinsic_lr, beta1 if optimizer == 'adam' else 0.0)


def adamw_equilibrium_sq_norm(lr: ArrayLike, wd: ArrayLike, num_params: ArrayLike) -> ArrayLike:
  """||w||^2 = eta C / (2 lambda) at AdamW's rotational equilibrium (Kosson, Messmer & Jaggi 2024,
  in their random-walk model): C weights whose preconditioned gradient is pure noise with
  E (g_i / sqrt(v_i))^2 = 1, so each step adds eta^2 C of coherent displacement (the first
  moment spreads one gradient over 1 / (1 - beta1) steps in the same direction) and WD removes
  2 eta lambda ||w||^2."""
  return lr * num_params / (2 * wd)


def adaptive_sde_constants(
    lr: ArrayLike,
    batch_size: ArrayLike,
    beta1: ArrayLike = 0.9,
    beta2: ArrayLike = 0.999,
    eps: ArrayLike = 1e-8,
    wd: ArrayLike = 0.0,
    decoupled: bool = False,
    svag_l: ArrayLike = 1,
) -> dict[str, ArrayLike]:
  """The constants of the RMSprop / Adam SDE (Malladi, Lyu, Panigrahi & Arora 2022, Sec. 4) of a
  run at batch B: two runs with equal constants approximate the same SDE.

  In the time t = k eta^2 (k the step count): sigma0_sq = eta^2 l / B, the gradient noise's scale
  (Cov of the batch gradient is l Sigma_1 / B, l the SVAG amplification, and sigma_0 = eta sigma);
  eps0 = eta eps; c1 = (1 - beta1) / eta^2, c2 = (1 - beta2) / eta^2, the relaxation rates of
  the moments; lambda0 = lambda / eta for decoupled WD (its drift -lambda_0 w), omitted for
  coupled WD (part of grad f). The square-root rule and SVAG keep all of them (`svag_jax.scaling`;
  tests/test_scaling.py); `steps_per_time` = 1 / eta^2.
  """
  out = {
      'sigma0_sq': lr**2 * svag_l / batch_size,
      'eps0': lr * eps,
      'c1': (1 - beta1) / lr**2,
      'c2': (1 - beta2) / lr**2,
      'steps_per_time': 1 / lr**2,
  }
  if decoupled:
    out['lambda0'] = wd / lr
  return out
