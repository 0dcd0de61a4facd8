"""Closed forms of the two papers: LSR critical batch, SDE-validity test, equilibrium norm,
stationary effective LR.

    python -m svag_jax.theory lsr SWEEP_ROOT [--c2 2] [--baselines B1,B2,..]

prints the B* interval predicted from the baseline runs of an LSR sweep (configs/lsr.py) and the
observed break (analysis/lsr.py does the reading; `main` below).

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
  """lambda_e = eta lambda / (1 - beta): the rate of the norm dynamics per step (derivation: the
  note on momentum at the end of this file).

  Without momentum this is the papers' intrinsic LR eta lambda; with heavy-ball momentum beta
  (v <- beta v + grad + lambda w, w <- w - eta v) the weights move as under SGD with LR
  eta / (1 - beta), so ||w||^2 relaxes on the time scale 1 / lambda_e with the 1 / (1 - beta).
  """
  return lr * wd / (1 - momentum)


def equilibrium_residual(
    lr: ArrayLike,
    wd: ArrayLike,
    r: ArrayLike,
    g: ArrayLike,
    n: ArrayLike,
    momentum: ArrayLike = 0.0,
) -> ArrayLike:
  """(2 - lambda_e) lambda (1 - beta) R - eta (G + N): zero at the SGD equilibrium of a
  scale-invariant loss (lambda_e = `intrinsic_lr`; beta = 0: (2 - eta lambda) lambda R - eta G+N).

  Li, Malladi & Arora 2021, eq. 10-11: for scale-invariant L, <grad L(w; B), w> = 0 for every batch,
  so without momentum ||w_{k+1}||^2 = (1 - eta lambda)^2 ||w_k||^2 + eta^2 ||grad L(w_k; B_k)||^2
  exactly, and in expectation R_{k+1} - R_k = eta lambda (eta lambda - 2) R_k + eta^2 (G_k + N_k):
  exact for beta = 0. With momentum beta, to first order in lambda_e (the note at the end):
  R_{k+1} - R_k = -lambda_e (2 - lambda_e) R_k + eta^2 (G_k + N_k) / (1 - beta)^2; times
  (1 - beta)^2 / eta this is minus the residual. At equilibrium (R_{k+1} = R_k) it vanishes.

  Args:
    lr: eta; wd: lambda; r: R = E||w||^2; g: G = E||grad L(w)||^2; n: N = E Tr Sigma_B(w);
    momentum: beta (heavy ball, PyTorch convention: svag_jax.optim.sgd).

  Returns:
    The residual, in units of lambda * ||w||^2 (divide by eta (G + N) for a relative one).
  """
  le = intrinsic_lr(lr, wd, momentum)
  return (2 - le) * wd * (1 - momentum) * r - lr * (g + n)


def equilibrium_sq_norm(
    lr: ArrayLike, wd: ArrayLike, unit_g_plus_n: ArrayLike, momentum: ArrayLike = 0.0
) -> ArrayLike:
  """R at equilibrium, given G + N measured at unit norm (G_1 + N_1; G, N scale as 1/||w||^2).

  Solving `equilibrium_residual` = 0 with G + N = (G_1 + N_1) / R (treating E 1/||w||^2 as 1/R):
  R = sqrt(eta (G_1 + N_1) / ((2 - lambda_e) lambda (1 - beta))), lambda_e = `intrinsic_lr`.
  """
  le = intrinsic_lr(lr, wd, momentum)
  return (lr * unit_g_plus_n / ((2 - le) * wd * (1 - momentum))) ** 0.5


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


def main(argv: list[str] | None = None) -> int:
  """`python -m svag_jax.theory lsr SWEEP_ROOT`: the predicted B* interval (both forms, min/max
  over the baselines) and the observed LSR break of a sweep root; exit status 2 if it cannot be
  read."""
  import argparse  # noqa: PLC0415
  import sys  # noqa: PLC0415

  from svag_jax.analysis import lsr  # noqa: PLC0415 (analysis.lsr imports this module)

  p = argparse.ArgumentParser(prog='python -m svag_jax.theory', description=main.__doc__)
  sub = p.add_subparsers(dest='command', required=True)
  q = sub.add_parser('lsr', help='predicted B* interval vs observed break of an LSR sweep root')
  q.add_argument('root', help='sweep root of configs/lsr.py (one run per batch size)')
  q.add_argument('--c2', type=float, default=2.0, help="C^2 (default 2, the paper's)")
  q.add_argument(
      '--baselines',
      type=lambda v: [int(x) for x in v.split(',')],
      default=None,
      help=f'comma-separated baseline batch sizes (default: the {lsr.NUM_BASELINES} smallest)',
  )
  a = p.parse_args(sys.argv[1:] if argv is None else argv)
  try:
    s = lsr.summarize(a.root, a.c2, a.baselines)
  except (OSError, ValueError) as e:
    print(f'theory lsr: {e}')
    return 2
  lsr.print_summary(s)
  return 0


# ---- Heavy-ball momentum and the intrinsic LR ----
#
# Update (PyTorch convention, svag_jax.optim.sgd): v_{t+1} = beta v_t + g_t + lambda w_t,
# w_{t+1} = w_t - eta v_{t+1}, g_t the batch gradient, <g_t, w_t> = 0 (scale invariance). Then
#
#   ||w_{t+1}||^2 - ||w_t||^2 = -2 eta <w_t, v_{t+1}> + eta^2 ||v_{t+1}||^2,
#   v_{t+1} = sum_k beta^k (g_{t-k} + lambda w_{t-k}).
#
# Weight decay part: lambda sum_k beta^k <w_t, w_{t-k}> ~ lambda R / (1 - beta), so R drifts by
# -2 eta lambda R / (1 - beta) = -2 lambda_e R with lambda_e = eta lambda / (1 - beta), plus
# eta^2 lambda^2 R / (1 - beta)^2 = lambda_e^2 R from ||v||^2: -lambda_e (2 - lambda_e) R.
# Gradient part, with the gradient noise of different steps uncorrelated, E||g||^2 = G + N:
#   eta^2 E||v||^2 contributes eta^2 (G + N) / (1 - beta^2);
#   <w_t, g_{t-k}> = <w_t - w_{t-k}, g_{t-k}> = -eta (G + N) (1 - beta^k) / (1 - beta) (the later
#   steps carry g_{t-k} with weights beta^0 .. beta^(k-1)), and -2 eta sum_k beta^k of it adds
#   2 eta^2 (G + N) beta / ((1 - beta)(1 - beta^2)).
# Together eta^2 (G + N) / (1 - beta^2) (1 + 2 beta / (1 - beta)) = eta^2 (G + N) / (1 - beta)^2:
# momentum SGD moves ||w||^2 as SGD with LR eta / (1 - beta) does, and the norm's time scale is
# 1 / lambda_e = (1 - beta) / (eta lambda), not 1 / (eta lambda). The equilibrium effective LR is
# eta / ((1 - beta) R) = sqrt(2 lambda_e) / sigma (`stationary_effective_lr` with lambda_e).
# Neglected: terms of relative order lambda_e beta / (1 - beta) (the drift of w within the
# momentum's memory of ~1 / (1 - beta) steps); measured on the scale-invariant toy of
# tests/test_theory.py at lambda_e = 0.01, beta = 0.9, the relation holds to ~1%.
#
# Runs log both: `intrinsic_lr` = eta lambda (the papers' quantity and axis) and
# `intrinsic_lr_momentum` = eta lambda / (1 - beta) (equal to it without momentum).


if __name__ == '__main__':
  raise SystemExit(main())
