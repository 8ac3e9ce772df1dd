"""The semi-supervised GAN's critic as a digit recognizer a user can run: class probabilities of uint8 images, a
test report (accuracy, errors per 10k, confusion matrix), a user's .npz read with one-line errors, and a
`Naming` through which the critic names a generator's samples (its clusters, if it has any) and checks each one.

The recognizer evaluates with the parameters the run evaluates with (the critic's EMA), noise off. Its
probabilities are the softmax of the K class logits: P(digit | the image is real).
"""

import dataclasses
import functools
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ganjax import cli, files
from ganjax.data.mnist import IMAGE_SHAPE, NUM_DIGITS
from ganjax.errors import ConfigError, DataError, WorkdirError
from ganjax.eval import metrics
from ganjax.few_labels import naming as naming_lib
from ganjax.ssl import experiment, steps

PyTree = Any
REPORT_FILES = {"critic": "recognition.json", "cnn": "recognition_cnn.json"}  # in the run's workdir, per recognizer
RECOGNIZERS = {"critic": "the run's averaged critic", "cnn": "the strong CNN the critic teaches (cnn_recognizer.py)"}
IMAGE_KEYS = ("images", "x")  # the array a user's .npz holds its images under, when it holds several


@functools.partial(jax.jit, static_argnums=0)
def _probabilities_and_digits(setup: steps.SslSetup, params, frozen, images: jax.Array):
  logits = steps.apply_critic(setup, params, frozen, steps.to_unit_images(images), None).logits
  return jax.nn.softmax(logits, axis=-1), jnp.argmax(logits, axis=-1)


@dataclasses.dataclass(frozen=True)
class Recognizer:
  """A trained critic (setup.critic with `params` and `frozen`) that names the digit of uint8 images."""

  setup: steps.SslSetup
  params: PyTree  # the parameters the run evaluates with: steps.averaged_critic_params
  frozen: PyTree  # the state's critic_frozen
  batch_size: int = 1000  # every batch is padded to this size: one compilation whatever N

  def classify(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities float32 [N, K], digits int32 [N]) in one pass: see probabilities and predict."""
    images = as_image_batch(images)
    probabilities, digits = [], []
    for start in range(0, len(images), self.batch_size):
      chunk = images[start : start + self.batch_size]
      padded = np.pad(chunk, ((0, self.batch_size - len(chunk)), (0, 0), (0, 0), (0, 0)))
      p, d = _probabilities_and_digits(self.setup, self.params, self.frozen, padded)
      probabilities.append(np.asarray(p[: len(chunk)], np.float32))
      digits.append(np.asarray(d[: len(chunk)], np.int32))
    empty = (np.zeros((0, self.setup.critic.num_classes), np.float32), np.zeros(0, np.int32))
    return (np.concatenate(probabilities), np.concatenate(digits)) if len(images) else empty

  @property
  def num_classes(self) -> int:
    return self.setup.critic.num_classes

  def probabilities(self, images: np.ndarray) -> np.ndarray:
    """float32 [N, K]: the softmax of the critic's K logits (noise off) for uint8 [N, 28, 28(, 1)] images."""
    return self.classify(images)[0]

  def predict(self, images: np.ndarray) -> np.ndarray:
    """int32 [N]: the digit of each image, the argmax of the logits (as steps.critic_accuracy counts it)."""
    return self.classify(images)[1]


def from_state(setup: steps.SslSetup, state: steps.SslState) -> Recognizer:
  """The recognizer of a run's state: its EMA critic, as the run evaluates."""
  return Recognizer(setup, steps.averaged_critic_params(setup, state), state.critic_frozen)


def as_image_batch(images: np.ndarray) -> np.ndarray:
  """uint8 [N, 28, 28, 1] from uint8 [N, 28, 28] or [N, 28, 28, 1]; ValueError otherwise."""
  images = np.asarray(images)
  if images.dtype != np.uint8 or images.shape[1:] not in (IMAGE_SHAPE, IMAGE_SHAPE[:2]):
    raise ValueError(f"expected uint8 images [N, 28, 28] or [N, 28, 28, 1], got {images.dtype} {images.shape}")
  return images.reshape(len(images), *IMAGE_SHAPE)


