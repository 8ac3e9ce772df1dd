"""Labelled digits from a semi-supervised GAN (ganjax/ssl/synthesis.py, export.py, evaluate.py): the per-digit
quotas filled from rounds of G's samples, the critic's naming, G sampled batch by batch, the export's labels and
provenance, and the one-line refusals of every tool that reads only GAN runs."""

import dataclasses
import json
import os
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest
from conftest import REPO
from test_ssl_recognizer import _digit_images, _forced
from test_ssl_train import tiny_ssl_config

from configs import default, ssl_gan
from ganjax import saved_run, train
from ganjax.data import mnist
from ganjax.errors import ConfigError, GenerationError, WorkdirError
from ganjax.ssl import cnn_recognizer, models, recognizer, steps, synthesis
from ganjax.synth import export, generation


def _counting_draw(rounds: list[np.ndarray]):
  """draw(r) -> rounds[r], recording each round asked for."""
  asked = []

  def draw(round_index: int) -> np.ndarray:
    asked.append(round_index)
    return rounds[round_index]

  return draw, asked


def test_fill_quotas_keeps_each_digits_first_named_candidates_in_digit_order_and_stops_when_full():
  # candidate i of round r is the number 100 r + i; its digit is i mod 3 (digits 0..2), -1 for every fourth one
  rounds = [100 * r + np.arange(8) for r in range(5)]
  name = lambda c: np.where(c % 4 == 3, -1, (c % 100) % 3)  # noqa: E731
  draw, asked = _counting_draw(rounds)
  images, labels = synthesis.fill_quotas(draw, name, np.array([3, 2, 1]))
  assert asked == [0, 1]  # round 0 fills digits 1 and 2 but names only two 0s (3 and 7 are refused)
  np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, 2])
  np.testing.assert_array_equal(images, [0, 6, 100, 1, 4, 2])
  assert labels.dtype == np.int32


def test_fill_quotas_fails_in_one_line_naming_the_digit_furthest_from_its_quota():
  rounds = [np.arange(10) for _ in range(4)]
  name = lambda c: np.where(c < 8, c % 2, -1)  # noqa: E731  digits 0 and 1 only; 2 never
  with pytest.raises(GenerationError) as error:
    synthesis.fill_quotas(_counting_draw(rounds)[0], name, np.array([2, 2, 3]), max_rounds=4)
  message = str(error.value)
  assert "\n" not in message
  assert message.startswith("after 4 rounds (40 samples) the critic named digit 2 confidently in only 0 of the 3")


def test_name_samples_gives_the_one_digit_the_critic_naming_accepts():
  naming = recognizer.CriticNaming(_forced(10.0), min_confidence=0.5)
  images = np.concatenate([_digit_images([2, 7], 255), _digit_images([5], 51)])  # p(digit) ~ 0.9996, ~ 0.45
  named = synthesis.name_samples(naming, images)
  np.testing.assert_array_equal(named, [2, 7, -1])
  assert named.dtype == np.int32
  np.testing.assert_array_equal(naming.accepts(images, np.maximum(named, 0)), named >= 0)


def test_per_class_quotas_split_the_images_as_balanced_labels_do():
  np.testing.assert_array_equal(synthesis.per_class_quotas(10_000), np.full(10, 1000))
  np.testing.assert_array_equal(synthesis.per_class_quotas(13), [2, 2, 2, 1, 1, 1, 1, 1, 1, 1])


