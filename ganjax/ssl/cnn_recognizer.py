"""The strong CNN a semi-supervised run's critic teaches: classifiers.EvaluatorCNN trained from scratch on the
run's labelled few and every other training image with the critic's digit (its argmax, no threshold), the
few-labels benchmark's ssl_pseudo_cnn treatment, with the same data order and key (the run's label_seed), so on
the same machine it is that cell's CNN. It reads digits better than the critic it learns from
(docs/ssl_gan.md). `recognize.py --recognizer=cnn` trains it once per critic checkpoint and keeps it in the
run's workdir as KEPT_FILE; a later call reads it back, and trains it afresh when the run has moved on, the recipe
differs, or the file does not read.
"""

import dataclasses
import json
import os
import time
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging

from ganjax import files, metric_writers
from ganjax.data import labelled, mnist
from ganjax.data.mnist import NUM_DIGITS
from ganjax.errors import ConfigError
from ganjax.eval import classifiers
from ganjax.few_labels import self_training
from ganjax.ssl import recognizer

PyTree = Any
KEPT_FILE = "recognizer_cnn.npz"  # in the run's workdir: params (bytes) and provenance (JSON)
STEPS = classifiers.EVALUATOR_RECIPE.num_steps  # 3750 x 128: 99.60 % on the 60k true labels
PROGRESS_EVERY_S = 10.0


@dataclasses.dataclass(frozen=True)
class CnnRecognizer:
  """A trained CNN that names the digit of uint8 images, with the critic's Recognizer's interface."""

  recipe: classifiers.Recipe
  params: PyTree
  num_classes: int = NUM_DIGITS

  def classify(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities float32 [N, K], digits int32 [N]): the softmax and the argmax of the CNN's logits."""
    images = recognizer.as_image_batch(images)
    if not len(images):
      return np.zeros((0, self.num_classes), np.float32), np.zeros(0, np.int32)
    logits = classifiers.predict_logits(self.recipe.model, self.params, images)
    probabilities = np.asarray(jax.nn.softmax(logits, axis=-1), np.float32)
    return probabilities, np.asarray(np.argmax(logits, axis=-1), np.int32)

  def probabilities(self, images: np.ndarray) -> np.ndarray:
    return self.classify(images)[0]

  def predict(self, images: np.ndarray) -> np.ndarray:
    return self.classify(images)[1]


def recipe(num_steps: int = STEPS) -> classifiers.Recipe:
  """The evaluator's recipe (EvaluatorCNN, 128 a batch, +-2 px shifts) with num_steps steps."""
  return dataclasses.replace(classifiers.EVALUATOR_RECIPE, num_steps=num_steps)


def check_steps(num_steps: int, kind: str) -> None:
  """ConfigError in one line unless num_steps >= 1, and given (not STEPS) only for the CNN."""
  if num_steps < 1:
    raise ConfigError(f"--cnn_steps={num_steps}: give a number of training steps >= 1 (the recipe's: {STEPS})")
  if num_steps != STEPS and kind != "cnn":
    raise ConfigError(f"--cnn_steps={num_steps} needs --recognizer=cnn: the critic is not trained here")


def teaching_set(critic, few: labelled.FewLabels) -> tuple[np.ndarray, np.ndarray]:
  """(images, labels): the labelled few with their labels, then every other training image with the critic's digit
  (its argmax; `critic` is a recognizer.Recognizer or anything with its predict)."""
  images = np.concatenate([few.labelled_images, few.unlabelled_images])
  return images, np.concatenate([few.labelled_labels, critic.predict(few.unlabelled_images)])


def provenance(config: ml_collections.ConfigDict, critic_step: int, cnn_recipe: classifiers.Recipe) -> dict:
  """What a kept CNN was trained from: the critic's checkpoint, the labelled few, the data and the recipe. A kept
  CNN is reused only when all of it matches (the workdir's path is recorded but may move)."""
  return {
    "critic_step": critic_step,
    "labels_per_class": config.labels_per_class,
    "label_seed": config.label_seed,
    "train_subset": config.get("train_subset"),
    "examples_per_class": config.get("examples_per_class"),
    "recipe": cnn_recipe.to_dict(),
    "key": f"jax.random.key({config.label_seed})",
  }


