"""Classic augmentation: identities are exact, shifts are shifts, randomness is per example and per key, and the
transforms are dm-pix's."""

import functools

import dm_pix
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax.synth import augmentations


def digits(batch: int = 4, seed: int = 0) -> np.ndarray:
  """float32 [B, 28, 28, 1] in [-1, 1]: background -1 with a random blob of ink in the middle 20x20 box."""
  rng = np.random.default_rng(seed)
  images = np.full((batch, 28, 28, 1), -1.0, np.float32)
  images[:, 4:24, 6:22] = rng.uniform(-1.0, 1.0, (batch, 20, 16, 1))
  return images


AUGMENTS = {
  "classic": augmentations.classic,
  "random_affine": augmentations.random_affine,
  "elastic": augmentations.elastic,
}


@pytest.mark.parametrize("name", AUGMENTS)
def test_output_keeps_shape_dtype_and_range(name):
  images = digits(8)
  out = AUGMENTS[name](jax.random.key(0), jnp.asarray(images))
  assert out.shape == images.shape and out.dtype == jnp.float32
  assert float(out.min()) >= -1.0 and float(out.max()) <= 1.0
  assert not np.allclose(out, images)  # it did something


@pytest.mark.slow
def test_identity_parameters_return_the_input():
  images = jnp.asarray(digits())
  key = jax.random.key(1)
  np.testing.assert_allclose(augmentations.classic(key, images, strength=0.0), images, atol=1e-6)
  np.testing.assert_allclose(augmentations.elastic(key, images, alpha=0.0), images, atol=1e-6)
  same = augmentations.random_affine(key, images, max_rotation_degrees=0.0, max_shift=0.0, scale_range=(1.0, 1.0))
  np.testing.assert_allclose(same, images, atol=1e-6)


def test_probability_zero_passes_every_example_through():
  images = jnp.asarray(digits())
  np.testing.assert_array_equal(augmentations.classic(jax.random.key(2), images, probability=0.0), images)


@pytest.mark.parametrize("shift", [(2, -1), (-3, 3), (0, 1)])
def test_integer_shift_is_a_roll_with_background_filled_in(shift):
  image = np.random.default_rng(0).uniform(-1.0, 1.0, (28, 28, 1)).astype(np.float32)  # ink up to the edges
  grid = augmentations.affine_grid(augmentations.identity_grid(28, 28), 0.0, 1.0, jnp.array(shift, jnp.float32))
  out = augmentations.warp(jnp.asarray(image), grid)
  expected = np.roll(image, shift, axis=(0, 1))
  rows, cols = np.arange(28)[:, None] - shift[0], np.arange(28)[None, :] - shift[1]
  wrapped = (rows < 0) | (rows >= 28) | (cols < 0) | (cols >= 28)  # what np.roll brought round from the far side
  expected[wrapped] = -1.0
  np.testing.assert_allclose(out, expected, atol=1e-6)


def test_quarter_turn_is_counter_clockwise_rot90():
  image = digits(1)[0]
  grid = augmentations.affine_grid(augmentations.identity_grid(28, 28), jnp.pi / 2, 1.0, jnp.zeros(2))
  out = augmentations.warp(jnp.asarray(image), grid)
  np.testing.assert_allclose(out, np.rot90(image, k=1, axes=(0, 1)), atol=1e-5)


def ink_to_the_edges(batch: int = 2) -> np.ndarray:
  """float32 [B, 28, 28, 1] uniform in [-1, 1]: the border handling shows (dm-pix reads background past the
  outermost pixel centres, where scipy-style interpolation would fade over half a pixel)."""
  return np.random.default_rng(1).uniform(-1.0, 1.0, (batch, 28, 28, 1)).astype(np.float32)


@pytest.mark.slow
def test_affine_maps_are_dm_pix_rotate_and_affine_transform():
  image = jnp.asarray(ink_to_the_edges(1)[0])
  grid = augmentations.affine_grid(augmentations.identity_grid(28, 28), 0.3, 1.0, jnp.zeros(2))
  expected = dm_pix.rotate(image, 0.3, mode="constant", cval=-1.0)
  np.testing.assert_allclose(augmentations.warp(image, grid), expected, atol=1e-5)
  # random_affine with every range collapsed: a shrink by 0.8 about the centre (the border reads outside).
  images = jnp.asarray(ink_to_the_edges())
  out = augmentations.random_affine(jax.random.key(8), images, 0.0, 0.0, scale_range=(0.8, 0.8))
  centre = 13.5 - 13.5 / 0.8
  expected = jax.vmap(
    lambda image: dm_pix.affine_transform(
      image, jnp.array([1 / 0.8, 1 / 0.8, 1.0]), offset=jnp.array([centre, centre, 0.0]), mode="constant", cval=-1.0
    )
  )(images)
  np.testing.assert_allclose(out, expected, atol=1e-5)


@pytest.mark.slow
def test_elastic_is_dm_pix_elastic_deformation_with_one_key_per_example():
  images = jnp.asarray(ink_to_the_edges(3))
  out = augmentations.elastic(jax.random.key(9), images)
  keys = jax.random.split(jax.random.key(9), 3)
  expected = jax.vmap(lambda k, image: dm_pix.elastic_deformation(k, image, 34.0, 4.0, mode="constant", cval=-1.0))(
    keys, images
  )
  np.testing.assert_allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("name", [pytest.param("classic", marks=pytest.mark.slow), "random_affine", "elastic"])
def test_same_key_same_output_and_each_example_gets_its_own_transform(name):
  augment = AUGMENTS[name]
  images = jnp.asarray(np.repeat(digits(1), 6, axis=0))  # six copies of one image
  first, again = augment(jax.random.key(3), images), augment(jax.random.key(3), images)
  np.testing.assert_array_equal(first, again)
  assert not np.allclose(first, augment(jax.random.key(4), images))
  flat = np.asarray(first).reshape(6, -1)
  for i in range(6):
    for j in range(i + 1, 6):
      assert np.abs(flat[i] - flat[j]).max() > 1e-3, (i, j)


@pytest.mark.slow
def test_jits_with_a_bound_strength_and_matches_eager():
  augment = functools.partial(augmentations.classic, strength=0.5, probability=0.8)
  images, key = jnp.asarray(digits(8)), jax.random.key(5)
  np.testing.assert_allclose(jax.jit(augment)(key, images), augment(key, images), atol=1e-5)


@pytest.mark.parametrize("name", AUGMENTS)
def test_background_stays_background(name):
  blank = jnp.full((4, 28, 28, 1), -1.0)
  np.testing.assert_allclose(AUGMENTS[name](jax.random.key(6), blank), blank, atol=1e-6)


@pytest.mark.slow
def test_elastic_displacement_has_simards_magnitude():
  # alpha 34, sigma 4 on 28x28: about 1.4 px RMS in the interior (zero padding lowers it near the edges).
  fields = jax.vmap(lambda k: augmentations.elastic_displacement(k, 28, 28, 34.0, 4.0))(
    jax.random.split(jax.random.key(7), 64)
  )
  rms = float(jnp.sqrt(jnp.mean(fields[:, :, 8:20, 8:20] ** 2)))
  assert 0.9 < rms < 2.0, rms
