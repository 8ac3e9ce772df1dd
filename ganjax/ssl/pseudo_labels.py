"""The pseudo-labels that anchor the semi-supervised critic (config.pseudo_label_weight > 0): label spreading
from the labelled few along a k-NN graph of every training image (ganjax/few_labels/label_spreading.py), on its
deskewed pixels (ganjax/few_labels/deskew.py) or its raw ones, of which each spread digit keeps its most
confident fraction, and of those only the ones spread with probability >= min_probability; the other images get
none (-1).

Why: a run's largest error is a whole style of one digit learnt as another early in training
(docs/ssl_gan.md); the graph's confident labels are mostly right, and its mistakes are not the critic's.
"""

import hashlib

import numpy as np
from absl import logging

from ganjax import files
from ganjax.few_labels import deskew, label_spreading

NO_LABEL = -1
GRAPHS = ("deskewed", "pixels")  # what the k-NN graph is built on
PIXEL_SCALE = 1.0 / 255.0
# A spread digit's share of the pseudo-labels, in even shares, outside which uneven_digits warns: MNIST's own
# digits lie within 0.90-1.12 of an even share; a labelled image that looks like another digit falls far outside.
EVEN_SHARE_BOUNDS = (0.5, 2.0)


def keep_most_confident(probabilities: np.ndarray, fraction: float, min_probability: float = 0.0) -> np.ndarray:
  """int32 [N]: each row's most likely class where its probability is among the top `fraction` of the rows
  given that class (at least one per class given) and at least `min_probability`, NO_LABEL elsewhere."""
  if not 0 < fraction <= 1:
    raise ValueError(f"fraction={fraction}; it must be in (0, 1]")
  if not 0 <= min_probability < 1:
    raise ValueError(f"min_probability={min_probability}; it must be in [0, 1)")
  predicted, confidence = probabilities.argmax(axis=1), probabilities.max(axis=1)
  labels = np.full(len(probabilities), NO_LABEL, np.int32)
  for digit in np.unique(predicted):
    members = np.flatnonzero(predicted == digit)
    kept = members[np.argsort(-confidence[members], kind="stable")[: max(1, round(fraction * len(members)))]]
    labels[kept] = digit
  labels[confidence < min_probability] = NO_LABEL
  return labels


def spread_pseudo_labels(
  images: np.ndarray,
  labelled_indices: np.ndarray,
  labelled_labels: np.ndarray,
  fraction: float,
  graph: str = "deskewed",
  num_classes: int = 10,
  settings: label_spreading.Spreading | None = None,
  min_probability: float = 0.0,
) -> np.ndarray:
  """int32 [N]: the confident spread digit of each of the uint8 images [N, 28, 28, 1] (NO_LABEL where not kept:
  keep_most_confident), on a graph of the images' `graph` (GRAPHS); the labelled few keep their own labels.
  settings: the spreading's (label_spreading.Spreading's defaults if None)."""
  if graph not in GRAPHS:
    raise ValueError(f"graph={graph!r}; it must be one of {GRAPHS}")
  settings = settings or label_spreading.Spreading()
  pixels = images.reshape(len(images), -1).astype(np.float32) * PIXEL_SCALE
  if graph == "deskewed":
    pixels = deskew.deskew(pixels.reshape(images.shape[:3])).reshape(len(images), -1)
  probabilities = label_spreading.label_probabilities(
    pixels, labelled_indices, labelled_labels, num_classes, settings.pixel_dims, settings
  )
  labels = keep_most_confident(probabilities, fraction, min_probability)
  labels[labelled_indices] = labelled_labels
  return labels


def uneven_digits(labels: np.ndarray, num_classes: int = 10) -> str | None:
  """A one-line warning naming each digit whose share of the pseudo-labels `labels` (NO_LABEL: none) lies outside
  EVEN_SHARE_BOUNDS times an even share, else None. Label-free: with one label per digit, a labelled image that
  looks like another digit pulls that digit's images to its own (docs/ssl_gan.md) and the critic learns it."""
  given = np.asarray(labels)[np.asarray(labels) != NO_LABEL]
  shares = np.bincount(given, minlength=num_classes) / max(len(given) / num_classes, 1)
  low, high = EVEN_SHARE_BOUNDS
  uneven = [f"digit {d} {share:.2f}x" for d, share in enumerate(shares) if not low <= share <= high]
  if not uneven:
    return None
  return (
    f"label spreading gives {', '.join(uneven)} an even share of the pseudo-labels (within {low}-{high}x on MNIST's "
    "own digits): a labelled image may look like another digit; check the labelled few and draw others "
    "(--config.label_seed) if one does"
  )


def load_or_spread(
  path: str,
  images: np.ndarray,
  labelled_indices: np.ndarray,
  labelled_labels: np.ndarray,
  fraction: float,
  graph: str,
  write: bool = True,
  num_classes: int = 10,
  min_probability: float = 0.0,
) -> np.ndarray:
  """spread_pseudo_labels's labels, read from `path` (.npz) when it holds those of the very same images, labelled
  few, fraction, min_probability, graph and spreading settings (a resumed run), else spread (~1 min for 60k
  images) and kept there when `write`. A file that does not read, or was made for other inputs, is spread afresh
  and replaced."""
  fingerprint = _fingerprint(images, labelled_indices, labelled_labels, fraction, graph, num_classes, min_probability)
  kept = files.read_npz(path) or {}
  if "labels" in kept and kept["labels"].shape == (len(images),) and str(kept.get("fingerprint")) == fingerprint:
    logging.info("pseudo-labels read from %s", path)
    return kept["labels"].astype(np.int32)
  logging.info("spreading %d labels over %d images (pseudo-labels, ~1 min)", len(labelled_indices), len(images))
  labels = spread_pseudo_labels(
    images, labelled_indices, labelled_labels, fraction, graph, num_classes, min_probability=min_probability
  )
  if write:
    files.write_npz(path, labels=labels, fingerprint=fingerprint)
  return labels


def _fingerprint(
  images, labelled_indices, labelled_labels, fraction: float, graph: str, num_classes: int, min_probability: float
) -> str:
  """A digest of everything the spread labels depend on (the code's settings included; min_probability only when
  it keeps fewer, so a run from before it existed reads its file back)."""
  digest = hashlib.sha256()
  for array in (images, labelled_indices, labelled_labels):
    array = np.ascontiguousarray(array)
    digest.update(f"{array.dtype}{array.shape}".encode())
    digest.update(array.tobytes())
  digest.update(repr((float(fraction), graph, num_classes, label_spreading.Spreading())).encode())
  if min_probability > 0:
    digest.update(f"min_probability={float(min_probability)!r}".encode())
  return digest.hexdigest()
