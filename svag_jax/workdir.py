"""The run record on disk. Training writes it; analysis only reads it.

    <workdir>/config.json        the full config, written at the start
    <workdir>/metrics.jsonl      one JSON row per evaluation per trial, appended as produced
                                 (pandas: pd.read_json(path, lines=True))
    <workdir>/status.json        {"status": running|done|preempted|diverged|failed, ...}
    <workdir>/predictions/       epoch_<E>.npy: uint8 [T, n_test] predicted classes (np.load with
                                 mmap_mode='r' reads lazily); trials.json: arm of each trial
    <workdir>/params/            epoch_<E>.npz: the weights of every trial at epoch E
                                 (train.params_at): one float32 array [T, ...] (leading trial
                                 axis) per leaf of {'params', 'batch_stats', 'frozen'}, named by
                                 its '/'-joined path, e.g. 'params/Dense_0/kernel' (the fixed head,
                                 'frozen/...', is saved too, so one file defines the networks);
                                 trials.json: arm of each trial. `read_params` rebuilds the dicts.
    <workdir>/checkpoints/       orbax checkpoints
"""

import json
import os
import pathlib
from typing import Any

import ml_collections
import numpy as np

# Fields that may change between a run and its resumption (e.g. training longer).
RESUMABLE_FIELDS = ('train.epochs', 'checkpoint.max_to_keep', 'train.predictions_at',
                    'train.params_at')


class WorkdirError(RuntimeError):
  """The workdir holds a run that cannot be continued with this config."""


def _flatten(tree: Any, prefix: str = '') -> dict[str, Any]:
  if isinstance(tree, dict):
    out = {}
    for k, v in tree.items():
      out.update(_flatten(v, f'{prefix}{k}.'))
    return out
  return {prefix[:-1]: tree}


def config_to_json(config: ml_collections.ConfigDict | dict) -> dict:
  """A JSON-able dict of the config (tuples become lists)."""
  tree = config if isinstance(config, dict) else config.to_dict()
  return json.loads(json.dumps(tree, default=list))


def _atomic_write(path: pathlib.Path, text: str) -> None:
  tmp = path.with_name(path.name + '.tmp')
  tmp.write_text(text)
  os.replace(tmp, path)


def epoch_name(epoch: float) -> str:
  return f'{epoch:g}'


PARAMS_COLLECTIONS = ('params', 'batch_stats', 'frozen')


def _flatten_arrays(tree: Any, prefix: str = '') -> dict[str, np.ndarray]:
  """{'a/b/c': array} of a tree of nested dicts (Flax Linen variables); empty dicts vanish."""
  if isinstance(tree, dict):
    out = {}
    for k, v in tree.items():
      if '/' in str(k):
        raise ValueError(f'tree key {k!r} contains "/", the separator of saved parameter names')
      out.update(_flatten_arrays(v, f'{prefix}{k}/'))
    return out
  return {prefix[:-1]: np.asarray(tree)}


def _unflatten_arrays(flat: dict[str, np.ndarray]) -> dict:
  tree: dict = {}
  for name, value in flat.items():
    *path, last = name.split('/')
    node = tree
    for p in path:
      node = node.setdefault(p, {})
    node[last] = value
  return tree


