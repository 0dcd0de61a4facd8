"""analysis/stats.py (fits, intervals) on synthetic curves, and the stationary_lr / lr_drop /
mixing_time analyses on synthetic workdirs whose answers are known in closed form (no training:
fast)."""

import dataclasses
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


TAU_F_SLOPE = 0.5  # mixing_rows: the test error comes back with tau_f = 0.5 / lambda_e


def mixing_rows(change: int = 3000, r0: float = 10.0) -> list[dict]:
  """eta / 10, lambda x 10 at step `change`; ||w||^4 relaxes to R0^2 / 100 at rate 4 lambda_e
  (the constant-sigma SDE); the test error drops by 1 point at once and comes back with
  tau_f = TAU_F_SLOPE / lambda_e; an unchanged control arm `ctl_<arm>` per lambda_e."""
  rows, trial = [], 0
  for le in (0.004, 0.008, 0.016):
    for control in (False, True):
      for k in range(4):
        spread = 0.01 * (k - 1.5)
        for step in range(10, 7001, 10):
          t = step - change
          changed = t >= 0 and not control
          lr, wd = (0.01, 10 * le / 0.1) if changed else (0.1, le / 0.1)
          # ||w||^4 = R0^2 (1/100 + 99/100 exp(-4 le t)) after the change
          r = r0 * math.sqrt(0.01 + 0.99 * math.exp(-4 * le * t)) if changed else r0
          error = 0.05 + 0.001 * spread
          if changed and t > 0:
            error -= 0.01 * (1 + spread) * math.exp(-t * le / TAU_F_SLOPE)
          name = ('ctl_' if control else '') + f'le{le}'
          rows.append(row(step, trial, name, lr, wd, r * (1 + spread), test_error=error))
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


def test_mixing_time_fits_both_relaxation_times_against_inverse_intrinsic_lr(tmp_path):
  """||w||^4 relaxes with tau = 1 / (4 lambda_e) and the test error (against its control) with
  tau_f = 0.5 / lambda_e: both fits find their slope with R^2 ~ 1, inside their intervals."""
  change = 3000
  workdir = write_rows(tmp_path, mixing_rows(change))
  errors = mixing_analysis.error_relaxation(workdir)
  assert [a.arm for a in errors] == ['le0.004', 'le0.008', 'le0.016']
  for a in errors:
    assert a.dt[0] == 0 and a.changed.shape == a.control.shape == (4, a.dt.size)
    assert a.tau == pytest.approx(TAU_F_SLOPE / a.intrinsic_lr, rel=1e-3)
    assert a.amplitude < 0 and a.r2 > 0.999
    assert a.tau_interval[0] <= a.tau <= a.tau_interval[1]
  fit, (lo, hi) = mixing_analysis.tau_line(errors)
  assert fit.slope == pytest.approx(TAU_F_SLOPE, rel=1e-3) and fit.r2 > 0.9999
  assert lo <= fit.slope <= hi and hi - lo < 0.01
  relax = relaxation_analysis.relaxation(workdir)
  for a in relax:
    np.testing.assert_allclose(a.taus, theory.norm4_relaxation_time(a.intrinsic_lr), rtol=0.03)
  assert relaxation_analysis.tv_after_change(workdir) == []  # no predictions saved
  assert mixing_analysis.main([str(workdir)]) == 0
  assert (workdir / 'figures' / 'mixing_time.pdf').stat().st_size > 0
  assert relaxation_analysis.main([str(workdir)]) == 0
  assert (workdir / 'figures' / 'relaxation.png').stat().st_size > 0


def test_fit_decay_and_the_jackknife_interval():
  dt = np.arange(0.0, 500.0, 5.0)
  a, tau, r2 = mixing_analysis.fit_decay(dt, -0.02 * np.exp(-(dt - 20) / 40.0), 20.0)
  assert (a, tau, r2) == pytest.approx((-0.02, 40.0, 1.0), rel=1e-6)
  assert np.isnan(mixing_analysis.fit_decay(dt[:3], np.ones(3), 0.0)[1])  # too few points
  # the jackknife of a mean is the t interval of the values themselves
  x = np.array([1.0, 4.0, 2.0, 8.0, 5.0])
  got = stats.jackknife_interval(lambda keep: x[keep].mean(), x.size)
  np.testing.assert_allclose(got, stats.interval(x))


def test_exact_norm_recursion_returns_after_the_predicted_mixing_slope():
  """||w_{k+1}||^2 = (1 - le)^2 ||w_k||^2 + eta^2 sigma^2 / ||w_k||^2 (SGD on a scale-invariant
  loss with a constant unit-norm noise trace), eta / 10 and lambda x 10 at equilibrium: eta /
  ||w||^2 is first back within 10% of its level after theory.mixing_time_slope(0.1) / le steps."""
  assert theory.mixing_time_slope(0.1) == pytest.approx(math.log(99 / (1 / 0.81 - 1)) / 4)
  sigma2, lr0 = 50.0, 0.1
  for le in (0.001, 0.002, 0.004):
    r = math.sqrt(lr0 * sigma2 / ((2 - le) * le / lr0))  # the discrete equilibrium
    level, k = lr0 / r, 0
    while True:
      r = (1 - le) ** 2 * r + (lr0 / 10) ** 2 * sigma2 / r
      k += 1
      if lr0 / 10 / r >= 0.9 * level:
        break
    assert k == pytest.approx(theory.mixing_time_slope(0.1) / le, rel=0.02)


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


def test_tv_returns_to_its_null_after_the_last_run_of_differing_steps():
  steps = np.array([-20.0, 0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0])
  p = np.array([0.01, 0.5, 0.01, 0.01, 0.3, 0.01, 0.01, 0.6])  # runs end at 10 and 25
  r = relaxation_analysis.TVAfterChange('a', 0.01, steps, np.ones(8), np.ones(8), p)
  assert relaxation_analysis.tv_return_step(r) == 25.0
  single = dataclasses.replace(r, p_value=np.where(steps == 15.0, 0.01, 0.5))  # one hit: chance
  assert math.isnan(relaxation_analysis.tv_return_step(single))
