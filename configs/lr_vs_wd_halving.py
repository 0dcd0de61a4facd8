"""2020 paper, Fig. 4: halving the LR or halving the WD leads to the same place (eta * lambda).

Paper (Fig. 4 caption, Sec. 6.1): two SI PreResNet32 on CIFAR-10 (augmentation, B = 128), SGD
without momentum, eta = 3.2, lambda = 5e-4; one divides the LR, the other the WD by 2 at epochs
200, 400, 600, 800, 1200, 2000 and 4000 (`HALVINGS`); at 8000 both remove WD and divide the LR by
10. The end at 8200 is this config's (the caption gives none).

    python -m svag_jax.launch.main --config=lr_vs_wd_halving --workdir=runs/lr_vs_wd_halving

Runtime on one H100: 3.1 s per epoch for the 2 nets (benchmarks/cifar_runtime.py), ~7 h plus
evaluations. Not run here. Expected (paper): the two arms share the effective LR and the train/test
accuracy most of the time (up to the transient after each change); both reach their best test
accuracy after epoch 8000. `get_config('smoke')`: 2 steps on a tiny net (tests).

Notes: docs/experiments.md#lr_vs_wd_halving.
"""

from svag_jax.arms import set_arms
from svag_jax.configs import base

ARGS = ('smoke',)
HALVINGS = (200, 400, 600, 800, 1200, 2000, 4000)
SWITCH, END = 8000, 8200


def arms(lr: float = 3.2, wd: float = 5e-4) -> dict:
  halve = tuple((float(e), 0.5) for e in HALVINGS)
  return {
      'halve_lr': dict(
          lr=lr, lr_schedule=halve + ((SWITCH, 0.1),), wd=wd, wd_schedule=((SWITCH, 0.0),)
      ),
      'halve_wd': dict(
          lr=lr, lr_schedule=((SWITCH, 0.1),), wd=wd, wd_schedule=halve + ((SWITCH, 0.0),)
      ),
  }


def get_config(arg: str | None = None):
  if arg not in (None, '', 'full') + ARGS:
    raise ValueError(f'unknown config argument {arg!r}; use one of {ARGS} or nothing')
  c = base.cifar(base.get_config())
  c.optim.lr, c.optim.wd = 3.2, 5e-4
  set_arms(c, arms())
  c.trials.num = 1
  c.train.epochs = END
  c.train.eval_every = 20.0
  c.checkpoint.every = 100.0
  return base.smoke(c) if arg == 'smoke' else c
