"""Which training images each iteration of the semi-supervised GAN sees: a labelled batch from the labelled
few, an unlabelled batch and the generator's feature-matching batch from all training images.

Each stream is an endless concatenation of fresh permutations ("tiles") of its examples, cut into batches:
for all training images a tile is an epoch; for the labelled few it is one pass over them, so a batch of 100
holds every one of 100 labelled images once, or ten passes over 10 (as the reference tiles them). Tile t is
drawn with fold_in(key, t), so batch b depends only on the key and b: a resumed run sees the same batches.
"""

import dataclasses
import functools

import jax
import numpy as np

from ganjax.data import labelled as labelled_lib

# Folded into the data key: the three streams and the init batch never share numbers.
LABELLED_STREAM, UNLABELLED_STREAM, MATCHING_STREAM, INIT_STREAM = range(4)
PERMUTATION_BLOCK = 2**16  # about this many indices are drawn at a time


@functools.partial(jax.jit, static_argnums=(1, 3))
def _tile_permutations(key: jax.Array, num_examples: int, first_tile: jax.Array, num_tiles: int) -> jax.Array:
  tiles = first_tile + jax.numpy.arange(num_tiles)
  return jax.vmap(lambda t: jax.random.permutation(jax.random.fold_in(key, t), num_examples))(tiles)


class TiledShuffler:
  """Batch b of the stream holds positions [b B, (b + 1) B) of tile 0 + tile 1 + ..., each tile a permutation."""

  def __init__(self, key: jax.Array, num_examples: int, batch_size: int):
    if num_examples < 1:
      raise ValueError("a stream needs at least one example")
    self.key, self.num_examples, self.batch_size = key, num_examples, batch_size
    self.tiles_per_block = max(1, PERMUTATION_BLOCK // num_examples)
    self._blocks: dict[int, np.ndarray] = {}

  def _block(self, block: int) -> np.ndarray:
    if block not in self._blocks:
      self._blocks = {b: p for b, p in self._blocks.items() if b >= block - 1}
      with jax.default_device(jax.local_devices(backend="cpu")[0]):
        perms = _tile_permutations(self.key, self.num_examples, block * self.tiles_per_block, self.tiles_per_block)
      self._blocks[block] = np.asarray(perms)
    return self._blocks[block]

  def indices(self, batch: int) -> np.ndarray:
    """int [batch_size]: the examples of batch `batch`."""
    positions = batch * self.batch_size + np.arange(self.batch_size)
    tiles, within = np.divmod(positions, self.num_examples)
    blocks, tile_in_block = np.divmod(tiles, self.tiles_per_block)
    indices = np.empty(self.batch_size, np.int64)
    for block in np.unique(blocks):  # one block, or two when the batch straddles them
      here = blocks == block
      indices[here] = self._block(int(block))[tile_in_block[here], within[here]]
    return indices


@dataclasses.dataclass
class SslBatches:
  """The uint8 real batches of every iteration, from the training images and the labelled few's indices.

  Only `labelled_labels` (the labels of the labelled few, in `labelled_indices` order) is ever read: no other
  training label can reach a batch.
  """

  images: np.ndarray  # uint8 [N, 28, 28, 1]: all training images, the unlabelled pool (the labelled included)
  labelled_indices: np.ndarray  # int [L]: which of them are labelled
  labelled_labels: np.ndarray  # int32 [L]
  key: jax.Array
  batch_size: int = 100  # unlabelled images per iteration (and fakes, and G's real batch)
  labelled_batch_size: int = 0  # labelled images per iteration; 0: batch_size
  # int32 [N] or None: a teacher's digit for each training image (-1: none; ganjax/ssl/pseudo_labels.py),
  # given with the unlabelled batch when present
  pseudo_labels: np.ndarray | None = None

  def __post_init__(self):
    stream = lambda s, n, b: TiledShuffler(jax.random.fold_in(self.key, s), n, b)  # noqa: E731
    labelled_batch_size = self.labelled_batch_size or self.batch_size
    self.labelled = stream(LABELLED_STREAM, len(self.labelled_indices), labelled_batch_size)
    self.unlabelled = stream(UNLABELLED_STREAM, len(self.images), self.batch_size)
    self.matching = stream(MATCHING_STREAM, len(self.images), self.batch_size)

  def batch(self, iteration: int) -> dict[str, np.ndarray]:
    """labelled_image, label, unlabelled_image and matching_image (G's real batch) of one iteration, and the
    unlabelled images' pseudo_label when the stream has pseudo-labels."""
    chosen, unlabelled = self.labelled.indices(iteration), self.unlabelled.indices(iteration)
    batch = {
      "labelled_image": self.images[self.labelled_indices[chosen]],
      "label": np.asarray(self.labelled_labels[chosen], np.int32),
      "unlabelled_image": self.images[unlabelled],
      "matching_image": self.images[self.matching.indices(iteration)],
    }
    if self.pseudo_labels is not None:
      batch["pseudo_label"] = np.asarray(self.pseudo_labels[unlabelled], np.int32)
    return batch

  def init_images(self, count: int = 500) -> np.ndarray:
    """`count` training images drawn without replacement: the batch of the critic's data-dependent init."""
    return init_images(self.images, jax.random.fold_in(self.key, INIT_STREAM), count)


def init_images(images: np.ndarray, key: jax.Array, count: int = 500) -> np.ndarray:
  """`count` of `images` drawn without replacement (in index order) with `key`."""
  order = jax.random.permutation(key, len(images))
  return images[np.sort(np.asarray(order[:count]))]


def few_labels_batches(
  images: np.ndarray,
  labels: np.ndarray,
  labels_per_class: int,
  label_seed: int,
  key: jax.Array,
  batch_size: int = 100,
  labelled_batch_size: int = 0,
) -> SslBatches:
  """The batches of a run with labels_per_class labels per digit, drawn as ganjax.few_labels draws them."""
  labelled_indices = labelled_lib.draw_labelled(labels, labels_per_class, label_seed)
  labelled_labels = np.asarray(labels)[labelled_indices].astype(np.int32)
  return SslBatches(images, labelled_indices, labelled_labels, key, batch_size, labelled_batch_size)
