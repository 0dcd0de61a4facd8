"""Weight distances and weight averaging at equilibrium (Li, Lyu & Arora 2020, Fig. 6).

One long run at constant LR and WD; every trial's weights are saved each epoch after the norm has
equilibrated (train.params_at). From them `analysis/weight_distance.py` draws
||W_T - W_{T+D}|| vs D for several T (raw and relative to ||W_T||), and compares the test
accuracy of the last iterate with the average of the weights of epochs T..T+D and with the
average of two independent trials' final weights, BatchNorm statistics recomputed after
averaging:

    python -m svag_jax.launch.main --config=weight_distance:cpu --workdir=runs/weight_distance_cpu
    python -m svag_jax.analysis.weight_distance runs/weight_distance_cpu

Expected (paper): the distance keeps growing with D although the test accuracy is flat (SGD at
equilibrium does not converge in weight space); averaging the snapshots of one run gives a better
network than its last iterate, while averaging two independent runs gives no gain (a much worse
network).

CPU (`get_config('cpu')`): the bundled MNIST digits (4,000 train / 1,000 test), SI MLP 784-128-128
with BatchNorm (no affine) and a fixed random head, SGD without momentum, B = 32, eta = 0.1,
lambda = 0.01: intrinsic LR 0.001, so 1 / (eta lambda) = 1,000 steps = 8 epochs of 125 steps (with
lambda = 0.1 as in fast_equilibrium.py the direction decorrelates within ~2 epochs and every curve
saturates at once). Measured: ||w||^2 falls from ~250 to its equilibrium ~18 by epoch ~20. 4 trials
vmapped, 80 epochs, evaluation every epoch with BatchNorm statistics refreshed on 50 training
batches, weights saved every 2 epochs from 20 to 80 (31 files x 4 trials x 0.47 MB = 59 MB).
Measured on the quiet 2-core CPU: 21 s wall (32 s CPU), the analysis 7 s. Relative distance
||W_T - W_(T+D)|| / ||W_T|| = 0.635 / 0.721 at D = 30 / 60 for T = 20 and 0.435 / 0.475 at
D = 8 / 16 for T = 64 (still growing); two independent trials are 1.405 apart (~sqrt(2)). Test
accuracy (mean, 95% interval over the 4 trials): last iterate 0.9448 +- 0.0085; average of epochs
20..80 (31 snapshots) 0.9635 +- 0.0023 (gain +0.019 +- 0.007; +0.009 already for D = 2); average
of two independent trials 0.8643 +- 0.0175 (6 pairs).

Full scale (`get_config()`): SI PreResNet32 with BatchNorm on CIFAR-10 with crop + flip, the
repository's shared CIFAR setting (configs/base.py: B = 128, eta = 0.8, lambda = 5e-4, no
momentum; not verified against the paper's exact Fig. 6 hyper-parameters), 4 trials, 200 constant
epochs, weights every 2 epochs from epoch 50 (76 files x 4 trials x 1.9 MB = 0.6 GB), GPU.
`get_config('smoke')`: that setting shrunk to a CPU smoke run (tests).
"""

from svag_jax.configs import base

ARGS = ('cpu', 'smoke')


def get_config(arg: str | None = None):
  c = base.get_config()
  c.optim.momentum = 0.0
  c.model.norm = 'batch'
  if arg == 'cpu':
    base.mnist_mlp(c)
    c.optim.lr, c.optim.wd = 0.1, 0.01
    c.train.epochs = 80
    c.train.eval_every = 1.0
    c.train.eval_bn_batches = 50
    c.train.params_at = tuple(range(20, 81, 2))
    c.trials.num = 4
    c.trials.vmap_chunk = 0
    c.checkpoint.every = 5.0
  elif arg in (None, '', 'full', 'smoke'):
    base.cifar10_preresnet32(c)
    c.train.epochs = 200
    c.train.eval_every = 2.0
    c.train.eval_bn_batches = 50
    c.train.params_at = tuple(range(50, 201, 2))
    c.trials.num = 4
    if arg == 'smoke':
      base.smoke(c)
      c.train.params_at = (c.train.epochs,)
      c.train.eval_bn_batches = 2
  else:
    raise ValueError(f'unknown config argument {arg!r}; use "cpu", "smoke" or nothing')
  return c