@dataclasses.dataclass(frozen=True)
class HashRecognizer:
  """Stands in for a critic on an untrained G: its probabilities are a fixed pseudo-random function of each
  image's pixel sum, so every digit turns up and some samples fall below a confidence."""

  def classify(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sums = np.asarray(images).reshape(len(images), -1).sum(axis=1, dtype=np.float64)
    logits = 3.0 * np.sin(0.37 * sums[:, None] * np.arange(1, 11))
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = (probabilities / probabilities.sum(axis=1, keepdims=True)).astype(np.float32)
    return probabilities, probabilities.argmax(axis=1).astype(np.int32)


@pytest.fixture(scope="module")
def untrained_run() -> synthesis.SslRun:
  """A fresh tiny G (batches of 20) whose samples a HashRecognizer names with min_confidence 0.3."""
  setup = steps.SslSetup(
    critic=models.SslCritic(hidden_features=(8,)), generator=models.SslGenerator(hidden_features=(16,)), latent_dim=8
  )
  init_images = np.random.default_rng(0).integers(0, 256, (50, 28, 28, 1), dtype=np.uint8)
  state = steps.create_state(setup, jax.random.key(0), init_images)
  naming = recognizer.CriticNaming(HashRecognizer(), min_confidence=0.3, source={"workdir": "untrained"})
  return synthesis.SslRun(ml_collections.ConfigDict({"batch_size": 20}), setup, state, 0, "untrained", naming)


def test_g_samples_in_batches_of_the_run_each_normalised_on_its_own(untrained_run):
  run, key = untrained_run, jax.random.key(3)
  images = synthesis.sample(run, key, 3)
  assert images.dtype == np.uint8 and images.shape == (60, 28, 28, 1)
  z = steps.draw_latents(run.setup, key, 60)
  for b in range(3):  # batch statistics: batch b as G would draw it alone
    expected = run.setup.generator.apply({"params": run.state.generator_params}, z[20 * b : 20 * (b + 1)])
    np.testing.assert_allclose(images[20 * b : 20 * (b + 1)], np.round(np.asarray(expected) * 255), atol=1)


def test_generate_digits_fills_every_quota_with_samples_the_critic_names_confidently(untrained_run):
  key, quotas = jax.random.key(1), np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3])
  images, labels = synthesis.generate_digits(untrained_run, key, quotas)
  np.testing.assert_array_equal(labels, np.repeat(np.arange(10), quotas))
  probabilities, digits = HashRecognizer().classify(images)
  np.testing.assert_array_equal(digits, labels)
  assert (probabilities.max(axis=1) >= 0.3).all()
  again, _ = synthesis.generate_digits(untrained_run, key, quotas)
  other, _ = synthesis.generate_digits(untrained_run, jax.random.key(2), quotas)
  np.testing.assert_array_equal(again, images)
  assert not np.array_equal(other, images)


@pytest.fixture
def config_only_workdir(tmp_path) -> str:
  """A semi_supervised run's workdir before its first checkpoint: config.json alone."""
  workdir = str(tmp_path / "ssl")
  os.makedirs(workdir)
  saved_run.write_config(workdir, ssl_gan.get_config())
  return workdir


def test_gan_tools_refuse_a_semi_supervised_run_in_one_line_naming_its_tools(config_only_workdir):
  with pytest.raises(WorkdirError) as error:
    generation.load_run(config_only_workdir)
  message = str(error.value)
  assert "\n" not in message and "holds a semi_supervised run" in message
  assert "python export.py" in message and "python recognize.py" in message


@pytest.mark.parametrize(
  "options, step, message",
  [
    (dict(filter="critic"), None, r"filter='critic' does not apply to .*, a semi_supervised run: its critic names"),
    (dict(filter="evaluator"), None, r"filter='evaluator' does not apply"),
    (dict(latent_scale=2.0), None, r"latent_scale=2.0 does not apply .*z ~ U\[0, 1\]"),
    ({}, 600, r"step=600 does not apply .*newest verified checkpoint"),
  ],
)
def test_export_refuses_what_a_semi_supervised_run_cannot_honour(config_only_workdir, tmp_path, options, step, message):
  with pytest.raises(ConfigError, match=message):
    export.export_dataset(config_only_workdir, str(tmp_path / "x.npz"), export.ExportOptions(**options), step)


@pytest.mark.parametrize(
  "choice, message",
  [
    (synthesis.NamingChoice("svm"), r"--recognizer='svm'; it must be one of critic, cnn$"),
    (synthesis.NamingChoice(min_confidence=1.0), r"--min_confidence=1.0; it must be in \[0, 1\)"),
  ],
)
def test_export_refuses_a_bad_namer_or_threshold_in_one_line(config_only_workdir, tmp_path, choice, message):
  with pytest.raises(ConfigError, match=message):
    export.export_dataset(config_only_workdir, str(tmp_path / "x.npz"), export.ExportOptions(), naming=choice)


def test_the_cnn_namer_is_refused_for_a_run_that_is_not_semi_supervised(tmp_path):
  workdir = str(tmp_path / "wgan")
  os.makedirs(workdir)
  saved_run.write_config(workdir, default.get_config())
  choice = synthesis.NamingChoice("cnn", 0.99)
  with pytest.raises(ConfigError, match=r"^--recognizer=cnn --min_confidence=0.99: only for a semi_supervised run"):
    export.export_dataset(workdir, str(tmp_path / "x.npz"), export.ExportOptions(), naming=choice)
  assert not os.path.exists(tmp_path / "x.npz")


