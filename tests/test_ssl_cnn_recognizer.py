"""The strong CNN a semi-supervised critic teaches (ganjax/ssl/cnn_recognizer.py): what it trains on, that it
reads digits as classifiers does, that a kept CNN is reused only for the critic and recipe it came from (and
retrained when torn), and recognize.py --recognizer=cnn end to end on a tiny run."""

import json
import os
import shutil
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest

from ganjax.data import labelled
from ganjax.errors import ConfigError
from ganjax.eval import classifiers
from ganjax.ssl import cnn_recognizer, recognizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = cnn_recognizer.recipe(num_steps=3)


class FirstPixelCritic:
  """Reads each image's digit from its first pixel."""

  num_classes = 10

  def predict(self, images):
    return (np.asarray(images)[:, 0, 0, 0] % 10).astype(np.int32)


def _few() -> labelled.FewLabels:
  images = np.random.default_rng(0).integers(0, 256, (60, 28, 28, 1), dtype=np.uint8)
  images[:, 0, 0, 0] = np.arange(60) + 3  # the critic reads (i + 3) % 10; the true label is i % 10
  return labelled.split(images, np.arange(60) % 10, 2, 1)


def labelled_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(
    {"labels_per_class": 2, "label_seed": 1, "train_subset": 200, "examples_per_class": 0}
  )


@pytest.fixture(scope="module")
def tiny_cnn():
  few = _few()
  return few, cnn_recognizer.CnnRecognizer(TINY, cnn_recognizer.train(FirstPixelCritic(), few, TINY))


def test_the_cnn_learns_the_labelled_few_and_the_critics_digit_of_every_other_image():
  few = _few()
  images, labels = cnn_recognizer.teaching_set(FirstPixelCritic(), few)
  assert images.shape == (60, 28, 28, 1) and labels.dtype == np.int32
  np.testing.assert_array_equal(images[:20], few.labelled_images)
  np.testing.assert_array_equal(labels[:20], few.labelled_labels)  # the true labels, not the critic's
  np.testing.assert_array_equal(images[20:], few.unlabelled_images)
  np.testing.assert_array_equal(labels[20:], (few.unlabelled_images[:, 0, 0, 0] % 10))
  assert np.any(labels[:20] != FirstPixelCritic().predict(few.labelled_images))


def test_training_is_the_classifier_trainers_with_the_label_seeds_key(tiny_cnn):
  few, cnn = tiny_cnn
  expected = classifiers.train_classifier(
    TINY, *cnn_recognizer.teaching_set(FirstPixelCritic(), few), jax.random.key(1)
  )
  jax.tree.map(np.testing.assert_array_equal, cnn.params, expected)


def test_the_cnn_reads_digits_as_the_classifiers_accuracy_counts_them(tiny_cnn):
  few, cnn = tiny_cnn
  images, labels = few.unlabelled_images, np.arange(40) % 10
  probabilities, digits = cnn.classify(images[..., 0])
  assert probabilities.shape == (40, 10) and probabilities.dtype == np.float32 and digits.dtype == np.int32
  np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
  np.testing.assert_array_equal(digits, probabilities.argmax(axis=1))
  result = recognizer.report(cnn, images, labels)
  assert result["accuracy"] == classifiers.accuracy(TINY.model, cnn.params, images, labels)
  assert cnn.classify(images[:0])[0].shape == (0, 10)


def test_a_kept_cnn_is_read_back_only_for_the_critic_and_recipe_it_came_from(tmp_path, tiny_cnn):
  _, cnn = tiny_cnn
  workdir = str(tmp_path)
  config = labelled_config()
  wanted = cnn_recognizer.provenance(config, 1200, TINY)
  cnn_recognizer.keep(workdir, cnn.params, wanted | {"train_s": 1.5})
  kept, record = cnn_recognizer.read_kept(workdir, wanted)
  jax.tree.map(np.testing.assert_array_equal, kept.params, cnn.params)
  assert record["train_s"] == 1.5 and kept.recipe == TINY
  assert cnn_recognizer.read_kept(workdir, cnn_recognizer.provenance(config, 1800, TINY)) is None  # the run moved on
  assert cnn_recognizer.read_kept(workdir, cnn_recognizer.provenance(config, 1200, cnn_recognizer.recipe(4))) is None
  config.label_seed = 2
  assert cnn_recognizer.read_kept(workdir, cnn_recognizer.provenance(config, 1200, TINY)) is None


