"""Multi-host: two JAX processes on this CPU (gloo collectives) give the numbers of one process.

Each of the two `launch.main` processes has 2 CPU devices (JAX_NUM_CPU_DEVICES), so the 4 trials
are sharded over 4 devices of 2 processes, exactly as the in-process reference (4 fake devices,
conftest) shards them over 4 devices of 1 process: one trial per device, the same per-device
program, hence the same numbers (bitwise here; compared to fp tolerance).
"""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from svag_jax import experiment, record
from tests.helpers import most_optimizations_disabled, tiny_config

ROOT = pathlib.Path(__file__).resolve().parents[1]
OVERRIDES = {'trials.num': 4, 'train.steps_per_dispatch': 1}
TIMEOUT_S = 150

pytestmark = pytest.mark.skipif(
    'jax_cpu_collectives_implementation' not in jax.config.values,
    reason=f'jax {jax.__version__} has no CPU cross-process collectives (gloo)',
)


@pytest.fixture(scope='module')
def cache_env(tmp_path_factory):
  """Environment of the launched processes: 2 CPU devices each, gloo collectives, and a
  compilation cache shared by all runs of this module (the same programs are compiled once)."""
  return {
      **os.environ,
      'JAX_PLATFORMS': 'cpu',
      'JAX_NUM_CPU_DEVICES': '2',
      'JAX_CPU_COLLECTIVES_IMPLEMENTATION': 'gloo',
      # the reference runs under most_optimizations_disabled too: the same compiled programs
      'JAX_DISABLE_MOST_OPTIMIZATIONS': '1',
      'JAX_COMPILATION_CACHE_DIR': str(tmp_path_factory.mktemp('jax_cache')),
      'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS': '0',
      'JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES': '0',
  }


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _launch(env, workdir, port: int, process_id: int, overrides) -> subprocess.Popen:
  cmd = [
      sys.executable,
      '-m',
      'svag_jax.launch.main',
      '--config=tests/tiny_config.py',
      f'--workdir={workdir}',
      *(f'--config.{k}={v}' for k, v in overrides.items()),
      f'--coordinator_address=localhost:{port}',
      '--num_processes=2',
      f'--process_id={process_id}',
  ]
  return subprocess.Popen(
      cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
  )


def _run_two(env, workdir, overrides=OVERRIDES, on_start=None) -> tuple[list[int], list[str]]:
  """Runs the two processes to the end: (return codes, outputs)."""
  port = _free_port()
  procs = [_launch(env, workdir, port, i, overrides) for i in range(2)]
  try:
    early = on_start(procs) if on_start else ['', '']
    outs = [e + p.communicate(timeout=TIMEOUT_S)[0] for e, p in zip(early, procs)]
  finally:
    for p in procs:  # only on failure: never leave a process waiting for its peer
      if p.poll() is None:
        p.kill()
        p.wait()
  return [p.returncode for p in procs], outs


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
  """Metric rows of the same config in one process (4 devices)."""
  path = tmp_path_factory.mktemp('one_process')
  with most_optimizations_disabled():
    result = experiment.run(tiny_config(**OVERRIDES), str(path))
  assert result['status'] == 'done'
  return record.read_metrics(path)


def _assert_same_rows(got, want):
  assert len(got) == len(want) == 2 * OVERRIDES['trials.num']  # 2 evals x 4 trials
  for a, b in zip(got, want):
    assert set(a) == set(b)
    for k in a:
      if isinstance(b[k], float):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-6, atol=1e-7, err_msg=k)
      else:
        assert a[k] == b[k], (k, a, b)


def test_two_processes_give_the_metrics_of_one(tmp_path, reference, cache_env):
  codes, outs = _run_two(cache_env, tmp_path)
  assert codes == [0, 0], '\n'.join(o[-3000:] for o in outs)
  assert 'JAX process 1/2' in outs[1] and 'on 4 device(s)' in outs[1]
  _assert_same_rows(record.read_metrics(tmp_path), reference)
  assert record.read_status(tmp_path)['status'] == 'done'
  assert json.loads((tmp_path / 'config.json').read_text())['trials']['num'] == 4


def _sigterm_process_1_once_initialized(procs) -> list[str]:
  """Sends SIGTERM to process 1 only, after jax.distributed.initialize (while it compiles)."""
  seen, deadline = '', time.time() + TIMEOUT_S
  while time.time() < deadline:
    line = procs[1].stdout.readline()
    seen += line
    if 'JAX process 1/2' in line or not line:
      break
  procs[1].send_signal(signal.SIGTERM)
  return ['', seen]


def test_sigterm_to_one_process_stops_both_at_the_same_step_and_resumes(
    tmp_path, reference, cache_env
):
  codes, outs = _run_two(cache_env, tmp_path, on_start=_sigterm_process_1_once_initialized)
  assert codes == [75, 75], '\n'.join(o[-3000:] for o in outs)  # preempted: rerun to resume
  status = record.read_status(tmp_path)
  assert status['status'] == 'preempted', outs[0][-3000:]
  stopped = status['step']
  assert 0 < stopped < 16
  for out in outs:  # both processes stopped at the same step
    assert f'Preempted at step {stopped};' in out
  codes, outs = _run_two(cache_env, tmp_path)
  assert codes == [0, 0], '\n'.join(o[-3000:] for o in outs)
  assert all(f'Resuming from step {stopped}.' in out for out in outs)
  assert record.read_status(tmp_path)['status'] == 'done'
  _assert_same_rows(record.read_metrics(tmp_path), reference)


def test_chunks_that_cannot_span_the_processes_are_refused(tmp_path, cache_env):
  codes, outs = _run_two(cache_env, tmp_path, overrides={'trials.num': 3})
  assert codes == [1, 1], outs
  for out in outs:
    assert 'ConfigError: trials.vmap_chunk = 0 with 3 trials' in out
    assert 'multiple of 4' in out
  assert not (tmp_path / 'metrics.jsonl').exists()


def test_a_partial_manual_launch_names_the_missing_flags(tmp_path):
  cmd = [
      sys.executable,
      '-m',
      'svag_jax.launch.main',
      '--config=tests/tiny_config.py',
      f'--workdir={tmp_path}',
      '--num_processes=2',
  ]
  out = subprocess.run(
      cmd,
      cwd=ROOT,
      capture_output=True,
      text=True,
      timeout=TIMEOUT_S,
      env={**os.environ, 'JAX_PLATFORMS': 'cpu'},
  )
  assert out.returncode != 0
  assert '--coordinator_address (or SVAG_COORDINATOR_ADDRESS)' in out.stderr
  assert '--process_id (or SVAG_PROCESS_ID)' in out.stderr
