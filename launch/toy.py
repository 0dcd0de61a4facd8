"""Entry point of the 2-d toy: `python -m launch.toy --config=configs/toy_chaos.py --workdir=DIR`.

Runs GD + WD and gradient flow on L(x, y) = x^2 / (x^2 + y^2) from the config's paired starts
(`svag_jax.toy.simulate`, seconds on a CPU) and writes the run record:

    DIR/config.json         the full config
    DIR/trajectories.npz    the arrays of `toy.simulate` (np.load(path))
    DIR/status.json         done (+ wall_s and the `toy.summary` numbers) | failed (+ error)

Overrides: `--config.lr=0.2` etc. Rerunning recomputes (same config + seed, same numbers); the
figure is drawn by `python -m analysis.toy_chaos DIR`.
"""

import sys
import time

import jax
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from svag_jax import toy
from svag_jax.config import ConfigError
from svag_jax.workdir import Workdir, WorkdirError

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Toy config file.', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory of the run record.')
flags.mark_flags_as_required(['config', 'workdir'])


def run(config, workdir: str) -> dict:
  """Validates, simulates and writes the run record; returns the status dict."""
  toy.validate(config)
  wd = Workdir(workdir)
  wd.start(config)
  wd.write_status('running')
  start = time.time()
  try:
    with jax.enable_x64(config.dtype == 'float64'):  # only for this run, not the process
      result = toy.simulate(config)
    path = wd.path / 'trajectories.npz'
    tmp = path.with_name('trajectories.tmp.npz')
    np.savez(tmp, **result)
    tmp.replace(path)
    status = {'status': 'done', 'wall_s': round(time.time() - start, 2), **toy.summary(result)}
  except Exception as e:
    wd.write_status('failed', error=f'{type(e).__name__}: {e}')
    raise
  wd.write_status(**status)
  return status


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  try:
    status = run(_CONFIG.value, _WORKDIR.value)
  except (ConfigError, WorkdirError) as e:
    sys.exit(f'svag_jax: {type(e).__name__}: {e}')
  logging.info('Finished: %s', status)


if __name__ == '__main__':
  app.run(main)
