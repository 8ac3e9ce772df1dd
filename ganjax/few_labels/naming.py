"""Digits for a label-free GAN: its k-means clusters named by a self-trained classifier, its samples checked.

A self-conditioned GAN (conditioning clusters or few_labels) never sees a label; it draws the cluster it is
given. The few labelled images teach a classifier (self_training, which also labels the unlabelled images);
then
- a digit d is drawn from cluster k with probability P(k | d): the share of the images labelled d (the few
  by hand, the rest by the classifier) that fall in cluster k. k-means clusters of pixels are not pure (100
  clusters: ~87 % of an image's cluster-mates share its digit), so
- each sample is kept only if the classifier also gives it digit d with probability >= min_confidence (default
  0.5: it reads d), and redrawn otherwise: two independent views (the cluster and the classifier) must agree.
The GAN itself is the same whatever the labelled subset, so one GAN serves every subset.
"""

import dataclasses
import functools
import hashlib
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from ganjax import files, saved_run
from ganjax.data.mnist import NUM_DIGITS
from ganjax.errors import WorkdirError
from ganjax.eval import classifiers
from ganjax.data import labelled
from ganjax.few_labels import self_training
from ganjax.synth import augmentations

PyTree = Any
NAMER_KEY = 0x4E414D45  # folded into jax.random.key(label_seed): the namer depends on the labelled subset alone
CLASSIC = functools.partial(augmentations.classic, strength=1.0)  # one object, so every namer shares a compile


@dataclasses.dataclass(frozen=True)
class Naming:
  """How a label-free GAN's clusters become digits: P(cluster | digit), and the classifier that checks samples."""

  cluster_given_digit: np.ndarray  # float32 [10, K]: each row sums to 1
  classifier_steps: int  # the namer's recipe (classifiers.small_cnn_recipe of this many steps)
  namer_params: PyTree
  min_confidence: float  # a sample of digit d is kept if the namer gives d at least this probability (0: all)
  provenance: dict  # labels_per_class, label_seed, labelled_indices (and how the namer was trained)

  @property
  def recipe(self) -> classifiers.Recipe:
    return classifiers.small_cnn_recipe(self.classifier_steps)

  def accepts(self, images_uint8: np.ndarray, digits: np.ndarray) -> np.ndarray:
    """bool [N]: the namer gives image i's digit probability >= min_confidence (> 0.5: it reads that digit)."""
    if self.min_confidence <= 0:
      return np.ones(len(digits), bool)
    probs = self_training.probabilities(self.recipe, self.namer_params, images_uint8)
    return probs[np.arange(len(digits)), digits] >= self.min_confidence

  def draw_clusters(self, key: jax.Array, digits: np.ndarray) -> np.ndarray:
    """int32 [N]: a cluster for each digit, drawn from P(cluster | digit)."""
    logits = jnp.log(jnp.asarray(self.cluster_given_digit)[np.asarray(digits)])  # log 0 = -inf: never drawn
    return np.asarray(jax.random.categorical(key, logits), np.int32)


def cluster_given_digit(assignments: np.ndarray, digits: np.ndarray, num_clusters: int) -> np.ndarray:
  """float32 [10, K]: row d is the histogram over clusters of the images whose (given or pseudo) label is d."""
  counts = np.zeros((NUM_DIGITS, num_clusters), np.float64)
  np.add.at(counts, (np.asarray(digits), np.asarray(assignments)), 1.0)
  missing = np.flatnonzero(counts.sum(axis=1) == 0)
  if len(missing):
    raise ValueError(f"no image is labelled digit {missing[0]}; every digit needs at least one")
  return (counts / counts.sum(axis=1, keepdims=True)).astype(np.float32)


def name(
  assignments: np.ndarray,
  num_clusters: int,
  few: labelled.FewLabels,
  result: self_training.Result,
  min_confidence: float,
  provenance: dict,
) -> Naming:
  """The naming of a run whose training images have these cluster `assignments` (in training-set order): the
  labelled images of `few` count with their labels, every other image with its pseudo-label from `result`."""
  if len(assignments) != len(few.labelled_labels) + len(few.unlabelled_images):
    raise ValueError(
      f"the clusters cover {len(assignments)} images, the labelled subset's training split "
      f"{len(few.labelled_labels) + len(few.unlabelled_images)}: the GAN must train on the whole split"
    )
  digits = np.empty(len(assignments), np.int32)
  unlabelled = np.setdiff1d(np.arange(len(assignments)), few.labelled_indices)
  digits[few.labelled_indices], digits[unlabelled] = few.labelled_labels, result.pseudo_labels
  table = cluster_given_digit(assignments, digits, num_clusters)
  return Naming(table, result.recipe.num_steps, result.params, min_confidence, provenance)


def save(workdir: str, naming: Naming) -> None:
  """<workdir>/few_labels.npz, written atomically."""
  path = os.path.join(workdir, saved_run.NAMING_FILE)
  files.write_npz(
    path,
    cluster_given_digit=naming.cluster_given_digit,
    classifier_steps=naming.classifier_steps,
    namer_params=self_training.params_to_bytes(naming.namer_params),
    min_confidence=naming.min_confidence,
    provenance=np.array(json.dumps(naming.provenance)),
  )


