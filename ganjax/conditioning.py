"""What G and the critic are told about each image, and the labels a run trains and samples with.

config.conditioning names the kind; the models see an integer label in [0, num_labels):
  none            unconditional (no label)
  digit           the MNIST digit: a user asks for a class
  clusters        k-means clusters of all training images (self-conditioning; the digit labels are not used)
  digit_clusters  the (digit, k-means cluster within that digit) pair, label = digit * num_clusters + cluster;
                  a user still asks for a digit, and its cluster is drawn by the cluster's share of that digit
  few_labels      trained exactly as clusters (no label reaches G or the critic); a user asks for a digit, which
                  the run's naming (a `Naming`, e.g. ganjax/few_labels/naming.py's) turns into clusters
  semi_supervised G is unconditional; the critic is a 10-class classifier trained on the labelled few (drawn as
                  few_labels draws them) and on every image without its label (ganjax/ssl/); a user asks
                  for a digit, which the critic recognises in G's samples

Code outside this module asks a Conditioning what it does (uses_clusters, needs_naming, ...), never its kind.
"""

import dataclasses
import math
from collections.abc import Callable
from typing import Protocol

import jax
import jax.numpy as jnp
import numpy as np

from ganjax.data.mnist import NUM_DIGITS

KINDS = ("none", "digit", "clusters", "digit_clusters", "few_labels", "semi_supervised")
_TRAINS_ON_DIGITS = frozenset({"digit", "digit_clusters"})  # the training images' digit labels reach the models
_CLUSTERED = frozenset({"clusters", "digit_clusters", "few_labels"})  # the model labels are k-means clusters
_LABELLED_FEW = frozenset({"few_labels", "semi_supervised"})  # labels_per_class labelled images per digit
_NAMED = _LABELLED_FEW  # trains without most digit labels; a user's digit reaches G through a Naming
_RECOGNIZES = frozenset({"semi_supervised"})  # the critic classifies digits (and trains on the labelled few)
CLUSTER_KEY = 2**32 - 1  # folded into a sampling key for the cluster draws (the noise uses 0, 1, ...)


@dataclasses.dataclass(frozen=True)
class Conditioning:
  """A conditioning kind and its cluster count (clusters: of all images; digit_clusters: within each digit)."""

  kind: str = "none"
  num_clusters: int = 0

  @property
  def num_labels(self) -> int:
    """The size of the models' label set (0: unconditional)."""
    if not self.uses_clusters:
      return NUM_DIGITS if self.trains_on_digits else 0
    return NUM_DIGITS * self.num_clusters if self.trains_on_digits else self.num_clusters

  @property
  def num_digits(self) -> int:
    """The digits a user asks for: 10 when the run knows digits (a class head needs digit or digit_clusters)."""
    return NUM_DIGITS if self.trains_on_digits or self.needs_naming else 0

  @property
  def trains_on_digits(self) -> bool:
    """The training images' digit labels reach the models (digit, digit_clusters): a class head can use them."""
    return self.kind in _TRAINS_ON_DIGITS

  @property
  def needs_naming(self) -> bool:
    """A user's digit reaches G only through a `Naming` of the run (few_labels): sampling digits needs one."""
    return self.kind in _NAMED

  @property
  def uses_labelled_few(self) -> bool:
    """labels_per_class labelled images per digit, drawn with label_seed, are all the labels the run knows."""
    return self.kind in _LABELLED_FEW

  @property
  def recognizes(self) -> bool:
    """The critic is a digit classifier trained with the GAN (semi_supervised): the run is a recognizer."""
    return self.kind in _RECOGNIZES

  @property
  def uses_clusters(self) -> bool:
    """The labels are k-means clusters, drawn in training and sampling by their shares of the data."""
    return self.kind in _CLUSTERED

  @property
  def self_conditioned(self) -> bool:
    """G and the critic see k-means clusters of all images and never a digit (clusters, few_labels)."""
    return self.uses_clusters and not self.trains_on_digits

  def digits_of(self, labels: jax.Array) -> jax.Array:
    """The digit of each model label (a class head's target)."""
    return labels // self.num_clusters if self.uses_clusters and self.trains_on_digits else labels


