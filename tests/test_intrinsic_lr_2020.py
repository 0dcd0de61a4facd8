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


def test_equilibrium_decay_reads_decays_between_evaluations_from_the_config(tmp_path):
  """125 steps per epoch, an evaluation every 62 steps (eval_every = 0.5): the decays at epochs 0.5
  (step round(62.5) = 62, on an evaluation; no evaluation before it) and 16 (step 2000, between
  124 and 125 evaluations) come from config.json; each reading is the first evaluation at or
  after its epoch, with its offset."""
  import json  # noqa: PLC0415

  arms = {'drop_0p5': (0.5, 0.93), 'eq_0p01': (16.0, 0.95)}
  rows, trial = [], 0
  for arm, (epoch, acc) in arms.items():
    b = round(epoch * 125)
    for k in range(3):
      for step in [*range(62, 3000, 62), 3000]:
        value = (0.9 if step <= b else acc) + 0.004 * (k - 1)
        r = row(step, trial, arm, 0.1 if step < b else 0.01, 0.1, 5.0, test_error=1 - value)
        rows.append(r | {'epoch': step / 125})
      trial += 1
  write_rows(tmp_path, rows)
  schedule = {a: {'lr_schedule': [[e, 0.1]], 'wd_schedule': []} for a, (e, _) in arms.items()}
  (tmp_path / 'config.json').write_text(json.dumps({'arms': schedule}))
  drop, eq = equilibrium_decay.decays(tmp_path)
  assert (drop.arm, drop.decay, eq.decay) == ('drop_0p5', 0.496, 16.0)
  assert drop.intrinsic_lr == pytest.approx(0.01) and drop.after == pytest.approx(0.001)
  np.testing.assert_allclose(drop.before, [0.896, 0.9, 0.904])  # the evaluation at step 62
  np.testing.assert_allclose(eq.before, [0.896, 0.9, 0.904])  # at step 1984, E - 0.128
  assert eq.offsets[None] == pytest.approx(-0.128) and eq.offsets[1.0] == pytest.approx(1.36)
  assert eq.offsets[8.0] == 8.0 and drop.offsets[8.0] == pytest.approx(8.432)
  np.testing.assert_allclose(eq.at[1.0], [0.946, 0.95, 0.954])
  lines = equilibrium_decay.summary([drop, eq])
  assert any('E+1 (read at E+1.36) 0.95' in line for line in lines)
  assert any(line.startswith('  drop_0p5 - eq_0p01: E+1 -0.0200') for line in lines)


@pytest.mark.parametrize('norm', ['batch', 'layer'])
def test_init_scale_and_initial_lr_are_one_knob_in_the_trainer(tmp_path, norm):
  """(eta, lambda, c w_0) and (eta / c^2, lambda c^2, w_0) train the same functions (2020 paper,
  eq. 8): with c = 2 (exact in floating point) the training losses agree bit for bit, ||w||^2 is
  c^2 x and eta / ||w||^2 equal. With LayerNorm the test predictions agree too; BatchNorm's
  running statistics start at variance 1 whatever the scale, so its inference-mode outputs differ
  until the running average has forgotten that start (0.9^k after k steps)."""
  from svag_jax import experiment, record  # noqa: PLC0415
  from tests.helpers import most_optimizations_disabled, tiny_config  # noqa: PLC0415

  def train(name, lr, wd, init_scale):
    config = tiny_config(
        **{
            'model.name': 'mlp',
            'model.widths': (16, 16),
            'model.norm': norm,
            'model.init_scale': init_scale,
            'optim.lr': lr,
            'optim.wd': wd,
            'train.epochs': 1,
            'train.eval_every': 0.5,
            'train.predictions_at': (1,),
        }
    )
    with most_optimizations_disabled():
      assert experiment.run(config, str(tmp_path / name))['status'] == 'done'
    rows = {(r['trial'], r['epoch']): r for r in record.read_metrics(tmp_path / name)}
    return rows, record.read_predictions(tmp_path / name)[0]

  scaled, scaled_pred = train('scaled', 0.2, 0.05, 1.0)
  rescaled, rescaled_pred = train('rescaled', 0.05, 0.2, 0.5)
  assert scaled.keys() == rescaled.keys()
  for key, a in scaled.items():
    b = rescaled[key]
    assert a['train_step_loss'] == b['train_step_loss']
    assert a['w_norm_sq'] == 4 * b['w_norm_sq']
    assert a['effective_lr'] == pytest.approx(b['effective_lr'], rel=1e-6)
    assert a['intrinsic_lr'] == pytest.approx(b['intrinsic_lr'], rel=1e-7)
    if norm == 'layer':
      assert a['test_accuracy'] == b['test_accuracy']
  if norm == 'layer':
    np.testing.assert_array_equal(scaled_pred[1.0], rescaled_pred[1.0])


