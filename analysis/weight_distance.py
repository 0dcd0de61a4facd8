"""Weight distances and weight averaging along one constant-LR run (Li, Lyu & Arora 2020, Fig. 6).

    python -m svag_jax.analysis.weight_distance WORKDIR [--out DIR] [--starts 10 20 30] \
        [--bn-batches K]

reads the weight snapshots of a run (train.params_at, `svag_jax.record.read_params`; e.g.
configs/weight_distance.py) and writes into WORKDIR/figures (or DIR), as PNG and PDF:
  distances.*  ||W_T - W_{T+D}|| vs D for several T (left) and the relative distance of W_T and
               W_{T+D} (right, `weights.relative_distance`: the distance over the RMS of the two
               norms), mean over trials with a min-max band; W is every trainable weight (the
               scale-invariant group; the fixed head and the BatchNorm statistics are not in it);
  swa.*        test accuracy vs D of (a) the last iterate W_{T+D}, (b) the average of the snapshots
               of epochs T..T+D, and, as a horizontal line, (c) the average of the final weights of
               two independent trials; all with BatchNorm statistics recomputed.
and prints the numbers.

Why both distance panels: the loss of a scale-invariant net depends on the direction W/||W|| only,
so the raw distance mixes movement along the sphere with changes of the norm. Divided by the norm
(the RMS of the two, ~||W_T|| at equilibrium, where the norm is nearly stationary) it measures the
direction; it would reach sqrt(2) for two orthogonal (uncorrelated) weights, which the two
independent trials show as the reference line. A distance that keeps growing while accuracy is
flat is the point of the figure: SGD at equilibrium does not converge in weight space.

Averaging: the average of a trial's snapshots (all of 'params', 'batch_stats' as the starting
statistics, and its own fixed head) is a new network, so its BatchNorm statistics are recomputed:
`bn_batches` train-mode passes over the first bn_batches x B training examples
(`svag_jax.evaluate.refreshed_batch_stats`; with momentum 0.9, 0.9^k of the averaged statistics
remain). The last iterates are evaluated the same way, so the three are compared on equal terms;
with bn_batches equal to the run's train.eval_bn_batches the last iterate's numbers are exactly the
run's own metrics (tests/test_weight_distance.py). Two independent trials have different fixed
random heads; their average averages everything, head included: it is the average of the two
networks' weights.

Evaluating a network is not training: nothing here takes an optimizer step, and the workdir is
only read (the figures go to their own folder). This is the one module of analysis/ that imports
the model and data code (`svag_jax.evaluate`, `svag_jax.data`: forward passes of the run's
network on its data, `Evaluator` below); tests/test_analysis_shape.py allows it here only.
"""

import dataclasses
import itertools
import os
import sys
from collections.abc import Sequence

import jax
import ml_collections
import numpy as np
from matplotlib.axes import Axes

from svag_jax import data as data_lib
from svag_jax import evaluate, record
from svag_jax.analysis import common, stats
from svag_jax.analysis.weights import (
    Snapshots,
    average,
    distance,
    relative_distance,
    trial_vectors,
)

DEFAULT_BN_BATCHES = 50  # 0.9^50 < 0.6% of the starting statistics remain
PANEL_SIZE = (5.2, 3.8)


# ---- Evaluating saved weights (forward passes only). ----


def config_of(workdir: str | os.PathLike) -> ml_collections.ConfigDict:
  """The run's config (config.json) as a ConfigDict."""
  return ml_collections.ConfigDict(record.read_config(workdir))