def test_export_of_a_semi_supervised_run_without_a_checkpoint_says_train_first(config_only_workdir, tmp_path):
  with pytest.raises(WorkdirError, match="no checkpoint in .* yet; train first"):
    export.export_dataset(config_only_workdir, str(tmp_path / "x.npz"), export.ExportOptions())


def test_time_to_quality_refuses_a_semi_supervised_config_before_it_touches_the_workdir(tmp_path):
  from ganjax.studies import time_to_quality  # noqa: PLC0415

  workdir = str(tmp_path / "run")
  with pytest.raises(ConfigError, match="conditioning='semi_supervised': time to quality measures a GAN's samples"):
    time_to_quality.time_to_quality(ssl_gan.get_config(), workdir, str(tmp_path / "out"))
  assert not os.path.exists(workdir)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, mnist_data_dir) -> str:
  """A tiny semi_supervised run (16 steps) whose critic's average follows it closely (decay 0.5) and names a
  digit when it reads it with probability >= 0.15."""
  config = tiny_ssl_config(mnist_data_dir)
  config.critic_ema_decay, config.few_labels_min_confidence = 0.5, 0.15
  workdir = str(tmp_path_factory.mktemp("ssl_export") / "run")
  train.train_and_evaluate(config, workdir)
  return workdir


@pytest.mark.slow
def test_export_writes_num_per_class_of_the_digits_the_critic_reads_with_provenance(
  real_mnist_data_dir, trained_run, tmp_path, monkeypatch
):
  # The tiny G draws a few digits only; MNIST test images stand in for its samples (2000 a round) to fill every
  # digit through the run's own critic.
  test_images = mnist.load_split(saved_run.load(trained_run), "test")[0]
  rounds = iter(range(100))
  stand_in = lambda run, key, num_batches: np.roll(test_images, -2000 * next(rounds), axis=0)[:2000]  # noqa: E731
  monkeypatch.setattr(synthesis, "sample", stand_in)
  path = str(tmp_path / "digits.npz")
  provenance = export.export_dataset(trained_run, path, export.ExportOptions(num_per_class=2, seed=4))
  images, labels, loaded = export.load_dataset(path)
  np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 2))
  _, critic, step = recognizer.load(trained_run)
  probabilities, digits = critic.classify(images)
  np.testing.assert_array_equal(digits, labels)
  assert (probabilities.max(axis=1) >= 0.15).all()
  assert (
    loaded == json.loads(json.dumps(provenance))
    and loaded["label_source"] == "semi_supervised_critic"
    and loaded["use_ema"] is False
  )
  assert loaded["checkpoint_step"] == step == 16 and loaded["num_images"] == 20 and loaded["seed"] == 4
  assert loaded["few_labels"] == {
    "namer": "semi_supervised_critic",
    "min_confidence": 0.15,
    "workdir": os.path.abspath(trained_run),
    "step": 16,
    "labels_per_class": 1,
    "label_seed": 0,
  }
  assert all(os.path.exists(str(tmp_path / f"digits_digit{d}.png")) for d in range(10))


class PixelCnn:
  """A stand-in for the CNN the critic teaches: it reads image i's digit from its first pixel, with probability 1."""

  num_classes = 10

  def classify(self, images):
    digits = (np.asarray(images)[:, 0, 0, 0] % 10).astype(np.int32)
    return np.eye(10, dtype=np.float32)[digits], digits


