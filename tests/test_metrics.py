"""Sample metrics against closed forms, brute-force references and hand-made cases."""

import json

import jax
import numpy as np
import pytest
import scipy.linalg

from ganjax.eval import metrics


def random_covariance(rng: np.random.Generator, dim: int) -> np.ndarray:
  a = rng.normal(size=(dim, dim))
  return a @ a.T / dim + 0.1 * np.eye(dim)


def test_feature_statistics_are_float64_mean_and_unbiased_covariance():
  features = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
  mean, cov = metrics.feature_statistics(features)
  assert mean.dtype == cov.dtype == np.float64
  np.testing.assert_allclose(mean, features.astype(np.float64).mean(0), rtol=1e-12)
  np.testing.assert_allclose(cov, np.cov(features.astype(np.float64), rowvar=False), rtol=1e-12)
  centred = features - features.mean(0)
  np.testing.assert_allclose(cov, centred.T @ centred / 6, rtol=1e-5)  # N - 1, not N


def test_frechet_distance_of_diagonal_gaussians_is_mean_gap_plus_root_variance_gaps():
  rng = np.random.default_rng(1)
  m1, m2, a, b = rng.normal(size=5), rng.normal(size=5), rng.uniform(0.1, 3, 5), rng.uniform(0.1, 3, 5)
  expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  assert metrics.frechet_distance(m1, np.diag(a), m2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_of_non_commuting_covariances_matches_the_sqrtm_formula():
  rng = np.random.default_rng(2)
  m1, m2, c1, c2 = rng.normal(size=6), rng.normal(size=6), random_covariance(rng, 6), random_covariance(rng, 6)
  assert np.abs(c1 @ c2 - c2 @ c1).max() > 0.1  # the case eigendecompositions of C1 and C2 alone cannot do
  expected = np.sum((m1 - m2) ** 2) + np.trace(c1 + c2) - 2 * np.trace(scipy.linalg.sqrtm(c1 @ c2)).real
  assert metrics.frechet_distance(m1, c1, m2, c2) == pytest.approx(expected, rel=1e-9)


def test_fid_of_gaussian_samples_approaches_the_distance_between_the_gaussians():
  rng = np.random.default_rng(3)
  m1, m2, c1, c2 = rng.normal(size=4), rng.normal(size=4), random_covariance(rng, 4), random_covariance(rng, 4)
  exact = metrics.frechet_distance(m1, c1, m2, c2)
  a, b = rng.multivariate_normal(m1, c1, 200_000), rng.multivariate_normal(m2, c2, 200_000)
  # Standard error of the estimate is ~1e-2 at this size; the estimator's bias is O(d / N).
  assert metrics.fid(a, b) == pytest.approx(exact, abs=0.05)
  assert abs(metrics.fid(a[:1000], b[:1000]) - exact) > abs(metrics.fid(a, b) - exact)


def test_fid_of_a_set_with_itself_is_zero():
  rng = np.random.default_rng(4)
  features = np.maximum(rng.normal(size=(2000, 32)) @ rng.normal(size=(32, 32)), 0)  # ReLU-like, skewed
  features[:, :3] = 0  # dead units: a singular covariance
  assert abs(metrics.fid(features, features)) < 1e-6


def test_precision_and_recall_of_identical_sets_are_one():
  features = np.random.default_rng(5).normal(size=(300, 8))
  assert metrics.precision_recall(features, features.copy(), k=3) == (1.0, 1.0)


def test_precision_and_recall_of_far_apart_sets_are_zero():
  rng = np.random.default_rng(6)
  assert metrics.precision_recall(rng.normal(size=(200, 4)), 100 + rng.normal(size=(200, 4))) == (0.0, 0.0)


def test_fakes_covering_half_the_real_modes_have_full_precision_and_half_recall():
  rng = np.random.default_rng(7)
  centres = 50.0 * np.array([[0, 0], [1, 0], [0, 1], [1, 1]])
  real = np.concatenate([c + rng.normal(size=(1000, 2)) for c in centres])
  fake = np.concatenate([c + rng.normal(size=(1000, 2)) for c in centres[:2]])
  precision, recall = metrics.precision_recall(real, fake, k=3)
  # Fresh samples at a cluster's rim can fall outside every k-NN ball: the estimator reads a few % low.
  assert precision == pytest.approx(1.0, abs=0.04)
  assert recall == pytest.approx(0.5, abs=0.03) and recall <= 0.5


def brute_force_precision_recall(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
  def distances(a, b):
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))

  real_radii = np.sort(distances(real, real), axis=1)[:, k]
  fake_radii = np.sort(distances(fake, fake), axis=1)[:, k]
  precision = np.mean((distances(fake, real) <= real_radii[None, :]).any(1))
  recall = np.mean((distances(real, fake) <= fake_radii[None, :]).any(1))
  return float(precision), float(recall)


