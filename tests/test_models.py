"""Every model x norm is scale invariant in its trainable weights: L(cw) = L(w), <grad L, w> = 0."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from svag_jax import config as config_lib
from svag_jax import models
from svag_jax.metrics import tree_sq_norm

CASES = list(itertools.product(['cnn', 'mlp'], ['batch', 'group', 'layer']))


def _model_and_batch(name, norm):
  cfg = config_lib.defaults().model  # the default eps is what must keep invariance
  cfg.update(name=name, widths=(8, 16), norm=norm, num_groups=4)
  model = models.build(cfg, num_classes=5)
  x = jax.random.normal(jax.random.key(1), (16, 12, 12, 3))
  y = jax.random.randint(jax.random.key(2), (16,), 0, 5)
  variables = model.init({'params': jax.random.key(0)}, x, train=False)
  params = variables['params']
  rest = {k: v for k, v in variables.items() if k != 'params'}

  def loss(p):
    logits, _ = model.apply({'params': p, **rest}, x, train=True, mutable=['batch_stats'])
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  return loss, params, variables


@pytest.mark.parametrize('name,norm', CASES)
@pytest.mark.parametrize('c', [0.1, 10.0])
def test_loss_is_scale_invariant(name, norm, c):
  loss, params, _ = _model_and_batch(name, norm)
  scaled = jax.tree.map(lambda w: c * w, params)
  # fp32 with eps = 1e-8: observed relative differences ~1e-7; 1e-5 leaves room, and a
  # non-invariant model (e.g. a trainable bias) is off by > 1e-2.
  np.testing.assert_allclose(loss(scaled), loss(params), rtol=1e-5)


@pytest.mark.parametrize('name,norm', CASES)
def test_gradient_is_orthogonal_to_weights(name, norm):
  loss, params, _ = _model_and_batch(name, norm)
  grads = jax.grad(loss)(params)
  for layer in params:  # each layer is scale invariant on its own, hence orthogonal per layer
    g, w = grads[layer], params[layer]
    inner = sum(jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(w)))
    cos = inner / jnp.sqrt(tree_sq_norm(g) * tree_sq_norm(w))
    assert abs(float(cos)) < 1e-4, (layer, float(cos))
  # and the gradient scales as 1/c: grad L(c w) = grad L(w) / c
  g10 = jax.grad(loss)(jax.tree.map(lambda w: 10 * w, params))
  np.testing.assert_allclose(
      jnp.sqrt(tree_sq_norm(g10)), jnp.sqrt(tree_sq_norm(grads)) / 10, rtol=1e-4)


@pytest.mark.parametrize('name,norm', CASES)
def test_head_is_fixed_and_not_trainable(name, norm):
  _, params, variables = _model_and_batch(name, norm)
  assert 'frozen' in variables
  assert not any('FixedDense' in k for k in params)
  # every trainable leaf is a kernel of a normalised layer: no biases, no affine scales
  paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(params)]
  assert all(p.endswith("['kernel']") for p in paths), paths


@pytest.mark.parametrize('name', ['cnn', 'mlp'])
def test_norm_none_is_the_non_invariant_baseline(name):
  cfg = config_lib.defaults().model
  cfg.update(name=name, widths=(8, 16), norm='none')
  model = models.build(cfg, num_classes=5)
  x = jax.random.normal(jax.random.key(1), (16, 12, 12, 3))
  variables = model.init({'params': jax.random.key(0)}, x, train=False)
  assert set(variables) == {'params', 'frozen'}  # no statistics: batch independent
  logits = lambda c: model.apply(
      {**variables, 'params': jax.tree.map(lambda w: c * w, variables['params'])}, x, train=True)
  # two ReLU layers and a linear head, no norms: positively homogeneous of degree 2 in w
  np.testing.assert_allclose(logits(10.0), 100 * logits(1.0), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(logits(0.1), 0.01 * logits(1.0), rtol=1e-4, atol=1e-9)