def test_a_torn_or_missing_kept_cnn_is_trained_afresh_not_an_error(tmp_path, tiny_cnn):
  _, cnn = tiny_cnn
  wanted = cnn_recognizer.provenance(labelled_config(), 1200, TINY)
  assert cnn_recognizer.read_kept(str(tmp_path), wanted) is None
  path = cnn_recognizer.keep(str(tmp_path), cnn.params, wanted)
  with open(path, "rb") as f:
    data = f.read()
  with open(path, "wb") as f:
    f.write(data[: len(data) // 2])
  assert cnn_recognizer.read_kept(str(tmp_path), wanted) is None


def test_cnn_steps_and_recognizer_flags_are_refused_in_one_line(tmp_path):
  with pytest.raises(ConfigError, match=r"--cnn_steps=0: give a number of training steps >= 1"):
    cnn_recognizer.check_steps(0, "cnn")
  with pytest.raises(ConfigError, match=r"--cnn_steps=5 needs --recognizer=cnn"):
    cnn_recognizer.check_steps(5, "critic")
  cnn_recognizer.check_steps(cnn_recognizer.STEPS, "critic")
  with pytest.raises(ConfigError, match=r"--recognizer=svm is not one of critic, cnn"):
    recognizer.check_request(str(tmp_path), None, None, "svm")
  assert recognizer.check_request(str(tmp_path), None, None, "cnn") == str(tmp_path / "recognition_cnn.json")


@pytest.mark.slow
def test_recognize_with_the_cnn_trains_it_once_keeps_it_and_labels_a_users_images(tmp_path, tiny_ssl_run):
  from ganjax.data import mnist

  config, workdir = tiny_ssl_run.config, str(tmp_path / "run")
  shutil.copytree(tiny_ssl_run.workdir, workdir)  # the CNN and its report are kept in it
  command = [sys.executable, "recognize.py", f"--workdir={workdir}", "--recognizer=cnn", "--cnn_steps=4"]
  first = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
  assert first.returncode == 0, first.stderr
  assert "trained CNN of the critic at step 10" in first.stdout and "cnn step 4/4 (100.0%)" in first.stdout
  with open(os.path.join(workdir, "recognition_cnn.json")) as f:
    result = json.load(f)
  assert result["recognizer"] == "cnn" and result["step"] == 10 and result["cnn"]["recipe"]["num_steps"] == 4
  kept, record = cnn_recognizer.read_kept(workdir, cnn_recognizer.provenance(config, 10, cnn_recognizer.recipe(4)))
  test_images, test_labels = mnist.load_split(config, "test")
  assert result["accuracy"] == recognizer.report(kept, test_images, test_labels)["accuracy"]
  images_path, out = str(tmp_path / "digits.npz"), str(tmp_path / "labels.npz")
  np.savez(images_path, images=test_images[:25])
  again = subprocess.run(
    [*command, f"--images={images_path}", f"--out={out}"], cwd=REPO, capture_output=True, text=True, check=False
  )
  assert again.returncode == 0, again.stderr
  assert "read the kept CNN of the critic at step 10" in again.stdout and "cnn step" not in again.stdout
  with np.load(out) as f:
    np.testing.assert_array_equal(f["labels"], kept.predict(test_images[:25]))
    assert json.loads(str(f["provenance"]))["cnn"]["critic_step"] == record["critic_step"] == 10


def test_progress_lines_come_by_time_and_at_the_end_with_rate_and_eta(capsys):
  params = {"w": np.zeros(3)}
  every_step = cnn_recognizer.ProgressLines(total_steps=4, batch_size=128, every_s=0.0)
  for step in range(1, 5):
    every_step(step, params)
  lines = capsys.readouterr().out.splitlines()
  assert [line.split(" |")[0] for line in lines] == [
    "cnn step 2/4 (50.0%)",
    "cnn step 3/4 (75.0%)",
    "cnn step 4/4 (100.0%)",
  ]
  assert lines[-1].endswith("img/s | eta 0m00s")
  rarely = cnn_recognizer.ProgressLines(total_steps=4, batch_size=128, every_s=3600.0)
  for step in range(1, 5):
    rarely(step, params)
  only = capsys.readouterr().out.splitlines()
  assert len(only) == 1 and only[0].startswith("cnn step 4/4 (100.0%) | ")
