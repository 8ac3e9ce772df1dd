"""k-means clusters of the training images: the pseudo-labels of a self-conditioned GAN (conditioning clusters
or few_labels), or the styles within each digit of a conditional one (digit_clusters); `training_labels` gives a
run the model label of every training image.

An unconditional GAN must carve MNIST's ten separate digit manifolds out of one Gaussian latent; early in
training many samples fall between two digits. Conditioning G and the critic on a k-means cluster of the
real images (Liu et al. 2020, "Diverse Image Generation via Self-Conditioned GANs") gives each cluster its own
mode, with no labels used. Sampling draws clusters by their share of the training set, so the generated
distribution is still the unconditional one. Clusters are computed once per run and kept in the workdir.

A conditional GAN has the same problem one level down: the styles of one digit (open and closed 4s, slanted
and upright 1s) are separate modes, and G tends to drop some of them. Clustering each digit's images and
conditioning on (digit, cluster) gives every style its own mode; a sample of digit d draws its cluster by its
share of d's images, so users still ask for digits.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from ganjax import files, saved_run
from ganjax.conditioning import Conditioning


def kmeans(images: np.ndarray, num_clusters: int, key: jax.Array, num_iterations: int = 30) -> np.ndarray:
  """int32 [N]: the cluster of each uint8 image [N, ...], k-means (Lloyd) on pixels from a k-means++ start."""
  if not 2 <= num_clusters <= len(images):
    raise ValueError(f"num_clusters={num_clusters}; it must be in [2, {len(images)}] (the number of images)")
  x = jnp.asarray(images.reshape(len(images), -1), jnp.float32) / 255.0
  squared_norms = jnp.sum(x * x, axis=1)

  def squared_distances(centroids):
    return squared_norms[:, None] - 2.0 * x @ centroids.T + jnp.sum(centroids * centroids, axis=1)[None]

  @jax.jit
  def next_seed(closest, key):
    """k-means++: the next centroid is drawn with probability proportional to the squared distance."""
    index = jax.random.categorical(key, jnp.log(jnp.maximum(closest, 1e-12)))
    return index, jnp.minimum(closest, jnp.sum((x - x[index]) ** 2, axis=1))

  first_key, *seed_keys = jax.random.split(key, num_clusters)
  first = jax.random.randint(first_key, (), 0, len(images))
  indices, closest = [first], jnp.sum((x - x[first]) ** 2, axis=1)
  for seed_key in seed_keys:
    index, closest = next_seed(closest, seed_key)
    indices.append(index)

  @jax.jit
  def lloyd_step(centroids, _):
    assignments = jnp.argmin(squared_distances(centroids), axis=1)
    one_hot = jax.nn.one_hot(assignments, num_clusters, dtype=x.dtype)
    counts = one_hot.sum(axis=0)
    means = (one_hot.T @ x) / jnp.maximum(counts, 1.0)[:, None]
    return jnp.where(counts[:, None] > 0, means, centroids), None  # an empty cluster keeps its centroid

  centroids, _ = jax.lax.scan(lloyd_step, x[jnp.stack(indices)], None, length=num_iterations)
  return np.asarray(jnp.argmin(squared_distances(centroids), axis=1), np.int32)


def shares(assignments: np.ndarray, num_clusters: int) -> np.ndarray:
  """float32 [num_clusters]: each cluster's fraction of the images (what sampling draws clusters by)."""
  return (np.bincount(assignments, minlength=num_clusters) / len(assignments)).astype(np.float32)


def within_classes(images: np.ndarray, labels: np.ndarray, clusters_per_class: int, key: jax.Array) -> np.ndarray:
  """int32 [N]: label * clusters_per_class + the image's k-means cluster among the images of its label."""
  labels = np.asarray(labels)
  assignments = np.zeros(len(labels), np.int32)
  for label in np.unique(labels):
    members = np.flatnonzero(labels == label)
    within = kmeans(images[members], clusters_per_class, jax.random.fold_in(key, int(label)))
    assignments[members] = int(label) * clusters_per_class + within
  return assignments


def purity(assignments: np.ndarray, labels: np.ndarray) -> float:
  """The fraction of images whose label is their cluster's most common one: a diagnostic, never trained on."""
  return float(sum(np.bincount(labels[assignments == c]).max() for c in np.unique(assignments)) / len(labels))


def load_or_compute(
  workdir: str,
  images: np.ndarray,
  num_clusters: int,
  key: jax.Array,
  write: bool = True,
  labels: np.ndarray | None = None,
) -> np.ndarray:
  """The run's cluster of every training image: read from the workdir (a resumed run), else computed and kept.

  With `labels`: num_clusters clusters within each label (within_classes), else of all images. Kept, not
  recomputed, so that a resumed run trains on exactly the pseudo-labels it started with. The file is reused
  only if it was made for the same number of images and clusters, the same key and the same kind of
  clustering: a rerun in the same workdir with other settings, or a file that does not read, clusters afresh.
  """
  within_labels = labels is not None
  path = os.path.join(workdir, saved_run.CLUSTERS_FILE)
  key_data = np.asarray(jax.random.key_data(key))
  kept = files.read_npz(path) or {}
  if (
    "assignments" in kept
    and kept["assignments"].shape == (len(images),)
    and int(kept.get("num_clusters", -1)) == num_clusters
    and np.array_equal(kept.get("key_data"), key_data)
    and bool(kept.get("within_labels", False)) == within_labels
  ):
    return kept["assignments"]
  if within_labels:
    assignments = within_classes(images, labels, num_clusters, key)
  else:
    assignments = kmeans(images, num_clusters, key)
  if write:
    files.write_npz(
      path, assignments=assignments, num_clusters=num_clusters, key_data=key_data, within_labels=within_labels
    )
  return assignments


def training_labels(
  conditioning: Conditioning, workdir: str, images: np.ndarray, digits: np.ndarray, key: jax.Array, write: bool
) -> tuple[np.ndarray, np.ndarray | None]:
  """The model label of every training image under `conditioning` and, for clusters, each cluster's share of
  the images (the digits themselves, None when the labels are not clusters).

  Clusters are computed once and kept in the workdir (clusters.npz), so a resumed run trains on the same ones.
  """
  if not conditioning.uses_clusters:
    return digits, None
  within = digits if conditioning.trains_on_digits else None
  labels = load_or_compute(workdir, images, conditioning.num_clusters, key, write=write, labels=within)
  path = os.path.join(workdir, saved_run.CLUSTERS_FILE)
  if conditioning.needs_naming:  # no diagnostic that reads the unlabelled images' labels
    logging.info("self-conditioned on %d k-means clusters (%s)", conditioning.num_clusters, path)
  elif within is None:
    logging.info(
      "self-conditioned on %d k-means clusters (%s); their purity w.r.t. the digit labels, not used: %.3f",
      conditioning.num_clusters,
      path,
      purity(labels, digits),
    )
  else:
    logging.info("each digit split into %d k-means clusters (%s)", conditioning.num_clusters, path)
  return labels, shares(labels, conditioning.num_labels)