def test_chunked_precision_recall_equals_brute_force_with_a_padded_last_chunk():
  rng = np.random.default_rng(8)
  real, fake = rng.normal(size=(53, 5)), 1.0 + rng.normal(size=(41, 5))
  expected = brute_force_precision_recall(real, fake, k=4)
  assert 0.1 < expected[0] < 0.95 and 0.1 < expected[1] < 0.95  # not a trivial case
  assert metrics.precision_recall(real, fake, k=4, chunk_size=7) == pytest.approx(expected, abs=1e-12)
  brute_radii = np.sort(np.sqrt(((real[:, None] - real[None]) ** 2).sum(-1)), axis=1)[:, 4]
  np.testing.assert_allclose(metrics.knn_radii(real, k=4, chunk_size=7), brute_radii, rtol=1e-5)


def test_classifier_score_is_ten_for_confident_uniform_predictions_and_one_for_one_class():
  assert metrics.classifier_score(np.eye(10)[np.arange(1000) % 10]) == pytest.approx(10.0, rel=1e-12)
  assert metrics.classifier_score(np.eye(10)[np.full(1000, 3)]) == pytest.approx(1.0, rel=1e-12)
  soft = 0.5 * np.eye(10)[np.arange(1000) % 10] + 0.05  # confident but not one-hot
  assert 1.0 < metrics.classifier_score(soft) < 10.0
  assert metrics.classifier_score(np.eye(10)[np.arange(1000) % 5]) == pytest.approx(5.0, rel=1e-12)


def test_confusion_matrix_counts_each_true_and_predicted_pair():
  labels, predicted = np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2])
  confusion = metrics.confusion_matrix(labels, predicted, num_classes=3)
  np.testing.assert_array_equal(confusion, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
  assert confusion.dtype == np.int64 and metrics.confusion_matrix(labels, predicted).shape == (10, 10)


def test_class_balance_reports_shares_entropy_and_smallest_class():
  uniform = metrics.class_balance(np.arange(100) % 10)
  assert uniform["class_shares"] == [0.1] * 10 and uniform["min_class_share"] == 0.1
  assert uniform["class_entropy"] == pytest.approx(np.log(10)) and uniform["class_entropy_normalized"] == pytest.approx(
    1.0
  )
  collapsed = metrics.class_balance(np.array([2, 2, 2, 2, 7, 7, 7, 7]))
  assert collapsed["class_shares"][2] == collapsed["class_shares"][7] == 0.5 and collapsed["min_class_share"] == 0
  assert collapsed["class_entropy"] == pytest.approx(np.log(2))
  assert collapsed["class_entropy_normalized"] == pytest.approx(np.log(2) / np.log(10))
  single = metrics.class_balance(np.full(5, 4))
  assert single["class_entropy"] == 0.0 and str(single["class_entropy"]) == "0.0"  # not -0.0 in the JSON
  with pytest.raises(ValueError):
    metrics.class_balance(np.array([0, 10]))


def test_label_agreement_is_the_share_of_matching_labels():
  assert metrics.label_agreement(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 0])) == 0.5
  with pytest.raises(ValueError):
    metrics.label_agreement(np.array([1, 2]), np.array([1, 2, 3]))


