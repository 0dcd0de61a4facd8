"""Entry point of the 2-d toy: `python -m svag_jax.launch.toy --config=toy_chaos --workdir=DIR`.

Runs GD + WD and gradient flow on L(x, y) = x^2 / (x^2 + y^2) from the config's paired starts
(`svag_jax.toy_experiment.simulate`, seconds on a CPU) and writes the run record:

    DIR/config.json         the full config
    DIR/trajectories.npz    the arrays of `toy_experiment.simulate` (np.load(path))
    DIR/status.json         done (+ wall_s and the `toy_experiment.summary` numbers)
                            | failed (+ error)

Overrides: `--config.lr=0.2` etc.; bad input gives the one-line errors of `launch.main`.
Rerunning recomputes (same config + seed, same numbers); the
figure is drawn by `python -m svag_jax.analysis.toy_chaos DIR`.
"""

import sys
import time

import jax
import numpy as np
from absl import app, logging

from svag_jax import toy_experiment
from svag_jax.launch import cli
from svag_jax.workdir import Workdir


def run(config, workdir: str) -> dict:
  """Validates, simulates and writes the run record; returns the status dict."""
  toy_experiment.validate(config)
  wd = Workdir(workdir)
  wd.start(config)
  wd.write_status('running')
  start = time.time()
  try:
    with jax.enable_x64(config.dtype == 'float64'):  # only for this run, not the process
      result = toy_experiment.simulate(config)
    path = wd.path / 'trajectories.npz'
    tmp = path.with_name('trajectories.tmp.npz')
    np.savez(tmp, **result)
    tmp.replace(path)
    status = {
        'status': 'done',
        'wall_s': round(time.time() - start, 2),
        **toy_experiment.summary(result),
    }
  except Exception as e:
    wd.write_status('failed', error=f'{type(e).__name__}: {e}')
    raise
  wd.write_status(**status)
  return status


def _run() -> int:
  if cli.CONFIG.value is None or not cli.WORKDIR.value:
    raise cli.InputError('UsageError', 'both --config=toy_chaos and --workdir=DIR are ' 'required')
  status = run(cli.CONFIG.value, cli.WORKDIR.value)
  logging.info('Finished: %s', status)
  return 0


def main(argv):
  if len(argv) > 1:
    cli.fail('UsageError', f'unexpected arguments {argv[1:]}; flags look like --name=value')
  sys.exit(cli.guarded(_run))


def console_main() -> None:
  """The console script (pyproject's [project.scripts])."""
  app.run(main, flags_parser=lambda argv: cli.parse_flags(argv, __name__))


if __name__ == '__main__':
  console_main()
