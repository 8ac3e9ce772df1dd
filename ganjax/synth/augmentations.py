"""Classic MNIST data augmentation in JAX: random affine maps and elastic deformations (Simard et al. 2003).

Images are float [B, H, W, C] in [-1, 1] with background -1. Every function is jit-able and draws a different
transform for every example of the batch from one explicit key, so `augment(key, images) -> images` can run
inside a jitted training step (ganjax.eval.classifiers.train_classifier's `augment` argument):

  augment = functools.partial(augmentations.classic, strength=0.5)

A transform is a sampling grid: for each output pixel, the (row, col) of the input it reads. The grid is read
with dm-pix's bilinear interpolation (what dm_pix.affine_transform and elastic_deformation do with
mode="constant": points outside [0, H-1] x [0, W-1] read background). The grids are built here, not by those two
functions: each of them resamples, so chaining them would blur strokes twice where `classic` composes the affine
map and the elastic field into one grid and resamples once; and on CPU they are tens of times slower (XLA:CPU
convolutions for the field's blur, interpolation over the channel axis too). The field is dm-pix's own, same
draw and same kernel, as two small matrix products; the tests check both transforms against dm-pix's.
"""

import dm_pix
import jax
import jax.numpy as jnp
import numpy as np

BACKGROUND = -1.0  # the value of an empty pixel: what is shifted in from outside the image

# Defaults, for 28x28 digits.
MAX_ROTATION_DEGREES = 15.0  # beyond ~20 degrees, 6s and 9s (and 2s and 5s) start to look alike
MAX_SHIFT = 3.0  # pixels; MNIST digits sit in a 20x20 box centred in 28x28: 3-4 px keeps them on the canvas
SCALE_RANGE = (0.9, 1.1)  # mild: the digits' size is normalised in MNIST
# Simard et al.'s MNIST values. A uniform(-1, 1) field smoothed by a unit-mass Gaussian of sigma 4 px has a
# std of about 0.58 / (2 sqrt(pi) 4) = 0.04, so alpha 34 moves pixels by ~1.4 px RMS per axis, smoothly over ~4 px:
# strokes wobble and thicken/thin locally; the digit stays the same digit.
ELASTIC_ALPHA = 34.0
ELASTIC_SIGMA = 4.0


def identity_grid(height: int, width: int) -> jax.Array:
  """float32 [2, H, W]: each output pixel reads its own position."""
  return jnp.stack(jnp.meshgrid(jnp.arange(height), jnp.arange(width), indexing="ij")).astype(jnp.float32)


def affine_grid(grid: jax.Array, angle: jax.Array, scale: jax.Array, shift: jax.Array) -> jax.Array:
  """Where to read so the image is rotated by `angle` (radians, counter-clockwise on screen), scaled by
  `scale` about its centre, then moved by `shift` (rows, cols; positive = down, right).

  grid is [2, H, W] (rows, cols of the output points); the inverse map sends an output point p to the input
  point centre + R(-angle) (p - centre - shift) / scale (dm_pix.rotate's convention for the angle).
  """
  height, width = grid.shape[1:]
  centre = jnp.array([(height - 1) / 2, (width - 1) / 2], jnp.float32)[:, None, None]
  rows, cols = (grid - centre - jnp.asarray(shift, jnp.float32)[:, None, None]) / scale
  cos, sin = jnp.cos(angle), jnp.sin(angle)
  # Rows grow downwards, so a counter-clockwise turn on screen reads from R(-angle) in (x=col, y=-row).
  source = jnp.stack([cos * rows + sin * cols, -sin * rows + cos * cols])
  return source + centre


def _gaussian_matrix(size: int, sigma: float) -> np.ndarray:
  """[size, size] matrix of dm_pix.gaussian_blur's 1-D kernel with zero padding (static: built at trace time).

  Same radius (dm-pix's rule: about 3 sigma) and unit mass as dm-pix, so the blur is dm-pix's up to rounding.
  """
  radius = int((((sigma - 0.8) / 0.3 + 1) / 0.5 + 1) / 2)
  offsets = np.arange(size)[:, None] - np.arange(size)[None, :]
  kernel_mass = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2).sum()
  return (np.exp(-0.5 * (offsets / sigma) ** 2) * (np.abs(offsets) <= radius) / kernel_mass).astype(np.float32)


def elastic_displacement(key: jax.Array, height: int, width: int, alpha, sigma: float) -> jax.Array:
  """float32 [2, H, W]: Simard et al.'s field, alpha * Gaussian_sigma * uniform(-1, 1), per axis.

  The field dm_pix.elastic_deformation draws from `key` (it returns only the deformed image, so it is redrawn
  here to compose it with an affine map). The blur is separable: two small matrix products, not convolutions.
  """
  noise = jnp.stack([jax.random.uniform(k, (height, width)) * 2 - 1 for k in jax.random.split(key)])
  blur_rows, blur_cols = _gaussian_matrix(height, sigma), _gaussian_matrix(width, sigma)
  return alpha * jnp.einsum("hi,cij,wj->chw", blur_rows, noise, blur_cols)


