"""The semi-supervised critic as a recognizer: probabilities, the test report, a user's .npz, labels, CriticNaming,
and recognize.py's flags.

Two critics: a freshly initialised tiny one (what any critic must satisfy), and a hand-made one without hidden
layers whose logit d is `scale` x pixel d (in [0, 1]), so a test chooses each image's digit and confidence.
"""

import json
import math
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from ganjax import conditioning
from ganjax.errors import ConfigError, DataError, OutputPathError, WorkdirError
from ganjax.ssl import models, recognizer, steps

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def tiny():
  """A freshly initialised tiny critic's recognizer (live parameters: the fresh EMA is all zeros)."""
  setup = steps.SslSetup(
    critic=models.SslCritic(hidden_features=(32, 16)), generator=models.SslGenerator(hidden_features=(8,)), latent_dim=8
  )
  images = np.random.default_rng(0).integers(0, 256, (500, 28, 28, 1), dtype=np.uint8)
  state = steps.create_state(setup, jax.random.key(0), images)
  return recognizer.Recognizer(setup, state.critic_params, state.critic_frozen, batch_size=64)


def _random_images(count: int, seed: int = 1) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, 256, (count, 28, 28, 1), dtype=np.uint8)


def _forced(scale: float = 10.0) -> recognizer.Recognizer:
  """A critic whose logit d is scale * (pixel d of the flattened image) / 255: it reads the brightest of pixels
  0..9, with probability e^(scale b) / (e^(scale b) + 9) for brightness b in [0, 1] and the others dark."""
  setup = steps.SslSetup(critic=models.SslCritic(hidden_features=()))
  direction = np.zeros((28 * 28, 10), np.float32)
  direction[np.arange(10), np.arange(10)] = 1.0
  params = {"logits": {"direction": direction, "scale": np.full(10, scale, np.float32), "bias": np.zeros(10)}}
  return recognizer.Recognizer(setup, params, {}, batch_size=16)


def _digit_images(digits, brightness: int = 255) -> np.ndarray:
  """uint8 [N, 28, 28]: image i dark but for pixel digits[i] (flattened), which has this brightness."""
  images = np.zeros((len(digits), 28 * 28), np.uint8)
  images[np.arange(len(digits)), digits] = brightness
  return images.reshape(-1, 28, 28)


def test_probabilities_are_a_distribution_over_ten_digits_the_same_in_any_batching(tiny):
  images = _random_images(150)  # three batches of 64, the last padded
  probabilities = tiny.probabilities(images)
  assert probabilities.shape == (150, 10) and probabilities.dtype == np.float32
  np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
  one_batch = recognizer.Recognizer(tiny.setup, tiny.params, tiny.frozen, batch_size=1000)
  np.testing.assert_allclose(one_batch.probabilities(images[..., 0]), probabilities, rtol=1e-5, atol=1e-7)


def test_predictions_are_what_critic_accuracy_counts(tiny):
  images = _random_images(150)
  predicted = tiny.predict(images)
  assert predicted.dtype == np.int32 and predicted.shape == (150,)
  np.testing.assert_array_equal(predicted, np.argmax(tiny.probabilities(images), axis=1))
  labels = np.arange(150) % 10
  accuracy = steps.critic_accuracy(tiny.setup, tiny.params, tiny.frozen, images, labels)
  assert recognizer.report(tiny, images, labels)["accuracy"] == accuracy


def test_report_confusion_sums_to_the_images_and_its_diagonal_is_the_accuracy(tiny):
  images, labels = _random_images(230), np.arange(230) % 10
  result = recognizer.report(tiny, images, labels)
  confusion = np.array(result["confusion"])
  assert confusion.shape == (10, 10) and confusion.sum() == result["num_images"] == 230
  assert np.trace(confusion) / 230 == result["accuracy"]
  assert result["errors_per_10k"] == pytest.approx((1 - result["accuracy"]) * 10_000)
  assert result["num_errors"] == 230 - np.trace(confusion)
  np.testing.assert_array_equal(confusion.sum(axis=1), np.bincount(labels, minlength=10))


