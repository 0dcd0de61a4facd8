"""Bring your own model: SGD vs SVAG on the bundled digits, with per-group metrics.

Any Flax model, named by import path (`config.model.name = 'package.module:Class'` or
`'path/to/file.py:Class'`, its constructor's arguments in `config.model.kwargs`; docs/byom.md),
trains here from 8 trials per point: SGD, and SVAG with l = 4 (4x the steps at LR / 4; the SDE of
SGD). Its scale-invariant groups are found at the start of each run (WORKDIR/groups.json) and every
evaluation logs each group's norm, effective LR, angular update and G/N. Without an override the
model is the built-in scale-invariant MNIST CNN (its groups are declared: every conv kernel).

    python -m svag_jax.launch.sweep --config=byom:cpu --workdir=runs/byom_cpu \
        --config.model.name=my_model.py:Net
    python -m svag_jax.analysis.groups runs/byom_cpu

cpu: the 4,000 bundled digits, B = 32 drawn with replacement, eta = 0.1, lambda = 0.01 (eta lambda =
1e-3), 6 epochs = 750 SGD steps (0.75 / (eta lambda)), an evaluation every half epoch, G/N from 4
batches every 2 epochs, every trial in its own program (vmap_chunk = 1). The default (no argument):
the same, every trial in one vmapped program (an accelerator). The notebook
analysis/notebooks/byom.ipynb runs the CPU sweep on a small ResNet with affine BatchNorm written in
the notebook.
Expected: for every group, SGD and SVAG agree in SGD time; the angular update rises toward its
equilibrium sqrt(2 eta lambda) = 0.045 rad as ||w_S||^2 falls from its LeCun-init value.
Measured (built-in CNN, 28.4 min on 2 cores at load ~2: SGD 4.5 min, SVAG 24): SGD and SVAG agree
per group (||w_S||^2 within 2%, angle per SGD step within 1% in two groups and inside the wide
interval in the third, test accuracy -0.21 [-0.68, +0.25] points); after 6 epochs no group is at
equilibrium yet (angle 0.2-0.4 x its equilibrium value, ||w||^2 halving every 3 epochs): 750
steps are too few for that part of the claim.
Settings and measurements: docs/experiments.md#byom.
"""

from svag_jax.configs import base

ARGS = ('cpu',)
SVAG_L = 4


def get_config(arg: str | None = None):
  if arg not in (None, '', 'cpu'):
    raise ValueError(f'unknown config argument {arg!r}; use one of {ARGS} or nothing')
  c = base.get_config()
  c.data.source = 'mnist5k'
  c.optim.lr = 0.1
  c.optim.wd = 0.01
  c.train.batch_size = 32
  c.train.sampling = 'replacement'  # i.i.d. batches: SVAG's SDE (and the SGD it is compared with)
  c.train.epochs = 6.0
  c.train.eval_every = 0.5
  c.metrics.gn_every = 2.0
  c.metrics.gn_batches = 4
  c.checkpoint.every = 2.0
  c.trials.num = 8
  if arg == 'cpu':
    c.trials.vmap_chunk = 1  # conv nets on a CPU: a loop of one-trial programs (README)
  return c


def get_sweep(arg: str | None = None):
  """SGD and SVAG (l = SVAG_L) from the same config and inits."""
  del arg
  return [
      {'name': 'sgd', 'optim.oracle': 'sgd'},
      {'name': f'svag_l{SVAG_L}', 'optim.oracle': 'svag', 'optim.svag_l': SVAG_L},
  ]
