"""Every model x norm is scale invariant in its trainable weights: L(cw) = L(w), <grad L, w> = 0.

Invariance is exact only up to the norm's eps and float32 rounding, so each test checks that its
inputs keep the layers well conditioned (every normalised group has >= 4 features and a variance
>> eps) and bounds the rest with tolerances derived in tests/numerics.py.
"""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from svag_jax import models, schema
from svag_jax.metrics import tree_sq_norm
from tests import numerics

CASES = list(itertools.product(['cnn', 'mlp'], ['batch', 'group', 'layer']))
# GroupNorm with 2 groups: 4 and 8 features per group (MLP) and 4 / 8 channels x positions (CNN).
# Groups of 2 features are degenerate: (z1 - m, z2 - m) / sqrt(var + eps) = +-(1, -1) up to eps,
# so the layer's output does not depend on its weights and its gradient is eps plus rounding noise
# (cos(<g, w>) of that noise is what an earlier 4-group version of this test measured).
NUM_GROUPS = 2
MIN_GROUP_FEATURES = 4


def _group_stats(z, norm):
  """(variances, elements per normalised group) of a norm's input z [B, ..., C]."""
  z = np.asarray(z, np.float64)
  if norm == 'batch':  # per channel, over the batch and positions
    return z.reshape(-1, z.shape[-1]).var(0), z.size // z.shape[-1]
  groups = NUM_GROUPS if norm == 'group' else 1
  per_example = z.reshape(z.shape[0], -1, groups, z.shape[-1] // groups)
  assert per_example.shape[-1] >= MIN_GROUP_FEATURES, per_example.shape  # see NUM_GROUPS
  return per_example.var(axis=(1, 3)).ravel(), per_example[0, :, 0].size


def _model_and_batch(name, norm):
  cfg = schema.defaults().model  # the default eps is what must keep invariance
  cfg.update(name=name, widths=(8, 16), norm=norm, num_groups=NUM_GROUPS)
  model = models.build(cfg, num_classes=5)
  x = jax.random.normal(jax.random.key(1), (16, 12, 12, 3))
  y = jax.random.randint(jax.random.key(2), (16,), 0, 5)
  variables = model.init({'params': jax.random.key(0)}, x, train=False)
  params = variables['params']
  rest = {k: v for k, v in variables.items() if k != 'params'}

  def logits_and_inputs(p):
    """Logits [16, 5] and each weight layer's output (its norm's input) z [16, ..., C]."""
    logits, state = model.apply(
        {'params': p, **rest},
        x,
        train=True,
        mutable=['batch_stats', 'intermediates'],
        capture_intermediates=lambda mdl, _: mdl.name in params,
    )
    return logits, {k: v['__call__'][0] for k, v in state['intermediates'].items()}

  def loss(p):
    return optax.softmax_cross_entropy_with_integer_labels(logits_and_inputs(p)[0], y).mean()

  logits, zs = logits_and_inputs(params)
  assert set(zs) == set(params)
  # The sizes of every float32 reduction of a forward pass, layer by layer: the layer's dot
  # (fan-in), its norm's mean and variance (group elements), then the head and the loss.
  forward, min_var = [], math.inf
  for layer in params:
    var, group = _group_stats(zs[layer], norm)
    min_var = min(min_var, float(var.min()))
    forward += [math.prod(params[layer]['kernel'].shape[:-1]), group, group]
  # head (fan-in: the last layer's features per example), softmax, mean over the batch
  forward += [zs[list(params)[-1]][0].size, logits.shape[-1], logits.shape[0]]
  # ...and of the backward pass: the same reductions, plus each weight gradient's sum over the
  # batch and positions.
  backward = forward + [zs[layer].size // zs[layer].shape[-1] for layer in params]
  eps = cfg.norm_eps
  # eps makes a norm's output (z - m) / sqrt(var + eps) deviate from invariance by a relative
  # eps / (2 var) at w, eps / (2 c^2 var) at c w; the inputs must keep it far below rounding.
  assert eps / min_var < 1e-6, (eps, min_var)
  return (
      loss,
      params,
      variables,
      dict(logits=logits, forward=forward, backward=backward, eps_rel=eps / (2 * min_var)),
  )


@pytest.mark.parametrize('name,norm', CASES)
@pytest.mark.parametrize('c', [0.1, 10.0])
def test_loss_is_scale_invariant(name, norm, c):
  loss, params, _, info = _model_and_batch(name, norm)
  scaled = jax.tree.map(lambda w: c * w, params)
  # Each loss is the forward chain's output: relative error <= chain_tol(forward) on the
  # logits, and eps perturbs them by <= eps_rel / min(c, 1)^2; the mean cross-entropy moves by at
  # most 2 max|logit| per unit relative change of the logits (|softmax - onehot|_1 <= 2).
  # A non-invariant model (e.g. a trainable bias, or norm 'none') is off by > 1e-2.
  rel = 2 * numerics.chain_tol(info['forward']) + info['eps_rel'] / min(c, 1.0) ** 2
  bound = 2 * float(jnp.max(jnp.abs(info['logits']))) * rel
  assert abs(float(loss(scaled)) - float(loss(params))) <= bound, bound


@pytest.mark.parametrize('name,norm', CASES)
def test_gradient_is_orthogonal_to_weights(name, norm):
  loss, params, _, info = _model_and_batch(name, norm)
  grads = jax.grad(loss)(params)
  # cos(g, w) is 0 up to (i) eps: <grad L, w> = sum over groups <dL/dy, y> eps / (var + eps),
  # a relative eps_rel; (ii) the gradient's rounding error |g_hat - g| / |g| <= chain_tol of the
  # forward + backward reductions (well conditioned: groups of >= 4 features with var >> eps);
  # (iii) the inner product and norms of the layer's P weights, sum_tol(P) each.
  for layer in params:  # each layer is scale invariant on its own, hence orthogonal per layer
    g, w = grads[layer], params[layer]
    size = sum(leaf.size for leaf in jax.tree.leaves(w))
    tol = (
        numerics.chain_tol(info['forward'] + info['backward'])
        + 3 * numerics.sum_tol(size)
        + 2 * info['eps_rel']
    )
    inner = sum(jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(w)))
    cos = inner / jnp.sqrt(tree_sq_norm(g) * tree_sq_norm(w))
    assert abs(float(cos)) < tol, (layer, float(cos), tol)
  # and the gradient scales as 1/c: grad L(c w) = grad L(w) / c, each with the error above
  g10 = jax.grad(loss)(jax.tree.map(lambda w: 10 * w, params))
  size = sum(leaf.size for leaf in jax.tree.leaves(params))
  tol = 2 * (
      numerics.chain_tol(info['forward'] + info['backward'])
      + numerics.sum_tol(size)
      + 100 * info['eps_rel']
  )
  np.testing.assert_allclose(
      jnp.sqrt(tree_sq_norm(g10)), jnp.sqrt(tree_sq_norm(grads)) / 10, rtol=tol
  )


@pytest.mark.parametrize('name,norm', CASES)
def test_head_is_fixed_and_not_trainable(name, norm):
  _, params, variables, _ = _model_and_batch(name, norm)
  assert 'frozen' in variables
  assert not any('FixedDense' in k for k in params)
  # every trainable leaf is a kernel of a normalised layer: no biases, no affine scales
  paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(params)]
  assert all(p.endswith("['kernel']") for p in paths), paths


