"""Image conversions between MNIST's uint8 and the GAN's float range, and sample grids as PNG files."""

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import PIL.Image

from ganjax import files


def to_float_images(images: jax.Array) -> jax.Array:
  """uint8 [0, 255] -> float32 [-1, 1] (the generator's tanh range)."""
  return images.astype(jnp.float32) / 127.5 - 1.0


def to_uint8(images: np.ndarray) -> np.ndarray:
  """float [-1, 1] -> uint8 [0, 255]."""
  return np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def grid(images: np.ndarray, padding: int = 2) -> np.ndarray:
  """[N, H, W, 1] uint8 (N a square) -> one [rows*(H+p)+p, cols*(W+p)+p] uint8 image on a black ground."""
  n, h, w = images.shape[:3]
  side = math.isqrt(n)
  if side * side != n:
    raise ValueError(f"a grid needs a square number of images, got {n}")
  canvas = np.zeros((side * (h + padding) + padding, side * (w + padding) + padding), np.uint8)
  for i, image in enumerate(images[..., 0]):
    r, c = divmod(i, side)
    canvas[padding + r * (h + padding) :][:h, padding + c * (w + padding) :][:, :w] = image
  return canvas


def save_grid(path: str, images: np.ndarray, scale: int = 3) -> None:
  """Write images (float in [-1, 1], or uint8) as a PNG grid, upscaled `scale` times (nearest) to be readable."""
  canvas = grid(images if images.dtype == np.uint8 else to_uint8(images))
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  image = PIL.Image.fromarray(canvas).resize((canvas.shape[1] * scale, canvas.shape[0] * scale), PIL.Image.NEAREST)
  with files.atomic_path(path) as tmp:
    image.save(tmp)
