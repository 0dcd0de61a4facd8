"""The run record on disk. Training writes it; analysis only reads it.

    <workdir>/config.json        the full config, written at the start
    <workdir>/metrics.jsonl      one JSON row per evaluation per trial, appended as produced
                                 (pandas: pd.read_json(path, lines=True))
    <workdir>/status.json        {"status": running|done|preempted|diverged|failed, ...}
    <workdir>/predictions/       epoch_<E>.npy: uint8 [T, n_test] predicted classes (np.load with
                                 mmap_mode='r' reads lazily); trials.json: arm of each trial
    <workdir>/checkpoints/       orbax checkpoints
"""

import json
import os
import pathlib
from typing import Any

import ml_collections
import numpy as np

# Fields that may change between a run and its resumption (e.g. training longer).
RESUMABLE_FIELDS = ('train.epochs', 'checkpoint.max_to_keep', 'train.predictions_at')


class WorkdirError(RuntimeError):
  """The workdir holds a run that cannot be continued with this config."""


def _flatten(tree: Any, prefix: str = '') -> dict[str, Any]:
  if isinstance(tree, dict):
    out = {}
    for k, v in tree.items():
      out.update(_flatten(v, f'{prefix}{k}.'))
    return out
  return {prefix[:-1]: tree}


def config_to_json(config: ml_collections.ConfigDict) -> dict:
  """A JSON-able dict of the config (tuples become lists)."""
  return json.loads(json.dumps(config.to_dict(), default=list))


def _atomic_write(path: pathlib.Path, text: str) -> None:
  tmp = path.with_name(path.name + '.tmp')
  tmp.write_text(text)
  os.replace(tmp, path)


def epoch_name(epoch: float) -> str:
  return f'{epoch:g}'


class Workdir:
  """Writes the files of one run. Every write is append-only or atomic (write, then rename)."""

  def __init__(self, path: str | os.PathLike):
    self.path = pathlib.Path(path).absolute()
    self.path.mkdir(parents=True, exist_ok=True)
    self.metrics_path = self.path / 'metrics.jsonl'
    self.config_path = self.path / 'config.json'
    self.status_path = self.path / 'status.json'
    self.predictions_dir = self.path / 'predictions'
    self.checkpoints_dir = self.path / 'checkpoints'

  def start(self, config: ml_collections.ConfigDict) -> None:
    """Writes config.json, or checks that an existing one describes the same run."""
    new = config_to_json(config)
    if self.config_path.exists():
      old = json.loads(self.config_path.read_text())
      a, b = _flatten(old), _flatten(new)
      diff = [
          f'{k}: {a.get(k)!r} -> {b.get(k)!r}'
          for k in sorted(set(a) | set(b))
          if a.get(k) != b.get(k) and k not in RESUMABLE_FIELDS
      ]
      if diff:
        raise WorkdirError(
            f'{self.path} holds a run with a different config ({"; ".join(diff)}). Use a new '
            '--workdir for a different experiment, or the same config to resume this one.'
        )
    _atomic_write(self.config_path, json.dumps(new, indent=2, sort_keys=True))

  def append_metrics(self, rows: list[dict]) -> None:
    with self.metrics_path.open('a') as f:
      for row in rows:
        f.write(json.dumps(row, allow_nan=False) + '\n')
      f.flush()
      os.fsync(f.fileno())

  def truncate_metrics(self, max_step: int) -> int:
    """Drops rows written after step `max_step` (they will be recomputed identically on resume).

    Returns the number of rows dropped.
    """
    if not self.metrics_path.exists():
      return 0
    lines = self.metrics_path.read_text().splitlines()
    keep = [line for line in lines if line and json.loads(line)['step'] <= max_step]
    if len(keep) != len(lines):
      _atomic_write(self.metrics_path, ''.join(line + '\n' for line in keep))
    return len(lines) - len(keep)

  def write_status(self, status: str, **info: Any) -> None:
    _atomic_write(self.status_path, json.dumps({'status': status, **info}, indent=2))

  def save_predictions(self, epoch: float, predictions: np.ndarray, arms: list[str]) -> None:
    """Saves uint8 [T, n_test] predicted classes at `epoch`, and the arm of each trial."""
    self.predictions_dir.mkdir(exist_ok=True)
    _atomic_write(self.predictions_dir / 'trials.json', json.dumps({'arm': arms}))
    path = self.predictions_dir / f'epoch_{epoch_name(epoch)}.npy'
    tmp = path.with_name(path.stem + '.tmp.npy')
    np.save(tmp, predictions.astype(np.uint8))
    os.replace(tmp, path)


# ---- Readers (used by analysis/ and tests; they never write). ----


def read_status(path: str | os.PathLike) -> dict:
  return json.loads((pathlib.Path(path) / 'status.json').read_text())


def read_config(path: str | os.PathLike) -> dict:
  return json.loads((pathlib.Path(path) / 'config.json').read_text())


def read_metrics(path: str | os.PathLike) -> list[dict]:
  """All metric rows of a workdir, in the order written."""
  p = pathlib.Path(path) / 'metrics.jsonl'
  return [json.loads(line) for line in p.read_text().splitlines() if line]


def read_predictions(path: str | os.PathLike) -> tuple[dict[float, np.ndarray], list[str]]:
  """{epoch: uint8 [T, n_test] memory-mapped predictions} and the arm of each trial."""
  d = pathlib.Path(path) / 'predictions'
  arms = json.loads((d / 'trials.json').read_text())['arm']
  preds = {
      float(p.stem.removeprefix('epoch_')): np.load(p, mmap_mode='r')
      for p in sorted(d.glob('epoch_*.npy'))
      if not p.stem.endswith('.tmp')
  }
  return dict(sorted(preds.items())), arms
