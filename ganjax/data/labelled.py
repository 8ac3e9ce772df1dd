"""The labelled few: N images per class drawn at random with a label seed; every other image is unlabelled.

The draw is class-balanced, seeded and independent of the dataset's order, so a (labels_per_class, label_seed)
pair names one labelled subset that any run, export or benchmark cell can recompute and record.
"""

import dataclasses

import jax
import numpy as np

from ganjax.data.mnist import NUM_DIGITS
from ganjax.errors import DataError

LABEL_KEY = 0x1ABE1  # folded into jax.random.key(label_seed): label draws never share a stream with training


def draw_labelled(labels: np.ndarray, per_class: int, label_seed: int) -> np.ndarray:
  """Sorted indices of `per_class` images of every digit, drawn uniformly without replacement.

  Every image gets a uniform number from the label seed alone; a digit's drawn images are its per_class
  lowest. So the draw does not depend on the labels of the images not drawn: marking them unknown (-1) draws
  the very same images (the leak test relies on this).
  """
  labels = np.asarray(labels)
  counts = np.bincount(labels[labels >= 0], minlength=NUM_DIGITS)
  if per_class < 1 or counts.min() < per_class:
    raise DataError(
      f"labels_per_class={per_class}; it must be in [1, {counts.min()}] (the smallest class's training images)"
    )
  key = jax.random.fold_in(jax.random.key(label_seed), LABEL_KEY)
  order = np.asarray(jax.random.uniform(key, (len(labels),)))
  chosen = []
  for digit in range(NUM_DIGITS):
    members = np.flatnonzero(labels == digit)
    chosen.append(members[np.argsort(order[members], kind="stable")[:per_class]])
  return np.sort(np.concatenate(chosen))


@dataclasses.dataclass(frozen=True)
class FewLabels:
  """A training split as the few-labels user has it: a labelled subset and the unlabelled rest."""

  labelled_images: np.ndarray  # uint8 [L, 28, 28, 1]
  labelled_labels: np.ndarray  # int32 [L]
  unlabelled_images: np.ndarray  # uint8 [U, 28, 28, 1]: the other images, without their labels
  labelled_indices: np.ndarray  # int [L]: positions in the training split (provenance)
  labels_per_class: int
  label_seed: int

  def provenance(self) -> dict:
    """What export and eval.json record: N, the label seed and which training images were labelled."""
    return {
      "labels_per_class": self.labels_per_class,
      "label_seed": self.label_seed,
      "labelled_indices": [int(i) for i in self.labelled_indices],
    }


def split(images: np.ndarray, labels: np.ndarray, per_class: int, label_seed: int) -> FewLabels:
  """The training split with per_class labels per class kept and every other label dropped."""
  labelled = draw_labelled(labels, per_class, label_seed)
  unlabelled = np.setdiff1d(np.arange(len(labels)), labelled)
  return FewLabels(
    labelled_images=images[labelled],
    labelled_labels=np.asarray(labels)[labelled].astype(np.int32),
    unlabelled_images=images[unlabelled],
    labelled_indices=labelled,
    labels_per_class=per_class,
    label_seed=label_seed,
  )
