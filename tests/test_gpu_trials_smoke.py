"""benchmarks/gpu_trials.py --smoke: the GPU benchmark runs on CPU, end to end, with every row."""

import re

from benchmarks import gpu_trials


def test_smoke_prints_every_row(capsys):
  assert gpu_trials.main(['--smoke']) == 0
  out = capsys.readouterr().out
  assert re.search(r'^# load average at start: [\d.]+ [\d.]+ [\d.]+$', out, re.M)
  assert re.search(r'fp32 \(HIGHEST\) [\d.]+ TFLOP/s, TF32 \(DEFAULT\) [\d.]+ TFLOP/s', out)
  assert 'jax_default_matmul_precision = None: default f32 matmuls/convs are NOT TF32' in out
  assert re.search(r'^# load average at end: ', out, re.M)
  number = r'\s+[\d.]+'
  rows = {}
  for line in out.splitlines():
    m = re.match(rf'^(\S+)\s+(\d+)\s+(\S+)((?:{number}){{7}})\s+(\S+)$', line)
    if m:
      rows[m.group(1), int(m.group(2)), m.group(3)] = [float(x) for x in m.group(4).split()]
  models = {'cnn': 'cnn', 'preresnet32': f'preresnet{gpu_trials.SMOKE_DEPTH}'}
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
  assert 'skipped' not in out