class Workdir:
  """Writes the files of one run. Every write is append-only or atomic (write, then rename).

  In a multi-process run every process holds a Workdir but only the one with `writer=True`
  (process 0) writes; the others' writes are no-ops, so no two processes touch the same file.
  """

  def __init__(self, path: str | os.PathLike, writer: bool = True):
    self.path = pathlib.Path(path).absolute()
    self.writer = writer
    if writer:
      self.path.mkdir(parents=True, exist_ok=True)
    self.metrics_path = self.path / 'metrics.jsonl'
    self.config_path = self.path / 'config.json'
    self.status_path = self.path / 'status.json'
    self.predictions_dir = self.path / 'predictions'
    self.checkpoints_dir = self.path / 'checkpoints'

  def start(self, config: ml_collections.ConfigDict | dict) -> None:
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
    if self.writer:
      _atomic_write(self.config_path, json.dumps(new, indent=2, sort_keys=True))

  def append_metrics(self, rows: list[dict]) -> None:
    if not self.writer:
      return
    with self.metrics_path.open('a') as f:
      for row in rows:
        f.write(json.dumps(row, allow_nan=False) + '\n')
      f.flush()
      os.fsync(f.fileno())

  def truncate_metrics(self, max_step: int) -> int:
    """Drops rows written after step `max_step` (they will be recomputed identically on resume).

    Returns the number of rows dropped (0 where this process is not the writer).
    """
    if not self.writer or not self.metrics_path.exists():
      return 0
    lines = self.metrics_path.read_text().splitlines()
    keep = [line for line in lines if line and json.loads(line)['step'] <= max_step]
    if len(keep) != len(lines):
      _atomic_write(self.metrics_path, ''.join(line + '\n' for line in keep))
    return len(lines) - len(keep)

  def write_status(self, status: str, **info: Any) -> None:
    if not self.writer:
      return
    _atomic_write(self.status_path, json.dumps({'status': status, **info}, indent=2))

  def save_predictions(self, epoch: float, predictions: np.ndarray, arms: list[str]) -> None:
    """Saves uint8 [T, n_test] predicted classes at `epoch`, and the arm of each trial."""
    if not self.writer:
      return
    self.predictions_dir.mkdir(exist_ok=True)
    _atomic_write(self.predictions_dir / 'trials.json', json.dumps({'arm': arms}))
    path = self.predictions_dir / f'epoch_{epoch_name(epoch)}.npy'
    tmp = path.with_name(path.stem + '.tmp.npy')
    np.save(tmp, predictions.astype(np.uint8))
    os.replace(tmp, path)

  def save_params(self, epoch: float, tree: dict, arms: list[str]) -> pathlib.Path:
    """Saves the weights of every trial at `epoch` (format: module docstring, `params/`).

    Args:
      epoch: the epoch label of the file (params/epoch_<E>.npz).
      tree: {'params': ..., 'batch_stats': ..., 'frozen': ...}, nested dicts of host arrays, each
        with a leading trial axis [T, ...] (other top-level keys are refused).
      arms: the arm of each of the T trials.

    Written atomically (temporary file, then rename): rewriting an epoch after a resume replaces
    the file with the same content, so snapshots are neither duplicated nor lost.
    """
    unknown = set(tree) - set(PARAMS_COLLECTIONS)
    if unknown:
      raise ValueError(f'save_params: unknown collections {sorted(unknown)}; '
                       f'expected {PARAMS_COLLECTIONS}')
    flat = _flatten_arrays({k: tree[k] for k in PARAMS_COLLECTIONS if k in tree})
    bad = {k: v.shape for k, v in flat.items() if v.ndim == 0 or v.shape[0] != len(arms)}
    if bad:
      raise ValueError(f'save_params: every leaf needs a leading trial axis of {len(arms)}; {bad}')
    d = self.path / 'params'
    if not self.writer:
      return d / f'epoch_{epoch_name(epoch)}.npz'
    d.mkdir(exist_ok=True)
    _atomic_write(d / 'trials.json', json.dumps({'arm': arms}))
    path = d / f'epoch_{epoch_name(epoch)}.npz'
    tmp = path.with_name(path.stem + '.tmp.npz')
    with tmp.open('wb') as f:
      np.savez(f, **flat)
    os.replace(tmp, path)
    return path


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


def params_epochs(path: str | os.PathLike) -> list[float]:
  """The epochs with saved weights (params/epoch_<E>.npz), increasing; [] if none."""
  d = pathlib.Path(path) / 'params'
  return sorted(float(p.stem.removeprefix('epoch_')) for p in d.glob('epoch_*.npz')
                if not p.stem.endswith('.tmp'))


def read_params(path: str | os.PathLike, epoch: float) -> tuple[dict, list[str]]:
  """The weights of every trial at `epoch` and the arm of each trial.

  Returns:
    ({'params': ..., 'batch_stats': ..., 'frozen': ...} nested dicts of float32 arrays [T, ...]
    ('batch_stats' is {} for batch-independent norms), [arm of each of the T trials]).
  """
  d = pathlib.Path(path) / 'params'
  file = d / f'epoch_{epoch_name(epoch)}.npz'
  if not file.exists():
    saved = ', '.join(f'{e:g}' for e in params_epochs(path)) or 'none'
    raise FileNotFoundError(f'{file} does not exist (saved epochs: {saved}); set '
                            'train.params_at to the epochs you need.')
  with np.load(file) as npz:
    tree = _unflatten_arrays({k: npz[k] for k in npz.files})
  arms = json.loads((d / 'trials.json').read_text())['arm']
  return {k: tree.get(k, {}) for k in PARAMS_COLLECTIONS}, arms
