"""benchmarks/gpu_trials.py --smoke: the GPU benchmark runs on CPU, end to end, with every row of
every part (the strategy cells, the full-scale runs, each precision), one test per part (`--parts`:
the ~2 min of the whole smoke run split so that the xdist workers share it)."""

import contextlib
import io
import re

import pytest

from benchmarks import gpu_runs, gpu_trials

NUMBER = r'\s+[\d.]+'


def _smoke(part: str) -> str:
  buffer = io.StringIO()
  with contextlib.redirect_stdout(buffer):
    assert gpu_trials.main(['--smoke', f'--parts={part}']) == 0
  out = buffer.getvalue()
  _check_header(out)
  return out


@pytest.mark.parametrize('part', gpu_trials.PARTS)
def test_smoke_prints_every_row_of_each_part(part):
  check = {
      'cells': _check_every_row,
      'runs': _check_full_scale_runs,
      'precision': _check_each_precision,
  }
  check[part](_smoke(part))


def _check_header(out):
  assert re.search(r'^# load average at start: [\d.]+ [\d.]+ [\d.]+$', out, re.M)
  assert re.search(r'fp32 \(HIGHEST\) [\d.]+ TFLOP/s, TF32 \(DEFAULT\) [\d.]+ TFLOP/s', out)
  assert 'jax_default_matmul_precision = None: default f32 matmuls/convs are NOT TF32' in out
  assert re.search(r'^# load average at end: ', out, re.M)
  assert 'skipped' not in out and 'FAILED' not in out


def _check_every_row(out):
  rows = {}
  for line in out.splitlines():
    m = re.match(rf'^(\S+)\s+(\d+)\s+(\S+)((?:{NUMBER}){{7}})\s+(\S+)$', line)
    if m:
      rows[m.group(1), int(m.group(2)), m.group(3)] = [float(x) for x in m.group(4).split()]
  models = {'cnn': 'cnn', 'preresnet32': f'preresnet{gpu_runs.SMOKE_DEPTH}'}
  want = {
      (models[name], t, strategy)
      for name, sizes in gpu_trials.SMOKE.items()
      for t in sizes
      for strategy in gpu_trials.STRATEGIES
  }
  assert len(want) == 8
  assert set(rows) == want, out
  for key, (_, best, median, x_loop, *_, program_mb) in rows.items():
    assert best >= median > 0 and program_mb > 0, (key, out)
    if key[2] == 'loop':
      assert x_loop == 1.0
  assert 'skipped' not in out and 'FAILED' not in out


def _check_full_scale_runs(out):
  rows = {}
  for line in out.splitlines():
    m = re.match(
        rf'^# runs: (\w+)\s+(\d+)\s+(\d+)((?:{NUMBER}){{4}})\s+(\S+)\s+(\S+)((?:{NUMBER}){{2}})$',
        line,
    )
    if m:
      rows[m.group(1)] = (int(m.group(2)), int(m.group(3)), [float(x) for x in m.group(4).split()])
      assert m.group(5) == m.group(6) == '-'  # no memory stats on CPU
      arm_h, run_h = (float(x) for x in m.group(7).split())
      arms = rows[m.group(1)][1]
      assert abs(run_h - arm_h * arms) <= 0.005 * (arms + 1) and arm_h > 0  # printed to 0.01
  assert set(rows) == {label for label, *_ in gpu_runs.RUNS}, out
  trials, arms, (compile_s, steps_per_s, img_per_s, eval_s) = rows['fast_equilibrium']
  assert (trials, arms) == (gpu_runs.SMOKE_RUN_TRIALS, 3)  # one arm of the three timed
  for label, (_, _, numbers) in rows.items():
    assert all(x > 0 for x in numbers), (label, out)
  # the memory line of --print_config (svag_jax.memory) for the whole run: 3 arms x 4 trials
  assert re.search(
      r'^# runs: fast_equilibrium memory estimate: ~.* per trial .*12 trials need ', out, re.M
  )


def _check_each_precision(out):
  speed = re.findall(rf'^# precision: (\w+)\s+(\d+)\s+(\w+)\s+(\S+)((?:{NUMBER}){{3}})$', out, re.M)
  cells = gpu_trials.SMOKE_PRECISION_CELLS
  assert {(m, int(t), s, p) for m, t, s, p, _ in speed} == {
      (m, t, s, p) for m, t, s in cells for p in gpu_trials.PRECISION_ROWS
  }, out
  for *_, numbers in speed:
    assert float(numbers.split()[1]) > 0
  short = re.findall(
      r'^# precision: short run (\S+)\s+test_loss ([\d.]+) \+- [\d.]+ \(([+-][\d.]+) SE\); '
      r'test_accuracy ([\d.]+) \+- [\d.]+ \(([+-][\d.]+) SE\)$',
      out,
      re.M,
  )
  assert [row[0] for row in short] == list(gpu_trials.PRECISION_ROWS), out
  assert short[0][2] == short[0][4] == '+0.0'  # fp32 against itself
