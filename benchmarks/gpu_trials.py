"""Many trials on one GPU: loop vs vmap (XLA convs) vs vmap (im2col) vs side by side (prints).

    python -m benchmarks.gpu_trials [--deadline=420] [--round_s=1] [--rounds=3]
    python -m benchmarks.gpu_trials --smoke   # tiny sizes on CPU, < 60 s: checks the script

(--smoke: the CNN at widths 4-8 on 8x8 images and a PreResNet8 at widen 0.125 on 16x16 images,
batch 4, one unrolled step per call, T = 2, side-by-side chunks of 2.)

Meant for one H100/H200 (<= 8 minutes in all; cells not started by --deadline seconds are printed
as skipped). Models, on synthetic data of the real shapes (nothing to download):
  cnn          the SI MNIST CNN of configs/mnist_const.py (32-64-64, BatchNorm, B = 128, rolled
               steps), 28x28x1 images, T in {1, 64, 256};
  preresnet32  the SI PreResNet32 of configs/base.py (BatchNorm, B = 128, crop + flip
               augmentation, rolled steps), CIFAR-10's 50,000 32x32x3 images, T in {1, 8}.
Each model is built as its run builds it (`train.Trainer.from_config`). Strategies (`TrialRunner`):
  loop    T calls of one trial (trials.vmap_chunk = 1);
  vmap    all T trials in one jit(vmap) call, XLA's convolutions (grouped convs under vmap);
  im2col  the same with model.conv_impl = 'im2col' (batched GEMMs under vmap);
  sbs     chunks of --sbs_chunk trials side by side in one program (trials.mode = 'side_by_side').
Every row: compile seconds of the first call, images/s summed over trials (best and median of
--rounds interleaved rounds of ~--round_s seconds each), the ratio to loop, the fraction of the
GPU's measured fp32 peak (an n^3 matmul at precision HIGHEST) and of its TF32 peak (the same at
precision DEFAULT, TF32 on NVIDIA GPUs since Ampere), and device memory per trial: `program`, XLA's
memory analysis of one call's program (arguments + outputs + temporaries - donated buffers) over
its trials, and `peak`, device.memory_stats()['peak_bytes_in_use'] after the cell over T (a
process-wide high-water mark: it never goes down, so it bounds this cell's peak from above; '-'
where the backend has no memory stats). The header states jax_default_matmul_precision and whether
the default precision is TF32 (measured: the relative error of a default-precision matmul).
Identical programs (e.g. the one-trial step of loop at every T) compile once, through a
persistent compilation cache in a temporary directory.
"""

import argparse
import contextlib
import dataclasses
import statistics
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import cifar_runtime
from benchmarks import trials as bench
from svag_jax import config as config_lib
from svag_jax import data as data_lib
from svag_jax import schema, train
from svag_jax.configs import base, mnist_const

STRATEGIES = ('loop', 'vmap', 'im2col', 'sbs')
FULL = {'cnn': (1, 64, 256), 'preresnet32': (1, 8)}
SMOKE = {'cnn': (2,), 'preresnet32': (2,)}
SMOKE_DEPTH = 8  # the smoke run's PreResNet: one block per stage
MNIST_TRAIN = 60_000


def model_config(name: str, smoke: bool):
  """The run config of `name` on synthetic data of its real shape (tiny ones with `smoke`)."""
  if name == 'cnn':
    cfg = mnist_const.get_config()
    cfg.data.source = 'synthetic'
    cfg.data.name = schema.defaults().data.name  # read by tfds alone
    cfg.data.synthetic_shape, cfg.data.synthetic_num_classes = (28, 28, 1), 10
    cfg.data.synthetic_num_train, cfg.data.synthetic_num_test = MNIST_TRAIN, 1000
    steps = 8  # the config's steps_per_dispatch
  elif name == 'preresnet32':
    cfg = cifar_runtime.synthetic_cifar(base.cifar10_preresnet32(base.get_config()))
    cfg.data.name = schema.defaults().data.name
    steps = 10
  else:
    raise ValueError(f'unknown model {name!r}; choose cnn or preresnet32')
  if smoke:
    cfg.train.batch_size, steps = 4, 1
    cfg.train.unroll = True  # CPU
    cfg.data.synthetic_num_train, cfg.data.synthetic_num_test = 64, 16
    if name == 'cnn':
      cfg.model.widths, cfg.data.synthetic_shape = (4, 8), (8, 8, 1)
    else:
      cfg.model.widen, cfg.data.synthetic_shape = 0.125, (16, 16, 3)  # and depth SMOKE_DEPTH
  config_lib.validate(cfg)
  return cfg, steps


def default_precision_is_tf32(n: int = 1024) -> tuple[bool, float]:
  """(whether a default-precision f32 matmul rounds like TF32, its max relative error)."""
  rng = np.random.default_rng(0)
  a, b = rng.standard_normal((2, n, n)).astype(np.float32)
  got = np.asarray(jax.jit(jnp.matmul)(a, b), np.float64)
  want = a.astype(np.float64) @ b.astype(np.float64)
  err = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
  return err > 1e-4, err  # fp32: ~1e-6; TF32 (10-bit mantissa): ~1e-3