def test_report_errors_per_10k_is_the_exact_count_scaled_not_a_rounded_accuracy():
  predicted = np.arange(100) % 10
  labels = predicted.copy()
  labels[:7] = (labels[:7] + 1) % 10  # 7 errors in 100: 700 per 10k (7 / 100 * 10_000 is 700.0000000000001)
  result = recognizer.report(_forced(), _digit_images(predicted), labels)
  assert result["num_errors"] == 7 and result["errors_per_10k"] == 700.0


def test_report_of_forced_predictions_counts_each_error_where_it_belongs():
  predicted = np.arange(40) % 10
  labels = predicted.copy()
  labels[[3, 7, 13]] = [5, 5, 0]  # true 5 read as 3 and as 7, true 0 read as 3
  result = recognizer.report(_forced(), _digit_images(predicted), labels)
  assert result["num_errors"] == 3 and result["accuracy"] == 37 / 40
  assert result["errors_per_10k"] == pytest.approx(750.0)
  confusion = np.array(result["confusion"])
  assert confusion[5, 3] == confusion[5, 7] == 1 and confusion[0, 3] == 1
  assert confusion[3, 3] == 2 and confusion[5, 5] == 4
  assert result["per_digit_accuracy"][5] == 4 / 6 and result["per_digit_accuracy"][1] == 1.0


def test_report_with_a_digit_absent_gives_it_no_accuracy_and_refuses_bad_labels():
  result = recognizer.report(_forced(), _digit_images([1, 2, 2]), np.array([1, 2, 2]))
  assert result["per_digit_accuracy"][0] is None and result["accuracy"] == 1.0
  with pytest.raises(ValueError, match="one label per image"):
    recognizer.report(_forced(), _digit_images([1, 2]), np.array([1]))
  with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\), got \[-1, 2\]"):
    recognizer.report(_forced(), _digit_images([1, 2]), np.array([-1, 2]))


def test_forced_critic_reads_the_digit_with_the_chosen_confidence():
  probabilities = _forced(10.0).probabilities(_digit_images([4, 4], brightness=255))
  np.testing.assert_allclose(probabilities[:, 4], math.exp(10) / (math.exp(10) + 9), rtol=1e-5)


def test_label_images_gives_int32_labels_and_float32_probabilities_that_round_trip(tmp_path):
  labelled = recognizer.label_images(_forced(), _digit_images([0, 9, 3, 3, 7]))
  assert labelled["labels"].dtype == np.int32 and labelled["probabilities"].dtype == np.float32
  assert labelled["probabilities"].shape == (5, 10)
  np.testing.assert_array_equal(labelled["labels"], [0, 9, 3, 3, 7])
  out = str(tmp_path / "new" / "labels.npz")
  recognizer.write_labels(out, labelled, {"workdir": "w", "step": 3})
  with np.load(out) as f:
    np.testing.assert_array_equal(f["labels"], labelled["labels"])
    assert '"step": 3' in str(f["provenance"])
  assert recognizer.digit_histogram(labelled["labels"]).startswith("0: 1  1: 0  2: 0  3: 2")


def test_read_user_images_takes_the_one_array_or_the_images_key_in_either_shape(tmp_path):
  digits = _digit_images([1, 2, 3])
  np.savez(tmp_path / "one.npz", digits)
  np.savez(tmp_path / "named.npz", labels=np.arange(3), images=digits[..., None])
  for name in ("one.npz", "named.npz"):
    images = recognizer.read_user_images(str(tmp_path / name))
    assert images.shape == (3, 28, 28, 1) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[..., 0], digits)