class Naming(Protocol):
  """How a run that trains without digit labels samples a digit: a model label drawn for the digit, and a check
  that a sample shows it (redrawn otherwise). ganjax/few_labels/naming.py's Naming is one."""

  provenance: dict  # where the naming came from (recorded with evaluations and exports)

  def draw_clusters(self, key: jax.Array, digits: np.ndarray) -> np.ndarray:
    """int32 [N]: a model label for each digit."""
    ...

  def accepts(self, images_uint8: np.ndarray, digits: np.ndarray) -> np.ndarray:
    """bool [N]: sample i shows digit i."""
    ...


# Prepares a run's naming: (workdir, config, training images, their digits (-1: unknown), their model labels,
# write) -> Naming; called when the run first samples digits. ganjax/few_labels/naming.py's load_or_build is one.
PrepareNaming = Callable[..., Naming]


def balanced_labels(num_images: int, num_classes: int) -> np.ndarray:
  """int32 [num_images]: 0, 1, ..., num_classes - 1, 0, 1, ...: every class equally often (to within one)."""
  return (np.arange(num_images) % num_classes).astype(np.int32)


def cluster_labels(cluster_shares, key: jax.Array, num_images: int) -> np.ndarray:
  """int32 [num_images]: clusters drawn by their share of the training set (a self-conditioned run's prior)."""
  shares = np.asarray(cluster_shares)
  return np.asarray(jax.random.choice(key, len(shares), (num_images,), p=jnp.asarray(shares)), np.int32)


def digit_cluster_labels(conditioning: Conditioning, cluster_shares, digits: np.ndarray, key: jax.Array) -> np.ndarray:
  """int32: the model label of each digit under digit_clusters: digit * K + a cluster drawn by its share of
  that digit's training images."""
  per_digit = conditioning.num_clusters
  digits = np.asarray(digits, np.int32)
  shares = jnp.asarray(cluster_shares).reshape(-1, per_digit)[digits]
  within = jax.random.categorical(key, jnp.log(shares))  # logits: a digit's shares need not sum to 1
  return digits * per_digit + np.asarray(within, np.int32)


def sample_labels(
  conditioning: Conditioning,
  cluster_shares,
  key: jax.Array,
  num_images: int,
  digits: np.ndarray | None = None,
  naming: Naming | None = None,
) -> np.ndarray:
  """int32 [num_images] model labels to sample with: for `digits` (default: balanced over the digits), or
  clusters drawn by their shares for a self-conditioned run; zeros for an unconditional one (ignored). With a
  `naming` (required when the run needs one), the digits' labels are its draws."""
  cluster_key = jax.random.fold_in(key, CLUSTER_KEY)
  if naming is not None or conditioning.needs_naming:
    if naming is None:
      raise ValueError(f"conditioning {conditioning.kind!r} samples digits through the run's naming; pass naming=")
    digits = balanced_labels(num_images, NUM_DIGITS) if digits is None else np.asarray(digits, np.int32)
    return naming.draw_clusters(cluster_key, digits)
  if digits is None and conditioning.self_conditioned:
    return cluster_labels(cluster_shares, cluster_key, num_images)
  if digits is None:
    digits = balanced_labels(num_images, max(conditioning.num_digits, 1))
  digits = np.asarray(digits, np.int32)
  if digits.shape != (num_images,):
    raise ValueError(f"labels must have shape ({num_images},), got {digits.shape}")
  if conditioning.uses_clusters and conditioning.trains_on_digits:  # digit_clusters
    return digit_cluster_labels(conditioning, cluster_shares, digits, cluster_key)
  return digits


def grid_labels(conditioning: Conditioning, cluster_shares, num_images: int, key: jax.Array) -> jax.Array | None:
  """The labels of a square sample grid: row r shows digit r; a self-conditioned run's clusters drawn as sampling
  draws them, in order; None if unconditional."""
  if not conditioning.num_labels:
    return None
  if conditioning.self_conditioned:
    return jnp.asarray(np.sort(cluster_labels(cluster_shares, key, num_images)))
  rows = (np.arange(num_images) // math.isqrt(num_images)) % NUM_DIGITS
  if conditioning.uses_clusters:  # digit_clusters: row r still shows digit r, each in a style drawn by its share
    return jnp.asarray(digit_cluster_labels(conditioning, cluster_shares, rows, key))
  return jnp.asarray(rows.astype(np.int32))
