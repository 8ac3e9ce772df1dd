"""Deskewing: a slanted stroke stands upright at the centre, an upright centred digit is left as it is, and a
blank image stays blank."""

import numpy as np

from ganjax.few_labels import deskew


def _moments(image: np.ndarray) -> tuple[float, float, float]:
  rows, cols = np.mgrid[: image.shape[0], : image.shape[1]]
  total = image.sum()
  mean_row, mean_col = (rows * image).sum() / total, (cols * image).sum() / total
  covariance = ((rows - mean_row) * (cols - mean_col) * image).sum() / total
  return mean_row, mean_col, covariance


def _slanted_stroke(slant: float, row_offset: int = 0, col_offset: int = 0) -> np.ndarray:
  image = np.zeros((28, 28), np.float32)
  for row in range(6, 22):
    image[row + row_offset, round(14 + slant * (row - 14)) + col_offset] = 1.0
  return image


def test_a_slanted_stroke_off_centre_stands_upright_at_the_centre():
  stroke = _slanted_stroke(0.5, row_offset=3, col_offset=-4)
  assert abs(_moments(stroke)[2]) > 5  # slanted: rows and columns move together
  mean_row, mean_col, covariance = _moments(deskew.deskew(stroke[None])[0])
  assert abs(covariance) < 0.5 and abs(mean_row - 14) < 0.5 and abs(mean_col - 14) < 0.5


def test_an_upright_centred_image_is_unchanged_and_channels_are_dropped():
  plus = np.zeros((28, 28), np.float32)
  plus[14, 10:19], plus[10:19, 14] = 1.0, 1.0  # symmetric about (14, 14): no shear, no shift
  assert _moments(plus) == (14.0, 14.0, 0.0)
  np.testing.assert_allclose(deskew.deskew(plus[None, :, :, None])[0], plus, atol=1e-5)


def test_a_blank_image_stays_blank_and_finite():
  out = deskew.deskew(np.zeros((3, 28, 28), np.uint8))
  assert out.shape == (3, 28, 28) and out.dtype == np.float32 and np.all(out == 0)
