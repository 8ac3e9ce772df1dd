"""What the sample metrics read on reference image sets, so that a GAN's numbers can be judged.

  TFDS_DATA_DIR=/work/shared/tensorflow_datasets python experiments/calibration.py
  TFDS_DATA_DIR=/work/shared/tensorflow_datasets python experiments/calibration.py --cas --num_samples=10000

Each row scores --num_samples images against the 10k MNIST test images with ganjax.eval.metrics.evaluate_samples
and the shipped evaluator (ganjax.eval.evaluator): random training images (what a perfect generator scores: the
floor of FID at this sample size and the ceiling of everything else), the same images 3x3 box-blurred, with
Gaussian noise of sigma 0.1 and 0.3 (in the GAN's [-1, 1] units, clipped), digits 0-4 only (half the modes
dropped), one digit only (complete mode collapse) and uniform pixel noise. Label agreement (and CAS, with
--cas: a classifier trained on the set and tested on the test images) use the sets' true labels. Writes
calibration.md and calibration.jsonl to --out_dir, every row naming the evaluator's sha256.

Reading it (experiments/results/calibration.md, 2 CPU cores, ~1 min without --cas; CAS adds ~2 min a row):
real data scores FID ~2, score ~9.9, precision and recall ~0.87. k-NN precision alone is fooled by
uniform noise (0.74): the evaluator maps noise to one tight cluster (all classified '8') beside atypical real
8s whose k-NN balls are wide; recall 0, score 1 and FID ~900 give it away. Read the metrics together.
"""

import json
import os
import sys
import time

import jax
from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from configs import default
from ganjax.data import mnist
from ganjax.eval import calibration, metrics
from ganjax.eval import evaluator as evaluator_lib

_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 10000, "Images per reference set.")
_SEED = flags.DEFINE_integer("seed", 0, "Root of the sets' random draws and of the CAS classifiers.")
_CAS = flags.DEFINE_bool(
  "cas", False, "Also the classification accuracy score (one classifier training, ~2 min on 2 cores, per row)."
)
_OUT_DIR = flags.DEFINE_string("out_dir", os.path.join(ROOT, "experiments", "results"), "Output directory.")


def main(argv):
  del argv
  config = default.get_config()
  train_images, train_labels = mnist.load_split(config, "train")
  test_images, test_labels = mnist.load_split(config, "test")
  evaluator = evaluator_lib.load()
  reference = metrics.real_reference(evaluator, test_images)
  root = jax.random.key(_SEED.value)
  sets = calibration.reference_sets(train_images, train_labels, _NUM_SAMPLES.value, jax.random.fold_in(root, 0))
  os.makedirs(_OUT_DIR.value, exist_ok=True)
  rows = []
  with open(os.path.join(_OUT_DIR.value, "calibration.jsonl"), "w") as jsonl:
    for index, (name, (images, labels)) in enumerate(sets.items()):
      start = time.perf_counter()
      cas_key = jax.random.fold_in(jax.random.fold_in(root, 1), index) if _CAS.value else None
      results = metrics.evaluate_samples(evaluator, images, reference, labels, cas_key, test_labels)
      row = {"set": name, "seed": _SEED.value, **results, "seconds": round(time.perf_counter() - start, 1)}
      print(json.dumps({k: v for k, v in row.items() if k != "class_shares"}), flush=True)
      jsonl.write(json.dumps(row) + "\n")
      rows.append(row)
  table = calibration.markdown(rows)
  with open(os.path.join(_OUT_DIR.value, "calibration.md"), "w") as f:
    f.write(table)
  print(table)
  print(f"wrote {_OUT_DIR.value}/calibration.{{md,jsonl}}")


if __name__ == "__main__":
  app.run(main)