def peak_bytes(device) -> int | None:
  stats = device.memory_stats() if hasattr(device, 'memory_stats') else None
  return (stats or {}).get('peak_bytes_in_use')


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--smoke', action='store_true', help='tiny sizes on CPU (< 60 s)')
  parser.add_argument('--models', default='cnn,preresnet32')
  parser.add_argument('--sbs_chunk', type=int, default=8, help='trials per side-by-side program')
  parser.add_argument('--rounds', type=int, default=3)
  parser.add_argument('--round_s', type=float, default=1.0, help='seconds per timing round')
  parser.add_argument('--matmul_n', type=int, default=8192, help='n of the peak matmul')
  parser.add_argument('--deadline', type=float, default=420.0, help='no cell starts after this')
  args = parser.parse_args(argv)
  settings = {
      'jax_compilation_cache_dir': tempfile.mkdtemp(prefix='gpu_trials_cache_'),
      'jax_persistent_cache_min_compile_time_secs': 0.0,
      'jax_persistent_cache_min_entry_size_bytes': 0,
  }
  if args.smoke:
    settings['jax_disable_most_optimizations'] = True  # tiny programs: compiling is the cost
    args.sbs_chunk, args.rounds, args.round_s, args.matmul_n = 2, 2, 0.0, 256
  device = jax.devices('cpu' if args.smoke else None)[0]
  with jax_settings(settings), jax.default_device(device):
    run(args, device)
  return 0


def _read(name: str):
  """A jax.config value (flags with a context manager are attributes, the others are read)."""
  try:
    return jax.config.read(name)
  except AttributeError:
    return getattr(jax.config, name)


@contextlib.contextmanager
def jax_settings(settings: dict):
  """jax.config values set for the block and restored after it (main may run inside a test)."""
  previous = {k: _read(k) for k in settings}
  try:
    for k, v in settings.items():
      jax.config.update(k, v)
    yield
  finally:
    for k, v in previous.items():
      jax.config.update(k, v)


def run(args, device) -> None:
  """Prints the header and every row (see the module docstring)."""
  start = time.perf_counter()
  print(f'# load average at start: {bench.load_avg()}', flush=True)
  fp32 = bench.matmul_peak_gflops(args.matmul_n, precision=jax.lax.Precision.HIGHEST)
  tf32 = bench.matmul_peak_gflops(args.matmul_n, precision=jax.lax.Precision.DEFAULT)
  is_tf32, err = default_precision_is_tf32()
  print(
      f'# {device.device_kind} ({jax.default_backend()}), jax {jax.__version__}; '
      f'{args.matmul_n}^3 matmul: fp32 (HIGHEST) {fp32 / 1e3:.1f} TFLOP/s, '
      f'TF32 (DEFAULT) {tf32 / 1e3:.1f} TFLOP/s'
  )
  precision = jax.config.jax_default_matmul_precision
  print(
      f'# jax_default_matmul_precision = {precision!r}: '
      f'default f32 matmuls/convs {"ARE" if is_tf32 else "are NOT"} TF32 (max rel err {err:.1e})'
  )
  print(
      f'{"model":11} {"T":>4} {"strategy":8} {"compile s":>9} {"best img/s":>10} {"median":>9} '
      f'{"x loop":>6} {"% fp32":>6} {"% tf32":>6} {"program MB/trial":>16} {"peak MB/trial":>13}',
      flush=True,
  )
  for name in args.models.split(','):
    cfg, steps = model_config(name, args.smoke)
    ds = data_lib.load(cfg.data)
    data = data_lib.TrainData(ds.train_images, ds.train_labels, ds.mean, ds.std)
    xla = train.Trainer.from_config(cfg, ds.num_train, ds.num_classes)
    if args.smoke and name == 'preresnet32':
      xla = dataclasses.replace(xla, model=xla.model.clone(depth=SMOKE_DEPTH))
    im2col = dataclasses.replace(xla, model=xla.model.clone(conv_impl='im2col'))
    trainers = {'xla': xla, 'im2col': im2col}
    flops = bench.flops_per_image(xla, data)
    label = f'preresnet{SMOKE_DEPTH}' if args.smoke and name == 'preresnet32' else name
    for num_trials in (SMOKE if args.smoke else FULL)[name]:
      cells = []
      for strategy in STRATEGIES:
        if time.perf_counter() - start > args.deadline:
          print(f'{label:11} {num_trials:>4} {strategy:8}  skipped (past --deadline)', flush=True)
          continue
        chunk, mode = {
            'loop': (1, 'vmap'),
            'vmap': (0, 'vmap'),
            'im2col': (0, 'vmap'),
            'sbs': (args.sbs_chunk, 'side_by_side'),
        }[strategy]
        trainer = trainers['im2col' if strategy == 'im2col' else 'xla']
        cell = bench.prepare(strategy, trainer, data, num_trials, steps, [device], chunk, mode)
        cell.peak_bytes = peak_bytes(device)
        cells.append(cell)
      for _ in range(args.rounds):
        for cell in cells:
          cell.time(max(1, round(args.round_s / max(cell.call_s, 1e-6))))
      loop = next((max(c.rates) for c in cells if c.name == 'loop'), None)
      for cell in cells:
        best, median = max(cell.rates), statistics.median(cell.rates)
        x_loop = f'{best / loop:6.2f}' if loop else f'{"":>6}'
        per_trial = cell.program_bytes() / cell.chunk_size / 2**20
        peak = cell.peak_bytes
        peak = '-' if peak is None else f'{peak / num_trials / 2**20:.1f}'
        print(
            f'{label:11} {num_trials:>4} {cell.name:8} {cell.compile_s:9.1f} {best:10.0f} '
            f'{median:9.0f} {x_loop} {100 * best * flops / 1e9 / fp32:6.1f} '
            f'{100 * best * flops / 1e9 / tf32:6.1f} {per_trial:16.3g} {peak:>13}',
            flush=True,
        )
  print(
      f'# load average at end: {bench.load_avg()}; {time.perf_counter() - start:.0f} s in all',
      flush=True,
  )


if __name__ == '__main__':
  sys.exit(main())