class FakeEvaluator:
  """Features: pixels through a fixed random projection; probabilities: a softmax of another one."""

  sha256 = "f" * 64

  def __init__(self):
    rng = np.random.default_rng(9)
    self.projection, self.readout = rng.normal(size=(784, 16)), rng.normal(size=(784, 10))

  def features(self, images):
    return (images.reshape(len(images), -1) / 255.0) @ self.projection

  def probabilities(self, images):
    logits = (images.reshape(len(images), -1) / 255.0) @ self.readout
    return np.exp(logits - logits.max(1, keepdims=True)) / np.exp(logits - logits.max(1, keepdims=True)).sum(1)[:, None]

  def features_and_probabilities(self, images):
    return self.features(images), self.probabilities(images)


def random_images(seed: int, n: int) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)


def test_evaluate_samples_returns_every_metric_as_json_with_the_evaluator_sha(monkeypatch):
  from ganjax.eval import classifiers

  monkeypatch.setattr(classifiers, "classification_accuracy_score", lambda *args: 0.25)  # wiring, not training
  evaluator, fake, real = FakeEvaluator(), random_images(10, 120), random_images(11, 150)
  labels = np.arange(120) % 10
  results = metrics.evaluate_samples(evaluator, fake, real, labels, jax.random.key(0), np.arange(150) % 10)
  assert json.loads(json.dumps(results)) == results
  expected = {"fid", "classifier_score", "precision", "recall", "class_entropy", "class_entropy_normalized"}
  expected |= {"min_class_share", "class_shares", "label_agreement", "cas", "evaluator_sha256"}
  assert set(results) == expected | {"num_samples", "num_real"}
  assert results["evaluator_sha256"] == evaluator.sha256 and results["cas"] == 0.25
  assert (results["num_samples"], results["num_real"]) == (120, 150) and len(results["class_shares"]) == 10
  assert results["fid"] == pytest.approx(metrics.fid(evaluator.features(fake), evaluator.features(real)))
  assert "label_agreement" not in metrics.evaluate_samples(evaluator, fake, real)
  assert "cas" not in metrics.evaluate_samples(evaluator, fake, real, labels)
  with pytest.raises(ValueError, match="real_labels"):
    metrics.evaluate_samples(evaluator, fake, real, labels, jax.random.key(0))


def test_evaluate_samples_against_a_real_reference_equals_against_the_raw_images():
  evaluator, fake, real = FakeEvaluator(), random_images(12, 100), random_images(13, 100)
  reference = metrics.real_reference(evaluator, real)
  assert metrics.evaluate_samples(evaluator, fake, reference) == metrics.evaluate_samples(evaluator, fake, real)
  other = FakeEvaluator()
  other.sha256 = "0" * 64
  with pytest.raises(ValueError, match="different evaluator"):
    metrics.evaluate_samples(other, fake, reference)
  with pytest.raises(ValueError, match="uint8"):
    metrics.evaluate_samples(evaluator, fake.astype(np.float32) / 127.5 - 1, reference)


def test_knn_radii_of_duplicated_far_from_origin_points_are_zero_not_nan():
  # |a|^2 + |b|^2 - 2ab cancels badly in float32 for big norms: unclamped, duplicates get negative squares.
  points = 300.0 + np.random.default_rng(14).normal(size=(64, 16))
  radii = metrics.knn_radii(np.concatenate([points, points]), k=1, chunk_size=32)
  assert np.isfinite(radii).all() and radii.max() < 0.1


def test_a_fake_on_the_boundary_of_a_ball_is_inside_the_manifold():
  # Integer points: float32 distances are exact. Each real point's radius (k=1) is 1; 10 is 1 from 9.
  real = np.arange(10.0)[:, None]
  assert metrics.precision_recall(real, np.array([[10.0], [11.0], [-1.0], [-2.0]]), k=1)[0] == 0.5
