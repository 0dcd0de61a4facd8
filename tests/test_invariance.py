"""The group finder (svag_jax.invariance) on five kinds of model: the built-in models (it finds
their declared groups), a standard ResNet with affine BatchNorm, a pre-LN and a post-LN
Transformer block, and a network without normalisation (no group); and a joint group split in two
is not invariant.

The expected groups of the models the project does not ship (tests/foreign_models.py) are derived
by hand in each test. Tolerances: rescaling by a power of two (`invariance.FACTORS`) is exact in
float32 (it commutes with every rounding, in any order of summation), so an invariant group's
losses move only through the norms' eps; with eps ~ 0 they do not move at all, bit for bit
(`test_rescaling_an_invariant_group_is_exact_without_eps`). The gradient cosines are float32
rounding, bounded as in tests/numerics.py.
"""

import functools

import jax
import jax.numpy as jnp
import pytest

from svag_jax import invariance, models, schema
from svag_jax.invariance import RTOL
from svag_jax.models.external import train_kwargs
from tests import foreign_models, numerics

pytestmark = pytest.mark.usefixtures('compile_bound')

# At least as many examples as tensors (the preresnet20 and the Transformers have 22).
BATCH = 32
CLASSES = 4


def _batch(shape=(8, 8, 1)):
  x = jax.random.normal(jax.random.key(1), (BATCH, *shape))
  return x, jnp.arange(BATCH) % CLASSES


def _variables(model, x):
  return model.init(jax.random.key(0), x, **train_kwargs(model, False))


def _find(model, shape=(8, 8, 1)):
  x, y = _batch(shape)
  variables = _variables(model, x)
  return invariance.find_groups(model, variables, (x, y)), variables


@functools.cache
def _found(make, pre_ln=True):
  """find_groups of a foreign model at Flax's default eps (shared by two tests)."""
  model = make(CLASSES) if make is foreign_models.ResNet else make(CLASSES, pre_ln=pre_ln)
  return _find(model)[0]


def _check_decisions(found):
  """Every decision has a margin: groups move the losses by at most RTOL / 10 (the norms' eps),
  the tensors in no group by at least 3 RTOL (the change of the function)."""
  for g in found.groups:
    assert g.evidence.loss_change <= RTOL / 10, (g.name, g.evidence)
  for path, ev in found.ungrouped.items():
    assert ev.loss_change >= 3 * RTOL, (path, ev)


BUILT_IN = [
    ('cnn', 'batch', (8, 8, 1)),
    ('mlp', 'group', (8, 8, 1)),
    ('mlp', 'layer', (8, 8, 1)),
    ('vgg11', 'group', (8, 8, 3)),
    ('preresnet20', 'batch', (8, 8, 3)),
]


@pytest.mark.parametrize('name,norm,shape', BUILT_IN)
def test_built_in_models_groups_are_the_declared_ones(name, norm, shape):
  cfg = schema.defaults().model
  cfg.update(name=name, norm=norm, num_groups=2, widths=(8, 16), widen=0.125)
  model = models.build(cfg, CLASSES)
  found, variables = _find(model, shape)
  declared = invariance.declared(
      models.invariance_groups(cfg, variables['params']), variables['params']
  )
  # PreResNet: the stem and every conv1 alone, and per stage the shortcut with all conv2 kernels
  # (a joint group: finding it split would fail here); the others: every kernel alone.
  assert found.sets() == declared.sets()
  assert not found.ungrouped and not found.inert
  if name.startswith('preresnet'):
    assert max(len(g.members) for g in found.groups) == 4  # shortcut + 3 conv2
  # The built-in norms' eps (1e-10) vanishes next to the variance in float32 (var + eps == var
  # for var > 2^24 eps = 1.7e-3): rescaling by 2^k leaves every loss bitwise unchanged.
  for g in found.groups:
    assert g.evidence.loss_change == 0.0, (g.name, g.evidence)


def test_a_split_joint_group_is_not_invariant():
  """PreResNet's shortcut + conv2 group of a stage is invariant only as a whole: the stage's
  output is their sum. Either half alone changes the loss; `check_groups` says so."""
  cfg = schema.defaults().model
  cfg.update(name='preresnet20', widen=0.125)
  model = models.build(cfg, CLASSES)
  x, y = _batch((8, 8, 3))
  variables = _variables(model, x)
  stage = next(g for g in models.invariance_groups(cfg, variables['params']) if len(g) > 1)
  shortcut = tuple(p for p in stage if 'shortcut' in p)
  conv2 = tuple(p for p in stage if 'shortcut' not in p)
  whole, half1, half2 = invariance.check_groups(model, variables, (x, y), [stage, shortcut, conv2])
  assert whole.loss_change == 0.0
  assert half1.loss_change > 3 * RTOL and half2.loss_change > 3 * RTOL, (half1, half2)


