"""A semi_supervised run's critic as a few_labels run's namer (ganjax/ssl/namer.py, export.py and evaluate.py
--namer_workdir): P(cluster | digit) from the critic's labels with the labelled few's own, every sample checked
by the critic, the provenance naming it, neither run touched, and the one-line refusals.

Two tiny runs on the same 128 training images with 3 labels per digit: a few_labels GAN (no namer trained) and
a semi_supervised run. A tiny GAN's samples are noise to any critic, so the export tests draw, for each cluster
asked for, a training image of that cluster in G's place (stand_in_generator): the naming and the checks are
what they test.
"""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import REPO
from test_ssl_recognizer import _digit_images, _forced
from test_ssl_train import tiny_ssl_config

from configs import tiny
from ganjax import saved_run, train
from ganjax.data import labelled, mnist
from ganjax.errors import ConfigError, WorkdirError
from ganjax.few_labels import naming as few_labels_naming
from ganjax.ssl import cnn_recognizer, namer, recognizer, synthesis
from ganjax.synth import export, generation

MIN_CONFIDENCE = 0.15  # the few_labels run's few_labels_min_confidence: the tiny critic reads digits weakly


def test_the_critic_names_the_clusters_and_the_labelled_few_keep_their_true_labels():
  reads = np.tile(np.arange(10), 3)  # the critic reads image i as reads[i]
  clusters = reads // 2  # 5 clusters: digits {0, 1}, {2, 3}, ...
  base = recognizer.CriticNaming(_forced(), min_confidence=0.5)
  # Images 0 and 1 are labelled 9 and 8 (the critic reads 0 and 1): their labels, not the critic's, count.
  named = recognizer.name_clusters(base, _digit_images(reads), clusters, 5, np.array([0, 1]), np.array([9, 8]))
  np.testing.assert_allclose(named.cluster_given_digit[9], [0.25, 0, 0, 0, 0.75])
  np.testing.assert_allclose(named.cluster_given_digit[8], [0.25, 0, 0, 0, 0.75])
  np.testing.assert_allclose(named.cluster_given_digit[0], [1, 0, 0, 0, 0])  # images 10 and 20
  np.testing.assert_allclose(named.cluster_given_digit[4], [0, 0, 1, 0, 0])
  unlabelled = recognizer.name_clusters(base, _digit_images(reads), clusters, 5)
  np.testing.assert_allclose(unlabelled.cluster_given_digit[9], [0, 0, 0, 0, 1])


def _few_labels_config(data_dir: str):
  """configs/tiny.py self-conditioned on 10 clusters of its 128 images, 3 labels per digit, 4 steps."""
  config = tiny.get_config()
  config.data_dir, config.download = data_dir, False
  config.conditioning, config.num_clusters, config.labels_per_class = "few_labels", 10, 3
  config.few_labels_min_confidence, config.num_train_steps = MIN_CONFIDENCE, 4
  return config


@pytest.fixture(scope="module")
def runs(tmp_path_factory, mnist_data_dir) -> tuple[str, str]:
  """(few_labels workdir, semi_supervised workdir): the same labelled few; the GAN has no few_labels.npz."""
  root = tmp_path_factory.mktemp("ssl_namer")
  gan, ssl = str(root / "few_labels"), str(root / "ssl")
  train.train_and_evaluate(_few_labels_config(mnist_data_dir), gan)  # no prepare_naming: no namer is trained
  config = tiny_ssl_config(mnist_data_dir)
  config.train_subset, config.labels_per_class, config.critic_ema_decay = 128, 3, 0.5
  config.num_epochs, config.num_train_steps, config.eval_every_epochs, config.sample_epochs = 1, 160, 0, ()
  config.checkpoint_every_steps = 80  # 160 steps: the critic reads every digit in a few of the 128 images
  train.train_and_evaluate(config, ssl)
  assert not os.path.exists(os.path.join(gan, saved_run.NAMING_FILE))
  return gan, ssl


