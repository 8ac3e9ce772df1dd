"""Self-training (pseudo-labelling) with classic augmentation: the classifier a few-labels user would train
without a GAN, and the namer that tells a label-free GAN's clusters which digit they hold.

Round 0 trains the fixed classifier recipe on the labelled few. After each round the unlabelled images are
labelled, by one of two labellers:
  spreading    label spreading (label_spreading.py) from the labelled few along a k-NN graph of all images:
               of their pixels after round 0, of the round's classifier's features after later rounds
  classifier   the round's classifier's own predictions (plain pseudo-labelling)
Each later round r of R keeps the most confident fraction r / R of the images labelled as each class (a
curriculum: Cascante-Bonilla et al. 2021, "Curriculum Labeling") and trains afresh on the labelled and kept
images. Every round trains from scratch, so a wrong early label is not locked in. The unlabelled images' final
labels are the labeller's after the last round.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from ganjax.config import SELF_TRAINING_LABELLERS as LABELLERS
from ganjax.data import mnist
from ganjax.eval import classifiers
from ganjax.few_labels import label_spreading
from ganjax.data.labelled import FewLabels

PyTree = Any


@dataclasses.dataclass(frozen=True)
class SelfTraining:
  """How the self-training classifier is trained (each round: the classifier recipe with this many steps)."""

  rounds: int = 2  # rounds after round 0 that add pseudo-labelled images (0: the labelled few only)
  classifier_steps: int = classifiers.SMALL_CNN_RECIPE.num_steps
  labeller: str = "spreading"  # who labels the unlabelled images after each round (LABELLERS)
  spreading: label_spreading.Spreading = dataclasses.field(default_factory=label_spreading.Spreading)

  def __post_init__(self):
    if self.labeller not in LABELLERS:
      raise ValueError(f"labeller={self.labeller!r}; it must be one of {LABELLERS}")

  @property
  def recipe(self) -> classifiers.Recipe:
    return classifiers.small_cnn_recipe(self.classifier_steps)


@dataclasses.dataclass(frozen=True)
class Result:
  """The last round's classifier and its labels for the unlabelled images."""

  recipe: classifiers.Recipe
  params: PyTree
  pseudo_labels: np.ndarray  # int32 [U]: the labeller's labels after the last round
  confidences: np.ndarray  # float32 [U]: the labeller's probability of that label
  kept_per_round: tuple[int, ...]  # pseudo-labelled images each round trained on (round 0: 0)


def probabilities(recipe: classifiers.Recipe, params: PyTree, images_uint8: np.ndarray) -> np.ndarray:
  """float32 [N, 10]: the classifier's softmax."""
  return np.asarray(jax.nn.softmax(classifiers.predict_logits(recipe.model, params, images_uint8), axis=-1))


def params_to_bytes(params: PyTree) -> np.ndarray:
  """uint8 [B]: the classifier's parameters, for an .npz."""
  return np.frombuffer(serialization.to_bytes(params), np.uint8)


def params_from_bytes(recipe: classifiers.Recipe, data: np.ndarray) -> PyTree:
  """The parameters params_to_bytes wrote, restored into the recipe's model's structure."""
  template = recipe.model.init(jax.random.key(0), jnp.zeros((1, *classifiers.IMAGE_SHAPE)))["params"]
  return serialization.from_bytes(template, np.asarray(data).tobytes())


def most_confident(probs: np.ndarray, fraction: float) -> np.ndarray:
  """Sorted indices of the most confident `fraction` of the images predicted as each class (class-balanced:
  at most fraction x N / 10 per class, so a class the classifier over-predicts does not swamp the others)."""
  predicted, confidence = probs.argmax(axis=-1), probs.max(axis=-1)
  quota = round(fraction * len(probs) / probs.shape[-1])
  chosen = []
  for c in range(probs.shape[-1]):
    members = np.flatnonzero(predicted == c)
    chosen.append(members[np.argsort(-confidence[members], kind="stable")[:quota]])
  return np.sort(np.concatenate(chosen))


def label_unlabelled(few: FewLabels, settings: SelfTraining, params: PyTree, round_index: int) -> np.ndarray:
  """float32 [U, 10]: the labeller's probabilities for the unlabelled images after round `round_index`."""
  if settings.labeller == "classifier":
    return probabilities(settings.recipe, params, few.unlabelled_images)
  every = np.concatenate([few.labelled_images, few.unlabelled_images])  # the labelled few are points 0..L-1
  if round_index == 0:  # a classifier from the few alone embeds worse than the pixels do
    features, dims = every.reshape(len(every), -1).astype(np.float32) / 255, settings.spreading.pixel_dims
  else:
    features, dims = classifiers.features(settings.recipe.model, params, every), settings.spreading.feature_dims
  seeds = np.arange(len(few.labelled_labels))
  probs = label_spreading.label_probabilities(
    features, seeds, few.labelled_labels, mnist.NUM_DIGITS, dims, settings.spreading
  )
  return probs[len(seeds) :]


def self_train(
  few: FewLabels,
  key: jax.Array,
  settings: SelfTraining,
  augment: classifiers.Augment | None,
  on_round: Callable[[int, PyTree], None] | None = None,
) -> Result:
  """Rounds 0..R of self-training on `few`; on_round(r, params) sees each round's classifier (e.g. to test it).

  Round r trains with fold_in(key, r) for r > 0 and with `key` itself for round 0, so round 0 is exactly the
  recipe trained on the labelled few with `augment` and this key.
  """
  recipe = settings.recipe
  images, labels, kept = few.labelled_images, few.labelled_labels, [0]
  for round_index in range(settings.rounds + 1):
    round_key = key if round_index == 0 else jax.random.fold_in(key, round_index)
    params = classifiers.train_classifier(recipe, images, labels, round_key, augment)
    if on_round is not None:
      on_round(round_index, params)
    probs = label_unlabelled(few, settings, params, round_index)
    if round_index == settings.rounds:
      break
    chosen = most_confident(probs, (round_index + 1) / settings.rounds)
    images = np.concatenate([few.labelled_images, few.unlabelled_images[chosen]])
    labels = np.concatenate([few.labelled_labels, probs[chosen].argmax(axis=-1).astype(np.int32)])
    kept.append(len(chosen))
  return Result(recipe, params, probs.argmax(axis=-1).astype(np.int32), probs.max(axis=-1), tuple(kept))
