"""MNIST through tensorflow-datasets (no TensorFlow): prepared ArrayRecord -> uint8 arrays in memory ->
a fresh full permutation every epoch.

The data dir is config.data_dir, else $TFDS_DATA_DIR, else ~/tensorflow_datasets. When it holds no prepared
MNIST, ganjax prepares it (mnist_builder) from config.mnist_idx_dir or, if config.download, from tfds's
mirror; otherwise it fails at once with one line saying what to do.
"""

import functools
import os

import jax
import ml_collections
import numpy as np

from ganjax.errors import DataError

DATASET_VERSION = "3.0.1"
# MNIST's facts, named once.
NUM_DIGITS = 10
TRAIN_SIZE = 60_000  # images in the training split
IMAGE_SHAPE = (28, 28, 1)


def resolve_data_dir(config: ml_collections.ConfigDict) -> str:
  return os.path.expanduser(config.data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets")


def is_prepared(data_dir: str) -> bool:
  prepared = os.path.join(data_dir, "mnist", DATASET_VERSION)
  return os.path.exists(os.path.join(prepared, "dataset_info.json")) and any(
    name.startswith("mnist-train.array_record") for name in os.listdir(prepared)
  )


def _no_data_message(data_dir: str, reason: str) -> str:
  return (
    f"MNIST is not prepared in data dir {data_dir!r} ({reason}). Fix: run once with internet access "
    "(--config.download=True fetches and prepares it), or point TFDS_DATA_DIR / --config.data_dir at a "
    f"directory holding mnist/{DATASET_VERSION}, or --config.mnist_idx_dir at the four MNIST IDX .gz files"
  )


def ensure_prepared(config: ml_collections.ConfigDict) -> str:
  """The data dir, holding prepared MNIST once this returns; DataError if that cannot be had."""
  from ganjax.data import mnist_builder

  data_dir = resolve_data_dir(config)
  if is_prepared(data_dir):
    return data_dir
  try:
    os.makedirs(data_dir, exist_ok=True)
  except OSError as e:
    raise DataError(_no_data_message(data_dir, f"cannot create it: {e.strerror}")) from e
  idx_dir = config.mnist_idx_dir
  if not idx_dir:
    if not config.download:
      raise DataError(_no_data_message(data_dir, "and config.download is False"))
    idx_dir = os.path.join(data_dir, "downloads", "mnist_idx")
    url = config.mnist_url or mnist_builder.DEFAULT_URL
    try:
      mnist_builder.download_idx_files(url, idx_dir)
    except (OSError, ValueError) as e:
      raise DataError(_no_data_message(data_dir, f"download from {url} failed: {e}")) from e
  try:
    mnist_builder.prepare(data_dir, idx_dir)
  except (OSError, ValueError) as e:
    raise DataError(_no_data_message(data_dir, f"preparing from {idx_dir} failed: {e}")) from e
  return data_dir


def load_split(config: ml_collections.ConfigDict, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
  """All images uint8 [N, 28, 28, 1] and labels int32 [N] of one split (of the training split, the first
  config.train_subset images, and of those the first config.examples_per_class of each class, if set)."""
  images, labels = _decode(ensure_prepared(config), split)
  if split == "train" and config.train_subset:
    images, labels = images[: config.train_subset], labels[: config.train_subset]
  if split == "train" and config.examples_per_class:
    keep = first_per_class(labels, config.examples_per_class)
    images, labels = images[keep], labels[keep]
  return images, labels


def first_per_class(labels: np.ndarray, per_class: int) -> np.ndarray:
  """Indices (in dataset order) of the first `per_class` examples of every class: a fixed small labelled set."""
  classes, counts = np.unique(labels, return_counts=True)
  if counts.min() < per_class:
    raise DataError(
      f"config.examples_per_class={per_class}, but class {classes[counts.argmin()]} has only "
      f"{counts.min()} training images; use at most {counts.min()}"
    )
  return np.sort(np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in classes]))


def _damaged_message(data_dir: str, split: str, error: Exception) -> str:
  prepared = os.path.join(data_dir, "mnist", DATASET_VERSION)
  names = sorted(n for n in os.listdir(prepared) if n.startswith(f"mnist-{split}.array_record"))
  where = os.path.join(prepared, names[0]) if len(names) == 1 else f"mnist-{split}.array_record* in {prepared}"
  reason = str(error).split(";")[0]
  return (
    f"the prepared MNIST file {where} cannot be read ({reason}): it is damaged, e.g. a copy cut short. Fix: "
    f"delete {prepared} and run again to prepare it anew (--config.download=True or --config.mnist_idx_dir), or "
    "point TFDS_DATA_DIR / --config.data_dir at a good copy"
  )


@functools.lru_cache(maxsize=2)
def _decode(data_dir: str, split: str) -> tuple[np.ndarray, np.ndarray]:
  """Decode a split once per process (~7 s for the 60k PNGs); later calls share the read-only arrays."""
  import tensorflow_datasets as tfds  # imported here: tfds is slow to import

  try:
    source = tfds.data_source("mnist", split=split, data_dir=data_dir, download=False)
    examples = source.__getitems__(range(len(source)))  # batched read: ~2x faster than item by item
  except (RuntimeError, OSError) as e:  # array_record: "Corrupted Riegeli/records file" for a file cut short
    raise DataError(_damaged_message(data_dir, split, e)) from e
  images = np.stack([example["image"] for example in examples]).astype(np.uint8)
  labels = np.array([example["label"] for example in examples], np.int32)
  images.flags.writeable = labels.flags.writeable = False
  return images, labels


class EpochShuffler:
  """Which examples each real batch holds: batch b is slot b % per_epoch of epoch b // per_epoch.

  Every epoch is a fresh permutation of all N examples, drawn from jax.random with fold_in(key, epoch),
  so the order depends only on the key and the batch number: a resumed run sees the same batches. The
  partial last batch of each epoch is dropped (static shapes).
  """

  def __init__(self, key: jax.Array, num_examples: int, batch_size: int):
    if batch_size > num_examples:
      raise DataError(f"batch_size={batch_size} is larger than the {num_examples} training examples")
    self.key, self.num_examples, self.batch_size = key, num_examples, batch_size
    self.batches_per_epoch = num_examples // batch_size
    self._permutations: dict[int, np.ndarray] = {}

  def permutation(self, epoch: int) -> np.ndarray:
    if epoch not in self._permutations:
      self._permutations = {e: p for e, p in self._permutations.items() if e >= epoch - 1}
      with jax.default_device(jax.local_devices(backend="cpu")[0]):  # off the accelerator's queue
        perm = jax.random.permutation(jax.random.fold_in(self.key, epoch), self.num_examples)
      self._permutations[epoch] = np.asarray(perm)
    return self._permutations[epoch]

  def indices(self, first_batch: int, num_batches: int) -> np.ndarray:
    """int32 [num_batches, batch_size]: the examples of batches first_batch, first_batch + 1, ..."""
    rows = []
    for batch in range(first_batch, first_batch + num_batches):
      epoch, slot = divmod(batch, self.batches_per_epoch)
      rows.append(self.permutation(epoch)[slot * self.batch_size : (slot + 1) * self.batch_size])
    return np.stack(rows).astype(np.int32)
