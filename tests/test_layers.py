"""The 'phase' layers compute exactly what nn.Conv / nn.ConvTranspose compute, with the same parameters."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import layers

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


def assert_same_function_and_gradients(reference: nn.Module, phase: nn.Module, x: jax.Array) -> None:
  params = reference.init(jax.random.key(1), x)
  assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, phase.init(jax.random.key(1), x))
  # Random (not initial, zero) biases, so a bias that is dropped or misplaced shows.
  params = jax.tree.map(lambda p: jax.random.normal(jax.random.key(2), p.shape), params)
  np.testing.assert_allclose(phase.apply(params, x), reference.apply(params, x), **TOLERANCE)
  cotangent = jax.random.normal(jax.random.key(3), reference.apply(params, x).shape)

  def gradients(module):
    return jax.grad(lambda p, x: jnp.sum(module.apply(p, x) * cotangent), argnums=(0, 1))(params, x)

  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOLERANCE), gradients(phase), gradients(reference))


@pytest.mark.parametrize("hybrid", [False, True])
@pytest.mark.parametrize("size, channels, features", [(28, 1, 6), pytest.param(14, 5, 3, marks=pytest.mark.slow)])
def test_phase_conv_is_a_stride2_same_conv(size, channels, features, hybrid):
  x = jax.random.normal(jax.random.key(0), (2, size, size, channels))
  assert_same_function_and_gradients(
    nn.Conv(features, (5, 5), (2, 2), "SAME"), layers.PhaseConv(features, hybrid=hybrid), x
  )


@pytest.mark.parametrize("hybrid", [False, True])
@pytest.mark.parametrize("size, channels, features", [(7, 6, 4), pytest.param(14, 3, 1, marks=pytest.mark.slow)])
def test_phase_conv_transpose_is_a_stride2_same_conv_transpose(size, channels, features, hybrid):
  x = jax.random.normal(jax.random.key(0), (2, size, size, channels))
  assert_same_function_and_gradients(
    nn.ConvTranspose(features, (5, 5), (2, 2), "SAME"), layers.PhaseConvTranspose(features, hybrid=hybrid), x
  )


@pytest.mark.parametrize("hybrid", [False, True])
def test_phase_conv_second_derivatives_match_for_the_gradient_penalty(hybrid):
  # WGAN-GP differentiates the critic's input gradient with respect to its parameters.
  x = jax.random.normal(jax.random.key(0), (2, 14, 14, 3))
  reference, phase = nn.Conv(4, (5, 5), (2, 2), "SAME"), layers.PhaseConv(4, hybrid=hybrid)
  params = reference.init(jax.random.key(1), x)

  def penalty(module):
    def squared_input_gradient_norm(p):
      d_x = jax.grad(lambda x: jnp.sum(jnp.tanh(module.apply(p, x))))(x)
      return jnp.sum(d_x**2)

    return jax.grad(squared_input_gradient_norm)(params)

  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOLERANCE), penalty(phase), penalty(reference))


def test_space_to_depth_and_depth_to_space_are_inverse_and_keep_pixel_phases():
  x = jnp.arange(2 * 4 * 6 * 3, dtype=jnp.float32).reshape(2, 4, 6, 3)
  packed = layers.space_to_depth(x)
  assert packed.shape == (2, 2, 3, 12)
  # Channel block (row phase 1, column phase 0) of packed pixel (1, 2) is input pixel (3, 4).
  np.testing.assert_array_equal(packed[:, 1, 2, 2 * 3 : 3 * 3], x[:, 3, 4])
  np.testing.assert_array_equal(layers.depth_to_space(packed), x)


def test_phase_conv_rejects_odd_sizes_by_name():
  x = jnp.zeros((1, 7, 7, 2))
  with pytest.raises(ValueError, match=r"PhaseConv .* even height and width, got \(7, 7\)"):
    layers.PhaseConv(4).init(jax.random.key(0), x)
