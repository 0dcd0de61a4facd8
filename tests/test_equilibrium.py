"""analysis/stats.py (the equilibrium detector, the fits) on synthetic curves, and the
stationary_lr / lr_drop / mixing_time analyses on synthetic workdirs whose answers are known in
closed form (no training: fast)."""

import json
import math
import pathlib

import numpy as np
import pytest

from svag_jax import config as config_lib
from svag_jax import theory
from svag_jax.analysis import lr_drop as lr_drop_analysis
from svag_jax.analysis import mixing_time as mixing_analysis
from svag_jax.analysis import relaxation as relaxation_analysis
from svag_jax.analysis import stationary_lr as stationary_analysis
from svag_jax.analysis import stats
from svag_jax.configs import lr_drop, mixing_time, stationary_lr

PERTURB = 1000.0
EVERY = 10.0  # steps between synthetic evaluations


def relaxation(
    tau: float, gap: float, noise: float = 0.0, end: float = 5000.0, ref: float = 1.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
  """ref before PERTURB; ref (1 + gap exp(-(t - PERTURB) / tau)) after it; relative noise."""
  steps = np.arange(EVERY, end + EVERY / 2, EVERY)
  t = steps - PERTURB
  values = np.where(t < 0, ref, ref * (1 + gap * np.exp(-np.maximum(t, 0) / tau)))
  rng = np.random.default_rng(seed)
  return steps, values * (1 + noise * rng.standard_normal(steps.shape))


def detect(steps, values, **kw):
  kw = {'ref_window': 500.0, 'window': 5 * EVERY, 'tol': 0.1, **kw}
  return stats.steps_to_equilibrium(steps, values, PERTURB, **kw)


@pytest.mark.parametrize('gap', [-0.9, 2.0])
@pytest.mark.parametrize('tau', [30.0, 100.0, 300.0, 600.0])
def test_detected_time_is_tau_log_gap_over_tol(tau, gap):
  steps, values = relaxation(tau, gap, noise=0.01, seed=int(tau))
  expected = tau * math.log(abs(gap) / 0.1)
  found = detect(steps, values)
  assert found is not None
  # eval spacing (10 steps) plus a few % of tau for the noise and the smoothing
  assert abs(found - expected) <= EVERY + 0.06 * expected, (found, expected)


def test_detected_time_scales_linearly_with_tau():
  taus = np.array([40.0, 80.0, 160.0, 320.0, 640.0])
  found = np.array(
      [detect(*relaxation(t, -0.9, noise=0.02, end=8000.0, seed=i)) for i, t in enumerate(taus)]
  )
  fit = stats.linear_fit(taus, found)
  assert fit.r2 > 0.999
  assert fit.slope == pytest.approx(math.log(9.0), rel=0.03)
  assert abs(fit.intercept) < 3 * EVERY


def test_a_curve_that_never_recovers_gives_none():
  steps, values = relaxation(100.0, -0.9, noise=0.01)
  stuck = np.where(steps >= PERTURB, 0.5 * values, values)  # settles at half the reference
  assert detect(steps, stuck) is None
  assert detect(steps, stuck, stay=False) is None
  slow = relaxation(5000.0, -0.9, noise=0.01)  # recovers, but long after the run ends
  assert detect(*slow) is None


def test_return_in_the_last_window_is_not_confirmed():
  steps, values = relaxation(100.0, -0.9, end=PERTURB + 100 * math.log(9.0) + 2 * EVERY)
  assert detect(steps, values, window=0.0) is not None
  assert detect(steps, values, window=5 * EVERY) is None


def test_stay_requires_the_curve_to_remain_in_the_band():
  steps = np.arange(EVERY, 4000.0 + 1, EVERY)
  t = steps - PERTURB
  # drops to 0.2, is back at t = 300, dips out again during [800, 1200), back for good after
  values = np.where(t < 0, 1.0, np.where(t < 300, 0.2, 1.0))
  values = np.where((t >= 800) & (t < 1200), 0.7, values)
  assert detect(steps, values, window=0.0, stay=False) == 300.0
  assert detect(steps, values, window=0.0) == 1200.0


def test_the_reference_ignores_rows_after_the_perturbation_and_nan():
  steps, values = relaxation(100.0, -0.9)
  values[steps < PERTURB - 200] = 50.0  # outside ref_window: ignored
  values[(steps >= PERTURB - 100) & (steps < PERTURB)] = np.nan  # diverged rows: ignored
  assert detect(steps, values, ref_window=200.0) == pytest.approx(100 * math.log(9), abs=2 * EVERY)


def test_noise_within_the_band_does_not_fool_the_detector():
  # noise of 5% per row with a 10% band: the running mean over 5 rows keeps it inside
  steps, values = relaxation(200.0, -0.9, noise=0.05, seed=3)
  found = detect(steps, values)
  assert found == pytest.approx(200 * math.log(9), rel=0.1)


def test_bad_inputs_are_reported():
  steps, values = relaxation(100.0, -0.9)
  with pytest.raises(ValueError, match='reference window'):
    stats.steps_to_equilibrium(steps, values, 5.0, ref_window=1.0, window=0.0)
  with pytest.raises(ValueError, match='after the perturbation'):
    stats.steps_to_equilibrium(steps, values, 1e9, ref_window=1e10, window=0.0)
  with pytest.raises(ValueError, match='tol'):
    stats.steps_to_equilibrium(steps, values, PERTURB, ref_window=100.0, window=0.0, tol=0.0)


def test_centered_running_mean_matches_brute_force():
  rng = np.random.default_rng(0)
  steps = np.cumsum(rng.integers(1, 20, 50)).astype(float)
  values = rng.standard_normal(50)
  values[7] = np.nan
  got = stats.centered_running_mean(steps, values, 30.0)
  for i, s in enumerate(steps):
    sel = (np.abs(steps - s) <= 15.0) & np.isfinite(values)
    assert got[i] == pytest.approx(values[sel].mean())


def test_linear_fit_and_interval():
  x = np.array([1.0, 2.0, 3.0, 4.0])
  fit = stats.linear_fit(x, 3 * x + 1)
  assert (fit.slope, fit.intercept, fit.r2) == pytest.approx((3.0, 1.0, 1.0))
  assert stats.linear_fit(x, np.array([1.0, 3.0, 2.0, 4.0])).r2 < 0.9
  # the interval: mean ± t_{0.975, n - 1} SE over the finite values (n = 3: t = 4.3027)
  mean, lo, hi = stats.interval(np.array([1.0, 2.0, 3.0, np.nan]))
  assert (mean, hi - mean) == pytest.approx((2.0, 4.302652729911275 * 1.0 / math.sqrt(3)))
  assert lo == pytest.approx(2 * mean - hi)
  assert stats.t_quantile(7) == pytest.approx(2.364624251592785)  # 8 trials
  assert stats.t_quantile(10**6) == pytest.approx(1.959966, abs=1e-5)  # many: the normal's
  assert np.isnan(stats.interval([1.0])[1]) and np.isnan(stats.interval([])[0])
  # along an axis: one interval per column, as the scalar one of that column
  table = np.array([[1.0, 5.0], [2.0, np.nan], [3.0, 7.0]])
  means, lows, highs = stats.interval(table, axis=0)
  for j in range(2):
    np.testing.assert_allclose((means[j], lows[j], highs[j]), stats.interval(table[:, j]))
  with pytest.raises(ValueError):
    stats.linear_fit(np.ones(3), x[:3])


# ---- the three analyses on synthetic workdirs ----


def write_rows(path: pathlib.Path, rows: list[dict]) -> pathlib.Path:
  path.mkdir(parents=True, exist_ok=True)
  (path / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
  return path


def row(step, trial, arm, lr, wd, w_norm_sq, test_error=0.05, g=None, n=None):
  return {
      'step': int(step),
      'effective_step': float(step),
      'epoch': step / 100.0,
      'trial': trial,
      'arm': arm,
      'diverged': False,
      'test_accuracy': 1 - test_error,
      'lr': lr,
      'wd': wd,
      'w_norm_sq': w_norm_sq,
      'effective_lr': lr / w_norm_sq,
      'intrinsic_lr': lr * wd,
      'G': g,
      'N': n,
  }


def stationary_rows(sigma2: float = 40.0, lr: float = 0.1) -> list[dict]:
  """Two arms at the Lemma 5.2 equilibrium of the noise sigma2 (also tests/test_wheel.py)."""
  rows, trial = [], 0
  for le in (0.005, 0.02):
    for _ in range(3):
      r = lr / math.sqrt(2 * le / sigma2)  # eta / ||w||^2 = sqrt(2 le) / sigma
      for step in range(50, 3001, 50):
        rows.append(row(step, trial, f'a{le}', lr, le / lr, r, g=0.1 * sigma2 / r, n=sigma2 / r))
      trial += 1
  return rows


def mixing_rows(change: int = 3000, r0: float = 10.0) -> list[dict]:
  """eta / 10, lambda x 10 at step `change`; ||w||^2 relaxes to R0 / 10 at rate 2 lambda_e."""
  rows, trial = [], 0
  for le in (0.004, 0.008, 0.016):
    for _ in range(4):
      for step in range(10, 7001, 10):
        t = step - change
        lr, wd = (0.1, le / 0.1) if t < 0 else (0.01, 10 * le / 0.1)
        # eta / ||w||^2 = ref (1 - 0.9 exp(-2 le t)) after the change; test error likewise
        ratio = 1.0 if t < 0 else 1 - 0.9 * math.exp(-2 * le * t)
        r = lr / (0.1 / r0 * ratio)
        rows.append(row(step, trial, f'le{le}', lr, wd, r, test_error=0.05 * ratio))
      trial += 1
  return rows


def test_stationary_recovers_lemma_5_2_on_exact_data(tmp_path):
  """Norms set to the Lemma 5.2 equilibrium of a known sigma^2: measured / predicted = 1."""
  sigma2 = 40.0
  arms = stationary_analysis.stationary(write_rows(tmp_path, stationary_rows(sigma2)))
  assert [a.intrinsic_lr for a in arms] == pytest.approx([0.005, 0.02])
  for a in arms:
    np.testing.assert_allclose(a.measured / a.predicted, 1.0, rtol=1e-6)
    np.testing.assert_allclose(a.sigma2, sigma2, rtol=1e-6)
    np.testing.assert_allclose(a.sigma2_gn, 1.1 * sigma2, rtol=1e-6)
    np.testing.assert_allclose(a.nsr, 10.0, rtol=1e-6)
  assert stationary_analysis.main([str(tmp_path)]) == 0
  assert (tmp_path / 'figures' / 'stationary_lr.png').stat().st_size > 0


def test_lr_drop_ratios(tmp_path):
  """||w||^2 relaxes from R0 to R0 / sqrt(10) after eta / 10: ratios 0.1 at once, then 0.316."""
  rows, r0, drop = [], 20.0, 2000
  for trial in range(4):
    for step in range(25, 6001, 25):
      lr = 0.1 if step < drop else 0.01
      t = max(step - drop, 0)
      r = r0 / math.sqrt(10) + (r0 - r0 / math.sqrt(10)) * math.exp(-t / 300)
      r *= 1 + 0.01 * (trial - 1.5)
      rows.append(row(step, trial, 'drop', lr, 0.1, r, g=4.0 / r, n=40.0 / r))
    for step in range(25, 6001, 25):
      rows.append(row(step, 4 + trial, 'control', 0.1, 0.1, r0))
  (a,) = lr_drop_analysis.lr_drop(write_rows(tmp_path, rows))
  assert a.arm == 'drop' and a.drop_step == drop and a.lr_factor == pytest.approx(0.1)
  np.testing.assert_allclose(a.immediate, 0.1, rtol=1e-6)
  assert np.all(a.next_eval > 0.1) and np.all(a.next_eval < 0.11)
  np.testing.assert_allclose(a.recovered, 1 / math.sqrt(10), rtol=1e-3)
  np.testing.assert_allclose(a.predicted_sigma, 1 / math.sqrt(10), rtol=1e-6)  # sigma unchanged
  np.testing.assert_allclose(
      a.predicted_discrete, math.sqrt(0.001 * 1.999 / (0.01 * 1.99)), rtol=1e-6
  )
  assert lr_drop_analysis.main([str(tmp_path)]) == 0


def test_mixing_time_is_linear_in_inverse_intrinsic_lr(tmp_path):
  """eta / 10, lambda x 10 with ||w||^2 relaxing to R0 / 10 at rate 2 lambda_e: the detector's
  times are ln(9) / (2 lambda_e) and the fit finds that slope with R^2 ~ 1."""
  change = 3000
  workdir = write_rows(tmp_path, mixing_rows(change))
  arms = mixing_analysis.mixing(
      workdir, tol=0.1, window_evals=3, error_tol=0.1, error_window_evals=3, num_resamples=20
  )
  for a in arms:
    assert a.perturb_step == change
    expected = math.log(9) / (2 * a.intrinsic_lr)
    np.testing.assert_allclose(a.eff_steps, expected, atol=EVERY)
    assert a.error_steps == pytest.approx(expected, abs=EVERY)
  fits = mixing_analysis.mixing_fits(arms)
  for fit in fits.values():
    assert fit.slope == pytest.approx(math.log(9) / 2, rel=0.03)
    assert fit.r2 > 0.999
  assert mixing_analysis.main([str(workdir), '--error-window-evals', '3']) == 0
  assert (workdir / 'figures' / 'mixing_time.pdf').stat().st_size > 0
  relax = relaxation_analysis.relaxation(workdir)  # per trial; the fit: test_svag_analysis.py
  assert [a.intrinsic_lr for a in relax] == [a.intrinsic_lr for a in arms]
  assert relaxation_analysis.tv_after_change(workdir) == []  # no predictions saved
  assert relaxation_analysis.main([str(workdir)]) == 0
  assert (workdir / 'figures' / 'relaxation.png').stat().st_size > 0


def test_detector_on_the_exact_norm_recursion_matches_the_predicted_mixing_slope():
  """||w_{k+1}||^2 = (1 - le)^2 ||w_k||^2 + eta^2 sigma^2 / ||w_k||^2 (SGD on a scale-invariant
  loss with a constant unit-norm noise trace), eta / 10 and lambda x 10 at equilibrium: the
  detected return of eta / ||w||^2 is theory.mixing_time_slope(0.1) / le steps."""
  assert theory.mixing_time_slope(0.1) == pytest.approx(math.log(99 / (1 / 0.81 - 1)) / 4)
  sigma2, lr0 = 50.0, 0.1
  for le in (0.001, 0.002, 0.004):
    r = math.sqrt(lr0 * sigma2 / ((2 - le) * le / lr0))  # the discrete equilibrium
    steps, eff = [], []
    for k in range(1, 3000 + int(8 / le)):
      lr = lr0 if k < 3000 else lr0 / 10
      r = (1 - le) ** 2 * r + lr**2 * sigma2 / r
      steps.append(k)
      eff.append(lr / r)
    found = stats.steps_to_equilibrium(
        np.array(steps, float), np.array(eff), 3000.0, ref_window=1000.0, window=0.0, tol=0.1
    )
    assert found == pytest.approx(theory.mixing_time_slope(0.1) / le, rel=0.02)


def test_closed_forms_agree_with_the_equilibrium_and_the_theorem():
  lr, wd, unit_g, unit_n = 0.3, 0.05, 4.0, 36.0
  unit_gn, le = unit_g + unit_n, lr * wd
  r = theory.equilibrium_sq_norm(lr, wd, unit_g, unit_n)  # no momentum: the exact equilibrium
  assert theory.stationary_effective_lr_discrete(le, unit_gn) == pytest.approx(lr / r, rel=1e-12)
  assert theory.stationary_effective_lr_discrete(le, unit_gn) < theory.stationary_effective_lr(
      le, unit_gn
  )  # the lambda_e^2 term lowers it
  c2 = 3.0
  threshold = theory.sde_nsr_threshold(c2)
  assert threshold == 0.5
  assert theory.sde_approximation_fails(0.99 * threshold, c2)
  assert not theory.sde_approximation_fails(threshold, c2)
  # ||w||^4 under the constant-sigma SDE, y' = -4 le y + c, integrated: time constant 1 / (4 le)
  le, c, dt = 0.01, 2.0, 0.01
  y, ys = 100.0, []
  for _ in range(int(50 / dt)):
    y += dt * (-4 * le * y + c)
    ys.append(y)
  y_end = c / (4 * le)
  t = dt * np.arange(1, len(ys) + 1)
  tau = -1 / np.polyfit(t, np.log(np.array(ys) - y_end), 1)[0]
  assert tau == pytest.approx(theory.norm4_relaxation_time(le), rel=1e-3)


def test_analysis_of_a_run_without_changes_fails_clearly(tmp_path, capsys):
  rows = [row(s, 0, 'a', 0.1, 0.1, 5.0) for s in range(10, 1001, 10)]
  assert mixing_analysis.main([str(write_rows(tmp_path, rows))]) == 2
  assert 'no arm changes' in capsys.readouterr().err


@pytest.mark.parametrize('module', [stationary_lr, lr_drop, mixing_time])
@pytest.mark.parametrize('arg', ['cpu', None])
def test_configs_validate(module, arg):
  c = module.get_config(arg)
  if arg is None and c.model.name not in config_lib.MODELS:
    pytest.skip(f'full-scale variant needs model {c.model.name!r}, not built yet')
  config_lib.validate(c)
  assert len(c.arms) >= (5 if module is mixing_time else 1)