def same_lambda_e_rows() -> list[dict]:
  """Arms lr_0p4 / lr_0p1 / lr_0p025 at eta lambda = 0.01, lr_0p4_x4 at 0.04. ||w||^2 starts at
  the equivalent init (x 4 per factor 4 of eta) and relaxes to eta / 0.02 with time constant 100
  steps; the final test accuracy is 0.95 at 0.01, 0.9 at 0.04."""
  arms = {'lr_0p4': (0.4, 0.025), 'lr_0p1': (0.1, 0.1), 'lr_0p025': (0.025, 0.4)}
  arms['lr_0p4_x4'] = (0.4, 0.1)
  rows, trial = [], 0
  for arm, (lr, wd) in arms.items():
    for k in range(3):
      for step in range(25, 1001, 25):
        start = 5.0 * lr / 0.1  # eta / ||w_0||^2 = 0.02: equivalent to x sqrt(lr / 0.1) init
        eq = lr / 0.02 if wd * lr == pytest.approx(0.01) else lr / 0.04
        r = eq + (start - eq) * np.exp(-step / 100)
        acc = 0.95 if wd * lr == pytest.approx(0.01) else 0.9
        rows.append(row(step, trial, arm, lr, wd, r, test_error=1 - acc - 0.002 * (k - 1)))
      trial += 1
  return rows


def test_same_intrinsic_lr_groups_arms_and_reads_their_return(tmp_path):
  from svag_jax.analysis import same_intrinsic_lr  # noqa: PLC0415

  result = same_intrinsic_lr.arms(write_rows(tmp_path, same_lambda_e_rows()))
  by = {a.arm: a for a in result}
  assert [a.group for a in result] == [0, 0, 0, 1]
  assert [a.arm for a in result if a.is_reference] == ['lr_0p1', 'lr_0p4_x4']
  assert by['lr_0p4'].eff_lr0 == pytest.approx(by['lr_0p1'].eff_lr0, rel=0.01)
  np.testing.assert_allclose(by['lr_0p1'].settle, 25 * 0.01)  # the reference itself: at once
  np.testing.assert_allclose(by['lr_0p4'].final, [0.948, 0.95, 0.952])
  assert by['lr_0p4'].tv == {}
  lines = same_intrinsic_lr.summary(result)
  assert any(
      'lr_0p025: eta 0.025, lambda 0.4' in line and '- reference +0.0000' in line for line in lines
  )
  assert same_intrinsic_lr.main([str(tmp_path)]) == 0
  assert (tmp_path / 'figures' / 'same_intrinsic_lr.png').stat().st_size > 0


def test_norm_batch_compares_arms_within_and_across_batch_sizes(tmp_path):
  """Two points of one norm: final accuracy 0.9 + 0.01 x (arm index) + 0.001 x (B / 25)."""
  import json  # noqa: PLC0415

  from svag_jax.analysis import norm_batch  # noqa: PLC0415

  for batch in (25, 100):
    rows, trial = [], 0
    for k, (arm, lr, wd) in enumerate((('a', 0.025, 0.1), ('b', 0.1, 0.1), ('b_eq', 0.4, 0.025))):
      for j in range(3):
        acc = 0.9 + 0.01 * k + 0.001 * batch / 25 + 0.001 * (j - 1)
        for step in (100, 200):
          rows.append(row(step, trial, arm, lr * batch / 25, wd, 5.0, test_error=1 - acc))
        trial += 1
    path = write_rows(tmp_path / f'layer_b{batch}', rows)
    config = {'model': {'norm': 'layer'}, 'train': {'batch_size': batch}}
    (path / 'config.json').write_text(json.dumps(config))
  runs = norm_batch.common.load_sweep(tmp_path)
  comps = norm_batch.comparisons(runs)
  got = {(r['what'], r['left'], r['right']): r['diff'][0] for r in comps['layer']}
  assert got == pytest.approx(
      {
          ('lambda_e alone', (25, 'b'), (25, 'b_eq')): -0.01,
          ('lambda_e alone', (100, 'b'), (100, 'b_eq')): -0.01,
          ('LSR', (25, 'a'), (100, 'a')): -0.003,
          ('LSR', (25, 'b'), (100, 'b')): -0.003,
          ('batch at fixed lambda_e', (25, 'b'), (100, 'a')): 0.007,
      }
  )
  assert all(r['tv'] is None for r in comps['layer'])  # no predictions saved
  assert norm_batch.main([str(tmp_path)]) == 0
  assert (tmp_path / 'figures' / 'norm_batch.png').stat().st_size > 0