@pytest.mark.slow
def test_export_names_g_digits_with_the_cnn_the_critic_teaches(trained_run, tmp_path, monkeypatch):
  """synthesis.load asks cnn_recognizer.for_critic (tests/test_ssl_cnn_recognizer.py trains and keeps it) for the
  CNN of the run's averaged critic at its step; the CNN then names every sample, with its name in provenance."""
  candidates = np.zeros((40, 28, 28, 1), np.uint8)
  candidates[:, 0, 0, 0] = np.arange(40)
  monkeypatch.setattr(synthesis, "sample", lambda run, key, num_batches: candidates)
  asked = []

  def for_critic(workdir, config, critic, step, num_steps):
    asked.append((workdir, type(critic), step, num_steps))
    return PixelCnn(), {"recipe": {"num_steps": num_steps}}, False

  monkeypatch.setattr(cnn_recognizer, "for_critic", for_critic)
  path = str(tmp_path / "digits.npz")
  choice = synthesis.NamingChoice("cnn", 0.99)
  export.export_dataset(trained_run, path, export.ExportOptions(num_per_class=3, seed=4), naming=choice)
  images, labels, loaded = export.load_dataset(path)
  assert asked == [(os.path.abspath(trained_run), recognizer.Recognizer, 16, cnn_recognizer.STEPS)]
  np.testing.assert_array_equal(images[:, 0, 0, 0] % 10, labels)
  np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 3))
  assert loaded["label_source"] == "semi_supervised_cnn"
  namer = loaded["few_labels"]
  assert namer["namer"] == "semi_supervised_cnn" and namer["min_confidence"] == 0.99 and namer["step"] == 16
  assert namer["cnn_steps"] == cnn_recognizer.STEPS and namer["cnn_file"] == cnn_recognizer.KEPT_FILE
  candidates[:, 0, 0, 0] = np.arange(40) % 9  # no 9 ever
  with pytest.raises(GenerationError, match=r"\(1200 samples\) the CNN named digit 9 confidently in only 0 of"):
    export.export_dataset(trained_run, str(tmp_path / "no9.npz"), export.ExportOptions(num_per_class=3), naming=choice)


@pytest.mark.slow
def test_the_diverse_filter_draws_1_over_keep_fraction_and_keeps_a_cover_of_each_digit(
  trained_run, tmp_path, monkeypatch
):
  # 40 candidates a round: digit i % 10 (the CNN reads pixel [0, 0]); i < 20 one style, i >= 20 another (a bar).
  candidates = np.zeros((40, 28, 28, 1), np.uint8)
  candidates[:, 0, 0, 0] = np.arange(40)
  candidates[20:, 14, :, 0] = 255
  rounds = []
  monkeypatch.setattr(synthesis, "sample", lambda run, key, num_batches: rounds.append(key) or candidates)
  monkeypatch.setattr(cnn_recognizer, "for_critic", lambda *args: (PixelCnn(), {"recipe": {"num_steps": 1}}, False))
  path = str(tmp_path / "digits.npz")
  options = export.ExportOptions(num_per_class=2, filter="diverse", keep_fraction=0.5)
  provenance = export.export_dataset(trained_run, path, options, naming=synthesis.NamingChoice("cnn", 0.99))
  images, labels, _ = export.load_dataset(path)
  assert len(rounds) == 1  # 4 per digit asked for, all in round 0
  np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 2))
  np.testing.assert_array_equal(images[:, 14, 0, 0], np.tile([0, 255], 10))  # one of each style, not the first two
  assert provenance["filter"] == "diverse" and provenance["keep_fraction"] == 0.5


def _run_script(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True)


def _assert_one_line_error(done: subprocess.CompletedProcess, start: str) -> None:
  """As tests/test_export.py's: the error is the last line (orbax may warn before it), with no traceback."""
  assert done.returncode == 1, done.stderr[-2000:]
  assert done.stderr.strip().splitlines()[-1].startswith("error: " + start), done.stderr[-2000:]
  assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_the_clis_fail_in_one_line_when_the_generator_rarely_draws_a_digit(trained_run, tmp_path):
  done = _run_script("export.py", f"--workdir={trained_run}", "--num_per_class=5", f"--out={tmp_path}/x.npz")
  _assert_one_line_error(done, "after 30 rounds (1500 samples) the critic named digit ")
  assert not os.path.exists(tmp_path / "x.npz")
  done = _run_script("evaluate.py", f"--workdir={trained_run}", "--num_samples=50", f"--out={tmp_path}/e.json")
  _assert_one_line_error(done, "after 30 rounds (1500 samples) the critic named digit ")


@pytest.mark.slow
def test_evaluate_refuses_the_flags_a_semi_supervised_run_cannot_honour_in_one_line(config_only_workdir):
  done = _run_script("evaluate.py", f"--workdir={config_only_workdir}", "--all_steps", "--latent_scale=2")
  _assert_one_line_error(done, "--all_steps, --latent_scale: not for ")
  done = _run_script("evaluate.py", f"--workdir={config_only_workdir}", "--recognizer=svm")
  _assert_one_line_error(done, "--recognizer='svm'; it must be one of critic, cnn")
