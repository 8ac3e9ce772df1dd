"""Deskewing (the classic MNIST preprocessing, as in LeCun et al. 1998's deslanted inputs): each digit is
sheared along its rows so that its principal axis stands upright, and moved so that its centre of mass is the
image's centre. Neighbours on deskewed pixels share a digit far more often than on raw pixels, which is what
label spreading's graph needs (ganjax/ssl/pseudo_labels.py)."""

import jax
import jax.numpy as jnp
import numpy as np

_EPSILON = 1e-6  # keeps a blank image's moments finite (it stays blank)


def _deskew_one(image: jax.Array) -> jax.Array:
  height, width = image.shape
  rows, cols = jnp.meshgrid(jnp.arange(height, dtype=jnp.float32), jnp.arange(width, dtype=jnp.float32), indexing="ij")
  total = image.sum() + _EPSILON
  mean_row, mean_col = (rows * image).sum() / total, (cols * image).sum() / total
  row_variance = (jnp.square(rows - mean_row) * image).sum() / total
  shear = ((rows - mean_row) * (cols - mean_col) * image).sum() / total / (row_variance + _EPSILON)
  centre_row, centre_col = height / 2.0, width / 2.0
  # output pixel (r, c) reads input (r + mean_row - centre_row, c + shear (r - centre_row) + mean_col - centre_col)
  source_rows = rows + (mean_row - centre_row)
  source_cols = cols + shear * (rows - centre_row) + (mean_col - centre_col)
  return jax.scipy.ndimage.map_coordinates(image, [source_rows, source_cols], order=1, mode="constant", cval=0.0)


_deskew_batch = jax.jit(jax.vmap(_deskew_one))


def deskew(images: np.ndarray, block: int = 5000) -> np.ndarray:
  """float32 [N, H, W]: the images [N, H, W] or [N, H, W, 1] (any scale; ink positive) deskewed, in blocks."""
  images = np.asarray(images, np.float32).reshape(len(images), *np.shape(images)[1:3])
  parts = [np.asarray(_deskew_batch(jnp.asarray(images[i : i + block]))) for i in range(0, len(images), block)]
  return np.concatenate(parts) if parts else images
