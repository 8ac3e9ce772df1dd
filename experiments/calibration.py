"""What the sample metrics read on reference image sets, so that a GAN's numbers can be judged.

  TFDS_DATA_DIR=/work/shared/tensorflow_datasets python experiments/calibration.py
  TFDS_DATA_DIR=/work/shared/tensorflow_datasets python experiments/calibration.py --cas --num_samples=10000

Each row scores --num_samples images against the 10k MNIST test images with ganjax.eval.metrics.evaluate_samples
and the shipped evaluator (ganjax.eval.evaluator): random training images (what a perfect generator scores: the
floor of FID at this sample size and the ceiling of everything else), the same images 3x3 box-blurred, with
Gaussian noise of sigma 0.1 and 0.3 (in the GAN's [-1, 1] units, clipped), digits 0-4 only (half the modes
dropped), one digit only (complete mode collapse) and uniform pixel noise. Label agreement (and CAS, with
--cas: a classifier trained on the set and tested on the test images) use the sets' true labels. Writes
calibration.md and calibration.jsonl to --out_dir, every row naming the evaluator's sha256.

Reading it (experiments/results/calibration.md, 2 CPU cores, ~1 min without --cas; CAS adds ~2 min a row):
real data scores FID ~2, score ~9.9, precision and recall ~0.87. k-NN precision alone is fooled by
uniform noise (0.74): the evaluator maps noise to one tight cluster (all classified '8') beside atypical real
8s whose k-NN balls are wide; recall 0, score 1 and FID ~900 give it away. Read the metrics together.
"""

import json
import os
import sys
import time

import jax
import numpy as np
from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from configs import default
from ganjax import images as images_lib
from ganjax.data import mnist
from ganjax.eval import evaluator as evaluator_lib
from ganjax.eval import metrics

_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 10000, "Images per reference set.")
_SEED = flags.DEFINE_integer("seed", 0, "Root of the sets' random draws and of the CAS classifiers.")
_CAS = flags.DEFINE_bool(
  "cas", False, "Also the classification accuracy score (one classifier training, ~2 min on 2 cores, per row)."
)
_OUT_DIR = flags.DEFINE_string("out_dir", os.path.join(ROOT, "experiments", "results"), "Output directory.")

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


def main(argv):
  del argv
  config = default.get_config()
  train_images, train_labels = mnist.load_split(config, "train")
  test_images, test_labels = mnist.load_split(config, "test")
  evaluator = evaluator_lib.load()
  reference = metrics.real_reference(evaluator, test_images)
  root = jax.random.key(_SEED.value)
  sets = reference_sets(train_images, train_labels, _NUM_SAMPLES.value, jax.random.fold_in(root, 0))
  os.makedirs(_OUT_DIR.value, exist_ok=True)
  rows = []
  with open(os.path.join(_OUT_DIR.value, "calibration.jsonl"), "w") as jsonl:
    for index, (name, (images, labels)) in enumerate(sets.items()):
      start = time.perf_counter()
      cas_key = jax.random.fold_in(jax.random.fold_in(root, 1), index) if _CAS.value else None
      results = metrics.evaluate_samples(evaluator, images, reference, labels, cas_key, test_labels)
      row = {"set": name, "seed": _SEED.value, **results, "seconds": round(time.perf_counter() - start, 1)}
      print(json.dumps({k: v for k, v in row.items() if k != "class_shares"}), flush=True)
      jsonl.write(json.dumps(row) + "\n")
      rows.append(row)
  table = markdown(rows)
  with open(os.path.join(_OUT_DIR.value, "calibration.md"), "w") as f:
    f.write(table)
  print(table)
  print(f"wrote {_OUT_DIR.value}/calibration.{{md,jsonl}}")


if __name__ == "__main__":
  app.run(main)
