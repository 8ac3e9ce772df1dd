"""The semi-supervised GAN's critic as a digit recognizer (ganjax/ssl/recognizer.py): a run's test report, or
labels for a user's images.

  python recognize.py --workdir=runs/ssl_gan                                    # test accuracy, confusion
  python recognize.py --workdir=runs/ssl_gan --images=digits.npz --out=labels.npz

The report prints a JSON summary and the confusion matrix and goes to <workdir>/recognition.json. --images is
an .npz of uint8 [N, 28, 28] (or [N, 28, 28, 1]) digits; --out (default <images>_labels.npz) gets labels int32
[N], probabilities float32 [N, 10] and provenance. The critic is the run's EMA critic at its newest verified
checkpoint.
"""

import json
import os

from absl import app, flags

from ganjax import cli
from ganjax.data import mnist
from ganjax.eval import sample_quality
from ganjax.ssl import recognizer

_WORKDIR = flags.DEFINE_string("workdir", None, "A semi-supervised GAN run's --workdir.")
_IMAGES = flags.DEFINE_string("images", None, "An .npz of uint8 28x28 digits to label instead of the test report.")
_OUT = flags.DEFINE_string("out", None, "With --images: the .npz of labels to write (default <images>_labels.npz).")


def report_run(workdir: str, out: str) -> dict:
  config, critic, step = recognizer.load(workdir)
  result = {"workdir": workdir, "step": step, **recognizer.report(critic, *mnist.load_split(config, "test"))}
  summary = {name: result[name] for name in ("workdir", "step", "accuracy", "errors_per_10k", "num_images")}
  print(json.dumps(summary), flush=True)
  print(recognizer.format_confusion(result["confusion"]))
  sample_quality.write_json(out, result)
  return result


def label_file(workdir: str, images_path: str, out: str) -> dict:
  images = recognizer.read_user_images(images_path)  # a bad file fails here, before the run is loaded
  _, critic, step = recognizer.load(workdir)
  labelled = recognizer.label_images(critic, images)
  provenance = {"workdir": os.path.abspath(workdir), "step": step, "images": os.path.abspath(images_path)}
  recognizer.write_labels(out, labelled, provenance)
  print(f"labelled {len(images)} images: {recognizer.digit_histogram(labelled['labels'])}")
  return labelled


def recognize() -> None:
  out = recognizer.check_request(_WORKDIR.value, _IMAGES.value, _OUT.value)
  if _IMAGES.value is None:
    report_run(_WORKDIR.value, out)
  else:
    label_file(_WORKDIR.value, _IMAGES.value, out)
  print(f"wrote {out}")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  cli.run(recognize)


if __name__ == "__main__":
  app.run(main)