def test_resnet_with_affine_batchnorm():
  found = _found(foreign_models.ResNet)
  # Every conv kernel is followed by a BatchNorm (batch statistics): invariant alone.
  # A block's first BN (scale, bias) feeds ReLU -> conv2 -> BN: invariant as a pair (ReLU is
  # positively homogeneous). The first stage's stream, relu(stem BN) + relu(BN2(...)), reaches
  # the next stage only through its conv1 and shortcut, each followed by a BN: the stem BN and the
  # stage-0 BN2 (scale and bias) are one joint group. The last stage's stream goes to the head
  # (with a bias): its BN2 and shortcut BN, and the head, are in no group.
  pair = lambda bn: {f'{bn}/bias', f'{bn}/scale'}
  kernels = ['stem', 'stage0_conv1', 'stage0_conv2', 'stage1_conv1', 'stage1_conv2']
  assert found.sets() == {
      *(frozenset({f'{k}/kernel'}) for k in [*kernels, 'stage1_shortcut']),
      frozenset(pair('stage0_bn1')),
      frozenset(pair('stage1_bn1')),
      frozenset(pair('stem_bn') | pair('stage0_bn2')),
  }
  assert not found.inert
  assert set(found.ungrouped) == pair('stage1_bn2') | pair('stage1_shortcut_bn') | {
      'head/bias',
      'head/kernel',
  }
  _check_decisions(found)


def _attention(*names):
  return {f'block/attn/{n}' for n in names}


def test_pre_ln_transformer_block():
  found = _found(foreign_models.Transformer, pre_ln=True)
  # The residual stream x is read only through LayerNorms (ln1, ln2, the final one), so scaling
  # everything written into it, x0 = embed(tokens) + attention out(...) + mlp_out(...) (kernels
  # and biases), is invariant: one joint group of 6 tensors, none invariant alone. Smaller
  # writers exist only with the value projection instead of the out kernel (7 tensors): the
  # finder takes the smallest. The key bias adds q.b_k to every key's logit of a query: softmax
  # does not see it (inert). Everything else (q, k, v, the LayerNorms' affine, mlp_in, the head)
  # changes the function when rescaled.
  stream = {
      'embed/bias',
      'embed/kernel',
      *_attention('out/bias', 'out/kernel'),
      'block/mlp_out/bias',
      'block/mlp_out/kernel',
  }
  assert found.sets() == {frozenset(stream)}
  assert found.inert == ('block/attn/key/bias',)
  assert 'block/attn/value/kernel' in found.ungrouped and 'ln_final/scale' in found.ungrouped
  _check_decisions(found)


def test_post_ln_transformer_block():
  found, _ = _find(foreign_models.Transformer(CLASSES, pre_ln=False))
  # x1 = ln1(x0 + attn(x0)) feeds ln2(x1 + mlp(x1)); mlp(c x1) = c mlp(x1) when both of its biases
  # scale with x1 (ReLU is positively homogeneous): ln1's scale and bias with mlp_in's and
  # mlp_out's biases are one group. The attention sees x0 unnormalised (no group there), and ln2
  # feeds the head.
  assert found.sets() == {
      frozenset({'block/ln1/bias', 'block/ln1/scale', 'block/mlp_in/bias', 'block/mlp_out/bias'})
  }
  assert found.inert == ('block/attn/key/bias',)
  _check_decisions(found)


def test_a_network_without_normalisation_has_no_group():
  found, _ = _find(foreign_models.PlainMLP(CLASSES))
  # Its symmetries rescale one layer up and the next down (ReLU): none is one factor on a set.
  assert not found.groups and not found.inert
  assert len(found.ungrouped) == 6
  _check_decisions(found)


@pytest.mark.parametrize('make', [foreign_models.ResNet, foreign_models.Transformer])
def test_rescaling_an_invariant_group_is_exact_without_eps(make):
  """The groups' loss changes above are the norms' eps alone: with eps = 1e-30 (nothing next to a
  variance in float32) rescaling by 2^k changes no loss by a single bit. Their gradient cosines
  are float32 rounding: a chain of reductions (tests/numerics.py) over the forward and backward
  pass of the batch, and the inner product and norms of the group's weights."""
  model = make(CLASSES, eps=1e-30)
  x, y = _batch()
  variables = _variables(model, x)
  found = _found(make)
  evidence = invariance.check_groups(model, variables, (x, y), [g.members for g in found.groups])
  params = variables['params']
  size = max(sum(jnp.size(params_at(params, p)) for p in g.members) for g in found.groups)
  # Reductions of the pass: per-channel/token statistics over the batch (B H W = 2048 or B T D
  # terms), fan-ins up to 72 (3 x 3 x 8), the head and softmax, the mean over the batch; the
  # backward pass sums the same and each kernel's gradient over B H W positions.
  lengths = [2048, 2048, 72, 72, 16, CLASSES, BATCH] * 2
  tol = numerics.chain_tol(lengths) + 3 * numerics.sum_tol(size)
  for g, ev in zip(found.groups, evidence):
    assert ev.loss_change == 0.0, (g.name, ev)
    assert ev.grad_cos <= tol, (g.name, ev, tol)


def params_at(params, path):
  node = params
  for key in path.split('/'):
    node = node[key]
  return node