def _from_arrays(arrays: dict[str, np.ndarray]) -> Naming:
  steps = int(arrays["classifier_steps"])
  params = self_training.params_from_bytes(classifiers.small_cnn_recipe(steps), arrays["namer_params"])
  provenance = json.loads(str(arrays["provenance"]))
  return Naming(arrays["cluster_given_digit"], steps, params, float(arrays["min_confidence"]), provenance)


def load(workdir: str) -> Naming:
  """The naming a few_labels run made (export and evaluation read it); WorkdirError in one line if it is missing
  or does not read: the run's training command makes it again."""
  path = os.path.join(workdir, saved_run.NAMING_FILE)
  rerun = "rerun its training command (python main.py), which makes it again"
  if not os.path.exists(path):
    raise WorkdirError(
      f"{path} is missing: a few_labels run writes it at its first evaluation or after its last step; {rerun}"
    )
  try:
    return _from_arrays(files.load_npz(path))
  except files.NPZ_READ_ERRORS as e:
    raise WorkdirError(f"{path} does not read ({type(e).__name__}: torn or damaged); {rerun}") from e


def read_kept(workdir: str) -> Naming | None:
  """The naming kept in the workdir, or None if there is none or it does not read (then it is made afresh)."""
  arrays = files.read_npz(os.path.join(workdir, saved_run.NAMING_FILE))
  try:
    return None if arrays is None else _from_arrays(arrays)
  except (KeyError, ValueError) as e:  # arrays of another layout
    logging.warning("%s does not read (%r); it is made afresh", saved_run.NAMING_FILE, e)
    return None


def namer_key(label_seed: int) -> jax.Array:
  return jax.random.fold_in(jax.random.key(label_seed), NAMER_KEY)


def train_namer(few: labelled.FewLabels, settings: self_training.SelfTraining, on_round=None) -> self_training.Result:
  """Self-train the namer on `few`: classic augmentation, key namer_key(label_seed), so a subset's namer is the
  same in a run and in the benchmark."""
  return self_training.self_train(few, namer_key(few.label_seed), settings, CLASSIC, on_round)


def train_and_name(
  few: labelled.FewLabels,
  assignments: np.ndarray,
  num_clusters: int,
  settings: self_training.SelfTraining,
  min_confidence: float,
  on_round=None,
) -> tuple[Naming, self_training.Result]:
  """Train the namer on `few` (train_namer) and name the clusters."""
  result = train_namer(few, settings, on_round)
  provenance = few.provenance() | {
    "self_training_rounds": settings.rounds,
    "self_training_steps": settings.classifier_steps,
    "self_training_labeller": settings.labeller,
    "pseudo_labelled_per_round": list(result.kept_per_round),
  }
  naming = name(assignments, num_clusters, few, result, min_confidence, provenance)
  return naming, result


def made_for(naming: Naming, config, assignments_key: str) -> bool:
  """Whether a kept naming was made from this config's namer fields (saved_run.NAMER_FIELDS; a field it predates
  takes its saved_run.ADDED_NAMER_FIELDS value) and for the clusters whose sha256 is `assignments_key`."""
  recorded = {
    **saved_run.ADDED_NAMER_FIELDS,
    **naming.provenance,
    "few_labels_min_confidence": naming.min_confidence,
  }
  return recorded.get("clusters_sha256") == assignments_key and all(
    recorded.get(field) == config[field] for field in saved_run.NAMER_FIELDS
  )


def load_or_build(workdir: str, config, images: np.ndarray, labels: np.ndarray, assignments: np.ndarray, write: bool):
  """A few_labels run's naming: read from the workdir (a resumed run), else built (minutes: the namer's
  rounds) and kept. `labels` may be -1 for unknown images; only the drawn images' labels are read."""
  assignments_key = hashlib.sha256(np.ascontiguousarray(assignments, np.int32).tobytes()).hexdigest()
  kept = read_kept(workdir)
  if kept is not None and made_for(kept, config, assignments_key):
    return kept
  few = labelled.split(images, labels, config.labels_per_class, config.label_seed)
  settings = self_training.SelfTraining(
    config.self_training_rounds, config.self_training_steps, config.self_training_labeller
  )
  logging.info(
    "few_labels: %d labelled images per digit (label_seed %d), %d unlabelled; self-training the namer (%d rounds "
    "of %d classifier steps, labeller %s)",
    few.labels_per_class,
    few.label_seed,
    len(few.unlabelled_images),
    settings.rounds + 1,
    settings.classifier_steps,
    settings.labeller,
  )
  on_round = lambda r, _: logging.info("few_labels: namer round %d of %d done", r, settings.rounds)
  min_confidence = config.few_labels_min_confidence
  naming, _ = train_and_name(few, assignments, config.num_clusters, settings, min_confidence, on_round)
  naming = dataclasses.replace(naming, provenance=naming.provenance | {"clusters_sha256": assignments_key})
  if write:
    save(workdir, naming)
  return naming
