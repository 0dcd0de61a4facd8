"""2021 Fig. 1: train/test accuracy of SGD, NGD (covariance-matched noise) and GD vs steps.

    python -m svag_jax.analysis.ngd SWEEP_ROOT [--out PREFIX]

Prints the final accuracies (mean ± 2 SE over trials), for each oracle whether its final test
accuracy lies inside SGD's mean ± 2 SE band, and its paired difference to SGD (trial i of every
oracle starts from the same init, so the difference is taken trial by trial: mean ± 2 SE of
acc_oracle,i − acc_SGD,i); draws the accuracy and effective-LR curves with mean ± 2 SE bands
to PREFIX.png/.pdf (default SWEEP_ROOT/ngd).
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


def paired_differences(runs: list[sde.Run]) -> dict[str, tuple[float, float, float]]:
  """{oracle: (mean, low, high)} of the final test accuracy minus SGD's, trial by trial (± 2 SE).

  Trial i of each oracle shares its init with SGD's trial i; runs with a different number of
  live trials than SGD are compared on the first min(n) trials. No SGD run: {}."""
  final = {label(r): r.values['test_accuracy'][:, -1] for r in runs}
  if 'SGD' not in final:
    return {}
  sgd = final.pop('SGD')
  out = {}
  for oracle, acc in final.items():
    n = min(acc.size, sgd.size)
    out[oracle] = stats.mean_interval(acc[:n] - sgd[:n])
  return out


def figure(runs: list[sde.Run]):
  """Train and test accuracy and, where logged, the effective LR eta / ||w||^2 vs steps."""
  panels = [('train_accuracy', 'train accuracy'), ('test_accuracy', 'test accuracy')]
  if all('effective_lr' in r.values for r in runs):
    panels.append(('effective_lr', 'effective LR η/‖w‖²'))
  fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), sharex=True)
  for run in runs:
    for ax, (key, _) in zip(axes, panels):
      common.plot_mean_se_band(ax, run.steps.astype(float), run.values[key], label=label(run))
  for ax, (key, name) in zip(axes, panels):
    ax.set_xlabel('steps')
    ax.set_ylabel(f'{name} (mean ± 2 SE)')
    if key == 'effective_lr':
      ax.set_yscale('log')
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
  for oracle, (m, lo, hi) in paired_differences(runs).items():
    print(f'{oracle} − SGD, paired by init: {m:+.4f} [{lo:+.4f}, {hi:+.4f}] (mean ± 2 SE)')
  for path in sde.save(figure(runs), a.out or f'{a.root}/ngd'):
    print('wrote', path)
  return 0


if __name__ == '__main__':
  sys.exit(main())
