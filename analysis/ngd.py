"""2021 Fig. 1: train/test accuracy of SGD, NGD (covariance-matched noise) and GD vs steps.

    python -m svag_jax.analysis.ngd SWEEP_ROOT [--out PREFIX]

Prints the final accuracies (mean ± 2 SE over trials) and, for each oracle, whether its final
test accuracy lies inside SGD's mean ± 2 SE band; draws the curves with mean ± 2 SE bands to
PREFIX.png/.pdf (default SWEEP_ROOT/ngd).
"""

import argparse
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from svag_jax.analysis import common, sde, stats  # noqa: E402


def label(run: sde.Run) -> str:
  return run.config['optim'].get('oracle', 'sgd').upper()


def final_intervals(runs: list[sde.Run]) -> dict[str, dict[str, tuple[float, float, float]]]:
  """{oracle: {split: (mean, low, high)}}: the final accuracy, mean ± 2 SE over trials."""
  return {
      label(r): {
          split: stats.mean_interval(r.values[f'{split}_accuracy'][:, -1])
          for split in ('train', 'test')
      }
      for r in runs
  }


def inside_sgd_band(finals: dict) -> dict[str, bool]:
  """{oracle: whether its final test mean lies in SGD's mean ± 2 SE band} (no SGD: {})."""
  if 'SGD' not in finals:
    return {}
  _, lo, hi = finals['SGD']['test']
  return {k: bool(lo <= v['test'][0] <= hi) for k, v in finals.items() if k != 'SGD'}


def figure(runs: list[sde.Run]):
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharex=True)
  for run in runs:
    for ax, split in zip(axes, ('train', 'test')):
      values = run.values[f'{split}_accuracy']
      common.plot_mean_se_band(ax, run.steps.astype(float), values, label=label(run))
  for ax, split in zip(axes, ('train', 'test')):
    ax.set_xlabel('steps')
    ax.set_ylabel(f'{split} accuracy (mean ± 2 SE)')
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
  finals = final_intervals(runs)
  print(f'{"run":<5} {"status":<8} {"steps":>6} {"trials":>6} {"train acc":>26} {"test acc":>26}')
  for run in runs:
    cells = [
        f'{m:.4f} [{lo:.4f}, {hi:.4f}]'
        for m, lo, hi in (finals[label(run)][s] for s in ('train', 'test'))
    ]
    n = run.final('test_accuracy')[2]
    print(
        f'{label(run):<5} {run.status:<8} {run.steps[-1]:>6d} {n:>6d} {cells[0]:>26} {cells[1]:>26}'
    )
  for oracle, inside in inside_sgd_band(finals).items():
    where = 'inside' if inside else 'outside'
    print(f'{oracle}: final test accuracy {where} the SGD band (mean ± 2 SE)')
  for path in sde.save(figure(runs), a.out or f'{a.root}/ngd'):
    print('wrote', path)
  return 0


if __name__ == '__main__':
  sys.exit(main())