def report(recognizer, images: np.ndarray, labels: np.ndarray) -> dict:
  """accuracy, errors_per_10k, num_images, num_errors, confusion (rows: true digit, columns: predicted) and
  per_digit_accuracy (None for a digit with no image) of a recognizer (a Recognizer or anything with its
  predict and num_classes, e.g. cnn_recognizer.CnnRecognizer) on labelled images."""
  labels = np.asarray(labels, np.int64)
  predicted = recognizer.predict(images)
  num_classes = recognizer.num_classes
  if labels.shape != predicted.shape or not len(labels):
    raise ValueError(f"{len(predicted)} images and labels of shape {labels.shape}: give one label per image, N >= 1")
  if labels.min() < 0 or labels.max() >= num_classes:
    raise ValueError(f"labels must lie in [0, {num_classes}), got [{labels.min()}, {labels.max()}]")
  confusion = metrics.confusion_matrix(labels, predicted, num_classes)
  num_correct = int(np.trace(confusion))
  num_errors = len(labels) - num_correct
  per_digit = [int(confusion[d, d]) / int(row) if row else None for d, row in enumerate(confusion.sum(axis=1))]
  return {
    "accuracy": num_correct / len(labels),
    "errors_per_10k": num_errors * 10_000 / len(labels),  # exact for 10k images (238.0, not 238.00000000000003)
    "num_images": len(labels),
    "num_errors": num_errors,
    "confusion": confusion.tolist(),
    "per_digit_accuracy": per_digit,
  }


def label_images(recognizer, images: np.ndarray) -> dict[str, np.ndarray]:
  """labels int32 [N] and probabilities float32 [N, K] of a user's images."""
  probabilities, digits = recognizer.classify(images)
  return {"labels": digits, "probabilities": probabilities}


def read_user_images(path: str) -> np.ndarray:
  """uint8 [N, 28, 28, 1] from an .npz holding one array (or several, one named images or x) of uint8 [N, 28, 28]
  or [N, 28, 28, 1], N >= 1; DataError in one line naming the file, the bad value and what is allowed."""
  allowed = "uint8 pixels 0..255 of shape [N, 28, 28] or [N, 28, 28, 1], N >= 1"
  if not os.path.isfile(path):
    raise DataError(f"--images={path} is not a file; give an .npz of {allowed}")
  try:
    loaded = np.load(path, allow_pickle=False)
  except (OSError, ValueError) as e:  # neither a zip nor an .npy file
    raise DataError(f"{path} cannot be read as an .npz ({type(e).__name__}); give an .npz of {allowed}") from e
  if not isinstance(loaded, np.lib.npyio.NpzFile):
    raise DataError(f"{path} is an .npy, not an .npz; give an .npz of {allowed} (np.savez(path, images=...))")
  try:
    with loaded:
      arrays = {name: loaded[name] for name in loaded.files}
  except ValueError as e:  # an object array, which would need pickle
    raise DataError(f"{path}: {e}; give an .npz of {allowed}") from e
  named = [name for name in IMAGE_KEYS if name in arrays]
  if len(arrays) != 1 and not named:
    raise DataError(f"{path} holds arrays {sorted(arrays)}; give one array, or name the images 'images' or 'x'")
  name = named[0] if named else next(iter(arrays))
  images = arrays[name]
  where = f"{path}: array {name!r}"
  if images.dtype != np.uint8:
    hint = " (scale floats in [0, 1] by 255 and round)" if images.dtype.kind == "f" else ""
    raise DataError(f"{where} has dtype {images.dtype}; give {allowed}{hint}")
  if images.shape[1:] not in (IMAGE_SHAPE, IMAGE_SHAPE[:2]) or not len(images):
    raise DataError(f"{where} has shape {list(images.shape)}; give {allowed}")
  return as_image_batch(images)


@dataclasses.dataclass(frozen=True)
class CriticNaming:
  """A `conditioning.Naming` whose classifier is a semi-supervised critic: a generator's sample of digit d is kept
  if the critic reads d with probability >= min_confidence. Without a cluster table the generator is
  unconditional: its model label is ignored (zeros) and every digit comes from redrawing until the critic
  agrees; with one, d's cluster is drawn from P(cluster | d) as ganjax/few_labels/naming.py draws it."""

  recognizer: Recognizer
  min_confidence: float = 0.5  # as config.few_labels_min_confidence: > 0.5 means the critic reads d
  source: dict = dataclasses.field(default_factory=dict)  # where the critic came from (its workdir, step)
  cluster_given_digit: np.ndarray | None = None  # float32 [10, K]: each row sums to 1
  namer: str = "semi_supervised_critic"  # what names the samples, in provenance (the CNN it teaches: synthesis.py)

  @property
  def provenance(self) -> dict:
    return {"namer": self.namer, "min_confidence": self.min_confidence, **self.source}

  def draw_clusters(self, key: jax.Array, digits: np.ndarray) -> np.ndarray:
    """int32 [N]: zeros for an unconditional generator (its label is ignored), else clusters drawn for digits."""
    digits = np.asarray(digits, np.int32)
    if self.cluster_given_digit is None:
      return np.zeros(len(digits), np.int32)
    logits = jnp.log(jnp.asarray(self.cluster_given_digit)[digits])  # log 0 = -inf: never drawn
    return np.asarray(jax.random.categorical(key, logits), np.int32)

  def accepts(self, images_uint8: np.ndarray, digits: np.ndarray) -> np.ndarray:
    """bool [N]: the critic predicts image i's digit, with probability >= min_confidence."""
    probabilities, predicted = self.recognizer.classify(images_uint8)
    digits = np.asarray(digits)
    return (predicted == digits) & (probabilities[np.arange(len(digits)), digits] >= self.min_confidence)


