"""ganjax.few_labels.label_spreading: the exact k-NN graph, and labels that flow along it and nowhere else."""

import numpy as np
import pytest

from ganjax.few_labels import label_spreading


def test_nearest_neighbours_are_the_exact_k_nearest_other_points_in_any_block_size():
  points = np.random.default_rng(0).normal(size=(53, 4)).astype(np.float32)
  squared = ((points[:, None] - points[None]) ** 2).sum(-1)
  np.fill_diagonal(squared, np.inf)
  expected = np.argsort(squared, axis=1, kind="stable")[:, :3]
  for block in (53, 10):  # 10: the last block is padded
    distances, indices = label_spreading.nearest_neighbours(points, 3, block=block)
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(distances, np.take_along_axis(squared, expected, 1), rtol=1e-4, atol=1e-4)
  with pytest.raises(ValueError, match="neighbours=53; it must be in \\[1, 52\\]"):
    label_spreading.nearest_neighbours(points, 53)


def blobs(rng, centres, per_blob):
  return np.concatenate([c + 0.1 * rng.normal(size=(per_blob, 2)) for c in centres]).astype(np.float32)


def test_labels_spread_within_their_cluster_and_an_unreached_cluster_stays_uniform():
  rng = np.random.default_rng(1)
  points = blobs(rng, [(0, 0), (10, 0), (0, 10)], per_blob=30)  # points 60..89: a blob without a label
  settings = label_spreading.Spreading(neighbours=5)
  seeds, seed_labels = np.array([0, 30]), np.array([2, 7])
  probs = label_spreading.label_probabilities(points, seeds, seed_labels, 10, 2, settings)
  assert probs.shape == (90, 10)
  np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
  assert np.all(probs[:30].argmax(1) == 2) and np.all(probs[30:60].argmax(1) == 7)
  assert probs[:60].max(axis=1).min() > 0.99  # nothing leaks between separated blobs
  np.testing.assert_allclose(probs[60:], 0.1)  # no label reaches the third blob


def test_a_point_between_two_clusters_is_labelled_by_the_nearer_one():
  rng = np.random.default_rng(2)
  points = np.concatenate([blobs(rng, [(0, 0), (4, 0)], per_blob=40), [[1.2, 0.0]]]).astype(np.float32)
  probs = label_spreading.label_probabilities(
    points, np.array([0, 40]), np.array([3, 5]), 10, 2, label_spreading.Spreading(neighbours=8)
  )
  assert probs[-1].argmax() == 3 and probs[-1, 5] < probs[-1, 3]


def test_principal_components_keep_the_leading_axes_and_their_distances():
  rng = np.random.default_rng(3)
  plane = rng.normal(size=(200, 2)) * [5.0, 1.0]
  rotation, _ = np.linalg.qr(rng.normal(size=(6, 6)))
  points = (np.concatenate([plane, np.zeros((200, 4))], 1) @ rotation).astype(np.float32) + 3.0
  projected = label_spreading.principal_components(points, 2)
  assert projected.shape == (200, 2) and projected[:, 0].var() > 10 * projected[:, 1].var()
  distance = lambda x: np.linalg.norm(x[:, None] - x[None], axis=-1)
  np.testing.assert_allclose(distance(projected), distance(points), atol=1e-3)