@dataclasses.dataclass
class Evaluator:
  """Test loss and accuracy of networks given by their variables, as the run evaluated them.

  Attributes:
    evaluation: the run's evaluation (`svag_jax.evaluate.Evaluator.from_config`), with bn_batches
      the number of BatchNorm refresh batches used here.
    data: the training split (for the BatchNorm refresh and the normalisation statistics).
    test: the test split in evaluation batches.
  """

  evaluation: evaluate.Evaluator
  data: data_lib.TrainData
  test: data_lib.EvalSplit

  @classmethod
  def from_workdir(cls, workdir: str | os.PathLike, bn_batches: int | None = None) -> 'Evaluator':
    """Rebuilds the run's data and model from config.json. `bn_batches`: BatchNorm refresh
    batches (None: the run's train.eval_bn_batches, or DEFAULT_BN_BATCHES if that is 0)."""
    cfg = config_of(workdir)
    ds = data_lib.load(cfg.data)
    k = bn_batches if bn_batches is not None else (cfg.train.eval_bn_batches or DEFAULT_BN_BATCHES)
    evaluation = evaluate.Evaluator.from_config(cfg, ds.num_classes, bn_batches=k)
    data = data_lib.TrainData(ds.train_images, ds.train_labels, ds.mean, ds.std)
    test = data_lib.make_eval_split(ds.test_images, ds.test_labels, cfg.train.eval_batch_size)
    return cls(evaluation, data, test)

  @property
  def bn_batches(self) -> int:
    """The BatchNorm refresh batches of every evaluation."""
    return self.evaluation.bn_batches

  def __call__(self, variables: dict) -> dict[str, np.ndarray]:
    """Evaluates T networks at once.

    Args:
      variables: {'params', 'batch_stats', 'frozen'} with leaves [T, ...] (as `read_params`).

    Returns:
      {'test_loss': float [T], 'test_accuracy': float [T]}.
    """
    result, _ = self.evaluation(variables, {'test': self.test}, self.data)
    return result


# ---- Distances and averages from a run's snapshots. ----


def default_starts(epochs: Sequence[float], num: int = 4) -> list[float]:
  """`num` start epochs T spread over the first three quarters of the saved epochs."""
  epochs = list(epochs)
  idx = np.unique(np.round(np.linspace(0, 0.75 * (len(epochs) - 1), num)).astype(int))
  return [epochs[i] for i in idx]


def distance_curves(
    snaps: Snapshots, starts: Sequence[float]
) -> dict[float, tuple[np.ndarray, np.ndarray, np.ndarray]]:
  """||W_T - W_{T+D}|| of the trainable weights for every saved T + D >= T.

  Returns:
    {T: (deltas float [D], distance float [T_trials, D], relative float [T_trials, D])}, where
    relative is `weights.relative_distance` of W_T and W_{T+D}.
  """
  result = {}
  for start in starts:
    w0 = snaps[start]['params']
    later = [e for e in snaps.epochs if e >= start]
    dist = np.stack([distance(w0, snaps[e]['params'], 1) for e in later], axis=1)
    v0 = trial_vectors(w0)
    rel = np.stack([relative_distance(v0, trial_vectors(snaps[e]['params'])) for e in later], 1)
    result[start] = (np.asarray(later) - start, dist, rel)
  return result


def cross_trial_pairs(arms: Sequence[str]) -> list[tuple[int, int]]:
  """All pairs (i, j), i < j, of trials of the same arm."""
  return [(i, j) for i, j in itertools.combinations(range(len(arms)), 2) if arms[i] == arms[j]]


def swa_deltas(snaps: Snapshots, start: float) -> list[float]:
  """D in {0, 1, 2, 4, 8, ...} x the snapshot spacing, up to the last saved epoch."""
  step = min(np.diff(snaps.epochs)) if len(snaps.epochs) > 1 else 1.0
  room = snaps.epochs[-1] - start
  deltas = [0.0] + [step * 2**k for k in range(64) if step * 2**k <= room + 1e-9]
  if room - deltas[-1] > 1e-9:
    deltas.append(room)
  return deltas


def swa_curves(snaps: Snapshots, evaluator: Evaluator, starts: Sequence[float]) -> dict:
  """Test accuracy (and loss) of the last iterate and of the snapshot average, per T and D.

  Returns:
    {T: {'deltas': float [D], 'last': {metric: [T_trials, D]}, 'swa': {metric: [T_trials, D]},
    'num_averaged': int [D]}}.
  """
  out = {}
  for start in starts:
    deltas = swa_deltas(snaps, start)
    last, swa, counts = [], [], []
    for d in deltas:
      window = snaps.window(start, d)
      last.append(evaluator(snaps[window[-1]]))
      swa.append(evaluator(average([snaps[e] for e in window])))
      counts.append(len(window))
    stack = lambda rows: {k: np.stack([r[k] for r in rows], axis=1) for k in rows[0]}  # noqa: E731
    out[start] = {
        'deltas': np.asarray(deltas),
        'last': stack(last),
        'swa': stack(swa),
        'num_averaged': np.asarray(counts),
    }
  return out


