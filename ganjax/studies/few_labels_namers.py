"""The few-labels benchmark's namers: each labelled subset's self-trained classifier, kept on disk.

A namer names the label-free GAN's clusters and checks its samples (few_labels/naming); it is trained once per
subset and self-training recipe, every round's classifier tested, and read back by later invocations (e.g. the
one with the GAN) instead of being trained again.
"""

import dataclasses
import os
import time

import numpy as np

from ganjax import files
from ganjax.data import labelled
from ganjax.eval import classifiers
from ganjax.few_labels import naming, self_training


@dataclasses.dataclass(frozen=True)
class Namer:
  """A subset's self-trained classifier, kept so that a later invocation (e.g. with the GAN) reuses it."""

  result: self_training.Result
  round_accuracies: list[float]  # test accuracy of each round's classifier
  wall_s: float


def namer_path(st: self_training.SelfTraining, directory: str, few: labelled.FewLabels) -> str:
  labeller = "" if st.labeller == "classifier" else f"_{st.labeller}"  # the classifier's: older names
  name = f"N{few.labels_per_class}_s{few.label_seed}_r{st.rounds}_c{st.classifier_steps}{labeller}.npz"
  return os.path.join(directory, name)


def ensure_namer(st: self_training.SelfTraining, directory: str, few: labelled.FewLabels, test_set) -> Namer:
  """The subset's namer in `directory`: read back, or self-trained (every round tested) and kept (also in place of a
  torn file)."""
  path = namer_path(st, directory, few)
  recipe = st.recipe
  kept = files.read_npz(path)  # None: none yet, or torn (trained afresh)
  if kept is not None:
    params = self_training.params_from_bytes(recipe, kept["params"])
    result = self_training.Result(recipe, params, kept["pseudo_labels"], kept["confidences"], tuple(kept["kept"]))
    return Namer(result, [float(a) for a in kept["round_accuracies"]], float(kept["wall_s"]))
  accuracies, start = [], time.perf_counter()
  test = lambda r, params: accuracies.append(classifiers.accuracy(recipe.model, params, *test_set))
  result = naming.train_namer(few, st, test)
  namer = Namer(result, accuracies, round(time.perf_counter() - start, 1))
  os.makedirs(os.path.dirname(path), exist_ok=True)
  files.write_npz(
    path,
    params=self_training.params_to_bytes(result.params),
    pseudo_labels=result.pseudo_labels,
    confidences=result.confidences,
    kept=np.asarray(result.kept_per_round),
    round_accuracies=np.asarray(accuracies),
    wall_s=namer.wall_s,
  )
  return namer
