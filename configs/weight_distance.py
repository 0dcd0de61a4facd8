"""Weight distances and weight averaging at equilibrium (Li, Lyu & Arora 2020, Fig. 6).

Paper (Sec. 4; Fig. 6 and its settings are in Appendix D, not available here): at a fixed
LR and WD, ||W_T - W_{T+D}|| keeps growing with D for every T, and averaging the weights of one run
over epochs lowers the test loss. Here: one run at constant LR and WD, every trial's weights saved
each epoch after the norm has equilibrated (train.params_at); the analysis draws the distances and
compares the last iterate with averages over epochs and over two independent trials.

    python -m svag_jax.launch.main --config=weight_distance:cpu --workdir=runs/weight_distance_cpu
    python -m svag_jax.analysis.weight_distance runs/weight_distance_cpu
    python -m svag_jax.launch.main --config=weight_distance --workdir=runs/weight_distance

Expected (paper): the distance grows with D while the test accuracy is flat; averaging one run's
snapshots beats its last iterate; averaging two independent runs does not (from earlier work).
CPU (`:cpu`: bundled MNIST, SI MLP 784-128-128, eta = 0.1, lambda = 0.01, 80 epochs, 4 trials,
weights every 2 epochs from 20): 21 s wall on the quiet 2-core CPU, the analysis 7 s. Expected
(measured): relative distance 0.635 / 0.721 at D = 30 / 60 from T = 20; test accuracy 0.9448 +-
0.0085 (last iterate), 0.9635 +- 0.0023 (average of epochs 20..80), 0.8643 +- 0.0175 (average of
two trials). Full scale (SI PreResNet32 on CIFAR-10, the shared CIFAR setting, not checked against
Fig. 6; 200 epochs, 4 trials, 0.6 GB of weights): not run, no runtime measured.
`get_config('smoke')`: a CPU smoke run (tests).

Settings in full and all measurements: docs/experiments.md#weight_distance.
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
