"""The SDE toolkit wired into the training loop: every oracle end to end through `experiment.run`,
SVAG time (l x the steps, LR / l, effective steps), l = 1 = SGD exactly, validation of the new
fields. (G/N columns and isotropic noise: tests/test_gradient_noise_run.py.)"""

import numpy as np
import pytest

from svag_jax import config as config_lib
from svag_jax.checks import ConfigError
from svag_jax.rows import METRIC_KEYS
from tests.helpers import run_tiny, tiny_config

pytestmark = pytest.mark.usefixtures('compile_bound')  # compile-bound runs


@pytest.mark.parametrize('oracle', ['ngd', 'gd'])
def test_full_batch_oracles_train_end_to_end(tmp_path, oracle):
  result, rows = run_tiny(
      tmp_path / oracle,
      **{
          'optim.oracle': oracle,
          'model.norm': 'group',
          'model.num_groups': 4,
          'optim.chunk_size': 100,
          'data.synthetic_num_train': 200,
          'train.eval_every': 0.5,
      },
  )
  assert result['status'] == 'done' and result['step'] == 6  # 200 // 32 steps per epoch
  assert all(np.isfinite(r[k]) for r in rows for k in METRIC_KEYS)
  assert rows[-1]['train_loss'] < np.log(4)  # it learns (chance = log 4)


IID = {'train.sampling': 'replacement'}  # SVAG's batches (and SGD's beside it): i.i.d.


def test_svag_runs_l_times_the_steps_in_svag_time(tmp_path):
  sgd, sgd_rows = run_tiny(tmp_path / 'sgd', **IID)
  svag, rows = run_tiny(tmp_path / 'svag', **IID, **{'optim.oracle': 'svag', 'optim.svag_l': 2})
  assert svag['step'] == 2 * sgd['step'] == 16
  assert [r['step'] for r in rows] == [16] and rows[0]['effective_step'] == 8
  assert rows[0]['svag_l'] == 2 and rows[0]['epoch'] == 1
  assert rows[0]['lr'] == pytest.approx(sgd_rows[0]['lr'] / 2)
  assert rows[0]['wd'] == sgd_rows[0]['wd']
  assert np.isfinite(rows[0]['test_loss'])


def test_svag_l1_is_sgd_bit_for_bit(tmp_path):
  _, sgd_rows = run_tiny(tmp_path / 'sgd', **IID, **{'train.epochs': 2})
  _, svag_rows = run_tiny(tmp_path / 'svag', **IID, **{'train.epochs': 2, 'optim.oracle': 'svag'})
  assert svag_rows == sgd_rows


@pytest.mark.parametrize(
    'overrides, field',
    [
        ({'optim.oracle': 'adam'}, 'optim.oracle'),
        ({'optim.oracle': 'svag', 'optim.svag_l': 0, **IID}, 'optim.svag_l'),
        ({'optim.svag_l': 2}, 'optim.svag_l'),
        ({'optim.oracle': 'svag', 'optim.momentum': 0.9, **IID}, 'optim.momentum'),
        ({'optim.oracle': 'svag'}, 'train.sampling'),  # shuffled SVAG is not the SDE's
        ({'optim.oracle': 'ngd'}, 'model.norm'),
        ({'optim.oracle': 'gd', 'model.norm': 'batch'}, 'model.norm'),
        ({'optim.noise_scale': -1.0}, 'optim.noise_scale'),
        ({'optim.chunk_size': 0}, 'optim.chunk_size'),
        ({'metrics.gn_every': -1.0}, 'metrics.gn_every'),
        ({'metrics.gn_batches': 1}, 'metrics.gn_batches'),
    ],
)
def test_bad_sde_fields_are_named(overrides, field):
  with pytest.raises(ConfigError, match=f'config.{field.replace(".", r"[.]")} '):
    config_lib.validate(tiny_config(**overrides))