def cross_trial_average(
    snaps: Snapshots, evaluator: Evaluator, epoch: float | None = None
) -> dict[str, np.ndarray]:
  """Test accuracy of the average of two independent trials' weights at `epoch` (default: the
  last saved), for every pair of trials of the same arm, and of the single trials.

  Returns:
    {'pairs': int [P, 2], 'pair_accuracy': float [P], 'single_accuracy': float [T]}.
  """
  epoch = snaps.epochs[-1] if epoch is None else epoch
  w = snaps[epoch]
  pairs = cross_trial_pairs(snaps.arms)
  single = evaluator(w)['test_accuracy']
  if not pairs:
    return {'pairs': np.zeros((0, 2), int), 'pair_accuracy': np.zeros(0), 'single_accuracy': single}
  i, j = (np.asarray(x) for x in zip(*pairs))
  averaged = average([jax.tree.map(lambda x: x[i], w), jax.tree.map(lambda x: x[j], w)])
  return {
      'pairs': np.asarray(pairs),
      'pair_accuracy': evaluator(averaged)['test_accuracy'],
      'single_accuracy': single,
  }


def pair_distances(snaps: Snapshots, epoch: float) -> np.ndarray:
  """The relative distance (`weights.relative_distance`) at `epoch` of every pair of trials of the
  same arm: float [P]."""
  pairs = np.asarray(cross_trial_pairs(snaps.arms), int).reshape(-1, 2)
  v = trial_vectors(snaps[epoch]['params'])
  return relative_distance(v[pairs[:, 0]], v[pairs[:, 1]])


# ---- Figures and summary. ----


def plot_distances(
    curves: dict, pair_rel: np.ndarray | None = None, axes: Sequence[Axes] | None = None
) -> np.ndarray:
  """Two panels: ||W_T - W_{T+D}|| and the relative distance of W_T and W_{T+D} vs D, one colour
  per T (mean over trials, min-max band); `pair_rel` (float [P]) draws the mean relative distance
  between independent trials on the relative panel."""
  axes = common.check_axes(axes, 2, 'plot_distances', panel_size=PANEL_SIZE)
  for c, (start, (deltas, dist, rel)) in enumerate(curves.items()):
    for ax, values in zip(axes, (dist, rel)):
      mean, low, high = stats.mean_and_band(values, (0.0, 1.0))
      ax.plot(deltas, mean, color=f'C{c}', label=f'T = {start:g}')
      ax.fill_between(deltas, low, high, color=f'C{c}', alpha=0.2, linewidth=0)
  axes[1].axhline(
      np.sqrt(2), color='0.5', linestyle=':', linewidth=1, label='√2: orthogonal (uncorrelated)'
  )
  if pair_rel is not None and pair_rel.size:
    axes[1].axhline(
        float(np.mean(pair_rel)),
        color='k',
        linestyle='--',
        linewidth=1,
        label='two independent trials',
    )
  axes[0].set_ylabel(r'$\|W_T - W_{T+\Delta}\|$')
  axes[1].set_ylabel(r'$\|W_T - W_{T+\Delta}\| \;/\; \mathrm{rms}(\|W_T\|, \|W_{T+\Delta}\|)$')
  for ax in axes:
    ax.set_xlabel(r'$\Delta$ (epochs)')
    ax.legend(fontsize='small')
    ax.grid(alpha=0.3)
  axes[0].set_title('Distance travelled (mean over trials, min–max band)', fontsize='medium')
  axes[1].set_title('Relative to the norm (the direction)', fontsize='medium')
  return axes


def plot_swa(curves: dict, cross: dict, axes: Sequence[Axes] | None = None) -> np.ndarray:
  """Test accuracy vs D: snapshot average of T..T+D (solid) and last iterate W_{T+D} (dashed), one
  colour per T (mean over trials); the average of two independent trials (grey line)."""
  (ax,) = common.check_axes(axes, 1, 'plot_swa', panel_size=PANEL_SIZE)
  lines = (
      ('swa', 'average of epochs T..T+Δ', dict(marker='o', markersize=3)),
      ('last', 'last iterate W_(T+Δ)', dict(linestyle='--', linewidth=1)),
  )
  for c, (start, r) in enumerate(curves.items()):
    for key, what, style in lines:
      accuracy = r[key]['test_accuracy'].mean(0)
      ax.plot(r['deltas'], accuracy, color=f'C{c}', label=f'{what}, T = {start:g}', **style)
  if cross['pair_accuracy'].size:
    ax.axhline(
        float(cross['pair_accuracy'].mean()),
        color='0.4',
        linestyle='-.',
        label='average of two independent trials (final)',
    )
  ax.set_xlabel(r'$\Delta$ (epochs)')
  ax.set_ylabel('test accuracy (BatchNorm statistics recomputed)')
  ax.set_title(
      'Weight averaging along one run vs across runs (mean over trials)', fontsize='medium'
  )
  ax.legend(fontsize='x-small')
  ax.grid(alpha=0.3)
  return np.asarray([ax])


