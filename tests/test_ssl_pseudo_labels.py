"""The pseudo-labels that anchor the semi-supervised critic: the most confident fraction of each spread digit,
the labelled few their own labels, and label spreading's digits on well separated images."""

import numpy as np
import pytest

from ganjax.ssl import pseudo_labels


def test_each_digit_keeps_its_most_confident_fraction():
  probabilities = np.array(
    [[0.9, 0.1], [0.6, 0.4], [0.7, 0.3], [0.8, 0.2], [0.2, 0.8], [0.45, 0.55], [0.3, 0.7], [0.1, 0.9]]
  )  # rows 0-3 lean to digit 0, rows 4-7 to digit 1
  labels = pseudo_labels.keep_most_confident(probabilities, 0.5)
  np.testing.assert_array_equal(labels, [0, -1, -1, 0, 1, -1, -1, 1])
  np.testing.assert_array_equal(pseudo_labels.keep_most_confident(probabilities, 1.0), [0, 0, 0, 0, 1, 1, 1, 1])
  np.testing.assert_array_equal(pseudo_labels.keep_most_confident(probabilities, 0.01), [0, -1, -1, -1, -1, -1, -1, 1])


def test_a_fraction_outside_zero_to_one_is_refused():
  with pytest.raises(ValueError, match="fraction=0"):
    pseudo_labels.keep_most_confident(np.full((2, 2), 0.5), 0)


def test_spread_pseudo_labels_name_separated_blobs_and_keep_the_labelled_few():
  rng = np.random.default_rng(0)
  digits = np.repeat(np.arange(3), 40)
  blobs = np.zeros((120, 28, 28, 1), np.float32)
  for digit in range(3):  # each digit lights its own block of pixels
    blobs[digits == digit, 9 * digit : 9 * digit + 9, :, 0] = 200
  images = np.clip(blobs + rng.normal(0, 20, blobs.shape), 0, 255).astype(np.uint8)
  labelled, given = np.array([0, 40, 80, 41]), np.array([0, 1, 2, 1])
  labels = pseudo_labels.spread_pseudo_labels(images, labelled, given, fraction=0.75, graph="pixels", num_classes=3)
  named = np.flatnonzero(labels >= 0)
  assert len(named) >= 0.7 * len(images)
  np.testing.assert_array_equal(labels[named], digits[named])
  # however few the confident images kept, the labelled few are named, with their own labels
  labels = pseudo_labels.spread_pseudo_labels(images, labelled, given, fraction=0.01, graph="pixels", num_classes=3)
  np.testing.assert_array_equal(labels[labelled], given)
  assert np.sum(labels >= 0) <= len(labelled) + 3


def test_both_graphs_name_separated_blobs_and_another_graph_is_refused():
  rng = np.random.default_rng(1)
  digits = np.repeat(np.arange(2), 30)
  images = np.zeros((60, 28, 28, 1), np.float32)
  images[digits == 0, 4:24, 8:11, 0] = 220  # an upright bar
  images[digits == 1, 12:15, 4:24, 0] = 220  # a flat bar
  images = np.clip(images + rng.normal(0, 15, images.shape), 0, 255).astype(np.uint8)
  for graph in pseudo_labels.GRAPHS:
    labels = pseudo_labels.spread_pseudo_labels(images, np.array([0, 30]), np.array([0, 1]), 1.0, graph, 2)
    np.testing.assert_array_equal(labels, digits, err_msg=graph)
  with pytest.raises(ValueError, match="graph='edges'"):
    pseudo_labels.spread_pseudo_labels(images, np.array([0, 30]), np.array([0, 1]), 1.0, "edges", 2)


