"""Every console script prints its flags and exits 0 on --help (and, the absl ones, on -h,
--helpshort and --helpfull): the installed scripts in a subprocess, the help variants in this
process."""

import importlib
import pathlib
import subprocess
import sys

import pytest
from absl import flags

from svag_jax.launch import cli

BIN = pathlib.Path(sys.executable).parent

# console script -> (module, flags its --help lists)
SCRIPTS = {
    'svag-train': ('svag_jax.launch.main', ['--config', '--workdir', '--print_config']),
    'svag-sweep': (
        'svag_jax.launch.sweep',
        [
            '--config',
            '--workdir',
            '--executor',
            '--status',
            '--slurm.time',
            '--slurm.gpus_per_task',
        ],
    ),
    'svag-toy': ('svag_jax.launch.toy', ['--config', '--workdir']),
    'svag-analysis': ('svag_jax.analysis.__main__', ['--list', 'fast_equilibrium']),
}


@pytest.mark.parametrize('script', list(SCRIPTS))
def test_console_script_help_lists_its_flags(script):
  out = subprocess.run(
      [str(BIN / script), '--help'], capture_output=True, text=True, timeout=120, check=False
  )
  assert out.returncode == 0, out.stderr
  for flag in SCRIPTS[script][1]:
    assert flag in out.stdout, (flag, out.stdout)


@pytest.mark.parametrize('asked', ['-h', '--helpshort', '--helpfull'])
@pytest.mark.parametrize('script', ['svag-train', 'svag-sweep', 'svag-toy'])
def test_absl_help_flags_exit_0(script, asked, capsys):
  module, listed = SCRIPTS[script]
  importlib.import_module(module)  # defines its flags
  with pytest.raises(SystemExit) as exit_:
    cli.parse_flags(['prog', asked, '--config=nowhere.py'], module)  # help before the config
  assert exit_.value.code == 0
  out = capsys.readouterr().out
  assert all(flag in out for flag in listed), out
  assert ('logtostderr' in out) == (asked == '--helpfull')  # absl's own flags: only in full
  flags.FLAGS.unparse_flags()


def test_an_analysis_prints_its_options():
  out = subprocess.run(
      [str(BIN / 'svag-analysis'), 'lsr', '--help'], capture_output=True, text=True, timeout=120
  )
  assert out.returncode == 0 and '--out' in out.stdout and '--baseline' in out.stdout
