"""Arms are data: every arm x trial of a run is trained by ONE compiled program."""

from svag_jax import arms as arms_lib
from svag_jax import config as config_lib
from svag_jax import experiment, record
from svag_jax.configs import fast_equilibrium
from tests.helpers import tiny_config


def test_three_arms_compile_one_training_program(tmp_path, train_traces):
  traces = train_traces
  cfg = tiny_config(**{'trials.num': 2, 'train.epochs': 2})
  cfg.arms = fast_equilibrium.arms(every=0.5, switch=1.5)  # 3 arms, schedules of unequal length
  result = experiment.run(cfg, str(tmp_path))
  assert result['status'] == 'done'
  assert traces == [cfg.train.steps_per_dispatch], traces  # traced (hence compiled) once
  rows = record.read_metrics(tmp_path)
  lr = {(r['arm'], r['epoch']): r['lr'] for r in rows}
  wd = {(r['arm'], r['epoch']): r['wd'] for r in rows}
  assert sorted({r['arm'] for r in rows}) == ['const', 'lr_decay', 'wd_decay']
  # epoch 1 (after decays at 0.5 and 1.0): lr_decay 0.4 -> 0.2 -> 0.1; wd_decay likewise for WD
  assert abs(lr[('lr_decay', 1.0)] - 0.1) < 1e-7 and abs(lr[('const', 1.0)] - 0.1) < 1e-7
  assert abs(wd[('wd_decay', 1.0)] - 0.1) < 1e-7
  # epoch 2 (after the switch at 1.5): fine-tuning, lr / 10 and no WD, in every arm
  for arm in ('const', 'lr_decay', 'wd_decay'):
    assert abs(lr[(arm, 2.0)] - 0.01) < 1e-8 and wd[(arm, 2.0)] == 0.0


def test_fast_equilibrium_arms_share_the_intrinsic_lr_before_the_switch():
  for arg in ('cpu', None):
    cfg = fast_equilibrium.get_config(arg)
    config_lib.validate(cfg)
    arms = {a.name: a for a in arms_lib.arms(cfg)}
    switch = arms['const'].lr_schedule[-1][0]

    def value(init, changes, epoch):
      for e, f in changes:
        init *= f if epoch >= e else 1.0
      return init

    for name, arm in arms.items():
      before = value(arm.lr, arm.lr_schedule, switch - 1e-6) * value(
          arm.wd, arm.wd_schedule, switch - 1e-6
      )
      after_lr = value(arm.lr, arm.lr_schedule, switch)
      assert abs(before - 0.01) < 1e-12, name
      assert abs(after_lr - 0.01) < 1e-12 and value(arm.wd, arm.wd_schedule, switch) == 0.0