def warp(image: jax.Array, grid: jax.Array) -> jax.Array:
  """One image [H, W, C] read at `grid` [2, H, W]: dm-pix's bilinear interpolation, background outside."""
  # A loop over the (static) channels, as dm-pix does: vmapping over the last axis is much slower on CPU.
  planes = [
    dm_pix.flat_nd_linear_interpolate_constant(image[..., c], grid, cval=BACKGROUND) for c in range(image.shape[-1])
  ]
  # Bilinear weights are a convex combination, so [-1, 1] is kept up to rounding; the clip removes that.
  return jnp.clip(jnp.stack(planes, axis=-1), -1.0, 1.0).astype(image.dtype)


def _affine_parameters(key: jax.Array, batch: int, max_rotation_degrees, max_shift, scale_range):
  """Per-example (angle [B], scale [B], shift [B, 2]), uniform in the given ranges."""
  angle_key, scale_key, shift_key = jax.random.split(key, 3)
  max_angle = jnp.deg2rad(max_rotation_degrees)
  angle = jax.random.uniform(angle_key, (batch,), jnp.float32, -1.0, 1.0) * max_angle
  scale = jax.random.uniform(scale_key, (batch,), jnp.float32, scale_range[0], scale_range[1])
  shift = jax.random.uniform(shift_key, (batch, 2), jnp.float32, -1.0, 1.0) * max_shift
  return angle, scale, shift


def random_affine(
  key: jax.Array,
  images: jax.Array,
  max_rotation_degrees: float = MAX_ROTATION_DEGREES,
  max_shift: float = MAX_SHIFT,
  scale_range: tuple[float, float] = SCALE_RANGE,
) -> jax.Array:
  """Each example rotated, scaled and shifted by its own uniform draw from the given ranges."""
  batch, height, width = images.shape[:3]
  angle, scale, shift = _affine_parameters(key, batch, max_rotation_degrees, max_shift, scale_range)
  grids = jax.vmap(affine_grid, in_axes=(None, 0, 0, 0))(identity_grid(height, width), angle, scale, shift)
  return jax.vmap(warp)(images, grids)


def elastic(key: jax.Array, images: jax.Array, alpha: float = ELASTIC_ALPHA, sigma: float = ELASTIC_SIGMA) -> jax.Array:
  """Each example deformed by its own elastic displacement field: dm_pix.elastic_deformation(mode="constant")
  with key jax.random.split(key, B)[b] for example b."""
  batch, height, width = images.shape[:3]
  keys = jax.random.split(key, batch)
  fields = jax.vmap(lambda k: elastic_displacement(k, height, width, alpha, sigma))(keys)
  return jax.vmap(warp)(images, identity_grid(height, width) + fields)


def classic(
  key: jax.Array,
  images: jax.Array,
  strength: float = 1.0,
  probability: float = 1.0,
  sigma: float = ELASTIC_SIGMA,
) -> jax.Array:
  """A random affine map then an elastic deformation, resampled once: the usual MNIST recipe.

  strength scales every magnitude (rotation, shift, scale deviation, elastic alpha) from the defaults above:
  0 is the identity. Each example is transformed with `probability`, else passed through untouched (some
  clean images keep the classifier anchored to the true data distribution).
  """
  batch, height, width = images.shape[:3]
  affine_key, elastic_key, apply_key = jax.random.split(key, 3)
  scale_range = (1.0 + strength * (SCALE_RANGE[0] - 1.0), 1.0 + strength * (SCALE_RANGE[1] - 1.0))
  angle, scale, shift = _affine_parameters(
    affine_key, batch, strength * MAX_ROTATION_DEGREES, strength * MAX_SHIFT, scale_range
  )
  fields = jax.vmap(lambda k: elastic_displacement(k, height, width, strength * ELASTIC_ALPHA, sigma))(
    jax.random.split(elastic_key, batch)
  )
  # Output point p reads affine^-1(p + field(p)): a field drawn in the output frame is as random as one drawn
  # in the digit's frame, and needs no second interpolation.
  grids = jax.vmap(affine_grid)(identity_grid(height, width) + fields, angle, scale, shift)
  augmented = jax.vmap(warp)(images, grids)
  apply = jax.random.bernoulli(apply_key, probability, (batch,))
  return jnp.where(apply[:, None, None, None], augmented, images)