@dataclasses.dataclass(frozen=True)
class ShiftedOracle:
  """Stands in for a critic: reads each of the given images as its true digit + shift (mod 10), surely."""

  images: np.ndarray
  labels: np.ndarray
  shift: int

  def predict(self, images: np.ndarray) -> np.ndarray:
    known = {image.tobytes(): int(label) for image, label in zip(self.images, self.labels, strict=True)}
    return np.array([(known[image.tobytes()] + self.shift) % 10 for image in images], np.int32)


@pytest.mark.slow
def test_p_cluster_given_digit_follows_the_critic_on_the_unlabelled_and_the_true_labels_on_the_few(runs, monkeypatch):
  gan, ssl = runs
  config = saved_run.load(gan)
  images, labels = mnist.load_split(config, "train")
  with np.load(os.path.join(gan, saved_run.CLUSTERS_FILE)) as f:
    assignments = f["assignments"]
  few = labelled.draw_labelled(labels, 3, 0)
  monkeypatch.setattr(recognizer, "load", lambda workdir: (None, ShiftedOracle(images, labels, 1), 7))
  naming = namer.critic_naming(gan, ssl)
  digits = (labels + 1) % 10
  digits[few] = labels[few]
  expected = few_labels_naming.cluster_given_digit(assignments, digits, 10)
  np.testing.assert_array_equal(naming.cluster_given_digit, expected)
  assert not np.array_equal(expected, few_labels_naming.cluster_given_digit(assignments, (labels + 1) % 10, 10))
  assert naming.min_confidence == MIN_CONFIDENCE
  assert naming.provenance == {
    "namer": "semi_supervised_critic",
    "min_confidence": MIN_CONFIDENCE,
    "workdir": os.path.abspath(ssl),
    "step": 7,
    "labels_per_class": 3,
    "label_seed": 0,
    "labelled_indices": [int(i) for i in few],
  }


@pytest.mark.slow
def test_with_the_cnn_choice_the_cnn_the_critic_teaches_names_the_clusters_at_the_given_threshold(runs, monkeypatch):
  gan, ssl = runs
  images, labels = mnist.load_split(saved_run.load(gan), "train")
  with np.load(os.path.join(gan, saved_run.CLUSTERS_FILE)) as f:
    assignments = f["assignments"]
  few = labelled.draw_labelled(labels, 3, 0)
  critic = ShiftedOracle(images, labels, 1)
  monkeypatch.setattr(recognizer, "load", lambda workdir: (saved_run.load(ssl), critic, 7))
  asked = []

  def for_critic(workdir, config, teacher, critic_step, num_steps):
    asked.append((workdir, config.label_seed, teacher, critic_step))
    return ShiftedOracle(images, labels, 2), {"recipe": {"num_steps": 11}}, True

  monkeypatch.setattr(cnn_recognizer, "for_critic", for_critic)
  naming = namer.critic_naming(gan, ssl, synthesis.NamingChoice("cnn", 0.97))
  assert asked == [(os.path.abspath(ssl), 0, critic, 7)]  # the CNN of the namer run's critic, at its step
  digits = (labels + 2) % 10  # the CNN's digits, not the critic's, name the unlabelled images
  digits[few] = labels[few]
  np.testing.assert_array_equal(
    naming.cluster_given_digit, few_labels_naming.cluster_given_digit(assignments, digits, 10)
  )
  assert naming.recognizer.shift == 2 and naming.min_confidence == 0.97
  assert naming.provenance["namer"] == "semi_supervised_cnn" and naming.provenance["min_confidence"] == 0.97
  assert naming.provenance["cnn_steps"] == 11 and naming.provenance["cnn_file"] == cnn_recognizer.KEPT_FILE
  assert naming.provenance["workdir"] == os.path.abspath(ssl) and naming.provenance["step"] == 7
  with pytest.raises(ConfigError, match=r"^--recognizer='svm'; it must be one of critic, cnn$"):
    namer.critic_naming(gan, ssl, synthesis.NamingChoice("svm"))


