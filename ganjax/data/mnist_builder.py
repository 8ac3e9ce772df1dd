"""Prepares tfds's MNIST 3.0.1 from the four IDX files without TensorFlow.

tfds reads prepared ArrayRecord files without TensorFlow, but its own MNIST builder needs TensorFlow to
*prepare* them (it opens the IDX files with tf.io.gfile and encodes PNGs with tf.image). This builder
writes the same dataset (same name, version, features, splits and example order, PNG-encoded with
Pillow) so that `tfds.data_source('mnist')` reads it like the official one, and a user with internet
needs nothing beyond requirements.txt.
"""

import gzip
import hashlib
import io
import os
import urllib.request

import numpy as np
import PIL.Image
import tensorflow_datasets as tfds

from ganjax import files

FILES = {
  "train_images": "train-images-idx3-ubyte.gz",
  "train_labels": "train-labels-idx1-ubyte.gz",
  "test_images": "t10k-images-idx3-ubyte.gz",
  "test_labels": "t10k-labels-idx1-ubyte.gz",
}
# SHA-256 of the four files' *decompressed* content (mirrors re-gzip them with other settings).
SHA256 = {
  "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
  "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
  "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
  "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
DEFAULT_URL = tfds.image_classification.MNIST.URL  # tfds's own mirror of the files


def read_idx(path: str) -> np.ndarray:
  """An IDX file (gzipped) as a uint8 array: images [N, 28, 28] or labels [N]."""
  with gzip.open(path, "rb") as f:
    raw = f.read()
  ndim = raw[3]
  dims = np.frombuffer(raw, ">u4", count=ndim, offset=4)
  return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def content_sha256(path: str) -> str:
  with gzip.open(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


def check_idx_file(path: str) -> None:
  """Raise ValueError unless `path` is the genuine (gzipped) MNIST file of its name."""
  try:
    digest = content_sha256(path)
  except (OSError, EOFError) as e:
    raise ValueError(f"{path} is not a readable gzip file ({e})") from e
  if digest != SHA256[os.path.basename(path)]:
    raise ValueError(f"{path} is not the genuine MNIST file (SHA-256 of its content {digest[:12]}...)")


def download_idx_files(url: str, directory: str, timeout_s: float = 30) -> None:
  """Fetch the four files into `directory` (skipping ones already there), checking their SHA-256."""
  os.makedirs(directory, exist_ok=True)
  for name in FILES.values():
    path = os.path.join(directory, name)
    if not os.path.exists(path):
      with urllib.request.urlopen(url.rstrip("/") + "/" + name, timeout=timeout_s) as response:
        payload = response.read()
      files.atomic_write(path, payload)
    try:
      check_idx_file(path)
    except ValueError:
      os.remove(path)  # a broken download must not block the next try
      raise


class Mnist(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """tfds's `mnist` 3.0.1, generated from IDX files in `idx_dir` with numpy and Pillow."""

  name = "mnist"
  VERSION = tfds.core.Version("3.0.1")

  def __init__(self, *, idx_dir: str, **kwargs):
    self._idx_dir = idx_dir
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
      builder=self,
      description="The MNIST database of handwritten digits (prepared by ganjax without TensorFlow).",
      features=tfds.features.FeaturesDict(
        {"image": tfds.features.Image(shape=(28, 28, 1)), "label": tfds.features.ClassLabel(num_classes=10)}
      ),
      supervised_keys=("image", "label"),
      homepage="http://yann.lecun.com/exdb/mnist/",
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # the files are already in idx_dir
    path = lambda key: os.path.join(self._idx_dir, FILES[key])
    return {
      "train": self._generate_examples(path("train_images"), path("train_labels")),
      "test": self._generate_examples(path("test_images"), path("test_labels")),
    }

  def _generate_examples(self, images_path, labels_path):
    images, labels = read_idx(images_path), read_idx(labels_path)
    for i, (image, label) in enumerate(zip(images, labels)):
      png = io.BytesIO()
      PIL.Image.fromarray(image).save(png, format="PNG")
      png.seek(0)  # tfds's Image feature takes a file object's bytes as already-encoded PNG
      yield i, {"image": png, "label": int(label)}


def prepare(data_dir: str, idx_dir: str) -> None:
  """Write mnist/3.0.1 (ArrayRecord) under data_dir from the IDX files in idx_dir."""
  for name in FILES.values():
    check_idx_file(os.path.join(idx_dir, name))
  Mnist(idx_dir=idx_dir, data_dir=data_dir).download_and_prepare(file_format="array_record")