def test_the_pseudo_labels_are_kept_in_the_workdir_and_read_back_only_for_the_same_inputs(tmp_path, monkeypatch):
  rng = np.random.default_rng(2)
  digits = np.repeat(np.arange(2), 30)
  images = np.zeros((60, 28, 28, 1), np.float32)
  images[digits == 0, 4:24, 8:11, 0], images[digits == 1, 12:15, 4:24, 0] = 220, 220
  images = np.clip(images + rng.normal(0, 15, images.shape), 0, 255).astype(np.uint8)
  path, labelled, given = str(tmp_path / "pseudo_labels.npz"), np.array([0, 30]), np.array([0, 1])
  spread = pseudo_labels.spread_pseudo_labels
  calls = []
  monkeypatch.setattr(pseudo_labels, "spread_pseudo_labels", lambda *a, **k: calls.append(a[3]) or spread(*a, **k))

  def load(fraction, write=True, least=0.0):
    return pseudo_labels.load_or_spread(
      path, images, labelled, given, fraction, "pixels", write, num_classes=2, min_probability=least
    )

  assert load(1.0, write=False).tolist() == digits.tolist() and not (tmp_path / "pseudo_labels.npz").exists()
  first = load(1.0)
  np.testing.assert_array_equal(load(1.0), first)  # read back, not spread again
  assert calls == [1.0, 1.0]
  half = load(0.5)  # another fraction: spread afresh and replaced
  assert calls == [1.0, 1.0, 0.5] and np.sum(half >= 0) < np.sum(first >= 0)
  np.testing.assert_array_equal(load(0.5), half)
  (tmp_path / "pseudo_labels.npz").write_bytes(b"torn")  # a file that does not read is spread afresh
  np.testing.assert_array_equal(load(0.5), half)
  assert calls == [1.0, 1.0, 0.5, 0.5]
  np.testing.assert_array_equal(load(0.5), half)
  assert len(calls) == 4
  sure = load(0.5, least=0.999)  # another min_probability: spread afresh, keeping no other labels
  assert calls == [1.0, 1.0, 0.5, 0.5, 0.5] and np.array_equal(sure[sure >= 0], half[sure >= 0])
  np.testing.assert_array_equal(load(0.5, least=0.999), sure)
  assert len(calls) == 5


def test_min_probability_keeps_only_the_rows_spread_that_surely_and_is_checked():
  probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.7, 0.3], [0.2, 0.8], [0.45, 0.55], [0.35, 0.65]])
  np.testing.assert_array_equal(pseudo_labels.keep_most_confident(probabilities, 1.0, 0.65), [0, -1, 0, 1, -1, 1])
  # Both rules: digit 0's most confident two thirds (rows 0, 2) and digit 1's (rows 3, 5), then p >= 0.75.
  np.testing.assert_array_equal(pseudo_labels.keep_most_confident(probabilities, 2 / 3, 0.75), [0, -1, -1, 1, -1, -1])
  with pytest.raises(ValueError, match=r"min_probability=1.0; it must be in \[0, 1\)"):
    pseudo_labels.keep_most_confident(probabilities, 1.0, 1.0)


def test_uneven_digits_names_each_digit_far_from_an_even_share_and_is_silent_on_mnist_like_shares():
  mnist_like = np.repeat(np.arange(10), [592, 674, 596, 613, 584, 542, 592, 627, 585, 595])  # MNIST's training counts
  assert pseudo_labels.uneven_digits(np.concatenate([mnist_like, np.full(300, pseudo_labels.NO_LABEL)])) is None
  # One labelled 3 that looks like a 9: the 3s take most 9s (counts 100 a digit but 3: 190, 9: 10).
  pulled = np.repeat(np.arange(10), [100, 100, 100, 190, 100, 100, 100, 100, 100, 10])
  warning = pseudo_labels.uneven_digits(pulled)
  assert warning.startswith("label spreading gives digit 9 0.10x an even share") and "digit 3" not in warning
  assert "\n" not in warning and "--config.label_seed" in warning
  pulled_harder = np.repeat(np.arange(10), [90, 90, 90, 270, 90, 90, 90, 90, 90, 10])  # 1000: an even share is 100
  assert "gives digit 3 2.70x, digit 9 0.10x an even share" in pseudo_labels.uneven_digits(pulled_harder)
