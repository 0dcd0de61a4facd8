"""Every conv implementation computes XLA's conv: same output, same gradients, same parameters."""

import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from svag_jax import models, schema
from svag_jax.models import conv
from tests import numerics

pytestmark = pytest.mark.usefixtures('compile_bound')

OTHER_IMPLS = [impl for impl in conv.CONV_IMPLS if impl != 'xla']
# (batch, height, width, in, out, kernel, stride): 1x1 and 3x3, stride 1 and 2, odd sizes, and a
# batch that leaves a partial chunk of conv.SPLIT_IMAGES (16).
CASES = [
    (3, 7, 5, 3, 4, 3, 1),
    (5, 9, 6, 2, 3, 3, 2),
    (4, 5, 7, 3, 2, 1, 1),
    (3, 6, 9, 4, 5, 1, 2),
    (19, 8, 8, 4, 4, 3, 1),
    (32, 9, 9, 3, 5, 3, 2),
]


def _tol(batch, height, width, cin, cout, k, stride):
  """{output, d input, d kernel}: the tolerance of two float32 programs computing that sum.

  Each entry is one sum of random-sign products: k*k*cin of them for the output, k*k*cout for
  the input gradient, batch*out_h*out_w for the kernel gradient; each program's error is
  chain_tol of it (tests/numerics.py), relative to max |entry| of the array.
  """
  out_pixels = -(-height // stride) * -(-width // stride)
  lengths = {'output': k * k * cin, 'd input': k * k * cout, 'd kernel': batch * out_pixels}
  return {name: 2 * numerics.chain_tol([n]) for name, n in lengths.items()}


def _inputs(batch, height, width, cin, cout, k, stride):
  kx, kw, kd = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, (batch, height, width, cin))
  kernel = jax.random.normal(kw, (k, k, cin, cout))
  out_shape = (batch, -(-height // stride), -(-width // stride), cout)
  dy = jax.random.normal(kd, out_shape)
  return x, kernel, dy


def _apply_and_grads(impl, stride, x, kernel, dy):
  module = conv.make_conv(impl)(kernel.shape[-1], kernel.shape[:2], stride)

  def f(x, kernel):
    return module.apply({'params': {'kernel': kernel}}, x)

  y, vjp = jax.vjp(f, x, kernel)
  return (y, *vjp(dy))


@pytest.mark.parametrize('impl', OTHER_IMPLS)
@pytest.mark.parametrize('case', CASES)
def test_matches_xla_in_output_and_gradients(impl, case):
  x, kernel, dy = _inputs(*case)
  stride = case[-1]
  want = jax.jit(lambda *a: _apply_and_grads('xla', stride, *a))(x, kernel, dy)
  got = jax.jit(lambda *a: _apply_and_grads(impl, stride, *a))(x, kernel, dy)
  for (name, tol), w, g in zip(_tol(*case).items(), want, got):
    assert g.shape == w.shape, name
    numerics.assert_close(g, w, tol, err_msg=name)


@pytest.mark.parametrize('impl', OTHER_IMPLS)
def test_matches_xla_under_vmap(impl):
  """A leading trial axis (vmap over kernels and inputs, as trials.py maps trials)."""
  case = (19, 7, 6, 3, 4, 3, 2)
  x, kernel, dy = _inputs(*case)
  xs = jnp.stack([x, -2 * x])
  kernels = jnp.stack([kernel, kernel[::-1] + 1])
  dys = jnp.stack([dy, dy**2])
  want = jax.jit(jax.vmap(lambda *a: _apply_and_grads('xla', 2, *a)))(xs, kernels, dys)
  got = jax.jit(jax.vmap(lambda *a: _apply_and_grads(impl, 2, *a)))(xs, kernels, dys)
  for (name, tol), w, g in zip(_tol(*case).items(), want, got):  # per trial: max over both
    numerics.assert_close(g, w, tol, err_msg=name)


@pytest.mark.parametrize('impl', OTHER_IMPLS)
def test_same_parameter_tree(impl):
  x = jnp.ones((2, 6, 6, 3))
  init = jax.nn.initializers.normal(1.0)
  want = conv.make_conv('xla')(5, (3, 3), 2, kernel_init=init).init(jax.random.key(0), x)
  got = conv.make_conv(impl)(5, (3, 3), 2, kernel_init=init).init(jax.random.key(0), x)
  assert jax.tree.structure(got) == jax.tree.structure(want)
  for w, g in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
    assert g.shape == w.shape == (3, 3, 3, 5)
    np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize('images', [1, 2, 3, 8, 64])
def test_kernel_grad_chunked_any_chunk_size(images):
  """Full chunks plus a partial one (or a single partial chunk) sum to XLA's kernel gradient."""
  case = (7, 6, 5, 2, 3, 3, 2)
  x, kernel, dy = _inputs(*case)
  want = jax.vjp(lambda k: conv.xla_conv(x, k, 2), kernel)[1](dy)[0]
  got = conv.kernel_grad_chunked(x, dy, (3, 3), 2, images)
  numerics.assert_close(got, want, _tol(*case)['d kernel'])


def test_unknown_impl_names_the_choices():
  with pytest.raises(ValueError, match='unknown conv implementation .*choose one of xla'):
    conv.make_conv('cudnn')


def test_cpu_compiler_options_keep_convs_off_ynnpack_and_the_numbers():
  """On CPU the options route convs away from YNNPACK (single-threaded) with the same results."""
  case = (4, 16, 16, 32, 32, 3, 1)
  x, kernel, dy = _inputs(*case)
  options = conv.cpu_compiler_options()
  assert options  # the tests run on CPU
  f = lambda *a: _apply_and_grads('split', 1, *a)
  default = jax.jit(f).lower(x, kernel, dy).compile()
  eigen = jax.jit(f, compiler_options=options).lower(x, kernel, dy).compile()
  assert '__ynn_fusion' in default.as_text()
  assert '__ynn_fusion' not in eigen.as_text()
  for (name, tol), w, g in zip(_tol(*case).items(), default(x, kernel, dy), eigen(x, kernel, dy)):
    numerics.assert_close(g, w, tol, err_msg=name)


def _model_cfg(name, impl='xla'):
  """config.model of `name` at small widths (CNN: configs/mnist_const.py's 32-64-64)."""
  cfg = schema.defaults().model
  cfg.update(name=name, conv_impl=impl)
  if name.startswith(('preresnet', 'vgg')):
    cfg.widen = 0.25 if name.startswith('preresnet') else 0.125
  return cfg


CONV_MODELS = [name for name in models.NAMES if name != 'mlp']
INPUTS = {'cnn': (4, 28, 28, 1)}  # the rest: CIFAR 4 x 32 x 32 x 3


def _conv_cases(name):
  """Every distinct conv of model `name` as a CASES entry (batch, H, W, in, out, kernel, stride)."""
  model = models.build(_model_cfg(name), num_classes=10)
  cases = set()

  def record(next_fun, args, kwargs, context):
    module = context.module
    if isinstance(module, conv.XlaConv) and context.method_name == '__call__':
      b, h, w, c = args[0].shape
      cases.add((b, h, w, c, module.features, module.kernel_size[0], module.strides))
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    jax.eval_shape(
        lambda x: model.init(jax.random.key(0), x, train=False),
        jax.ShapeDtypeStruct(INPUTS.get(name, (4, 32, 32, 3)), jnp.float32),
    )
  return sorted(cases)


@pytest.mark.parametrize('impl', OTHER_IMPLS)
@pytest.mark.parametrize('name', CONV_MODELS)
def test_every_conv_of_every_model_matches_xla(impl, name):
  """Each conv layer shape the model uses (stems, strided and 1x1 shortcuts, every width)."""
  cases = _conv_cases(name)
  assert cases
  for case in cases:
    x, kernel, dy = _inputs(*case)
    stride = case[-1]
    want = jax.jit(lambda *a, s=stride: _apply_and_grads('xla', s, *a))(x, kernel, dy)
    got = jax.jit(lambda *a, s=stride, i=impl: _apply_and_grads(i, s, *a))(x, kernel, dy)
    for (what, tol), w, g in zip(_tol(*case).items(), want, got):
      numerics.assert_close(g, w, tol, err_msg=f'{name} {case} {what}')


@pytest.mark.parametrize('name', CONV_MODELS)
def test_im2col_models_have_no_convolutions_and_the_same_parameters(name):
  shape = jax.ShapeDtypeStruct(INPUTS.get(name, (4, 32, 32, 3)), jnp.float32)
  trees, texts = {}, {}
  for impl in ('xla', 'im2col'):
    model = models.build(_model_cfg(name, impl), num_classes=10)
    init = lambda x, m=model: m.init(jax.random.key(0), x, train=False)
    trees[impl] = jax.eval_shape(init, shape)
    texts[impl] = str(
        jax.make_jaxpr(lambda v, x, m=model: m.apply(v, x, train=True, mutable=True))(
            trees[impl], shape
        )
    )
  assert jax.tree.structure(trees['im2col']) == jax.tree.structure(trees['xla'])
  assert jax.tree.map(lambda a: a.shape, trees['im2col']) == jax.tree.map(
      lambda a: a.shape, trees['xla']
  )
  assert 'conv_general_dilated' in texts['xla']
  assert 'conv_general_dilated' not in texts['im2col'] and 'dot_general' in texts['im2col']


def test_im2col_vmapped_over_trials_is_batched_matmuls():
  """What vmap over trials makes of a conv: grouped convolutions for 'xla', batched GEMMs
  (dot_general with the trial axis as batch dimension) for 'im2col', in output and gradients."""
  case = (5, 8, 8, 3, 4, 3, 2)
  x, kernel, dy = _inputs(*case)
  trials = lambda a: jnp.stack([a, 2 * a, -a])
  args = (trials(x), trials(kernel), trials(dy))
  for impl in ('xla', 'im2col'):
    f = jax.vmap(lambda *a, i=impl: _apply_and_grads(i, 2, *a))
    text = jax.jit(f).lower(*args).as_text()
    groups = [int(g) for g in re.findall(r'feature_group_count = (\d+)', text)]
    if impl == 'xla':
      assert groups and max(groups) == 3
    else:
      assert not groups
      assert re.search(r'dot_general .*batching_dims = \[0\] x \[0\]', text)
