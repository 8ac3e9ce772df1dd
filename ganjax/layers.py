"""Stride-2 5x5 'SAME' convolutions computed exactly as stride-1 3x3 convolutions (the 'phase' conv_impl).

Why: XLA:CPU runs stride-1 convolutions through its fast YNNPACK kernels, but the *dilated* convolutions
that autodiff makes of strided and transposed convolutions (their weight and input gradients, and the
gradient penalty's double backward) run in slow generic loop code. Rewriting each stride-2 layer as a
stride-1 convolution between a space-to-depth and a depth-to-space reshuffle keeps every convolution of the
forward *and* backward passes stride-1 and undilated.

The layers hold the same 5x5 kernel parameters, under the same names and shapes, with the same
initialisation as `nn.Conv` / `nn.ConvTranspose`, and compute the same function up to float rounding
(tests/test_layers.py), so checkpoints move freely between implementations.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

KERNEL_SIZE = 5
_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def space_to_depth(x: jax.Array) -> jax.Array:
  """[B, H, W, C] -> [B, H/2, W/2, 4C]; channel order (row phase, column phase, channel)."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // 2, w // 2, 4 * c)


def depth_to_space(x: jax.Array) -> jax.Array:
  """[B, H, W, 4C] -> [B, 2H, 2W, C]; the inverse of `space_to_depth`."""
  b, h, w, c4 = x.shape
  c = c4 // 4
  x = x.reshape(b, h, w, 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, 2 * h, 2 * w, c)


def _conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return lax.conv_general_dilated(x, kernel, (1, 1), ((1, 1), (1, 1)), dimension_numbers=_DIMENSIONS)


def strided_conv_as_stride1(kernel: jax.Array) -> jax.Array:
  """5x5 stride-2 'SAME' conv kernel [5, 5, C, F] -> 3x3 kernel [3, 3, 4C, F] acting on space_to_depth(x).

  For even H, 'SAME' pads one row before and two after, so out[i] = sum_k x[2i + k - 1] w[k]. With
  x[2m + r] = s2d(x)[m, r] and d = m - i this is out[i] = sum_{d in -1..1, r in 0..1} s2d(x)[i + d, r]
  w[2(d + 1) + r - 1]: a 3x3 stride-1 conv whose taps are w padded by one zero tap in front.
  """
  _, _, c, f = kernel.shape
  padded = jnp.pad(kernel, ((1, 0), (1, 0), (0, 0), (0, 0)))  # [6, 6, C, F], tap t = w[t - 1]
  taps = padded.reshape(3, 2, 3, 2, c, f).transpose(0, 2, 1, 3, 4, 5)  # [dy, dx, ry, rx, C, F]
  return taps.reshape(3, 3, 4 * c, f)


def transposed_conv_as_stride1(kernel: jax.Array) -> jax.Array:
  """`nn.ConvTranspose` 5x5 stride-2 'SAME' kernel [5, 5, C, F] -> 3x3 kernel [3, 3, C, 4F] (sub-pixel conv).

  lax.conv_transpose (flax's, no kernel flip) pads the 2x-dilated input by 3 in front for k=5, s=2, so
  y[2p + s] = sum_{j in -1..1} x[p + j] w[2j + 3 - s]: output phase s of every pixel is a 3x3 stride-1 conv
  of x, and depth_to_space interleaves the four phases. Taps: w padded by one zero tap at the end.
  """
  _, _, c, f = kernel.shape
  padded = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))  # [6, 6, C, F], tap t = 2(j + 1) + (1 - s)
  taps = padded.reshape(3, 2, 3, 2, c, f)[:, ::-1, :, ::-1]  # [jy, sy, jx, sx, C, F]
  taps = taps.transpose(0, 2, 4, 1, 3, 5)  # [jy, jx, C, sy, sx, F]
  return taps.reshape(3, 3, c, 4 * f)


def _strided_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return lax.conv_general_dilated(x, kernel, (2, 2), "SAME", dimension_numbers=_DIMENSIONS)


def _phase_strided_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return _conv3x3(space_to_depth(x), strided_conv_as_stride1(kernel))