def stand_in_generator(workdir: str):
  """A replacement for generation._generate_for: each model label (a cluster) gets a training image of it."""
  images = mnist.load_split(saved_run.load(workdir), "train")[0]
  with np.load(os.path.join(workdir, saved_run.CLUSTERS_FILE)) as f:
    assignments = f["assignments"]

  def generate_for(setup, state, key, model_labels, use_ema, batch_size):
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)))
    return np.stack([images[rng.choice(np.flatnonzero(assignments == k))] for k in model_labels])

  return generate_for


def _listing(*workdirs: str) -> dict:
  """Every file under the workdirs with its size and modification time."""
  return {
    os.path.join(root, name): (os.path.getsize(os.path.join(root, name)), os.path.getmtime(os.path.join(root, name)))
    for workdir in workdirs
    for root, _, names in os.walk(workdir)
    for name in names
  }


@pytest.mark.slow
def test_export_with_the_critic_as_namer_writes_only_digits_it_reads_confidently(runs, tmp_path, monkeypatch):
  gan, ssl = runs
  monkeypatch.setattr(generation, "_generate_for", stand_in_generator(gan))
  before = _listing(gan, ssl)
  path = str(tmp_path / "digits.npz")
  export.export_dataset(gan, path, export.ExportOptions(num_per_class=2, seed=2), namer_workdir=ssl)
  assert _listing(gan, ssl) == before  # neither run is written; the GAN's own namer is neither read nor trained
  images, labels, provenance = export.load_dataset(path)
  np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 2))
  _, critic, step = recognizer.load(ssl)
  probabilities, digits = critic.classify(images)
  np.testing.assert_array_equal(digits, labels)
  assert (probabilities[np.arange(len(labels)), labels] >= MIN_CONFIDENCE).all()
  labelled_indices = [int(i) for i in labelled.draw_labelled(mnist.load_split(saved_run.load(gan), "train")[1], 3, 0)]
  assert provenance["workdir"] == os.path.abspath(gan) and provenance["label_source"] == "conditioning"
  assert provenance["few_labels"] == {
    "namer": "semi_supervised_critic",
    "min_confidence": MIN_CONFIDENCE,
    "workdir": os.path.abspath(ssl),
    "step": step,
    "labels_per_class": 3,
    "label_seed": 0,
    "labelled_indices": labelled_indices,
  }
  with pytest.raises(WorkdirError, match="few_labels.npz is missing"):  # without the flag: the run's own namer
    export.export_dataset(gan, str(tmp_path / "own.npz"), export.ExportOptions(num_per_class=3))
  torn = tmp_path / "torn_gan"
  shutil.copytree(gan, torn)
  clusters = torn / saved_run.CLUSTERS_FILE
  clusters.write_bytes(clusters.read_bytes()[:100])
  with pytest.raises(WorkdirError, match=r"clusters.npz does not read \(.*\); rerun the run's training command"):
    export.export_dataset(str(torn), path, export.ExportOptions(num_per_class=2), namer_workdir=ssl)


def _edited_run(source: str, destination: str, **fields) -> str:
  """A copy of the run's config.json alone (no checkpoint), with `fields` changed."""
  os.makedirs(destination)
  config = saved_run.load(source)
  config.update(fields)
  saved_run.write_config(destination, config)
  return destination


