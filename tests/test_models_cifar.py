"""CIFAR models (PreResNet 20/32/56, VGG 11/13/16/19): scale invariance, shapes, parameter counts.

Compiling dominates the cost, so the invariance tests run op by op (not jitted: a deeper net of the
same family then reuses the compiled ops of a shallower one; measured here, CPU seconds per case:
~10 for the first net of a family, 1-3 for the other depths, vs ~6 for every case jitted); they
cover every model x norm (BatchNorm, GroupNorm with 2 groups, LayerNorm), and 'none' (not
invariant) on one net of each family.
Shapes, parameter trees and counts use `jax.eval_shape` (nothing is compiled).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from svag_jax import config as config_lib
from svag_jax import models, schema
from svag_jax.checks import ConfigError
from svag_jax.metrics import tree_sq_norm
from svag_jax.models import preresnet

pytestmark = pytest.mark.usefixtures('compile_bound')

PRERESNETS = ['preresnet20', 'preresnet32', 'preresnet56']
VGGS = ['vgg11', 'vgg13', 'vgg16', 'vgg19']
CASES = [(name, norm) for name in PRERESNETS + VGGS for norm in ('batch', 'group', 'layer')]
# Small widths keep the programs small: PreResNet 4/8/16 channels, VGG 8..64; 2 groups divide all.
WIDEN = {'preresnet': 0.25, 'vgg': 0.125}


def _cfg(name, norm='batch', widen=None):
  cfg = schema.defaults().model  # the default eps is what must keep invariance
  family = 'preresnet' if name.startswith('preresnet') else 'vgg'
  cfg.update(name=name, norm=norm, num_groups=2, widen=WIDEN[family] if widen is None else widen)
  return cfg


def _paths(tree):
  return [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(tree)]


@functools.cache
def _numbers(name, norm):
  """Loss at w, 0.1 w, 10 w and the gradients at w and 10 w, on a 4 x 32 x 32 x 3 batch."""
  model = models.build(_cfg(name, norm), num_classes=10)
  x = jax.random.normal(jax.random.key(1), (4, 32, 32, 3))
  y = jnp.array([0, 3, 7, 9])
  variables = model.init({'params': jax.random.key(0)}, x, train=False)
  params = variables['params']
  rest = {k: v for k, v in variables.items() if k != 'params'}

  def loss(p):
    logits, _ = model.apply({'params': p, **rest}, x, train=True, mutable=['batch_stats'])
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  scale = lambda c: jax.tree.map(lambda w: c * w, params)
  value, grads = jax.value_and_grad(loss)(params)  # op by op: see the module docstring
  return params, (value, loss(scale(0.1)), loss(scale(10.0)), grads, jax.grad(loss)(scale(10.0)))


def _cos(grads, params, paths):
  """cos(<g, w>) over the kernels of the modules `paths` ('stage1_block1/conv2', 'conv3')."""
  pick = lambda tree: [
      functools.reduce(lambda t, k: t[k], path.split('/'), tree)['kernel'] for path in paths
  ]
  g, w = pick(grads), pick(params)
  inner = sum(jnp.vdot(a, b) for a, b in zip(g, w))
  return float(inner / jnp.sqrt(tree_sq_norm(g) * tree_sq_norm(w)))


@pytest.mark.parametrize('name,norm', CASES)
def test_loss_is_invariant_to_scaling_all_weights(name, norm):
  params, (value, at_tenth, at_ten, grads, grads_at_ten) = _numbers(name, norm)
  # fp32, eps = 1e-10: observed relative differences ~1e-7; a non-invariant net is off by > 1e-2
  np.testing.assert_allclose([at_tenth, at_ten], [value, value], rtol=1e-5)
  # the gradient is orthogonal to w and scales as 1/c: grad L(10 w) = grad L(w) / 10
  inner = sum(jnp.vdot(g, w) for g, w in zip(jax.tree.leaves(grads), jax.tree.leaves(params)))
  assert abs(float(inner / jnp.sqrt(tree_sq_norm(grads) * tree_sq_norm(params)))) < 1e-4
  np.testing.assert_allclose(
      jnp.sqrt(tree_sq_norm(grads_at_ten)), jnp.sqrt(tree_sq_norm(grads)) / 10, rtol=1e-4
  )


@pytest.mark.parametrize('name,norm', [c for c in CASES if c[0].startswith('vgg')])
def test_vgg_gradient_is_orthogonal_to_each_layer(name, norm):
  params, (*_, grads, _) = _numbers(name, norm)
  for layer in params:  # every conv is followed by a norm: invariant on its own
    assert abs(_cos(grads, params, [layer])) < 1e-4, layer


@pytest.mark.parametrize('name,norm', [c for c in CASES if c[0].startswith('preresnet')])
def test_preresnet_gradient_is_orthogonal_to_each_invariance_group(name, norm):
  params, (*_, grads, _) = _numbers(name, norm)
  groups = preresnet.invariance_groups(int(name.removeprefix('preresnet')))
  # the groups partition the kernels
  assert sorted(p for g in groups for p in g) == sorted(
      path.replace("']['", '/').strip("[']").removesuffix('/kernel') for path in _paths(params)
  )
  for group in groups:
    assert abs(_cos(grads, params, group)) < 1e-4, group
  # ...and they are the smallest such groups: a conv2 or shortcut alone is not orthogonal (the
  # stage output is their sum), so a per-layer test would be wrong for these layers
  tied = [path for g in groups if len(g) > 1 for path in g]
  assert max(abs(_cos(grads, params, [path])) for path in tied) > 1e-3


@pytest.mark.parametrize('name', ['preresnet20', 'vgg11'])
def test_norm_none_is_not_scale_invariant(name):
  model = models.build(_cfg(name, 'none'), num_classes=10)
  x = jax.random.normal(jax.random.key(1), (4, 32, 32, 3))
  variables = model.init({'params': jax.random.key(0)}, x, train=False)
  assert 'batch_stats' not in variables
  logits = lambda c: model.apply(
      {**variables, 'params': jax.tree.map(lambda w: c * w, variables['params'])}, x, train=True
  )
  loss = lambda c: optax.softmax_cross_entropy_with_integer_labels(
      logits(c), jnp.array([0, 3, 7, 9])
  ).mean()
  # Without norms the ReLU net is positively homogeneous of degree >= 2 in w: the logits scale by
  # at least c^2 (the initial logits are small, so L(0.1 w) ~ log 10 ~ L(w): compare the logits)
  for c in (0.1, 10.0):
    change = jnp.linalg.norm(logits(c) - logits(1.0)) / jnp.linalg.norm(logits(1.0))
    assert change > 0.5, (c, float(change))
  assert abs(float(loss(10.0) / loss(1.0)) - 1) > 0.1


def _abstract(cfg, shape=(2, 32, 32, 3), num_classes=10):
  model = models.build(cfg, num_classes)
  x = jnp.zeros(shape)
  variables = jax.eval_shape(lambda: model.init({'params': jax.random.key(0)}, x, train=False))
  logits = jax.eval_shape(lambda v: model.apply(v, x, train=False), variables)
  return variables, logits


def test_preresnet32_trainable_parameter_count():
  # By hand (3x3 convs 9 * in * out, 1x1 shortcuts in * out, no biases, norms without affine):
  #   stem 9*3*16 = 432
  #   stage 1: 5 blocks x 2 x 9*16*16 = 23,040, plus the 1x1 shortcut 16*16 = 256
  #   stage 2: 9*16*32 + 9*32*32 + 16*32 (shortcut) + 4 x 2 x 9*32*32 = 4,608 + 9,216 + 512 +
  #            73,728 = 88,064
  #   stage 3: 9*32*64 + 9*64*64 + 32*64 + 4 x 2 x 9*64*64 = 18,432 + 36,864 + 2,048 + 294,912 =
  #            352,256
  #   total 432 + 23,296 + 88,064 + 352,256 = 464,048: the number ENVIRONMENT.md quotes for the
  #   PyTorch SI PreResNet32 (stage 1's shortcut is counted there too). The fixed head 64 x 10 =
  #   640 is in 'frozen', not trainable.
  variables, _ = _abstract(_cfg('preresnet32', widen=1.0))
  assert sum(x.size for x in jax.tree.leaves(variables['params'])) == 464_048
  assert sum(x.size for x in jax.tree.leaves(variables['frozen'])) == 640


def test_vgg19_trainable_parameter_count():
  # By hand, sum of 9 * in * out over the 16 convs: 3*64 + 64*64 + 64*128 + 128*128 + 128*256 +
  # 3 * 256*256 + 256*512 + 3 * 512*512 + 4 * 512*512 = 2,224,320; x 9 = 20,018,880.
  variables, _ = _abstract(_cfg('vgg19', widen=1.0))
  assert sum(x.size for x in jax.tree.leaves(variables['params'])) == 20_018_880
  assert variables['frozen']['FixedDense_0']['kernel'].shape == (512, 10)


@pytest.mark.parametrize('name', PRERESNETS + VGGS)
def test_head_is_frozen_and_every_trainable_leaf_is_a_conv_kernel(name):
  cfg = _cfg(name)
  variables, _ = _abstract(cfg)
  params = variables['params']
  assert jax.tree.leaves(variables['frozen']) and not any('FixedDense' in k for k in params)
  assert all(p.endswith("['kernel']") for p in _paths(params))
  kernels = jax.tree.leaves(params)
  assert all(k.ndim == 4 and k.shape[:2] in ((3, 3), (1, 1)) for k in kernels)
  # models.layer_widths (used by validation) lists exactly the channels the model uses
  assert sorted(k.shape[-1] for k in kernels) == sorted(models.layer_widths(cfg))
  depth = int(name.removeprefix('preresnet').removeprefix('vgg'))
  convs = depth + 2 if name.startswith('preresnet') else depth - 3  # + 3 shortcuts - 1 head
  assert len(kernels) == convs


@pytest.mark.parametrize('name', PRERESNETS + VGGS)
@pytest.mark.parametrize(
    'shape', [(2, 32, 32, 3), (3, 28, 28, 1), (2, 64, 48, 3)], ids=['cifar_svhn', 'mnist', 'large']
)
def test_output_shapes(name, shape):
  # CIFAR-10 and SVHN images are both 32 x 32 x 3; MNIST 28 x 28 x 1 (VGG pools 28 -> 14 -> 7 ->
  # 4 -> 2 -> 1); a larger input gives VGG a bigger flattened feature (2 x 2 x 64 at widen 1/8)
  variables, logits = _abstract(_cfg(name), shape=shape, num_classes=7)
  assert logits.shape == (shape[0], 7)
  head = variables['frozen']['FixedDense_0']['kernel'].shape
  if name.startswith('preresnet'):
    assert head == (16, 7)  # global average pool of 64 x 1/4 channels
  else:
    assert head == (-(-shape[1] // 32) * -(-shape[2] // 32) * 64, 7)


def test_widen_rounds_channels():
  assert preresnet.stage_widths(0.1) == (2, 3, 6)  # 1.6, 3.2, 6.4 rounded half up
  assert preresnet.stage_widths(0.01) == (1, 1, 1)  # at least one channel
  assert models.layer_widths(_cfg('vgg11', widen=0.5))[:3] == (32, 64, 128)


def test_config_names_match_the_registry():
  assert set(config_lib.MODELS) == set(models.NAMES)
  assert 'none' in config_lib.NORMS and 'none' in config_lib.BATCH_INDEPENDENT_NORMS


@pytest.mark.parametrize(
    'overrides,match',
    [
        (
            {'name': 'preresnet20', 'norm': 'group', 'num_groups': 8, 'widen': 0.25},
            r'config\.model\.num_groups = 8: must divide every layer width.*\[4\].*model\.widen',
        ),
        (
            {'name': 'vgg11', 'norm': 'group', 'num_groups': 3},
            r'config\.model\.num_groups = 3.*\[64, 128, 256, 512\].*model\.widen',
        ),
        (
            {'name': 'cnn', 'norm': 'group', 'num_groups': 3, 'widths': (6, 8)},
            r'config\.model\.num_groups = 3.*\[8\].*model\.widths',
        ),
        ({'name': 'preresnet32', 'widen': 0.0}, r'config\.model\.widen = 0\.0: must be > 0'),
        ({'name': 'cnn', 'widen': 2.0}, r'config\.model\.widen = 2\.0: only preresnet/vgg'),
        ({'conv_impl': 'cudnn'}, r'config\.model\.conv_impl.*xla'),
        ({'name': 'vgg12'}, r'config\.model\.name.*vgg19'),
    ],
)
def test_bad_model_configs_name_the_field(overrides, match):
  cfg = schema.defaults()
  cfg.model.update(**overrides)
  with pytest.raises(ConfigError, match=match):
    config_lib.validate(cfg)


def test_valid_cifar_configs_pass_and_widths_are_refused_where_unread():
  cfg = schema.defaults()
  cfg.model.update(name='preresnet56', norm='group', num_groups=16)
  config_lib.validate(cfg)  # 16, 32, 64 are multiples of 16
  cfg.model.update(name='vgg16', norm='none', num_groups=8)  # num_groups: GroupNorm's alone
  config_lib.validate(cfg)
  cfg.model.widths = ()  # not read by preresnet / vgg: refused, never silently ignored
  with pytest.raises(ConfigError, match=r'config\.model\.widths = \(\): not read'):
    config_lib.validate(cfg)
