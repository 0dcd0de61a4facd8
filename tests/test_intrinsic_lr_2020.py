"""The analyses of the 2020 paper's items on synthetic workdirs whose answers are known (no
training), and the exact identities behind them as properties of the trainer."""

import numpy as np
import pytest

from svag_jax.analysis import equilibrium_decay
from tests.test_equilibrium import row, write_rows


def decay_rows() -> list[dict]:
  """eq_a (lambda_e 0.01) and eq_b (0.02) divide eta by 10 at step 1600 (epoch 16), drop_4
  (0.01) at step 400; test accuracy 0.9 before, then 0.95 / 0.94 / 0.93 (+- 0.004 over trials)."""
  arms = {'eq_a': (0.1, 1600, 0.95), 'eq_b': (0.2, 1600, 0.94), 'drop_4': (0.1, 400, 0.93)}
  rows, trial = [], 0
  for arm, (lr0, decay, acc) in arms.items():
    for k in range(3):
      for step in range(50, 2401, 50):
        lr = lr0 if step < decay else lr0 / 10
        value = (0.9 if step <= decay else acc) + 0.004 * (k - 1)
        rows.append(row(step, trial, arm, lr, 0.1, 5.0, test_error=1 - value))
      trial += 1
  return rows


def test_equilibrium_decay_reads_each_arm_at_its_own_decay(tmp_path):
  arms = equilibrium_decay.decays(write_rows(tmp_path, decay_rows()))
  assert [a.arm for a in arms] == ['drop_4', 'eq_a', 'eq_b']
  drop, eq_a, eq_b = arms
  assert (drop.decay, eq_a.decay) == (4.0, 16.0) and eq_a.steps_per_epoch == 100
  assert eq_a.intrinsic_lr == pytest.approx(0.01) and eq_a.after == pytest.approx(0.001)
  assert eq_b.intrinsic_lr == pytest.approx(0.02) and eq_a.decay_time == pytest.approx(16)
  np.testing.assert_allclose(eq_a.before, [0.896, 0.9, 0.904])
  assert sorted(eq_a.at) == [1.0, 2.0, 4.0, 8.0] and sorted(drop.at) == [1.0, 2.0, 4.0, 8.0]
  np.testing.assert_allclose(eq_b.at[8.0], [0.936, 0.94, 0.944])
  np.testing.assert_allclose(drop.best, [0.926, 0.93, 0.934])
  eq, early = equilibrium_decay.split(arms)
  assert [a.arm for a in eq] == ['eq_a', 'eq_b'] and [a.arm for a in early] == ['drop_4', 'eq_a']
  lines = equilibrium_decay.summary(arms)
  assert any('E+8: eq_b - eq_a -0.0100' in line for line in lines)
  assert any(line.startswith('  drop_4 - eq_a: E+1 -0.0200') for line in lines)
  assert equilibrium_decay.main([str(tmp_path)]) == 0
  assert (tmp_path / 'figures' / 'equilibrium_decay.png').stat().st_size > 0
