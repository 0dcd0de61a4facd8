"""Training throughput of one SGD step of the SI models, svag_jax vs PyTorch (prints numbers).

    python -m benchmarks.models [--models=preresnet32,cnn] [--impls=xla+ynn,xla,split]
                                [--batch=128] [--steps=5] [--rounds=3] [--no-torch]

One step = forward, backward, SGD with coupled weight decay (w <- w - eta (grad + lambda w)) and
the BatchNorm running-statistics update, on a fixed random batch (no data pipeline on either side).
Models: 'preresnet32', the SI PreResNet32 of configs/base.py (CIFAR 32x32x3, widths 16/32/64,
BatchNorm without affine, fixed head; `svag_jax.models.build`), and 'cnn', the SI MNIST CNN of
configs/mnist_const.py:cpu (28x28x1, 32-64-64). The PyTorch side is the same network written in
torch (CPU build, `pip install torch`, the `bench` extra), NCHW and channels-last, timed in a
worker process of its own (in one process XLA's and torch's thread pools slow each other down).
svag_jax steps are compiled with `conv.cpu_compiler_options()` (no YNNPACK); 'IMPL+ynn' rows
use XLA's defaults instead (the plain-Flax baseline is 'xla+ynn').

Both sides use every core this process may run on (XLA's default; torch.set_num_threads of the
affinity mask): `taskset -c 0 python -m benchmarks.models` compares them on one core. Warm-up steps
(and compiles) are excluded. The implementations are timed in `--rounds` interleaved rounds of
`--steps` steps each, so a change of machine load hits all of them alike. Each line gives images/s
(wall clock: best and median round), images per CPU second of this process (best round; less
sensitive to other processes on a shared machine, but it counts spinning threads as work) and
their ratios to the best PyTorch layout. Compare only numbers from one run, and mind the load
average printed with them: PyTorch's OpenMP threads slow down much more than XLA's when other
processes share the cores.
"""

import argparse
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from svag_jax import models
from svag_jax.configs import base, mnist_const
from svag_jax.models import conv

LR, WD = 0.1, 5e-4
NUM_CLASSES = 10


def model_config(name: str, impl: str):
  """config.model of the benchmarked `name` ('preresnet32' or 'cnn') with conv_impl `impl`."""
  if name == 'preresnet32':
    cfg = base.cifar10_preresnet32(base.get_config())
  elif name == 'cnn':
    cfg = mnist_const.get_config('cpu')
  else:
    raise ValueError(f'unknown benchmark model {name!r}; choose preresnet32 or cnn')
  cfg.model.conv_impl = impl
  return cfg.model


def input_shape(name: str) -> tuple[int, int, int]:
  return (32, 32, 3) if name == 'preresnet32' else (28, 28, 1)


def jax_step(name: str, impl: str, batch: int, ynn: bool = False) -> tuple[Callable[[], None], int]:
  """A no-argument function running one jitted SGD step of the svag_jax model (state kept inside),
  and the number of trainable parameters. The step is compiled with `conv.cpu_compiler_options()`,
  or with XLA's defaults (YNNPACK convolutions on CPU) if `ynn`."""
  net = models.build(model_config(name, impl), NUM_CLASSES)
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((batch, *input_shape(name)), np.float32))
  y = jnp.asarray(rng.integers(0, NUM_CLASSES, batch, np.int32))
  variables = net.init(jax.random.key(0), x, train=False)
  frozen = variables['frozen']

  def step(params, batch_stats, x, y):
    def loss_fn(p):
      logits, new = net.apply(
          {'params': p, 'batch_stats': batch_stats, 'frozen': frozen},
          x,
          train=True,
          mutable=['batch_stats'],
      )
      logp = jax.nn.log_softmax(logits)
      return -jnp.take_along_axis(logp, y[:, None], axis=1).mean(), new['batch_stats']

    grads, batch_stats = jax.grad(loss_fn, has_aux=True)(params)
    params = jax.tree.map(lambda w, g: w - LR * (g + WD * w), params, grads)
    return params, batch_stats

  options = {} if ynn else conv.cpu_compiler_options()
  step = jax.jit(step, donate_argnums=(0, 1), compiler_options=options)
  state = [variables['params'], variables['batch_stats']]

  def run():
    state[:] = step(*state, x, y)
    jax.block_until_ready(state)

  num = sum(p.size for p in jax.tree.leaves(variables['params']))
  return run, num


