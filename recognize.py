"""A semi-supervised GAN run as a digit recognizer: a run's test report, or labels for a user's images, read by
the run's critic (ganjax/ssl/recognizer.py) or by the strong CNN the critic teaches (ganjax/ssl/cnn_recognizer.py).

  python recognize.py --workdir=runs/ssl_gan                                    # test accuracy, confusion
  python recognize.py --workdir=runs/ssl_gan --images=digits.npz --out=labels.npz
  python recognize.py --workdir=runs/ssl_gan --recognizer=cnn                   # the CNN: trained once, then kept

The report prints a JSON summary and the confusion matrix and goes to <workdir>/recognition.json (the CNN's:
recognition_cnn.json). --images is an .npz of uint8 [N, 28, 28] (or [N, 28, 28, 1]) digits; --out (default
<images>_labels.npz) gets labels int32 [N], probabilities float32 [N, 10] and provenance. The critic is the run's
EMA critic at its newest verified checkpoint; the CNN is trained on its labels (~10 min on 2 CPU cores) the first
time it is asked for, kept in <workdir>/recognizer_cnn.npz, and trained again once the run has a newer checkpoint.
"""

import json
import os

from absl import app, flags

from ganjax import cli
from ganjax.data import mnist
from ganjax.eval import sample_quality
from ganjax.ssl import cnn_recognizer, recognizer

_WORKDIR = flags.DEFINE_string("workdir", None, "A semi-supervised GAN run's --workdir.")
_IMAGES = flags.DEFINE_string("images", None, "An .npz of uint8 28x28 digits to label instead of the test report.")
_OUT = flags.DEFINE_string("out", None, "With --images: the .npz of labels to write (default <images>_labels.npz).")
_RECOGNIZER = flags.DEFINE_string(
  "recognizer", "critic", "critic: the run's averaged critic; cnn: the strong CNN trained on the critic's labels."
)
_CNN_STEPS = flags.DEFINE_integer("cnn_steps", cnn_recognizer.STEPS, "With --recognizer=cnn: its training steps x 128.")


def load(workdir: str, kind: str, cnn_steps: int) -> tuple:
  """(config, recognizer, provenance) of the run's recognizer of this kind."""
  if kind == "critic":
    config, critic, step = recognizer.load(workdir)
    return config, critic, {"recognizer": "critic", "step": step}
  config, cnn, record, trained = cnn_recognizer.load_or_train(workdir, cnn_steps)
  print(f"{'trained' if trained else 'read the kept'} CNN of the critic at step {record['critic_step']}", flush=True)
  return config, cnn, {"recognizer": "cnn", "step": record["critic_step"], "cnn": record}


def report_run(workdir: str, kind: str, cnn_steps: int, out: str) -> dict:
  config, model, provenance = load(workdir, kind, cnn_steps)
  result = {"workdir": workdir, **provenance, **recognizer.report(model, *mnist.load_split(config, "test"))}
  summary = {
    name: result[name] for name in ("workdir", "recognizer", "step", "accuracy", "errors_per_10k", "num_images")
  }
  print(json.dumps(summary), flush=True)
  print(recognizer.format_confusion(result["confusion"]))
  sample_quality.write_json(out, result)
  return result


def label_file(workdir: str, kind: str, cnn_steps: int, images_path: str, out: str) -> dict:
  images = recognizer.read_user_images(images_path)  # a bad file fails here, before the run is loaded
  _, model, provenance = load(workdir, kind, cnn_steps)
  labelled = recognizer.label_images(model, images)
  provenance = {"workdir": os.path.abspath(workdir), **provenance, "images": os.path.abspath(images_path)}
  recognizer.write_labels(out, labelled, provenance)
  print(f"labelled {len(images)} images: {recognizer.digit_histogram(labelled['labels'])}")
  return labelled


def recognize() -> None:
  kind, cnn_steps = _RECOGNIZER.value, _CNN_STEPS.value
  out = recognizer.check_request(_WORKDIR.value, _IMAGES.value, _OUT.value, kind)
  cnn_recognizer.check_steps(cnn_steps, kind)
  if _IMAGES.value is None:
    report_run(_WORKDIR.value, kind, cnn_steps, out)
  else:
    label_file(_WORKDIR.value, kind, cnn_steps, _IMAGES.value, out)
  print(f"wrote {out}")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  cli.run(recognize)


if __name__ == "__main__":
  app.run(main)
