"""The benchmark classifier's ceiling: SmallCNN (2000 steps x 64) on all 60k true labels, plain and with
classic augmentation; what any few-labels treatment could reach with perfect labels.

  python experiments/classifier_ceiling.py --out=experiments/results/few_labels/classifier_ceiling.jsonl  # ~9 min
"""

import json
import os
import sys
import time

import jax
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import default
from ganjax.data import mnist
from ganjax.eval import classifiers
from ganjax.few_labels import naming

_OUT = flags.DEFINE_string("out", "experiments/results/few_labels/classifier_ceiling.jsonl", "JSON lines to append to.")
_SEED = flags.DEFINE_integer("seed", 0, "Classifier seed.")


def main(argv):
  del argv
  config = default.get_config()
  train, test = mnist.load_split(config, "train"), mnist.load_split(config, "test")
  recipe = classifiers.SMALL_CNN_RECIPE
  for name, augment in (("none", None), ("classic", naming.CLASSIC)):
    start = time.perf_counter()
    params = classifiers.train_classifier(recipe, *train, jax.random.key(_SEED.value), augment)
    accuracy = classifiers.accuracy(recipe.model, params, *test)
    row = {"train": "all 60k true labels", "augment": name, "steps": recipe.num_steps, "seed": _SEED.value}
    row |= {"accuracy": accuracy, "wall_s": round(time.perf_counter() - start)}
    with open(_OUT.value, "a") as f:
      f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
  app.run(main)
