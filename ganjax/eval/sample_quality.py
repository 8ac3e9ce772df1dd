"""Evaluate a generator: N samples vs the 10k MNIST test images on the metrics of ganjax/metrics.py.

Used during training (config.eval_every_epochs, config.eval_at_end) and by `python evaluate.py` on any
checkpoint or exported .npz. The real side (evaluator features, statistics, k-NN radii of the test set) is
computed once per process and reused.
"""

import dataclasses
import json
import numbers
import os
from collections.abc import Callable

import jax
import ml_collections
import numpy as np

from ganjax import conditioning, files, saved_run, steps
from ganjax.data import mnist
from ganjax.eval import classifiers, metrics
from ganjax.synth import generation


@dataclasses.dataclass(frozen=True)
class Evaluation:
  """The fixed things every evaluation compares against: the evaluator and the real test set."""

  evaluator: metrics.FeatureClassifier  # ganjax.eval.evaluator.Evaluator, the shipped network
  reference: metrics.RealReference
  test_labels: np.ndarray

  @classmethod
  def create(cls, config: ml_collections.ConfigDict, evaluator=None) -> "Evaluation":
    if evaluator is None:
      from ganjax.eval import evaluator as evaluator_lib

      evaluator = evaluator_lib.load()
    test_images, test_labels = mnist.load_split(config, "test")
    return cls(evaluator, metrics.real_reference(evaluator, test_images), test_labels)

  def evaluate_images(self, images: np.ndarray, labels: np.ndarray | None, cas_key: jax.Array | None = None) -> dict:
    """Metrics of uint8 samples (with their intended labels for a conditional generator)."""
    return metrics.evaluate_samples(
      self.evaluator,
      images,
      self.reference,
      intended_labels=labels,
      cas_key=cas_key if labels is not None else None,
      real_labels=self.test_labels if (cas_key is not None and labels is not None) else None,
    )

  def evaluate_state(
    self,
    setup: steps.GanSetup,
    state: steps.TrainState,
    config: ml_collections.ConfigDict,
    key: jax.Array,
    use_ema: bool = True,
    naming=None,
    cas_if: Callable[[dict], bool] | None = None,
  ) -> dict:
    """Metrics of config.eval_num_samples fresh samples (class-balanced when conditional on the digit; a
    self-conditioned run is evaluated as the unconditional model it is). A few_labels run needs its `naming`,
    whose provenance (labels_per_class, label_seed, labelled images) goes into the result.

    CAS (labelled samples only) with config.eval_cas, or, without it, if cas_if(the other metrics) holds: of the
    same samples, without computing the others again (CAS trains a classifier: minutes on a CPU)."""
    num_digits = setup.conditioning.num_digits
    labels = conditioning.balanced_labels(config.eval_num_samples, num_digits) if num_digits else None
    images = generation.generate(setup, state, key, config.eval_num_samples, labels, use_ema, naming=naming)
    cas_key = jax.random.fold_in(key, 1)
    result = self.evaluate_images(images, labels, cas_key if config.eval_cas else None)
    if labels is not None and not config.eval_cas and cas_if is not None and cas_if(result):
      test_set = (self.reference.images, self.test_labels)
      result["cas"] = float(classifiers.classification_accuracy_score(images, labels, *test_set, cas_key))
    result["ema"] = bool(use_ema and state.generator_ema_params is not None)
    if naming is not None:
      result["few_labels"] = naming.provenance
    return result


def scalars(result: dict, prefix: str = "eval_") -> dict[str, float]:
  """The scalar entries of an evaluation, prefixed, for metrics.jsonl and TensorBoard."""
  return {
    prefix + k: float(v)
    for k, v in result.items()
    if isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
  }


SUMMARY_KEYS = ("fid", "classifier_score", "precision", "recall", "min_class_share", "label_agreement", "cas")


def summary_line(result: dict) -> str:
  """'fid 12.3 classifier_score 9.61 precision 0.81 ...' for a log line."""
  return " ".join(f"{k} {result[k]:.4g}" for k in SUMMARY_KEYS if k in result)


def write_json(path: str, result: dict) -> None:
  """Atomically: a crash never leaves a half-written result. Missing parent directories are created."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  files.atomic_write(path, json.dumps(result, indent=2, sort_keys=True))


def read_json(workdir: str) -> dict | None:
  path = os.path.join(workdir, saved_run.EVAL_FILE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)
