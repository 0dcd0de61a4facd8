"""The arithmetic of a trial's forward and backward passes: `config.train.precision`.

`wrap(model, precision)` returns the model a run trains and evaluates. Parameters, BatchNorm
running statistics, optimizer state, gradients, the loss and every metric stay float32 in every
precision; only how the network's function is computed changes:

  'fp32'  the model itself (nothing wrapped: bit for bit what runs computed before the knob).
          Dots and convolutions run at jax's default precision (`jax_default_matmul_precision`,
          None unless set): float32 arithmetic on CPU; on NVIDIA GPUs since Ampere, XLA's
          DEFAULT already feeds float32 dots and convolutions to TF32 tensor cores
          (`jax.lax.Precision`). Set JAX_DEFAULT_MATMUL_PRECISION=highest for full float32 there;
          benchmarks/gpu_trials.py prints which one is in effect.
  'tf32'  the model traced under `jax.default_matmul_precision('tensorfloat32')`: its dots and
          convolutions (forward and, through their transposes, backward) round their float32
          inputs to TF32 (10-bit mantissa) and accumulate in float32 on GPUs that have TF32;
          elsewhere float32. XLA:CPU ignores the precision, so on CPU this is the arithmetic of
          'fp32', bit for bit (tested). The kernel gradient of model.conv_impl = 'split' (a
          custom VJP, traced after `apply` returns) keeps the default precision; 'xla' and
          'im2col' are TF32 throughout (their jaxprs checked).
  'bf16'  mixed precision: the forward and backward passes run on bfloat16 copies of the
          parameters, the fixed head and the normalised images (activations bfloat16, 8-bit
          mantissa); Flax's norms reduce their statistics in float32 and the running statistics
          stay float32; the logits are cast to float32 before the loss. The gradient comes back
          float32 (the transpose of the cast), so the optimizer updates float32 weights. bfloat16
          has float32's exponent range: no loss scaling is needed.

A wrapped model has the wrapped module's `init` (float32 variables, the same trees) and an `apply`
with its signature, so `train.Trainer` and `evaluate.Evaluator` use it as they use a module.
"""

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

PRECISIONS = ('fp32', 'tf32', 'bf16')

# The unit roundoff of the arithmetic of each precision on a GPU that has it (the tolerances of
# the tests of tests/test_precision.py): float32 2^-24, TF32 inputs 2^-11, bfloat16 2^-8.
UNIT_ROUNDOFF = {'fp32': 2.0**-24, 'tf32': 2.0**-11, 'bf16': 2.0**-8}


def _cast(tree: Any, dtype: jnp.dtype, only: jnp.dtype | None = None) -> Any:
  """Every floating leaf of `tree` (of dtype `only`, if given) cast to `dtype`."""

  def cast(x):
    floating = jnp.issubdtype(jnp.result_type(x), jnp.floating)
    return x.astype(dtype) if floating and (only is None or x.dtype == only) else x

  return jax.tree.map(cast, tree)


@dataclasses.dataclass(frozen=True)
class LowPrecision:
  """A Flax module `(x, train) -> logits` computed in precision 'tf32' or 'bf16' (`wrap`).

  Attributes:
    module: the Flax Linen module (its variables, init and function).
    precision: 'tf32' or 'bf16' (see the module docstring).
  """

  module: nn.Module
  precision: str

  def __post_init__(self):
    if self.precision not in ('tf32', 'bf16'):
      raise ValueError(f"precision {self.precision!r}: LowPrecision is for 'tf32' or 'bf16'")

  def init(self, *args, **kwargs) -> Any:
    """The wrapped module's `init`: float32 variables."""
    return self.module.init(*args, **kwargs)

  def apply(self, variables: Any, x: jax.Array, *args, **kwargs) -> Any:
    """The wrapped module's `apply` in this precision; float32 outputs (logits and any updated
    collections, e.g. batch_stats)."""
    if self.precision == 'tf32':
      with jax.default_matmul_precision('tensorfloat32'):
        return self.module.apply(variables, x, *args, **kwargs)
    low = {k: v if k == 'batch_stats' else _cast(v, jnp.bfloat16) for k, v in variables.items()}
    out = self.module.apply(low, _cast(x, jnp.bfloat16), *args, **kwargs)
    return _cast(out, jnp.float32, only=jnp.bfloat16)

  def clone(self, **kwargs) -> 'LowPrecision':
    """The same precision around `module.clone(**kwargs)`."""
    return dataclasses.replace(self, module=self.module.clone(**kwargs))


def wrap(model: nn.Module, precision: str) -> nn.Module | LowPrecision:
  """`model` computed in `precision` (one of PRECISIONS): 'fp32' returns `model` itself."""
  if precision not in PRECISIONS:
    raise ValueError(f'unknown precision {precision!r}; choose one of {", ".join(PRECISIONS)}')
  return model if precision == 'fp32' else LowPrecision(model, precision)
