"""The two-phase paradigm (Li, Lyu & Arora 2020) against a classical step decay, same budget.

Paper (Sec. 5.3, no figure): an SDE phase that reaches the equilibrium of the intrinsic LR, then a
gradient-flow phase with the LR divided by a large constant (e.g. 10) and no WD, until the loss is
zero. Arms (`arms`): `two_phase` (eta, lambda until E1; then eta / 10, lambda = 0) and
`step_decay` (eta / 10 at 50% and 75% of the budget, lambda constant), same start and epochs.

    python -m svag_jax.launch.main --config=two_phase:cpu --workdir=runs/two_phase_cpu
    python -m svag_jax.analysis.two_phase runs/two_phase_cpu
    python -m svag_jax.launch.main --config=two_phase --workdir=runs/two_phase

Expected (paper): the two-phase schedule reaches ~0 training loss and a test accuracy at least as
good as the step decay's. CPU (`:cpu`: bundled MNIST, SI MLP 784-128-128, B = 32, eta = lambda =
0.1, E1 = 20 of 60 epochs, 32 trials per arm): 2 min 39 s wall on the quiet 2-core CPU. Expected
(measured, 95% intervals): test accuracy 0.9636 +- 0.0010 (two_phase) vs 0.9643 +- 0.0010
(step_decay); final train loss 0.0249 vs 0.0260, below 0.05 from epoch 30 vs 46. Full scale (SI
PreResNet32 on CIFAR-10, the shared CIFAR setting, not checked against the paper; E1 = 100 of 200
epochs, 4 trials): not run, no runtime measured. `get_config('smoke')`: a CPU smoke run.

Settings in full, the effective-LR measurements: docs/experiments.md#two_phase.
"""

from svag_jax import schedules
from svag_jax.arms import set_arms
from svag_jax.configs import base

ARGS = ('cpu', 'smoke')


def arms(lr: float, wd: float, epochs: float, switch: float) -> dict:
  """The two arms for a budget of `epochs`: the two-phase switch at epoch `switch` (E1), the step
  decays at 50% and 75% of the budget."""
  two_lr = schedules.then(schedules.const(lr), switch, 0.1)
  two_wd = schedules.then(schedules.const(wd), switch, 0.0)
  step_lr = (lr, ((0.5 * epochs, 0.1), (0.75 * epochs, 0.1)))
  return {
      'two_phase': dict(lr=two_lr[0], lr_schedule=two_lr[1], wd=two_wd[0], wd_schedule=two_wd[1]),
      'step_decay': dict(lr=step_lr[0], lr_schedule=step_lr[1], wd=wd, wd_schedule=()),
  }


def get_config(arg: str | None = None):
  c = base.get_config()
  c.optim.momentum = 0.0
  c.model.norm = 'batch'
  if arg == 'cpu':
    base.mnist_mlp(c)
    c.optim.lr, c.optim.wd = 0.1, 0.1
    c.train.epochs = 60
    switch = 20
    c.train.eval_every = 1.0
    c.train.eval_bn_batches = 30
    c.trials.num = 32
    c.checkpoint.every = 5.0
  elif arg in (None, '', 'full', 'smoke'):
    base.cifar10_preresnet32(c)
    c.train.epochs = 200
    switch = 100
    c.train.eval_every = 2.0
    c.train.eval_bn_batches = 50
    c.trials.num = 4
  else:
    raise ValueError(f'unknown config argument {arg!r}; use "cpu", "smoke" or nothing')
  set_arms(c, arms(c.optim.lr, c.optim.wd, c.train.epochs, switch))
  if arg == 'smoke':
    base.smoke(c)
    c.train.eval_bn_batches = 2
  return c
