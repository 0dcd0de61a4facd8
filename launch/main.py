"""Entry point: `python -m launch.main --config=configs/X.py[:arg] --workdir=DIR`.

Overrides: `--config.optim.lr=0.05` etc. Rerunning the same command on the same workdir resumes.
Multi-host: set SVAG_DISTRIBUTED=1 (and the coordinator variables jax.distributed reads) to call
`jax.distributed.initialize()` before anything else.
"""

import logging as logging_std
import os
import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from svag_jax import experiment
from svag_jax.checkpoint import CheckpointError
from svag_jax.config import ConfigError
from svag_jax.data import DataError
from svag_jax.workdir import WorkdirError

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory of the run record (resumes if present).')
flags.mark_flags_as_required(['config', 'workdir'])


class _QuietLibraries(logging_std.Filter):
  """Keeps orbax's per-save INFO chatter out of the run log (warnings still pass)."""

  def filter(self, record):
    return record.levelno >= logging_std.WARNING or '/orbax/' not in record.pathname


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.get_absl_handler().addFilter(_QuietLibraries())
  if os.environ.get('SVAG_DISTRIBUTED'):
    jax.distributed.initialize()
  logging.info('JAX process %d/%d, local devices: %s', jax.process_index(), jax.process_count(),
               jax.local_devices())
  try:
    result = experiment.run(_CONFIG.value, _WORKDIR.value)
  except (ConfigError, DataError, WorkdirError, CheckpointError) as e:
    # A problem with the input, not a bug: say what and how to fix it, without a traceback.
    sys.exit(f'svag_jax: {type(e).__name__}: {e}')
  logging.info('Finished with status %s at step %d.', result['status'], result['step'])


if __name__ == '__main__':
  app.run(main)