@pytest.mark.slow
@pytest.mark.parametrize(
  "case, error, message",
  [
    ("gan is semi_supervised", ConfigError, r"names the clusters of a few_labels run, and .* 'semi_supervised'"),
    ("gan is plain", ConfigError, r"names the clusters of a few_labels run, and .* conditioning 'none'"),
    ("namer is few_labels", ConfigError, r"holds a run with conditioning 'few_labels'; the namer is the critic"),
    ("namer is missing", WorkdirError, r"holds no run; give a semi_supervised run's workdir"),
    ("namer has no checkpoint", WorkdirError, r"has no checkpoint yet; train it first"),
    ("other labels_per_class", ConfigError, r"other labelled images \(labels_per_class=10\) than .* \(labels_per_c"),
    ("other label_seed", ConfigError, r"other labelled images \(label_seed=1\) than .* \(label_seed=0\)"),
  ],
)
def test_the_namer_is_refused_in_one_line_for_a_run_that_cannot_serve(runs, tmp_path, case, error, message):
  gan, ssl = runs
  workdirs = {
    "gan is semi_supervised": (ssl, ssl),
    "gan is plain": (_edited_run(gan, str(tmp_path / "plain"), conditioning="none", num_clusters=0), ssl),
    "namer is few_labels": (gan, gan),
    "namer is missing": (gan, str(tmp_path / "nothing")),
    "namer has no checkpoint": (gan, _edited_run(ssl, str(tmp_path / "untrained"))),
    "other labels_per_class": (gan, _edited_run(ssl, str(tmp_path / "n10"), labels_per_class=10)),
    "other label_seed": (gan, _edited_run(ssl, str(tmp_path / "s1"), label_seed=1)),
  }
  workdir, namer_workdir = workdirs[case]
  before = _listing(gan, ssl, tmp_path)
  with pytest.raises(error, match=message) as raised:
    export.export_dataset(workdir, str(tmp_path / "x.npz"), export.ExportOptions(), namer_workdir=namer_workdir)
  assert "\n" not in str(raised.value)
  assert _listing(gan, ssl, tmp_path) == before  # nothing written, x.npz included


def _run_script(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True)


@pytest.mark.slow
def test_the_clis_refuse_the_namer_in_one_line_writing_nothing(runs, tmp_path):
  gan, ssl = runs
  before = _listing(gan, ssl)
  commands = [
    ("export.py", f"--workdir={ssl}", f"--namer_workdir={ssl}", f"--out={tmp_path}/x.npz"),
    ("evaluate.py", f"--workdir={gan}", f"--namer_workdir={_edited_run(ssl, str(tmp_path / 's1'), label_seed=1)}"),
    ("evaluate.py", f"--npz={tmp_path}/x.npz", f"--namer_workdir={ssl}"),
  ]
  expected = ["names the clusters of a few_labels run", "was trained on other labelled images", "needs --workdir"]
  for command, words in zip(commands, expected, strict=True):
    done = _run_script(*command)
    assert done.returncode == 1, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --namer_workdir=") and words in last, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
  assert os.listdir(tmp_path / "s1") == [saved_run.CONFIG_FILE] and not os.path.exists(tmp_path / "x.npz")
  assert _listing(gan, ssl) == before


# evaluate.py run as a user runs it, G replaced by the stand-in (a tiny G's samples are noise to any critic).
EVALUATE_WITH_STAND_IN = """
import runpy, sys
sys.path.insert(0, "tests")
from ganjax.synth import generation
from test_ssl_namer import stand_in_generator
generation._generate_for = stand_in_generator(sys.argv[1])
sys.argv = ["evaluate.py", *sys.argv[2:]]
runpy.run_path("evaluate.py", run_name="__main__")
"""


@pytest.mark.slow
def test_evaluate_with_the_critic_as_namer_records_it(runs, tmp_path):
  gan, ssl = runs
  out = str(tmp_path / "eval.json")
  args = (f"--workdir={gan}", f"--namer_workdir={ssl}", "--num_samples=20", f"--out={out}")
  done = _run_script("-c", EVALUATE_WITH_STAND_IN, gan, *args)
  assert done.returncode == 0, done.stderr[-3000:]
  with open(out) as f:
    result = json.load(f)
  assert result["few_labels"]["namer"] == "semi_supervised_critic"
  assert result["few_labels"]["workdir"] == os.path.abspath(ssl) and result["few_labels"]["labels_per_class"] == 3
  assert not os.path.exists(os.path.join(gan, saved_run.NAMING_FILE))