@pytest.mark.parametrize(
  "array, message",
  [
    (np.zeros((4, 28, 28), np.float32), r"array 'arr_0' has dtype float32; give uint8 .* \(scale floats in \[0, 1\]"),
    (np.zeros((4, 28, 28, 3), np.uint8), r"array 'arr_0' has shape \[4, 28, 28, 3\]; give uint8"),
    (np.zeros((4, 32, 32), np.uint8), r"has shape \[4, 32, 32\]; give uint8 pixels 0..255 of shape \[N, 28, 28\]"),
    (np.zeros((0, 28, 28), np.uint8), r"has shape \[0, 28, 28\]; .* N >= 1"),
    (np.zeros((28, 28), np.uint8), r"has shape \[28, 28\]"),
  ],
)
def test_read_user_images_refuses_a_bad_array_in_one_line_naming_file_and_value(tmp_path, array, message):
  path = str(tmp_path / "digits.npz")
  np.savez(path, array)
  with pytest.raises(DataError, match=message) as raised:
    recognizer.read_user_images(path)
  assert str(raised.value).startswith(f"{path}: ") and "\n" not in str(raised.value)


def test_read_user_images_refuses_a_missing_unreadable_or_ambiguous_file(tmp_path):
  with pytest.raises(DataError, match=r"--images=.*nothing\.npz is not a file"):
    recognizer.read_user_images(str(tmp_path / "nothing.npz"))
  (tmp_path / "text.npz").write_text("not numpy")
  with pytest.raises(DataError, match=r"text\.npz cannot be read as an \.npz"):
    recognizer.read_user_images(str(tmp_path / "text.npz"))
  np.save(tmp_path / "plain.npy", _digit_images([1]))
  with pytest.raises(DataError, match=r"plain\.npy is an \.npy, not an \.npz; give an \.npz of uint8"):
    recognizer.read_user_images(str(tmp_path / "plain.npy"))
  np.savez(tmp_path / "objects.npz", np.array([None, 1], dtype=object))
  with pytest.raises(DataError, match=r"objects\.npz: Object arrays cannot be loaded"):
    recognizer.read_user_images(str(tmp_path / "objects.npz"))
  np.savez(tmp_path / "two.npz", a=_digit_images([1]), b=_digit_images([2]))
  with pytest.raises(DataError, match=r"holds arrays \['a', 'b'\]; give one array, or name the images 'images'"):
    recognizer.read_user_images(str(tmp_path / "two.npz"))


def test_critic_naming_accepts_a_sample_only_if_the_critic_reads_its_digit_confidently():
  naming = recognizer.CriticNaming(_forced(10.0), min_confidence=0.5, source={"workdir": "runs/ssl"})
  bright, dim = _digit_images([2, 5], 255), _digit_images([2, 5], 51)  # p(digit) ~ 0.9996 and ~ 0.45
  np.testing.assert_array_equal(naming.accepts(bright, np.array([2, 5])), [True, True])
  np.testing.assert_array_equal(naming.accepts(bright, np.array([3, 5])), [False, True])
  np.testing.assert_array_equal(naming.accepts(dim, np.array([2, 5])), [False, False])
  lenient = recognizer.CriticNaming(_forced(10.0), min_confidence=0.0)
  np.testing.assert_array_equal(lenient.accepts(dim, np.array([2, 4])), [True, False])  # the digit must still match
  assert naming.provenance == {"namer": "semi_supervised_critic", "min_confidence": 0.5, "workdir": "runs/ssl"}


def test_critic_naming_of_an_unconditional_generator_draws_ignored_zero_labels():
  naming = recognizer.CriticNaming(_forced())
  none = conditioning.Conditioning("none")
  labels = conditioning.sample_labels(none, None, jax.random.key(0), 6, np.array([0, 1, 2, 3, 4, 9]), naming)
  assert labels.dtype == np.int32 and labels.shape == (6,) and not labels.any()


