"""Shared readers of the SDE-toolkit figures (2021 paper): a sweep root -> per-point curves.

A sweep root (launch/sweep.py) holds one workdir per point and `sweep.json`; a plain directory of
workdirs works too. Nothing here trains.
"""

import dataclasses
import json
import os
import pathlib

import numpy as np

from svag_jax import workdir as workdir_lib
from svag_jax.analysis import common


@dataclasses.dataclass(frozen=True)
class Run:
  """One point of a sweep: its config and per-eval curves averaged over non-diverged trials.

  Attributes:
    name: the point's sub-workdir name.
    config: the run's config.json (a dict).
    status: 'done', 'running', ... (status.json).
    steps: int [E] optimizer steps of the evals; effective_steps: float [E] (steps / SVAG l);
      epochs: float [E].
    values: {metric: float64 [T, E]} per trial (NaN where null: diverged, or G/N not estimated).
  """

  name: str
  config: dict
  status: str
  steps: np.ndarray
  effective_steps: np.ndarray
  epochs: np.ndarray
  values: dict

  def mean(self, metric: str) -> np.ndarray:
    """Mean over trials [E] (NaN-aware; NaN where no trial has a value)."""
    v = self.values[metric]
    with np.errstate(invalid='ignore'):
      count = np.sum(~np.isnan(v), axis=0)
      return np.where(count > 0, np.nansum(v, axis=0) / np.maximum(count, 1), np.nan)

  def final(self, metric: str) -> tuple[float, float, int]:
    """Mean, std and count over trials of `metric` at the last eval."""
    last = self.values[metric][:, -1]
    ok = last[~np.isnan(last)]
    return (
        float(ok.mean()) if ok.size else float('nan'),
        float(ok.std()) if ok.size else float('nan'),
        int(ok.size),
    )


def load_run(path: str | os.PathLike, name: str | None = None) -> Run:
  path = pathlib.Path(path)
  rows = workdir_lib.read_metrics(path)
  steps = sorted({r['step'] for r in rows})
  trials = sorted({r['trial'] for r in rows})
  col = {s: j for j, s in enumerate(steps)}
  keys = {k for r in rows for k, v in r.items() if isinstance(v, (int, float)) or v is None}
  keys -= {'step', 'trial', 'epoch', 'effective_step', 'svag_l', 'diverged'}
  values = {k: np.full((len(trials), len(steps)), np.nan) for k in keys}
  eff, epochs = np.zeros(len(steps)), np.zeros(len(steps))
  for r in rows:
    j = col[r['step']]
    eff[j] = r.get('effective_step', r['step'])
    epochs[j] = r['epoch']
    for k in keys:
      v = r.get(k)
      if v is not None:
        values[k][trials.index(r['trial']), j] = v
  try:
    status = workdir_lib.read_status(path)['status']
  except OSError:
    status = 'unknown'
  return Run(
      name or path.name,
      workdir_lib.read_config(path),
      status,
      np.asarray(steps),
      eff,
      epochs,
      values,
  )


def load_sweep(root: str | os.PathLike) -> list[Run]:
  """The runs of a sweep root, in the sweep's order (sweep.json) or by name; points without
  metrics yet are skipped."""
  root = pathlib.Path(root)
  index = root / 'sweep.json'
  if index.exists():
    names = list(json.loads(index.read_text())['points'])
  else:
    names = sorted(p.name for p in root.iterdir() if (p / 'metrics.jsonl').exists())
  runs = [load_run(root / n, n) for n in names if (root / n / 'metrics.jsonl').exists()]
  if not runs:
    raise FileNotFoundError(f'no run with metrics under {root}')
  return runs


save = common.save_figure  # the SDE figures' writer (kept under its old name)