def name_clusters(
  naming: CriticNaming,
  images: np.ndarray,
  assignments: np.ndarray,
  num_clusters: int,
  labelled_indices: np.ndarray | None = None,
  labelled_labels: np.ndarray | None = None,
) -> CriticNaming:
  """`naming` with the clusters of a label-free GAN named: P(cluster | d) is the share of the training images
  labelled d that fall in each cluster (`assignments`: each image's cluster, in `images` order). An image is
  labelled by the critic's digit (its argmax), except the labelled few (`labelled_indices`, positions in
  `images`), which keep their `labelled_labels`, as ganjax/few_labels/naming.py's name labels them."""
  digits = naming.recognizer.predict(images)
  if labelled_indices is not None:
    digits[np.asarray(labelled_indices)] = np.asarray(labelled_labels, np.int32)
  table = naming_lib.cluster_given_digit(assignments, digits, num_clusters)
  return dataclasses.replace(naming, cluster_given_digit=table)


def check_request(workdir: str | None, images: str | None, out: str | None, kind: str = "critic") -> str:
  """The file recognize.py writes (given --out; with --images, default <images>_labels.npz; else the run's
  report, REPORT_FILES[kind]), or a one-line error for flags that cannot work: before any slow loading."""
  if kind not in RECOGNIZERS:
    allowed = "; ".join(f"{name}: {what}" for name, what in RECOGNIZERS.items())
    raise ConfigError(f"--recognizer={kind} is not one of {', '.join(RECOGNIZERS)} ({allowed})")
  if not workdir:
    raise ConfigError("--workdir is required: the semi-supervised GAN run whose critic recognizes the digits")
  if not os.path.isdir(workdir):
    raise WorkdirError(f"--workdir={workdir} is not a directory; give a semi-supervised GAN run's --workdir")
  if out is not None and images is None:
    raise ConfigError(f"--out={out} needs --images: a run's report always goes to <workdir>/{REPORT_FILES[kind]}")
  if images is None:
    out = os.path.join(workdir, REPORT_FILES[kind])
    cli.check_output_path("the report", out, ".json")
    return out
  out = out if out is not None else os.path.splitext(images)[0] + "_labels.npz"
  cli.check_output_path("--out", out, ".npz")
  if os.path.exists(out) and os.path.exists(images) and os.path.samefile(out, images):
    raise ConfigError(f"--out={out} is the --images file; give another path, or the images would be overwritten")
  return out


def write_labels(path: str, labelled: dict[str, np.ndarray], provenance: dict) -> None:
  """<path>.npz with labels, probabilities and provenance (JSON), written atomically."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with files.atomic_path(path) as tmp, open(tmp, "wb") as f:
    np.savez(f, **labelled, provenance=np.array(json.dumps(provenance)))


def load(workdir: str) -> tuple[Any, Recognizer, int]:
  """(config, recognizer, step) of a semi-supervised GAN run's newest verified checkpoint."""
  config, setup, state = experiment.load_recognizer_parts(workdir)
  return config, from_state(setup, state), int(state.step)


def format_confusion(confusion: list[list[int]]) -> str:
  """The confusion matrix as a table: a row per true digit, a column per predicted digit; zero errors as '.'."""
  num_classes = len(confusion)
  width = max(5, max(len(str(v)) for row in confusion for v in row) + 1)
  lines = ["true\\pred" + "".join(f"{d:>{width}}" for d in range(num_classes))]
  for d, row in enumerate(confusion):
    lines.append(f"{d:>9}" + "".join(f"{v:>{width}}" if v or d == p else f"{'.':>{width}}" for p, v in enumerate(row)))
  return "\n".join(lines)


def digit_histogram(labels: np.ndarray, num_classes: int = NUM_DIGITS) -> str:
  """'0: n0  1: n1  ...': how many images were labelled each digit."""
  counts = np.bincount(np.asarray(labels), minlength=num_classes)
  return "  ".join(f"{d}: {n}" for d, n in enumerate(counts))