def torch_step(name: str, batch: int, channels_last: bool) -> tuple[Callable[[], None], int]:
  """The same step in PyTorch: a no-argument function, and the number of trainable parameters."""
  import torch  # noqa: PLC0415 (optional dependency: the `bench` extra)

  torch.manual_seed(0)
  torch.set_num_threads(len(os.sched_getaffinity(0)))
  net = torch_net(name, NUM_CLASSES)
  x = torch.randn(batch, input_shape(name)[2], *input_shape(name)[:2])
  y = torch.randint(0, NUM_CLASSES, (batch,))
  if channels_last:
    net = net.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
  net.train()
  opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=LR, weight_decay=WD)

  def run():
    opt.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(net(x), y).backward()
    opt.step()

  num = sum(p.numel() for p in net.parameters() if p.requires_grad)
  return run, num


def torch_net(name: str, num_classes: int):
  """The PyTorch twin of the svag_jax model `name`: same layers, same parameter count.

  Convs without bias, BatchNorm without affine (momentum 0.1 = Flax's 0.9), a fixed random head
  (requires_grad=False). PreResNet32 as in svag_jax/models/preresnet.py: the first block of a stage
  feeds its first norm's output to a 1x1-conv shortcut.
  """
  import torch  # noqa: PLC0415
  from torch import nn as tnn  # noqa: PLC0415

  def conv(cin, cout, k, stride=1):
    return tnn.Conv2d(cin, cout, k, stride, padding=k // 2, bias=False)

  def norm(c):
    return tnn.BatchNorm2d(c, eps=1e-10, momentum=0.1, affine=False)

  def fixed_head(cin):
    head = tnn.Linear(cin, num_classes, bias=False)
    head.weight.requires_grad_(False)
    return head

  class Block(tnn.Module):

    def __init__(self, cin, cout, stride, projection):
      super().__init__()
      self.norm1, self.conv1 = norm(cin), conv(cin, cout, 3, stride)
      self.norm2, self.conv2 = norm(cout), conv(cout, cout, 3)
      self.shortcut = conv(cin, cout, 1, stride) if projection else None

    def forward(self, x):
      h = self.norm1(x)
      y = self.conv2(torch.relu(self.norm2(self.conv1(torch.relu(h)))))
      return y + (self.shortcut(h) if self.shortcut is not None else x)

  class PreResNet32(tnn.Module):

    def __init__(self):
      super().__init__()
      layers, cin = [conv(3, 16, 3)], 16
      for s, width in enumerate((16, 32, 64)):
        for b in range(5):
          layers.append(Block(cin, width, 2 if s > 0 and b == 0 else 1, b == 0))
          cin = width
      self.body, self.norm, self.head = tnn.Sequential(*layers), norm(64), fixed_head(64)

    def forward(self, x):
      return self.head(torch.relu(self.norm(self.body(x))).mean((2, 3)))

  class CNN(tnn.Module):

    def __init__(self, widths=(32, 64, 64), cin=1, size=28):
      super().__init__()
      layers = []
      for i, width in enumerate(widths):
        layers += [conv(cin, width, 3), norm(width), tnn.ReLU()]
        if i < len(widths) - 1:
          layers.append(tnn.MaxPool2d(2))
          size //= 2
        cin = width
      self.body, self.head = tnn.Sequential(*layers), fixed_head(cin * size * size)

    def forward(self, x):
      return self.head(self.body(x).flatten(1))

  return PreResNet32() if name == 'preresnet32' else CNN()


def time_rounds(
    runs: dict[str, Callable[[], None]], batch: int, steps: int, rounds: int
) -> dict[str, tuple[list[float], list[float]]]:
  """Per run, (images/s, images per CPU second of this process) in each of `rounds` interleaved
  rounds of `steps` steps."""
  out = {name: ([], []) for name in runs}
  for _ in range(rounds):
    for name, run in runs.items():
      wall, cpu = time.perf_counter(), time.process_time()
      for _ in range(steps):
        run()
      out[name][0].append(batch * steps / (time.perf_counter() - wall))
      out[name][1].append(batch * steps / (time.process_time() - cpu))
  return out


def _torch_worker(connection, name: str, batch: int, steps: int) -> None:
  """Runs in its own process (XLA's and torch's thread pools would compete in one): builds the
  PyTorch steps, answers 'params' and 'round' requests on `connection` until 'stop'."""
  runs, params = {}, {}
  for layout in ('nchw', 'channels_last'):
    runs[f'torch {layout}'], params[layout] = torch_step(name, batch, layout != 'nchw')
    runs[f'torch {layout}']()
    runs[f'torch {layout}']()
  connection.send(params)
  while connection.recv() == 'round':
    connection.send(time_rounds(runs, batch, steps, 1))
  connection.close()


def benchmark(
    name: str, impls: list[str], batch: int, steps: int, rounds: int, torch: bool
) -> dict[str, tuple[list[float], list[float]]]:
  """Times every impl (and PyTorch) on model `name` and prints one line each.

  `impls`: conv impls; 'IMPL+ynn' compiles with XLA's defaults instead of cpu_compiler_options.
  """
  runs, params = {}, {}
  for spec in impls:
    impl, _, ynn = spec.partition('+')
    runs[f'svag_jax {spec}'], params[spec] = jax_step(name, impl, batch, ynn == 'ynn')
  for label, run in runs.items():
    t = time.perf_counter()
    run()
    run()
    print(f'  warm-up (compile) {label}: {time.perf_counter() - t:.1f} s', flush=True)
  worker = None
  if torch:
    context = multiprocessing.get_context('spawn')
    connection, child = context.Pipe()
    worker = context.Process(target=_torch_worker, args=(child, name, batch, steps))
    worker.start()
    params.update(connection.recv())
  if len(set(params.values())) != 1:
    raise RuntimeError(f'the {name} networks differ: trainable parameters {params}')
  load = os.getloadavg()[0]
  result = {}
  for _ in range(rounds):
    for label, values in time_rounds(runs, batch, steps, 1).items():
      result.setdefault(label, ([], []))
      result[label][0].extend(values[0])
      result[label][1].extend(values[1])
    if worker:
      connection.send('round')
      for label, values in connection.recv().items():
        result.setdefault(label, ([], []))
        result[label][0].append(values[0][0])
        result[label][1].append(values[1][0])
  if worker:
    connection.send('stop')
    worker.join()
  print(
      f'{name}, batch {batch}, {params[impls[0]]:,} trainable parameters, {rounds} rounds of '
      f'{steps} steps, load average {load:.2f} -> {os.getloadavg()[0]:.2f}'
  )
  print(
      f'  {"":24s} {"images/s best":>14s} {"median":>8s} {"ratio":>6s} {"images/CPU-s":>13s} '
      f'{"ratio":>6s}'
  )
  torch_best = (
      [max(max(v[i]) for k, v in result.items() if k.startswith('torch')) for i in (0, 1)]
      if torch
      else None
  )
  for label, (wall, cpu) in result.items():
    ratios = [
        f'{max(v) / torch_best[i]:5.2f}x' if torch else '     -' for i, v in enumerate((wall, cpu))
    ]
    print(
        f'  {label:24s} {max(wall):14.1f} {statistics.median(wall):8.1f} {ratios[0]:>6s} '
        f'{max(cpu):13.1f} {ratios[1]:>6s}',
        flush=True,
    )
  return result


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--models', default='preresnet32,cnn')
  parser.add_argument('--impls', default=','.join(['xla+ynn', *conv.CONV_IMPLS]))
  parser.add_argument('--batch', type=int, default=128)
  parser.add_argument('--steps', type=int, default=5)
  parser.add_argument('--rounds', type=int, default=3)
  parser.add_argument('--no-torch', dest='torch', action='store_false')
  args = parser.parse_args()
  cores = len(os.sched_getaffinity(0))
  print(
      f'{cores} of {os.cpu_count()} cores, jax {jax.__version__} on {jax.devices()[0].platform}, '
      f'ratios to the best PyTorch layout'
  )
  for name in args.models.split(','):
    benchmark(name, args.impls.split(','), args.batch, args.steps, args.rounds, args.torch)


if __name__ == '__main__':
  main()
