"""Bias-free convolutions of the scale-invariant models, with a choice of implementation.

Every implementation is a Flax module `Conv(features, kernel_size, strides, kernel_init)` with
'SAME' padding, no bias and one parameter 'kernel' of shape [kh, kw, in, features] (HWIO), so the
models, their checkpoints and their scale-invariance tests do not depend on the choice.
`make_conv(impl)` returns the class for `config.model.conv_impl`:

  'xla'    XLA's convolution and its autodiff (the GPU/TPU choice).
  'split'  the same forward pass and input gradient, but the kernel gradient is a sum of
           convolutions over chunks of `SPLIT_IMAGES` images (the CPU choice; `split_conv`).
  'im2col' the patches of every kernel tap (kh * kw shifted, strided slices of the padded input,
           concatenated along the channels) times the kernel as ONE matmul (`im2col_conv`), and
           the autodiff of those ops. The choice for many trials vmapped on a GPU: vmap turns a
           per-trial convolution into a grouped convolution (feature_group_count = T, slow in
           cuDNN and XLA:CPU) but a per-trial matmul into a batched GEMM (dot_general with the
           trial axis as batch dimension). Costs kh * kw x the input's memory for the patches.

On CPU, compile the training step with `cpu_compiler_options()` (jax.jit(...,
compiler_options=...)), whatever the impl: XLA:CPU (jax 0.10) hands most convolutions to YNNPACK,
which runs each of them on ONE thread; without it they go to Eigen's multi-threaded convolution.

Measured on the project's 2-core Xeon (jax 0.10.2, SI PreResNet32, B = 128, one SGD step,
benchmarks/models.py): XLA:CPU computes a kernel gradient as ONE convolution whose window is the
whole [Ho, Wo] output gradient and whose contraction runs over all B images; for CIFAR-sized
layers that ran at 10-40% of the speed of the forward conv of the same FLOPs, ~60% of a step.
Chunks of 16 images keep each conv's operands in cache and give the thread pool independent work.
Images/s of that step (2 cores, best of 3 interleaved rounds; two runs, load 1.3-1.9): XLA's
defaults 47-80; with `cpu_compiler_options()` 'xla' 120-138, 'split' 137-150; PyTorch 2.13 CPU
207-265 (channels-last), so 'split' is ~0.6x PyTorch.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

CONV_IMPLS = ('xla', 'split', 'im2col')

# Images per chunk of the kernel gradient of impl 'split' (PreResNet32 step on 2 cores with
# cpu_compiler_options: 8 and 16 images within noise, 32: -4%, one chunk of 128: -10%).
SPLIT_IMAGES = 16


def cpu_compiler_options(platform: str | None = None) -> dict[str, str]:
  """XLA compiler options for jitting conv nets on `platform` (default: the default backend's):
  on CPU, no YNNPACK.

  Pass as `jax.jit(f, compiler_options=cpu_compiler_options())`; empty on other platforms.
  An empty YNN fusion list keeps XLA:CPU from routing convolutions (and dots) to YNNPACK's
  single-threaded kernels, so they run on Eigen's thread pool (measured: a PreResNet32 step
  1.7-2.6x faster on 2 cores; the results agree to fp32 rounding).
  """
  if (platform or jax.default_backend()) != 'cpu':
    return {}
  return {'xla_cpu_experimental_ynn_fusion_type': ''}


def make_conv(impl: str = 'xla') -> type[nn.Module]:
  """The conv module class of implementation `impl` (one of `CONV_IMPLS`)."""
  if impl == 'xla':
    return XlaConv
  if impl == 'split':
    return SplitConv
  if impl == 'im2col':
    return Im2colConv
  raise ValueError(f'unknown conv implementation {impl!r}; choose one of {", ".join(CONV_IMPLS)}')


def xla_conv(x: jax.Array, kernel: jax.Array, strides: int) -> jax.Array:
  """'SAME' conv of x [B, H, W, C] with kernel [kh, kw, C, O]: [B, ceil(H / s), ceil(W / s), O]."""
  return jax.lax.conv_general_dilated(
      x, kernel, (strides, strides), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC')
  )


def same_padding(size: int, window: int, strides: int) -> tuple[int, int]:
  """(low, high) zero padding of XLA's 'SAME' along one spatial dimension of `size` pixels."""
  out = -(-size // strides)
  total = max((out - 1) * strides + window - size, 0)
  return total // 2, total - total // 2


def im2col_conv(x: jax.Array, kernel: jax.Array, strides: int) -> jax.Array:
  """`xla_conv` as patches times kernel: x [B, H, W, C], kernel [kh, kw, C, O] ->
  [B, ceil(H / s), ceil(W / s), O], the same sums of kh * kw * C products (in another order).

  The patches [B, Ho, Wo, kh * kw * C] hold, tap (i, j) after tap, the input pixels that tap
  multiplies: the slice of the 'SAME'-padded input starting at (i, j) with step s. Their
  channel order (i, j, c) is the row order of kernel.reshape(kh * kw * C, O).
  """
  kh, kw, cin, cout = kernel.shape
  batch, height, width, _ = x.shape
  pads = [same_padding(n, k, strides) for n, k in ((height, kh), (width, kw))]
  padded = jnp.pad(x, ((0, 0), *pads, (0, 0)))
  out_h, out_w = -(-height // strides), -(-width // strides)
  taps = [
      jax.lax.slice(
          padded,
          (0, i, j, 0),
          (batch, i + (out_h - 1) * strides + 1, j + (out_w - 1) * strides + 1, cin),
          (1, strides, strides, 1),
      )
      for i in range(kh)
      for j in range(kw)
  ]
  patches = taps[0] if len(taps) == 1 else jnp.concatenate(taps, axis=-1)
  return jnp.dot(patches, kernel.reshape(kh * kw * cin, cout))


def _kernel_grad_one(
    x: jax.Array, dy: jax.Array, window: tuple[int, int], strides: int
) -> jax.Array:
  """Kernel gradient [C, kh, kw, O] of one chunk, x [C, H, W, b] and dy [Ho, Wo, b, O].

  A forward convolution with the chunk's images as contraction ("feature") dimension: the image is
  x, the window is dy dilated by the stride, the output spatial positions are the kernel taps.
  """
  pads = tuple(same_padding(n, k, strides) for n, k in zip(x.shape[1:3], window))
  out = jax.lax.conv_general_dilated(
      x,
      dy,
      (1, 1),
      pads,
      rhs_dilation=(strides, strides),
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
  )
  # 'SAME' may pad more rows than a stride-s window ever reads: drop the taps beyond the kernel.
  return out[:, : window[0], : window[1]]


def kernel_grad_chunked(
    x: jax.Array, dy: jax.Array, window: tuple[int, int], strides: int, images: int = SPLIT_IMAGES
) -> jax.Array:
  """Gradient w.r.t. k of sum(dy * xla_conv(x, k, strides)), summed over chunks of `images`.

  Args:
    x: conv input [B, H, W, C].
    dy: gradient of the conv output [B, ceil(H / s), ceil(W / s), O].
    window: (kh, kw) of the kernel.
    strides: the conv's stride s.
    images: images per chunk; the last chunk holds the remaining B mod `images`.

  Returns:
    [kh, kw, C, O], equal to XLA's kernel gradient up to fp32 summation order.
  """
  batch, height, width, cin = x.shape
  _, out_h, out_w, cout = dy.shape
  full = batch // images * images
  parts = []
  if full:
    chunks = full // images
    # One transpose each into chunk-major layouts, so every chunk is a leading-axis slice.
    xt = x[:full].reshape(chunks, images, height, width, cin).transpose(0, 4, 2, 3, 1)
    dyt = dy[:full].reshape(chunks, images, out_h, out_w, cout).transpose(0, 2, 3, 1, 4)
    parts += [_kernel_grad_one(xt[g], dyt[g], window, strides) for g in range(chunks)]
  if full < batch:
    parts.append(
        _kernel_grad_one(
            x[full:].transpose(3, 1, 2, 0), dy[full:].transpose(1, 2, 0, 3), window, strides
        )
    )
  return functools.reduce(jnp.add, parts).transpose(1, 2, 0, 3)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def split_conv(x: jax.Array, kernel: jax.Array, strides: int) -> jax.Array:
  """`xla_conv` whose kernel gradient is `kernel_grad_chunked` (same function and gradients)."""
  return xla_conv(x, kernel, strides)


def _split_conv_fwd(x, kernel, strides):
  return xla_conv(x, kernel, strides), (x, kernel)


def _split_conv_bwd(strides, residuals, dy):
  x, kernel = residuals
  dx = jax.vjp(lambda x: xla_conv(x, kernel, strides), x)[1](dy)[0]
  return dx, kernel_grad_chunked(x, dy, kernel.shape[:2], strides).astype(kernel.dtype)


split_conv.defvjp(_split_conv_fwd, _split_conv_bwd)


class XlaConv(nn.Module):
  """`nn.Conv` with 'SAME' padding and no bias: XLA's convolution (the GPU/TPU choice).

  Input float [B, H, W, C]; output [B, ceil(H / s), ceil(W / s), features].
  """

  features: int
  kernel_size: tuple[int, int] = (3, 3)
  strides: int = 1
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()

  def conv(self, x: jax.Array, kernel: jax.Array) -> jax.Array:
    return xla_conv(x, kernel, self.strides)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param('kernel', self.kernel_init, (*self.kernel_size, x.shape[-1], self.features))
    return self.conv(x, kernel)


class SplitConv(XlaConv):
  """`XlaConv` with the chunked kernel gradient of `split_conv` (the CPU choice)."""

  def conv(self, x: jax.Array, kernel: jax.Array) -> jax.Array:
    return split_conv(x, kernel, self.strides)


class Im2colConv(XlaConv):
  """`XlaConv` computed as one matmul of patches (`im2col_conv`): batched GEMMs under vmap."""

  def conv(self, x: jax.Array, kernel: jax.Array) -> jax.Array:
    return im2col_conv(x, kernel, self.strides)
