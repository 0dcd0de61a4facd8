"""The two-phase paradigm (Li, Lyu & Arora 2020) against a classical step decay, same budget.

Two arms trained by one compiled program (SGD, no momentum, scale-invariant net):
  - two_phase:  the SDE phase at eta, lambda (intrinsic LR eta * lambda) until epoch E1, long enough
                to reach the equilibrium; then eta / 10 and lambda = 0 until the end, where the
                training loss goes towards 0 at an (almost) frozen norm (the effective LR drops 10x
                and stays there);
  - step_decay: eta divided by 10 at 50% and at 75% of the budget, lambda constant throughout (the
                effective LR drops 10x at each decay, then recovers towards 1/sqrt(10) of its
                value as the norm re-equilibrates, Lemma 5.2).
Both start from the same eta and lambda and have the same number of epochs.

    python -m svag_jax.launch.main --config=two_phase:cpu --workdir=runs/two_phase_cpu
    python -m svag_jax.analysis.two_phase runs/two_phase_cpu

Expected (paper): the two-phase schedule reaches ~0 training loss and a test accuracy at least as
good as the step decay's.

CPU (`get_config('cpu')`): the bundled MNIST digits (4,000 train / 1,000 test), SI MLP 784-128-128
with BatchNorm (no affine) and a fixed head, B = 32 (125 steps per epoch), eta = 0.1,
lambda = 0.1 (intrinsic LR 0.01, the Fast Equilibrium const arm: 1 / (eta lambda) = 100 steps,
the norm equilibrates within ~3 epochs), 60 epochs: E1 = 20 (the last 40 epochs fine-tune, since
the loss falls slowly at eta / 10 = 0.01: measured 0.039 after 15 epochs), step decays at 30 and
45; 32 trials per arm in calls of 8 vmapped trials; evaluation every epoch with BatchNorm
statistics refreshed on 30 training batches.
Measured on the quiet 2-core CPU: 2 min 39 s wall (260 s of CPU). Final train loss 0.0249 +-
0.0011 (two_phase) vs 0.0260 +- 0.0011 (step_decay), test accuracy 0.9636 +- 0.0010 vs 0.9643 +-
0.0010 (95% intervals over 32 trials): the same
accuracy; the two-phase arm's mean train loss falls below 0.05 at epoch 30, the step decay's at
46. Effective LR: two_phase drops 10x at the switch (1.66e-2 -> 1.66e-3) and stays; step_decay
drops to 1.67e-3 and recovers to 5.9e-3 (Lemma 5.2: 1.66e-2 / sqrt(10) = 5.2e-3).

Full scale (`get_config()`): SI PreResNet32 with BatchNorm on CIFAR-10 with crop + flip, the
repository's shared CIFAR setting (configs/base.py: B = 128, eta = 0.8, lambda = 5e-4, no
momentum; not verified against the paper's exact hyper-parameters), 200 epochs, E1 = 100, step
decays at 100 and 150, 4 trials per arm, GPU. `get_config('smoke')`: shrunk to a CPU smoke run.
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
