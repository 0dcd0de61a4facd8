"""One evaluation's lines of metrics.jsonl, one row per trial, and its summary for the log.

A row holds, in this order:
  - the bookkeeping: step, effective_step, svag_l, epoch, trial, arm, diverged;
  - the metrics `METRIC_KEYS` (and `ADAPTIVE_KEYS` for the adaptive optimizers; null once the
    trial has diverged);
  - the gradient signal / noise estimates `GN_KEYS` (null where not estimated);
  - `angular_update`: the angle (radians) between the whole net's weights at this step and after
    the next one (null once diverged or where not finite);
  - per scale-invariant group of the run (WORKDIR/groups.json) and metric of
    `svag_jax.record.GROUP_METRICS`, the column 'group.<name>/<metric>' (`record.group_key`):
    w_norm_sq, effective_lr, angular_update, G, N, NSR (null as the whole net's), and for the
    adaptive optimizers intrinsic_lr_adaptive (`record.GROUP_ADAPTIVE_METRICS`); groups sorted
    by name. A run without groups (config.metrics.groups = 'none') has neither these nor
    angular_update.
svag_jax.record reads them.
"""

import math

import numpy as np

from svag_jax.record import GROUP_ADAPTIVE_METRICS, GROUP_METRICS, group_key, split_group_key
from svag_jax.schedules import SGD_TIME, SvagTime

METRIC_KEYS = (
    'train_step_loss',
    'train_loss',
    'train_accuracy',
    'test_loss',
    'test_accuracy',
    'lr',
    'wd',
    'w_norm_sq',
    'effective_lr',
    'intrinsic_lr',
    'intrinsic_lr_momentum',
)
# The adaptive optimizers' own learning rates (svag_jax.metrics.adaptive_learning_rates): in the
# rows of rmsprop / adam / adamw runs only, after METRIC_KEYS.
ADAPTIVE_KEYS = ('effective_lr_adaptive', 'intrinsic_lr_adaptive')
# Gradient signal/noise estimates (config.metrics): null in the rows of evals without one, and
# where the estimate is not finite (NSR when Ĝ = 0).
GN_KEYS = ('G', 'N', 'NSR')
# The whole net's angular update (with the per-group columns; module docstring).
ANGLE_KEY = 'angular_update'


def extra_keys(evals: dict) -> list[str]:
  """The columns after GN_KEYS of the rows of an evaluation whose metrics are `evals`:
  'angular_update' and every group's `GROUP_METRICS` (groups sorted by name), then its
  `GROUP_ADAPTIVE_METRICS` where `evals` has them; [] without groups."""
  groups = sorted({split_group_key(k)[0] for k in evals if split_group_key(k)})
  keys = [ANGLE_KEY] if ANGLE_KEY in evals else []
  adaptive = [m for m in GROUP_ADAPTIVE_METRICS if any(group_key(g, m) in evals for g in groups)]
  return keys + [group_key(g, m) for g in groups for m in (*GROUP_METRICS, *adaptive)]


def metric_rows(
    step: int,
    epoch: float,
    arm_names: list[str],
    step_loss: np.ndarray,
    evals: dict[str, np.ndarray],
    diverged: np.ndarray,
    svag_time: SvagTime = SGD_TIME,
    gn: dict[str, np.ndarray] | None = None,
) -> list[dict]:
  """The rows of the evaluation at `step` (`epoch`), one per trial: `step_loss` [T] the mean
  batch loss since the last evaluation, `evals` the evaluation's metrics {name: [T]}, null values
  where `diverged` [T]. `effective_step` = step / l (SGD time, `svag_time`); G, N, NSR from `gn`
  (None when not estimated at this eval); the angular updates and per-group columns (module
  docstring) from `evals` and `gn`."""
  rows = []
  values = {'train_step_loss': step_loss, **evals}
  extra = extra_keys(evals)
  extra_values = {**(gn or {}), **evals}
  for i, arm in enumerate(arm_names):
    row = {
        'step': step,
        'effective_step': svag_time.effective_step(step),
        'svag_l': svag_time.l,
        'epoch': epoch,
        'trial': i,
        'arm': arm,
        'diverged': bool(diverged[i]),
    }
    for k in (*METRIC_KEYS, *(k for k in ADAPTIVE_KEYS if k in values)):
      row[k] = None if diverged[i] else float(values[k][i])
    for k in GN_KEYS:
      v = None if gn is None or diverged[i] else float(gn[k][i])
      row[k] = v if v is not None and math.isfinite(v) else None
    for k in extra:
      v = None if k not in extra_values or diverged[i] else float(extra_values[k][i])
      row[k] = v if v is not None and math.isfinite(v) else None
    rows.append(row)
  return rows


def summary_line(evals: dict[str, np.ndarray], diverged: np.ndarray, arm_names: list[str]) -> str:
  """Test accuracy (mean ± std over the live trials) per arm, and the number diverged."""
  parts = []
  for arm in dict.fromkeys(arm_names):
    ok = [i for i, a in enumerate(arm_names) if a == arm and not diverged[i]]
    if ok:
      acc = evals['test_accuracy'][ok]
      parts.append(f'{arm}: test acc {acc.mean():.4f}±{acc.std():.4f}')
  return '; '.join(parts) + (f' ({int(diverged.sum())} diverged)' if diverged.any() else '')
