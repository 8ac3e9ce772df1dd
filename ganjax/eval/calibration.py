"""Reference image sets for calibrating the sample metrics: what a perfect, blurred, noisy, mode-dropping or
collapsed generator would score (experiments/calibration.py runs them; docs/augmentation.md reads them)."""

import jax
import numpy as np

from ganjax import images as images_lib

SINGLE_DIGIT = 1
HALF_THE_DIGITS = (0, 1, 2, 3, 4)


def random_subset(images: np.ndarray, labels: np.ndarray, num: int, key: jax.Array) -> tuple[np.ndarray, np.ndarray]:
  """num distinct images (and labels), drawn uniformly."""
  indices = np.asarray(jax.random.choice(key, len(images), (num,), replace=False))
  return images[indices], labels[indices]


def box_blur(images: np.ndarray) -> np.ndarray:
  """uint8 [N, H, W, 1] -> the mean of each 3x3 neighbourhood, zero (background) outside the image."""
  padded = np.pad(images.astype(np.float32), ((0, 0), (1, 1), (1, 1), (0, 0)))
  height, width = images.shape[1:3]
  total = sum(padded[:, dy : dy + height, dx : dx + width] for dy in range(3) for dx in range(3))
  return np.clip(np.round(total / 9.0), 0, 255).astype(np.uint8)


def gaussian_noise(images: np.ndarray, sigma: float, key: jax.Array) -> np.ndarray:
  """x + sigma * N(0, 1) in the GAN's [-1, 1] units, clipped back to [-1, 1] and quantised to uint8."""
  noise = np.asarray(jax.random.normal(key, images.shape))
  return images_lib.to_uint8(images.astype(np.float32) / 127.5 - 1.0 + sigma * noise)


def classes_only(
  images: np.ndarray, labels: np.ndarray, digits: tuple[int, ...], num: int, key: jax.Array
) -> tuple[np.ndarray, np.ndarray]:
  """num images drawn with replacement among those of the given digits: partial or complete mode collapse."""
  pool = np.flatnonzero(np.isin(labels, digits))
  indices = pool[np.asarray(jax.random.randint(key, (num,), 0, len(pool)))]
  return images[indices], labels[indices]


def uniform_noise(num: int, key: jax.Array) -> np.ndarray:
  """Every pixel uniform in [0, 255]: no digit at all."""
  return np.asarray(jax.random.randint(key, (num, 28, 28, 1), 0, 256)).astype(np.uint8)


def reference_sets(
  train_images: np.ndarray, train_labels: np.ndarray, num: int, key: jax.Array
) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
  """name -> (uint8 images, their labels or None): the calibration rows, from real training images."""
  keys = dict(zip(("subset", "noise_01", "noise_03", "half", "single", "uniform"), jax.random.split(key, 6)))
  images, labels = random_subset(train_images, train_labels, num, keys["subset"])
  return {
    "train (real)": (images, labels),
    "train, 3x3 box blur": (box_blur(images), labels),
    "train + noise sigma 0.1": (gaussian_noise(images, 0.1, keys["noise_01"]), labels),
    "train + noise sigma 0.3": (gaussian_noise(images, 0.3, keys["noise_03"]), labels),
    "digits 0-4 only": classes_only(train_images, train_labels, HALF_THE_DIGITS, num, keys["half"]),
    f"digit {SINGLE_DIGIT} only": classes_only(train_images, train_labels, (SINGLE_DIGIT,), num, keys["single"]),
    "uniform noise": (uniform_noise(num, keys["uniform"]), None),
  }


def markdown(rows: list[dict]) -> str:
  """The rows (evaluate_samples dicts plus 'set') as a markdown table; '-' where a set has no labels."""
  columns = ["set", "FID", "score", "precision", "recall", "class entropy / log 10", "min class share"]
  columns += ["label agreement", "CAS"]
  lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
  for r in rows:
    optional = [f"{r[name]:.3f}" if name in r else "-" for name in ("label_agreement", "cas")]
    lines.append(
      f"| {r['set']} | {r['fid']:.2f} | {r['classifier_score']:.2f} | {r['precision']:.3f} | {r['recall']:.3f} "
      f"| {r['class_entropy_normalized']:.3f} | {r['min_class_share']:.3f} | " + " | ".join(optional) + " |"
    )
  first = rows[0]
  footer = f"{first['num_samples']} images per set against {first['num_real']} MNIST test images; "
  return "\n".join(lines) + f"\n\n{footer}evaluator sha256 {first['evaluator_sha256']}.\n"