def test_named_clusters_are_drawn_where_the_critic_reads_each_digit():
  digits = np.repeat(np.arange(10), 3)
  naming = recognizer.name_clusters(recognizer.CriticNaming(_forced()), _digit_images(digits), digits // 2, 5)
  np.testing.assert_allclose(naming.cluster_given_digit.sum(axis=1), 1.0)
  drawn = naming.draw_clusters(jax.random.key(0), np.arange(10))
  np.testing.assert_array_equal(drawn, np.arange(10) // 2)


def test_confusion_table_has_a_row_per_true_digit():
  confusion = np.diag(np.full(10, 1000)).tolist()
  confusion[4][9] = 7
  lines = recognizer.format_confusion(confusion).splitlines()
  assert len(lines) == 11 and lines[0].split()[1:] == [str(d) for d in range(10)]
  assert lines[5].split() == ["4", ".", ".", ".", ".", "1000", ".", ".", ".", ".", "7"]


def test_check_request_refuses_flags_that_cannot_work_before_loading(tmp_path):
  workdir, images = str(tmp_path), str(tmp_path / "digits.npz")
  with pytest.raises(ConfigError, match="--workdir is required"):
    recognizer.check_request(None, None, None)
  with pytest.raises(WorkdirError, match=r"--workdir=.*missing is not a directory"):
    recognizer.check_request(str(tmp_path / "missing"), None, None)
  with pytest.raises(ConfigError, match=r"--out=x\.npz needs --images"):
    recognizer.check_request(workdir, None, "x.npz")
  with pytest.raises(OutputPathError, match=r"--out=.*labels\.json does not end in \.npz"):
    recognizer.check_request(workdir, images, str(tmp_path / "labels.json"))
  np.savez(images, _digit_images([1]))
  with pytest.raises(ConfigError, match="is the --images file; give another path"):
    recognizer.check_request(workdir, images, os.path.join(workdir, ".", "digits.npz"))
  assert recognizer.check_request(workdir, None, None) == os.path.join(workdir, "recognition.json")
  assert recognizer.check_request(workdir, images, None) == str(tmp_path / "digits_labels.npz")


@pytest.mark.slow
def test_recognize_refuses_bad_flags_in_one_line(tmp_path):
  for flags, line in (
    ([], "error: --workdir is required"),
    ([f"--workdir={tmp_path}", "--out=x.npz"], "error: --out=x.npz needs --images"),
    ([f"--workdir={tmp_path}", f"--images={tmp_path}/none.npz"], "error: --images="),
  ):
    done = subprocess.run([sys.executable, "recognize.py", *flags], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr.strip().startswith(line), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not done.stdout


@pytest.mark.slow
def test_recognize_reports_a_trained_run_as_it_evaluates_and_labels_a_users_images(tmp_path, tiny_ssl_run):
  from ganjax.data import mnist  # noqa: PLC0415

  config, state, workdir = tiny_ssl_run.config, tiny_ssl_run.state, str(tmp_path / "run")
  shutil.copytree(tiny_ssl_run.workdir, workdir)  # the report is written into it
  setup = steps.make_setup(config)
  test_images, test_labels = mnist.load_split(config, "test")
  expected = steps.critic_accuracy(
    setup, steps.averaged_critic_params(setup, state), state.critic_frozen, test_images, test_labels
  )
  command = [sys.executable, "recognize.py", f"--workdir={workdir}"]
  done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
  assert f'"accuracy": {expected}' in done.stdout and "true\\pred" in done.stdout
  with open(os.path.join(workdir, "recognition.json")) as f:
    result = json.load(f)
  assert result["accuracy"] == expected and result["step"] == int(state.step) == 10
  images_path = str(tmp_path / "digits.npz")
  np.savez(images_path, test_images[:25, ..., 0])
  out = str(tmp_path / "labels" / "digits.npz")
  done = subprocess.run([*command, f"--images={images_path}", f"--out={out}"], cwd=REPO, capture_output=True, text=True)
  assert done.returncode == 0, done.stderr
  with np.load(out) as f:
    _, critic, _ = recognizer.load(workdir)
    np.testing.assert_array_equal(f["labels"], critic.predict(test_images[:25]))
    assert f["probabilities"].shape == (25, 10)
  assert "labelled 25 images: 0: " in done.stdout
