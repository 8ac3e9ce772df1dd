"""The shipped MNIST evaluator: trained EvaluatorCNN weights in ganjax/assets/, built once, verified on load.

Sample metrics (class-conditional accuracy, Frechet/feature distances, inception-style scores) must use one
fixed network so numbers are comparable across runs and machines; the sha256 in evaluator.json pins it.
Rebuild with `python build_evaluator.py` (TFDS_DATA_DIR pointing at prepared MNIST).
"""

import dataclasses
import datetime
import hashlib
import json
import os
import time
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from ganjax import files
from ganjax.data import mnist
from ganjax.errors import GanjaxError
from ganjax.eval import classifiers

ASSET_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
WEIGHTS_FILE = "evaluator.msgpack"
INFO_FILE = "evaluator.json"
DEFAULT_PATH = os.path.join(ASSET_DIR, WEIGHTS_FILE)
MIN_TEST_ACCURACY = 0.993  # below this the evaluator's judgement of samples is too noisy to ship
REBUILD_COMMAND = "TFDS_DATA_DIR=<dir with prepared MNIST> python build_evaluator.py"


class EvaluatorError(GanjaxError):
  """The evaluator weights are missing, do not match their recorded hash, or did not train well enough."""


@dataclasses.dataclass(frozen=True)
class Evaluator:
  """Frozen weights of the evaluator network; images are uint8 [N, 28, 28, 1] (or float in [-1, 1])."""

  model: classifiers.EvaluatorCNN
  params: Any
  sha256: str  # of the msgpack bytes: name this in results to say which evaluator produced them

  def logits(self, images_uint8: np.ndarray) -> np.ndarray:
    """float32 [N, 10]."""
    return classifiers.predict_logits(self.model, self.params, images_uint8)

  def probabilities(self, images_uint8: np.ndarray) -> np.ndarray:
    """float32 [N, 10], rows summing to 1."""
    return _softmax(self.logits(images_uint8))

  def features(self, images_uint8: np.ndarray) -> np.ndarray:
    """float32 [N, 128]: the penultimate layer, the embedding for Frechet-style distances."""
    return classifiers.features(self.model, self.params, images_uint8)

  def features_and_probabilities(self, images_uint8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both from one forward pass (the metrics need both of every sample set)."""
    logits, features = classifiers.logits_and_features(self.model, self.params, images_uint8)
    return features, _softmax(logits)


def _softmax(logits: np.ndarray) -> np.ndarray:
  return np.asarray(jax.nn.softmax(jnp.asarray(logits), axis=-1))


def _info_path(weights_path: str) -> str:
  return os.path.join(os.path.dirname(weights_path), INFO_FILE)


def load(path: str | None = None) -> Evaluator:
  """The evaluator at `path` (default: the shipped ganjax/assets/evaluator.msgpack), its hash verified
  against the evaluator.json beside it."""
  path = os.path.abspath(path or DEFAULT_PATH)
  info_path = _info_path(path)
  for needed in (path, info_path):
    if not os.path.exists(needed):
      raise EvaluatorError(f"evaluator file {needed} is missing; rebuild it (a few minutes) with: {REBUILD_COMMAND}")
  with open(path, "rb") as f:
    blob = f.read()
  with open(info_path) as f:
    expected = json.load(f)["sha256"]
  actual = hashlib.sha256(blob).hexdigest()
  if actual != expected:
    raise EvaluatorError(
      f"evaluator weights {path} have sha256 {actual}, but {info_path} records {expected}: the file is corrupt "
      f"or from another build; rebuild with: {REBUILD_COMMAND}"
    )
  model = classifiers.EvaluatorCNN()
  target = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, *classifiers.IMAGE_SHAPE))))["params"]
  try:
    params = flax.serialization.from_bytes(target, blob)
    jax.tree.map(lambda t, p: _check_shape(t.shape, np.shape(p)), target, params)
  except (ValueError, KeyError) as e:
    raise EvaluatorError(f"evaluator weights {path} do not fit EvaluatorCNN ({e}); rebuild: {REBUILD_COMMAND}") from e
  return Evaluator(model=model, params=jax.tree.map(jnp.asarray, params), sha256=actual)


def _check_shape(expected: tuple, actual: tuple) -> None:
  if tuple(expected) != tuple(actual):
    raise ValueError(f"a parameter has shape {actual}, expected {expected}")


def _check_out_dir(out_dir: str) -> None:
  """Fail before minutes of training, not after."""
  try:
    os.makedirs(out_dir, exist_ok=True)
  except OSError as e:
    raise EvaluatorError(f"cannot create output directory {out_dir}: {e.strerror}") from e
  if not os.access(out_dir, os.W_OK):
    raise EvaluatorError(f"output directory {out_dir} is not writable")


def train_and_save(
  config: ml_collections.ConfigDict,
  out_dir: str,
  seed: int = 0,
  recipe: classifiers.Recipe = classifiers.EVALUATOR_RECIPE,
  min_accuracy: float = MIN_TEST_ACCURACY,
) -> dict:
  """Train `recipe` on MNIST train (config's data settings), test it, write evaluator.msgpack + .json.

  Returns the info written to the json. Raises EvaluatorError (writing nothing) if the test accuracy is
  below `min_accuracy`; tests pass a tiny recipe and a lower bar.
  """
  out_dir = os.path.abspath(out_dir)
  _check_out_dir(out_dir)
  start = time.time()
  images, labels = mnist.load_split(config, "train")
  logging.info(
    "training %s for %d steps of %d images", type(recipe.model).__name__, recipe.num_steps, recipe.batch_size
  )
  params = classifiers.train_classifier(recipe, images, labels, jax.random.key(seed))
  test_images, test_labels = mnist.load_split(config, "test")
  test_accuracy = classifiers.accuracy(recipe.model, params, test_images, test_labels)
  if test_accuracy < min_accuracy:
    raise EvaluatorError(
      f"evaluator reached {test_accuracy:.4%} test accuracy, below the required {min_accuracy:.2%}; "
      "train longer (classifiers.EVALUATOR_RECIPE) or try another --seed"
    )
  blob = flax.serialization.to_bytes(jax.device_get(params))
  info = {
    "sha256": hashlib.sha256(blob).hexdigest(),
    "test_accuracy": test_accuracy,
    "num_train_examples": len(labels),
    "num_test_examples": len(test_labels),
    "recipe": recipe.to_dict(),
    "seed": seed,
    "jax_version": jax.__version__,
    "flax_version": flax.__version__,
    "device": jax.devices()[0].device_kind,
    "build_seconds": round(time.time() - start, 1),
    "built": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
  }
  files.atomic_write(os.path.join(out_dir, WEIGHTS_FILE), blob)
  files.atomic_write(os.path.join(out_dir, INFO_FILE), (json.dumps(info, indent=2) + "\n").encode())
  return info
