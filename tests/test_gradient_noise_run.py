"""G/N/NSR columns of a run (config.metrics) and the isotropic-noise transform in the loop."""

import numpy as np
import pytest

from svag_jax import experiment
from tests.helpers import run_tiny

pytestmark = pytest.mark.usefixtures('compile_bound')  # compile-bound runs


def test_isotropic_noise_enters_the_update(tmp_path):
  _, noisy = run_tiny(tmp_path / 'a', **{'optim.noise_scale': 0.1})
  _, plain = run_tiny(tmp_path / 'b')
  assert noisy[0]['w_norm_sq'] > plain[0]['w_norm_sq']  # noise adds E||xi||^2 > 0 to the norm


def test_gradient_noise_columns_leave_the_run_unchanged(tmp_path):
  _, rows = run_tiny(
      tmp_path / 'gn',
      **{'train.epochs': 2, 'metrics.gn_every': 2.0, 'metrics.gn_batches': 4, 'trials.num': 2},
  )
  _, plain = run_tiny(tmp_path / 'plain', **{'train.epochs': 2, 'trials.num': 2})
  strip = lambda rs: [{k: v for k, v in r.items() if k not in experiment.GN_KEYS} for r in rs]
  assert strip(rows) == strip(plain)  # estimating G/N changes neither weights nor BN statistics
  by_step = {}
  for r in rows:
    by_step.setdefault(r['step'], []).append(r)
  first, last = by_step[8], by_step[16]
  assert all(r['G'] is None and r['N'] is None and r['NSR'] is None for r in first)
  for r in last:
    assert r['N'] > 0 and np.isfinite(r['G'])
    if r['G'] > 0:
      assert r['NSR'] == pytest.approx(r['N'] / r['G'], rel=1e-5)
