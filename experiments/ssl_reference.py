"""The semi-supervised GAN's reference recipe (Improved GAN, feature matching) on MNIST: test accuracy per epoch.

  python experiments/ssl_reference.py --num_epochs=64 --out_dir=experiments/results/ssl_gan/reference_cpu2
  python experiments/ssl_reference.py --num_epochs=1 --iterations_per_epoch=5 --out_dir=/tmp/ssl   # seconds

Trains ganjax.ssl's reference critic and generator (ganjax/ssl/driver.py) with --labels_per_class labels per
digit drawn as the few-labels mode draws them, and writes <out_dir>/curve.jsonl (one line per epoch: training
metrics, seconds, the live / averaged / debiased-averaged critic's test accuracy) and curve.png (against the
published curve of a faithful port). A stepping stone until the mode runs through ganjax.train: not resumable.
"""

import json
import os
import sys
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ganjax import config_defaults
from ganjax.ssl import driver
from ganjax.studies import cells

_EPOCHS = flags.DEFINE_integer("num_epochs", 64, "Epochs of --iterations_per_epoch iterations.")
_ITERATIONS = flags.DEFINE_integer("iterations_per_epoch", 600, "Iterations per epoch (the reference: 600).")
_LABELS = flags.DEFINE_integer("labels_per_class", 10, "Labelled images per digit.")
_LABEL_SEED = flags.DEFINE_integer("label_seed", 0, "Which labelled subset (as few_labels draws it).")
_SEED = flags.DEFINE_integer("seed", 0, "Weights, noise and batch order.")
_OUT_DIR = flags.DEFINE_string("out_dir", "", "Where curve.jsonl and curve.png go.")

# A faithful port's averaged-weights test accuracy (hiroharu-kato/improved_gan_chainer's log; issue 35).
PUBLISHED_CURVE = {1: 0.69, 13: 0.90, 31: 0.972, 43: 0.980, 64: 0.985, 115: 0.990, 300: 0.9918}


def plot(records: list[dict], path: str) -> None:
  import matplotlib  # noqa: PLC0415

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415

  fig, ax = plt.subplots(figsize=(6, 4))
  epochs = [r["epoch"] for r in records]
  ax.plot(epochs, [r["test_accuracy_ema"] for r in records], label="ganjax, averaged critic")
  ax.plot(epochs, [r["test_accuracy"] for r in records], label="ganjax, live critic", alpha=0.5)
  shown = {e: a for e, a in PUBLISHED_CURVE.items() if e <= max(epochs)}
  ax.plot(list(shown), list(shown.values()), "o--", label="published port (averaged)")
  ax.set(xlabel="epoch", ylabel="test accuracy", ylim=(0.6, 1.0))
  ax.grid(alpha=0.3)
  ax.legend()
  fig.savefig(path, dpi=100, bbox_inches="tight")
  plt.close(fig)


def main(argv):
  del argv
  out_dir = _OUT_DIR.value or "experiments/results/ssl_gan/reference"
  os.makedirs(out_dir, exist_ok=True)
  config = config_defaults.get_config()
  start, records = time.time(), []
  with open(os.path.join(out_dir, "curve.jsonl"), "w") as f:

    def log(record):
      record.update(wall_seconds=round(time.time() - start, 1), label_seed=_LABEL_SEED.value, seed=_SEED.value)
      record.update(hardware=cells.hardware()["line"])
      f.write(json.dumps(record) + "\n")
      f.flush()
      print(json.dumps(record), flush=True)
      records.append(record)

    driver.train_reference(
      config, _EPOCHS.value, _LABELS.value, _LABEL_SEED.value, _SEED.value, _ITERATIONS.value, log=log
    )
  plot(records, os.path.join(out_dir, "curve.png"))


if __name__ == "__main__":
  app.run(main)