class ProgressLines:
  """on_step for classifiers.train_classifier: a line every every_s seconds and at the end, with the rate and ETA
  measured from the end of the first step (its compilation left out)."""

  def __init__(self, total_steps: int, batch_size: int, every_s: float = PROGRESS_EVERY_S):
    self.total_steps, self.batch_size, self.every_s = total_steps, batch_size, every_s
    self.started = self.last_line = None

  def __call__(self, step: int, params: PyTree) -> None:
    if self.started is None:
      jax.block_until_ready(params)
      self.started = self.last_line = time.perf_counter()
      return
    if time.perf_counter() - self.last_line < self.every_s and step < self.total_steps:
      return
    jax.block_until_ready(params)
    self.last_line = time.perf_counter()
    rate = (step - 1) / max(self.last_line - self.started, 1e-9)
    eta = metric_writers.format_duration((self.total_steps - step) / rate)
    done = f"{step}/{self.total_steps} ({100 * step / self.total_steps:.1f}%)"
    print(f"cnn step {done} | {rate * self.batch_size:.0f} img/s | eta {eta}", flush=True)


def train(critic, few: labelled.FewLabels, cnn_recipe: classifiers.Recipe, on_step=None) -> PyTree:
  """The CNN's params, trained from scratch on teaching_set with key jax.random.key(few.label_seed)."""
  images, labels = teaching_set(critic, few)
  return classifiers.train_classifier(cnn_recipe, images, labels, jax.random.key(few.label_seed), on_step=on_step)


def keep(workdir: str, params: PyTree, record: dict) -> str:
  """Write the CNN's params and its record (provenance and measures, JSON) to <workdir>/KEPT_FILE, atomically."""
  path = os.path.join(workdir, KEPT_FILE)
  files.write_npz(path, params=self_training.params_to_bytes(params), provenance=np.array(json.dumps(record)))
  return path


def read_kept(workdir: str, wanted: dict) -> tuple[CnnRecognizer, dict] | None:
  """(the kept CNN, its record) if <workdir>/KEPT_FILE reads and was trained from `wanted` (provenance), else None
  (with a line saying why, when a file was there)."""
  kept = files.read_npz(os.path.join(workdir, KEPT_FILE))
  if kept is None:
    return None
  try:
    record = json.loads(str(kept["provenance"]))
    found = {name: record.get(name) for name in wanted}
    if found != wanted:
      changed = ", ".join(
        f"{name} {found[name]!r} -> {wanted[name]!r}" for name in wanted if found[name] != wanted[name]
      )
      logging.warning("%s was trained from another critic or recipe (%s); it is trained afresh", KEPT_FILE, changed)
      return None
    cnn_recipe = recipe(wanted["recipe"]["num_steps"])
    return CnnRecognizer(cnn_recipe, self_training.params_from_bytes(cnn_recipe, kept["params"])), record
  except (KeyError, ValueError, TypeError) as e:  # a record or params of another layout
    logging.warning("%s does not read (%r); it is trained afresh", KEPT_FILE, e)
    return None


def load_or_train(workdir: str, num_steps: int = STEPS) -> tuple[ml_collections.ConfigDict, CnnRecognizer, dict, bool]:
  """(the run's config, the CNN, its record, whether it was trained now) for the run's newest verified checkpoint:
  the kept one if it matches (read_kept), else trained (progress lines) and kept with its wall time."""
  config, critic, step = recognizer.load(workdir)
  return config, *for_critic(workdir, config, critic, step, num_steps)


def for_critic(workdir: str, config, critic, critic_step: int, num_steps: int) -> tuple[CnnRecognizer, dict, bool]:
  """(the CNN, its record, whether it was trained now) that `critic`, the run's averaged critic at critic_step,
  teaches: load_or_train for a run already loaded."""
  cnn_recipe = recipe(num_steps)
  wanted = provenance(config, critic_step, cnn_recipe)
  kept = read_kept(workdir, wanted)
  if kept is not None:
    return *kept, False
  start = time.perf_counter()
  few = labelled.split(*mnist.load_split(config, "train"), config.labels_per_class, config.label_seed)
  print(
    f"training the CNN on the critic's labels (step {critic_step}): {num_steps} steps x {cnn_recipe.batch_size}",
    flush=True,
  )
  params = train(critic, few, cnn_recipe, ProgressLines(num_steps, cnn_recipe.batch_size))
  record = wanted | {"workdir": os.path.abspath(workdir), "train_s": round(time.perf_counter() - start, 1)}
  keep(workdir, params, record)
  return CnnRecognizer(cnn_recipe, params), record, True
