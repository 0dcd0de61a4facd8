"""2021 Fig. 4 (left): test/train accuracy vs effective steps (steps / l) for SGD and SVAG l.

    python -m svag_jax.analysis.svag_convergence SWEEP_ROOT [--out PREFIX]

Prints the final accuracies per point; writes PREFIX.png/.pdf (default SWEEP_ROOT/svag_convergence).
"""

import argparse
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from svag_jax.analysis import sde  # noqa: E402


def label(run: sde.Run) -> str:
  o = run.config['optim']
  return 'SGD' if o.get('oracle', 'sgd') == 'sgd' else f'SVAG l={o.get("svag_l", 1)}'


def figure(runs: list[sde.Run]):
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharex=True)
  for run in runs:
    style = dict(ls='--', color='k', zorder=5) if label(run) == 'SGD' else {}
    for ax, split in zip(axes, ('test', 'train')):
      ax.plot(run.effective_steps, run.mean(f'{split}_accuracy'), label=label(run), **style)
  for ax, split in zip(axes, ('test', 'train')):
    ax.set_xlabel('effective steps (steps / l)')
    ax.set_ylabel(f'{split} accuracy')
    ax.grid(alpha=0.3)
  axes[0].legend()
  fig.suptitle('SVAG converges to the SDE as l grows (Li, Malladi & Arora 2021, Fig. 4)')
  fig.tight_layout()
  return fig


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('root')
  p.add_argument('--out', default=None)
  a = p.parse_args(argv)
  runs = sde.load_sweep(a.root)
  print(f'{"run":<12} {"status":<8} {"eff. steps":>10} {"test acc":>16} {"train acc":>10}')
  for run in runs:
    m, s, n = run.final('test_accuracy')
    tr, _, _ = run.final('train_accuracy')
    print(
        f'{label(run):<12} {run.status:<8} {run.effective_steps[-1]:>10g} '
        f'{m:>9.4f}±{s:.4f} {tr:>10.4f}'
    )
  for path in sde.save(figure(runs), a.out or f'{a.root}/svag_convergence'):
    print('wrote', path)
  return 0


if __name__ == '__main__':
  sys.exit(main())