def _interval(values: np.ndarray) -> str:
  """'mean ± half-width (n=...)' of the interval of the mean over trials (`stats.interval`)."""
  mean, _, high = stats.interval(values)
  return f'{mean:.4f} ± {high - mean:.4f} (n={np.isfinite(values).sum()})'


def summary(
    dist: dict, swa: dict, cross: dict, pair_rel: np.ndarray, recorded: float | None
) -> list[str]:
  """The printed numbers: distances at the largest D, SWA vs last iterate per T and D, and the
  cross-trial average vs single trials (intervals of the mean over trials, `stats.interval`)."""
  lines = []
  for start, (deltas, d, rel) in dist.items():
    half = int(np.argmin(np.abs(deltas - deltas[-1] / 2)))
    lines.append(
        f'T={start:g}: ||W_T - W_T+D|| at D={deltas[half]:g} / {deltas[-1]:g}: '
        f'{d[:, half].mean():.3f} / {d[:, -1].mean():.3f}; relative '
        f'{rel[:, half].mean():.3f} / {rel[:, -1].mean():.3f} (mean over trials)'
    )
  if pair_rel.size:
    lines.append(
        f'two independent trials, relative distance: {pair_rel.mean():.3f} '
        f'({pair_rel.size} pairs)'
    )
  for start, r in swa.items():
    for k, d in enumerate(r['deltas']):
      gain = r['swa']['test_accuracy'][:, k] - r['last']['test_accuracy'][:, k]
      lines.append(
          f'T={start:g} D={d:g} ({r["num_averaged"][k]} snapshots): test acc average '
          f'{_interval(r["swa"]["test_accuracy"][:, k])}, last iterate '
          f'{_interval(r["last"]["test_accuracy"][:, k])}, gain {_interval(gain)}'
      )
  single, pairs = cross['single_accuracy'], cross['pair_accuracy']
  line = f'final single trials: test acc {_interval(single)}'
  if recorded is not None:
    line += f" (run's own metric: {recorded:.4f})"
  lines.append(line)
  if pairs.size:
    lines.append(
        f'average of two independent trials: test acc {_interval(pairs)} '
        f'over {pairs.size} pairs'
    )
  return lines


def main(argv: Sequence[str] | None = None) -> int:
  parser = common.figure_parser('weight_distance', __doc__)
  parser.add_argument(
      '--starts',
      type=float,
      nargs='*',
      default=None,
      help='start epochs T (default: 4 spread over the saved epochs)',
  )
  parser.add_argument(
      '--bn-batches',
      type=int,
      default=None,
      help="BatchNorm refresh batches (default: the run's eval_bn_batches, "
      f'or {DEFAULT_BN_BATCHES})',
  )
  args = parser.parse_args(argv)

  def make():
    snaps = Snapshots(args.workdir)
    starts = args.starts or default_starts(snaps.epochs)
    missing = [s for s in starts if s not in snaps.epochs]
    if missing:
      raise ValueError(f'no snapshots at epochs {missing}; saved: {snaps.epochs}')
    evaluator = Evaluator.from_workdir(args.workdir, args.bn_batches)
    dist = distance_curves(snaps, starts)
    pair_rel = pair_distances(snaps, snaps.epochs[-1])
    swa = swa_curves(snaps, evaluator, starts)
    cross = cross_trial_average(snaps, evaluator)
    recorded = None
    metrics = common.load_metrics(args.workdir)
    if len(metrics) == 1:
      m = next(iter(metrics.values()))
      recorded = float(np.nanmean(m.at_epoch('test_accuracy', snaps.epochs[-1])))
    figures = {'distances': plot_distances(dist, pair_rel), 'swa': plot_swa(swa, cross)}
    head = (
        f'{len(snaps.epochs)} snapshots of {len(snaps.arms)} trials, BatchNorm refresh '
        f'{evaluator.bn_batches} batches'
    )
    return figures, [head] + summary(dist, swa, cross, pair_rel, recorded)

  return common.run_figure(args, make)


if __name__ == '__main__':
  sys.exit(main())