@pytest.mark.parametrize('name', ['cnn', 'mlp'])
def test_norm_none_is_the_non_invariant_baseline(name):
  cfg = schema.defaults().model
  cfg.update(name=name, widths=(8, 16), norm='none')
  model = models.build(cfg, num_classes=5)
  x = jax.random.normal(jax.random.key(1), (16, 12, 12, 3))
  variables = model.init({'params': jax.random.key(0)}, x, train=False)
  assert set(variables) == {'params', 'frozen'}  # no statistics: batch independent
  logits = lambda c: model.apply(
      {**variables, 'params': jax.tree.map(lambda w: c * w, variables['params'])}, x, train=True
  )
  # two ReLU layers and a linear head, no norms: positively homogeneous of degree 2 in w. Scaling
  # by 10 or 0.1 is exact in float32 up to one rounding per weight, so logits(c) and c^2 logits(1)
  # differ by rounding only: three dots (fan-ins 27 or 432, 72 or 8, 16 x positions) plus a few u
  # for the scalings, relative to the sum of |terms| (normwise: max |logit|).
  fan_ins = [3 * 3 * 3, 8 * 3 * 3, 16 * 6 * 6] if name == 'cnn' else [432, 8, 16]
  tol = 2 * numerics.chain_tol(fan_ins) + 4 * numerics.U32
  numerics.assert_close(logits(10.0), 100 * logits(1.0), tol)
  numerics.assert_close(logits(0.1), 0.01 * logits(1.0), tol)
  # and it is not invariant: the check above would fail for a normalised model
  assert not np.allclose(logits(10.0), logits(1.0), rtol=0.1)
