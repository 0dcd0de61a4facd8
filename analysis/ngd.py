"""2021 Fig. 1: train/test accuracy of SGD, NGD (covariance-matched noise) and GD vs steps.

    python -m svag_jax.analysis.ngd SWEEP_ROOT [--out PREFIX]

Prints the final accuracies; writes PREFIX.png/.pdf (default SWEEP_ROOT/ngd).
"""

import argparse
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from svag_jax.analysis import sde  # noqa: E402


def label(run: sde.Run) -> str:
  return run.config['optim'].get('oracle', 'sgd').upper()


def figure(runs: list[sde.Run]):
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharex=True)
  for run in runs:
    for ax, split in zip(axes, ('train', 'test')):
      ax.plot(run.steps, run.mean(f'{split}_accuracy'), label=label(run))
  for ax, split in zip(axes, ('train', 'test')):
    ax.set_xlabel('steps')
    ax.set_ylabel(f'{split} accuracy')
    ax.grid(alpha=0.3)
  axes[1].legend()
  fig.suptitle('SGD vs NGD vs GD, same LR/WD/steps (Li, Malladi & Arora 2021, Fig. 1)')
  fig.tight_layout()
  return fig


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('root')
  p.add_argument('--out', default=None)
  a = p.parse_args(argv)
  runs = sde.load_sweep(a.root)
  print(f'{"run":<5} {"status":<8} {"steps":>6} {"train acc":>10} {"test acc":>10}')
  for run in runs:
    print(
        f'{label(run):<5} {run.status:<8} {run.steps[-1]:>6d} '
        f'{run.final("train_accuracy")[0]:>10.4f} {run.final("test_accuracy")[0]:>10.4f}'
    )
  for path in sde.save(figure(runs), a.out or f'{a.root}/ngd'):
    print('wrote', path)
  return 0


if __name__ == '__main__':
  sys.exit(main())
