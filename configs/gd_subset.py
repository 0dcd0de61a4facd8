"""2020 paper, Fig. 5b/c: full-batch GD with WD on a small fixed subset never settles.

Two arms from the same kind of start: `wd` keeps coupled WD lambda throughout; `wd_off` removes it
at `WD_OFF` (schedule factor 0). Full-batch GD with BatchNorm uses the 'sgd' oracle with
train.batch_size = data.num_train: every step's batch is the whole subset (in a new order, and
BatchNorm's batch statistics do not depend on the order: tests/test_gd_subset.py checks that loss
and gradient are equal for two permutations), so one epoch is one GD step. Train accuracy is
measured after refreshing the BatchNorm running statistics with `eval_bn_batches` full-batch
passes (momentum 0.9: 0.9^k of the stale statistics remain), so it is the accuracy of the net GD
actually trains, not of stale statistics.

Mechanism: once the subset is fit the gradient is small and WD shrinks ||w||^2 by (1 - eta
lambda)^2 per step, so the effective LR eta / ||w||^2 grows until GD overshoots: the loss jumps,
train accuracy falls, the gradient re-grows the norm, and the cycle repeats. Without WD the norm
only grows and GD converges.

CPU (`get_config('cpu')`): the first 1,000 of the bundled MNIST digits (mnist5k train split; test:
its 1,000), SI MLP 784-64-64 with BatchNorm (no affine) and a fixed head, eta = 0.5,
lambda = 0.01 (eta lambda = 0.005: ||w||^2 shrinks by ~1% per step once the subset is fit), 4,000
GD steps, WD removed from the wd_off arm at step 2,000, one trial per arm (trials i get their own
initialisations, fold_in(seed, i)), evaluation every 5 steps after 40 full-batch BatchNorm
refresh passes. Why the MLP: a CNN trial, even at widths (8, 16, 16), trains ~8x fewer img/s than
an SI MLP trial on this CPU (ENVIRONMENT.md: 4.1k vs 34k img/s), too slow for 2 x 4,000
full-batch steps in 15 minutes; the mechanism needs only scale invariance + WD + GD. A sweep of
eta in {0.1, 0.5, 2}, lambda in {0.01, 0.05} (2,000 steps) showed: at eta lambda = 0.001 the
accuracy stays at 100% for 2,000 steps (the norm has not shrunk enough yet); eta lambda >= 0.02
oscillates without long 100% plateaus (eta = 2, lambda = 0.05 never reaches 97%); 0.005 gives
long 100% stretches with repeated drops.

    python -m svag_jax.launch.main --config=gd_subset:cpu --workdir=runs/gd_subset_cpu
    python -m svag_jax.analysis.gd_subset runs/gd_subset_cpu

Measured on the quiet 2-core CPU: 75 s wall (140 s CPU; 8 minutes when the cores were shared with
other jobs, load ~11). wd arm: 100% train accuracy first at step 40, then 31 separate drops below
97% (one below 90%), still falling in the last quarter (min 89.8%); ||w||^2 falls from 125 to ~8
and then oscillates. wd_off arm: the same behaviour until step 2,000 (21 drops below 97%), then
||w||^2 grows, the training loss settles at its floor (the fixed head bounds the logits) and train
accuracy stays at 100% at every evaluation from step 2,205 on. Final test accuracy 91.7% (wd) /
90.7% (wd_off).

Full scale (`get_config()`): the 2020 paper's MNIST architecture, the SI CNN 32-64-64, on the
same 1,000 digits, same eta, lambda, steps and switch; evaluation every 10 steps after 20 refresh
passes. Not run here. The paper's exact Fig. 5b/c setting (subset, net, eta, lambda) was not
available to check; this is the same experiment with the paper's MNIST net. Runtime estimate: a
full-batch CNN step ~1.4 s on this CPU, plus ~1 s per step for the refresh passes, x 2 arms x
4,000 steps ~ 5-6 h here; minutes on one GPU.

    python -m svag_jax.launch.main --config=gd_subset --workdir=runs/gd_subset
"""

from svag_jax.arms import set_arms
from svag_jax.configs import base

ARGS = ('cpu',)
WD_OFF = 2000.0  # epochs (= GD steps) at which the wd_off arm drops WD


def get_config(arg: str | None = None):
  c = base.get_config()
  c.data.source = 'mnist5k'
  c.model.norm = 'batch'
  c.optim.oracle = 'sgd'
  c.optim.momentum = 0.0
  c.train.sampling = 'shuffle'
  c.trials.num = 1
  if arg == 'cpu':
    c.data.num_train = 1000
    c.model.name = 'mlp'
    c.model.widths = (64, 64)
    lr, wd, wd_off, epochs = 0.5, 0.01, WD_OFF, 4000
    c.train.eval_every = 5.0
    c.train.steps_per_dispatch = 5
    c.train.eval_bn_batches = 40
    c.train.unroll = False  # an MLP: a rolled scan is as fast and compiles in seconds
    c.trials.vmap_chunk = 0
  elif arg in (None, '', 'full'):
    c.data.num_train = 1000
    c.model.name = 'cnn'
    c.model.widths = (32, 64, 64)
    lr, wd, wd_off, epochs = 0.5, 0.01, WD_OFF, 4000
    c.train.eval_every = 10.0
    c.train.steps_per_dispatch = 10
    c.train.eval_bn_batches = 20
    c.trials.vmap_chunk = 1  # CPU: looped conv trials are faster; on a GPU set 0
  else:
    raise ValueError(f'unknown config argument {arg!r}; use "cpu" or nothing')
  c.train.batch_size = c.data.num_train  # full batch: one step = one epoch = the whole subset
  c.train.epochs = epochs
  set_arms(
      c,
      {
          'wd': dict(lr=lr, wd=wd),
          'wd_off': dict(lr=lr, wd=wd, wd_schedule=((wd_off, 0.0),)),
      },
  )
  c.checkpoint.every = 500.0
  return c
