"""Closed forms of the two papers: LSR critical batch, SDE-validity test, equilibrium norm,
stationary effective LR.

All functions are plain arithmetic: they take Python floats, NumPy or JAX arrays (elementwise, e.g.
one value per trial) and work under jit.

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


def equilibrium_residual(lr: ArrayLike, wd: ArrayLike, r: ArrayLike, g: ArrayLike,
                         n: ArrayLike) -> ArrayLike:
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


# ---- CLI: `python -m svag_jax.theory lsr WORKDIR [--window START END] [--c2 2]` ----


def equilibrium_window(rows: list[dict], schedule_boundaries: list[float] | None = None
                       ) -> tuple[float, float]:
  """The default averaging window (in epochs) of a run's G/N rows: the last 25% of the evals that
  carry G/N before the first LR change (or of all such evals if the LR never changes)."""
  epochs = sorted({r['epoch'] for r in rows if r.get('N') is not None})
  if not epochs:
    raise ValueError('no metric row has G and N: run with config.metrics.gn_every > 0')
  lrs = {}
  for r in rows:
    if r.get('lr') is not None:
      lrs.setdefault(r['epoch'], r['lr'])
  first_lr = lrs[min(lrs)] if lrs else None
  changed = [e for e in sorted(lrs) if first_lr is not None and lrs[e] != first_lr]
  if changed:
    epochs = [e for e in epochs if e < changed[0]] or epochs
  start = epochs[int(len(epochs) * 0.75)] if len(epochs) > 1 else epochs[0]
  return start, epochs[-1]


def lsr_summary(workdir: str, window: tuple[float, float] | None = None, c2: float = 2.0) -> dict:
  """B* = C^2 (1 + N/G) B per trial of a baseline run, from G and N averaged over `window`.

  N/G of a trial is (mean N) / (mean G) over its rows in the window (a ratio of means: a single
  Ĝ can be near 0). Returns {'window', 'batch_size', 'trials': [{trial, G, N, NSR, B*}], 'mean_NSR',
  'mean_B*', 'interval_B*'} where the interval is mean ± 1.96 standard errors over trials
  (NaN for one trial).
  """
  import math

  import numpy as np

  from svag_jax import workdir as workdir_lib

  rows = [r for r in workdir_lib.read_metrics(workdir) if not r.get('diverged')]
  batch = workdir_lib.read_config(workdir)['train']['batch_size']
  window = tuple(window) if window is not None else equilibrium_window(rows)
  lo, hi = window
  per_trial = {}
  for r in rows:
    if r.get('N') is not None and r.get('G') is not None and lo <= r['epoch'] <= hi:
      per_trial.setdefault(r['trial'], []).append((r['G'], r['N']))
  if not per_trial:
    raise ValueError(f'no G/N rows between epochs {lo:g} and {hi:g} in {workdir}')
  trials = []
  for t, values in sorted(per_trial.items()):
    g = float(np.mean([v[0] for v in values]))
    n = float(np.mean([v[1] for v in values]))
    nsr = n / g
    trials.append({'trial': t, 'G': g, 'N': n, 'NSR': nsr, 'rows': len(values),
                   'B*': float(lsr_critical_batch(nsr, batch, c2))})
  bstar = np.array([t['B*'] for t in trials])
  half = 1.96 * bstar.std(ddof=1) / math.sqrt(len(bstar)) if len(bstar) > 1 else float('nan')
  return {'window': window, 'batch_size': batch, 'c2': c2, 'trials': trials,
          'mean_NSR': float(np.mean([t['NSR'] for t in trials])),
          'mean_B*': float(bstar.mean()), 'interval_B*': (bstar.mean() - half, bstar.mean() + half)}


def _main(argv=None) -> int:
  import argparse

  parser = argparse.ArgumentParser(prog='python -m svag_jax.theory',
                                   description='Closed-form predictions from a run record.')
  sub = parser.add_subparsers(dest='command', required=True)
  lsr = sub.add_parser('lsr', help='LSR critical batch B* = C^2 (1 + N/G) B from a baseline run')
  lsr.add_argument('workdir')
  lsr.add_argument('--window', nargs=2, type=float, metavar=('START', 'END'),
                   help='epochs over which G and N are averaged (default: the last 25%% of the '
                        'G/N evals before the first LR change)')
  lsr.add_argument('--c2', type=float, default=2.0, help='C^2 (default 2, the paper\'s)')
  args = parser.parse_args(argv)
  try:
    s = lsr_summary(args.workdir, args.window, args.c2)
  except (OSError, ValueError, KeyError) as e:
    print(f'svag_jax.theory: {e}')
    return 2
  lo, hi = s['window']
  print(f'{args.workdir}: baseline B = {s["batch_size"]}, C^2 = {s["c2"]:g}, '
        f'G and N averaged over epochs [{lo:g}, {hi:g}]')
  print(f'{"trial":>5} {"evals":>5} {"G":>11} {"N":>11} {"N/G":>9} {"B*":>9}')
  for t in s['trials']:
    print(f'{t["trial"]:>5} {t["rows"]:>5} {t["G"]:>11.4g} {t["N"]:>11.4g} {t["NSR"]:>9.3f} '
          f'{t["B*"]:>9.1f}')
  a, b = s['interval_B*']
  print(f'mean N/G = {s["mean_NSR"]:.3f}; B* = {s["mean_B*"]:.1f} '
        f'(95% interval over {len(s["trials"])} trials: [{a:.1f}, {b:.1f}])')
  return 0


if __name__ == '__main__':
  import sys
  sys.exit(_main())