def _conv_transpose(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return lax.conv_transpose(x, kernel, (2, 2), "SAME", dimension_numbers=_DIMENSIONS)


def _phase_conv_transpose(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return depth_to_space(_conv3x3(x, transposed_conv_as_stride1(kernel)))


@jax.custom_vjp
def strided_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """A 5x5 stride-2 'SAME' conv, each pass on its fastest XLA:CPU form (tests/test_layers.py).

  forward: the strided conv itself; input gradient: its transpose as a sub-pixel stride-1 conv (the plain
  one is dilated); weight gradient: XLA's own (a fast window-dilated conv).
  """
  return _strided_conv(x, kernel)


def _strided_conv_forward(x, kernel):
  return _strided_conv(x, kernel), (x, kernel)


def _strided_conv_backward(residuals, cotangent):
  x, kernel = residuals
  # The input gradient of conv(., K) is nn.ConvTranspose with the kernel flipped and in/out swapped.
  transposed_kernel = jnp.swapaxes(kernel[::-1, ::-1], 2, 3)
  d_x = _phase_conv_transpose(cotangent, transposed_kernel)
  _, kernel_vjp = jax.vjp(lambda k: _strided_conv(x, k), kernel)
  return d_x, kernel_vjp(cotangent)[0]


strided_conv.defvjp(_strided_conv_forward, _strided_conv_backward)


@jax.custom_vjp
def conv_transpose(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """nn.ConvTranspose's 5x5 stride-2 'SAME' transposed conv, each pass on its fastest XLA:CPU form.

  forward and weight gradient: sub-pixel stride-1 conv; input gradient: XLA's own (a strided conv).
  """
  return _phase_conv_transpose(x, kernel)


def _conv_transpose_forward(x, kernel):
  return _phase_conv_transpose(x, kernel), (x, kernel)


def _conv_transpose_backward(residuals, cotangent):
  x, kernel = residuals
  _, x_vjp = jax.vjp(lambda x: _conv_transpose(x, kernel), x)
  _, kernel_vjp = jax.vjp(lambda k: _phase_conv_transpose(x, k), kernel)
  return x_vjp(cotangent)[0], kernel_vjp(cotangent)[0]


conv_transpose.defvjp(_conv_transpose_forward, _conv_transpose_backward)


def _check_even(x: jax.Array, layer: str) -> None:
  if x.shape[1] % 2 or x.shape[2] % 2:
    raise ValueError(f"{layer} (conv_impl phase/hybrid) needs even height and width, got {x.shape[1:3]}")


class _Stride2Layer(nn.Module):
  """A 5x5 stride-2 'SAME' layer with nn.Conv's parameters; subclasses say how the kernel is applied."""

  features: int
  use_bias: bool = True
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
  bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()
  hybrid: bool = False  # each pass (forward, input and weight gradient) on its fastest form

  def apply_kernel(self, x: jax.Array, kernel: jax.Array) -> jax.Array:
    raise NotImplementedError

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", self.kernel_init, (KERNEL_SIZE, KERNEL_SIZE, x.shape[-1], self.features))
    y = self.apply_kernel(x, kernel)
    if self.use_bias:
      y = y + self.param("bias", self.bias_init, (self.features,))
    return y


class PhaseConv(_Stride2Layer):
  """nn.Conv(features, (5, 5), (2, 2), 'SAME') computed as space-to-depth + a stride-1 3x3 conv."""

  def apply_kernel(self, x: jax.Array, kernel: jax.Array) -> jax.Array:
    _check_even(x, "PhaseConv")
    return strided_conv(x, kernel) if self.hybrid else _phase_strided_conv(x, kernel)


class PhaseConvTranspose(_Stride2Layer):
  """nn.ConvTranspose(features, (5, 5), (2, 2), 'SAME') computed as a stride-1 3x3 conv + depth-to-space."""

  def apply_kernel(self, x: jax.Array, kernel: jax.Array) -> jax.Array:
    return conv_transpose(x, kernel) if self.hybrid else _phase_conv_transpose(x, kernel)


def stride2_conv(features: int, conv_impl: str, **kwargs) -> nn.Module:
  """nn.Conv(features, (5, 5), (2, 2), 'SAME', **kwargs) computed the way `conv_impl` says."""
  if conv_impl == "plain":
    return nn.Conv(features, (KERNEL_SIZE, KERNEL_SIZE), (2, 2), "SAME", **kwargs)
  return PhaseConv(features, hybrid=conv_impl == "hybrid", **kwargs)


def stride2_conv_transpose(features: int, conv_impl: str, **kwargs) -> nn.Module:
  """nn.ConvTranspose(features, (5, 5), (2, 2), 'SAME', **kwargs) computed the way `conv_impl` says."""
  if conv_impl == "plain":
    return nn.ConvTranspose(features, (KERNEL_SIZE, KERNEL_SIZE), (2, 2), "SAME", **kwargs)
  return PhaseConvTranspose(features, hybrid=conv_impl == "hybrid", **kwargs)
