"""The calibration script's reference sets (no evaluator needed)."""

import jax
import numpy as np
import pytest

from ganjax.eval import calibration


def test_box_blur_spreads_a_pixel_over_its_3x3_neighbourhood_with_black_outside():
  images = np.zeros((2, 5, 5, 1), np.uint8)
  images[0, 2, 2] = 252
  images[1] = 90
  blurred = calibration.box_blur(images)
  assert blurred.dtype == np.uint8 and blurred.shape == images.shape
  expected = np.zeros((5, 5), np.uint8)
  expected[1:4, 1:4] = 28
  np.testing.assert_array_equal(blurred[0, ..., 0], expected)
  assert (blurred[1, 1:4, 1:4] == 90).all() and blurred[1, 0, 0] == 40  # a corner sees 4 of 9 pixels


def test_gaussian_noise_has_the_asked_sigma_in_gan_units_and_is_clipped():
  grey = np.full((20, 28, 28, 1), 128, np.uint8)
  noisy = calibration.gaussian_noise(grey, 0.1, jax.random.key(0))
  assert noisy.dtype == np.uint8 and noisy.shape == grey.shape
  assert (noisy.astype(np.float64) / 127.5).std() == pytest.approx(0.1, rel=0.05)
  black_and_white = np.concatenate([np.zeros((1, 28, 28, 1), np.uint8), np.full((1, 28, 28, 1), 255, np.uint8)])
  black, white = calibration.gaussian_noise(black_and_white, 0.3, jax.random.key(1))
  assert (black == 0).mean() > 0.4 and (white == 255).mean() > 0.4  # clipped, not wrapped around
  assert black.max() < 160 and white.min() > 95
  np.testing.assert_array_equal(calibration.gaussian_noise(grey, 0.0, jax.random.key(2)), grey)


def test_reference_sets_have_the_right_sizes_labels_and_classes():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (300, 28, 28, 1), dtype=np.uint8)
  labels = np.arange(300) % 10
  images[:, 0, 0, 0] = labels  # each image carries its label, to check images and labels stay paired
  sets = calibration.reference_sets(images, labels, 100, jax.random.key(0))
  for name, (set_images, set_labels) in sets.items():
    assert set_images.shape == (100, 28, 28, 1) and set_images.dtype == np.uint8, name
    if set_labels is not None and "blur" not in name and "noise" not in name:
      np.testing.assert_array_equal(set_images[:, 0, 0, 0], set_labels)
  subset_images, subset_labels = sets["train (real)"]
  assert len(np.unique(subset_images.reshape(100, -1), axis=0)) == 100  # without replacement
  np.testing.assert_array_equal(sets["train, 3x3 box blur"][1], subset_labels)
  assert set(sets[f"digit {calibration.SINGLE_DIGIT} only"][1]) == {calibration.SINGLE_DIGIT}
  assert set(sets["digits 0-4 only"][1]) == {0, 1, 2, 3, 4}
  assert sets["uniform noise"][1] is None


def test_markdown_table_has_a_row_per_set_dashes_for_missing_labels_and_names_the_evaluator():
  row = {"set": "uniform noise", "fid": 1.0, "classifier_score": 1.0, "precision": 0.0, "recall": 0.0}
  row |= {"class_entropy_normalized": 0.1, "min_class_share": 0.0, "evaluator_sha256": "abc"}
  row |= {"num_samples": 5, "num_real": 7}
  table = calibration.markdown([row, {**row, "set": "train (real)", "label_agreement": 0.99, "cas": 0.98}])
  lines = table.splitlines()
  assert lines[2].startswith("| uniform noise |") and lines[2].endswith("| - | - |")
  assert lines[3].endswith("| 0.990 | 0.980 |") and "sha256 abc" in table
