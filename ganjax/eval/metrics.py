"""Sample-quality metrics for generated digits, in the feature space of the evaluator classifier.

FID, the classifier score (MNIST's Inception score), precision/recall of Kynkäänniemi et al. (2019), the class
balance of the predicted labels (a mode-collapse detector) and, for conditional samples, agreement with the
intended labels and the classification accuracy score (CAS). Statistics are float64 numpy; only the pairwise
distances of precision/recall run in JAX, in fixed-shape chunks so 10k x 10k distances never exist at once.
`evaluate_samples` puts them all in one flat dict of JSON-able numbers.
"""

import dataclasses
import functools
import math
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np


class FeatureClassifier(Protocol):
  """A digit classifier that also gives its penultimate features: what the metrics need (ganjax.eval.evaluator's
  Evaluator, the shipped network, is the one they are computed with)."""

  sha256: str

  def features(self, images: np.ndarray) -> np.ndarray: ...  # uint8 [N, 28, 28, 1] -> [N, D]

  def probabilities(self, images: np.ndarray) -> np.ndarray: ...  # uint8 [N, 28, 28, 1] -> [N, classes]

  def features_and_probabilities(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...  # one pass


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean [D] and unbiased covariance [D, D] (divided by N - 1), in float64: FID subtracts large traces."""
  features = np.asarray(features, np.float64)
  if features.ndim != 2 or len(features) < 2:
    raise ValueError(f"feature_statistics needs [N >= 2, D] features, got shape {features.shape}")
  return features.mean(axis=0), np.cov(features, rowvar=False, ddof=1)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
  """C^{1/2} = V diag(sqrt(max(w, 0))) V^T from C = V diag(w) V^T."""
  eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2)
  return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def frechet_distance(mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray, cov2: np.ndarray) -> float:
  """Fréchet (2-Wasserstein) distance between N(m1, C1) and N(m2, C2):

    |m1 - m2|^2 + tr(C1) + tr(C2) - 2 tr((C1^{1/2} C2 C1^{1/2})^{1/2}).

  Both square roots are of symmetric PSD matrices, so they go through symmetric eigendecompositions (eigh) with
  round-off negatives clipped to 0: real, stable and exact to ~1e-11 on 128-d features, where a general sqrtm of
  the non-symmetric C1 C2 can return complex parts and needs an iterative fix-up. The outer root only enters
  through its trace, the sum of the square roots of the eigenvalues of C1^{1/2} C2 C1^{1/2}.
  """
  mean1, mean2, cov1, cov2 = (np.asarray(a, np.float64) for a in (mean1, mean2, cov1, cov2))
  sqrt1 = _psd_sqrt(cov1)
  inner = sqrt1 @ cov2 @ sqrt1
  trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0.0, None)).sum()
  return float(np.sum((mean1 - mean2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt)


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
  """Fréchet distance between Gaussians fitted to two feature sets [N, D], [M, D]."""
  return frechet_distance(*feature_statistics(features_a), *feature_statistics(features_b))


def classifier_score(probabilities: np.ndarray) -> float:
  """exp(E_x KL(p(y|x) || p(y))) over the whole set, p(y) = E_x p(y|x): the Inception score with the MNIST
  evaluator in place of Inception, in one split. 1 (all one class) <= score <= number of classes (confident
  and uniform over the classes). 0 log 0 = 0, so one-hot predictions need no epsilon.
  """
  p = np.asarray(probabilities, np.float64)
  marginal = p.mean(axis=0, keepdims=True)
  # Where p > 0 the marginal is > 0 too; the inner where keeps log away from 0 so no warnings are raised.
  log_ratio = np.log(np.where(p > 0, p, 1.0)) - np.log(np.where(p > 0, marginal, 1.0))
  kl = np.sum(np.where(p > 0, p * log_ratio, 0.0), axis=1)
  return float(np.exp(kl.mean()))


def _squared_distances(a: jax.Array, b: jax.Array) -> jax.Array:
  """|a_i - b_j|^2 = |a_i|^2 + |b_j|^2 - 2 a_i.b_j, clamped at 0: round-off makes near-duplicates slightly
  negative. HIGHEST precision, as a GPU's default TF32 matmul would blur the nearest-neighbour distances."""
  dots = jnp.matmul(a, b.T, precision=jax.lax.Precision.HIGHEST)
  return jnp.maximum(jnp.sum(a * a, axis=1)[:, None] + jnp.sum(b * b, axis=1)[None, :] - 2.0 * dots, 0.0)


@functools.partial(jax.jit, static_argnames=("k", "chunk_size"))
def _kth_nearest_squared(queries: jax.Array, points: jax.Array, k: int, chunk_size: int) -> jax.Array:
  """Squared distance from each query (a member of points) to its (k+1)-th nearest point, itself being the 1st."""
  chunks = queries.reshape(-1, chunk_size, queries.shape[1])
  nearest = jax.lax.map(lambda chunk: -jax.lax.top_k(-_squared_distances(chunk, points), k + 1)[0], chunks)
  return nearest[..., k].reshape(-1)


@functools.partial(jax.jit, static_argnames="chunk_size")
def _inside_balls(queries: jax.Array, centres: jax.Array, squared_radii: jax.Array, chunk_size: int) -> jax.Array:
  """Whether each query lies in at least one ball |q - c_j| <= r_j."""
  chunks = queries.reshape(-1, chunk_size, queries.shape[1])
  inside = jax.lax.map(lambda chunk: jnp.any(_squared_distances(chunk, centres) <= squared_radii, axis=1), chunks)
  return inside.reshape(-1)


def _padded(features: np.ndarray, chunk_size: int) -> jax.Array:
  """Rows zero-padded to a multiple of chunk_size, so every chunk has one compiled shape. Padded rows are only
  ever queries, never neighbours or centres, and their answers are sliced off."""
  return jnp.asarray(np.pad(features, ((0, -len(features) % chunk_size), (0, 0))))


def knn_radii(features: np.ndarray, k: int = 3, chunk_size: int = 1000) -> np.ndarray:
  """float64 [N]: each point's distance to its k-th nearest neighbour in the set (itself excluded), the radius
  of its ball in the set's manifold estimate."""
  features = np.asarray(features, np.float32)
  if not 0 < k < len(features):
    raise ValueError(f"k={k} nearest neighbours need more than k points, got {len(features)}")
  chunk_size = min(chunk_size, len(features))
  squared = _kth_nearest_squared(_padded(features, chunk_size), jnp.asarray(features), k, chunk_size)
  return np.sqrt(np.asarray(squared, np.float64)[: len(features)])


def inside_manifold(queries: np.ndarray, centres: np.ndarray, radii: np.ndarray, chunk_size: int = 1000) -> np.ndarray:
  """bool [len(queries)]: whether each query lies in the union of the balls (centres, radii)."""
  queries = np.asarray(queries, np.float32)
  chunk_size = min(chunk_size, len(queries))
  squared_radii = jnp.asarray(np.square(np.asarray(radii, np.float64)), jnp.float32)
  inside = _inside_balls(_padded(queries, chunk_size), jnp.asarray(centres, jnp.float32), squared_radii, chunk_size)
  return np.asarray(inside)[: len(queries)]


def precision_recall(
  real_features: np.ndarray,
  fake_features: np.ndarray,
  k: int = 3,
  chunk_size: int = 1000,
  real_radii: np.ndarray | None = None,
) -> tuple[float, float]:
  """Improved precision and recall (Kynkäänniemi et al. 2019). A set's manifold is the union of balls around its
  points, each of radius the distance to the point's k-th nearest neighbour in the set. Precision: the share of
  fakes inside the real manifold (are samples realistic?). Recall: the share of reals inside the fake manifold
  (is the data covered? Mode collapse lowers it). real_radii: knn_radii(real_features, k), if already known.
  """
  if real_radii is None:
    real_radii = knn_radii(real_features, k, chunk_size)
  precision = inside_manifold(fake_features, real_features, real_radii, chunk_size).mean()
  recall = inside_manifold(real_features, fake_features, knn_radii(fake_features, k, chunk_size), chunk_size).mean()
  return float(precision), float(recall)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int = 10) -> np.ndarray:
  """int64 [K, K]: entry (t, p) counts the images of true class t predicted as p (the diagonal: the right ones)."""
  confusion = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(confusion, (np.asarray(labels, np.int64), np.asarray(predicted, np.int64)), 1)
  return confusion


def class_balance(predicted_labels: np.ndarray, num_classes: int = 10) -> dict[str, Any]:
  """How evenly the samples spread over the classes: a mode-collapse detector. Shares s_c, their entropy
  H = -sum_c s_c log s_c in nats, H / log(num_classes) (1: uniform, 0: one class) and the smallest share."""
  labels = np.asarray(predicted_labels).reshape(-1)
  if labels.size == 0 or labels.min() < 0 or labels.max() >= num_classes:
    raise ValueError(f"class_balance needs labels in [0, {num_classes}), got {labels.size} labels")
  shares = np.bincount(labels, minlength=num_classes) / labels.size
  entropy = np.sum(shares[shares > 0] * np.log(1.0 / shares[shares > 0]))  # not -0.0 for one class
  return {
    "class_entropy": float(entropy),
    "class_entropy_normalized": float(entropy / math.log(num_classes)),
    "min_class_share": float(shares.min()),
    "class_shares": [float(s) for s in shares],
  }


def label_agreement(predicted_labels: np.ndarray, intended_labels: np.ndarray) -> float:
  """Share of conditional samples the evaluator classifies as the label they were generated for."""
  predicted, intended = np.asarray(predicted_labels).reshape(-1), np.asarray(intended_labels).reshape(-1)
  if predicted.shape != intended.shape:
    raise ValueError(f"{predicted.size} predicted labels but {intended.size} intended labels")
  return float(np.mean(predicted == intended))


@dataclasses.dataclass(frozen=True)
class RealReference:
  """The real side of every metric, computed once: evaluation during training compares samples with the same
  10k test images every few epochs, so their features, Gaussian and k-NN radii need not be redone each time."""

  images: np.ndarray  # uint8 [M, 28, 28, 1], kept for CAS (tested on them)
  features: np.ndarray  # [M, D]
  mean: np.ndarray  # float64 [D]
  cov: np.ndarray  # float64 [D, D], unbiased
  radii: np.ndarray  # float64 [M], k-th nearest neighbour distances
  k: int
  evaluator_sha256: str


def _check_images(images: np.ndarray, name: str) -> np.ndarray:
  images = np.asarray(images)
  if images.dtype != np.uint8 or images.ndim != 4:
    raise ValueError(
      f"{name} must be uint8 [N, H, W, C] images (ganjax.images.to_uint8), got {images.dtype} {images.shape}"
    )
  return images


def real_reference(evaluator: FeatureClassifier, real_images_uint8: np.ndarray, k: int = 3) -> RealReference:
  """Evaluator features, their mean and covariance and their k-NN radii for a real image set."""
  images = _check_images(real_images_uint8, "real images")
  features = np.asarray(evaluator.features(images))
  mean, cov = feature_statistics(features)
  return RealReference(images, features, mean, cov, knn_radii(features, k), k, evaluator.sha256)


def evaluate_samples(
  evaluator: FeatureClassifier,
  fake_images_uint8: np.ndarray,
  real_images_uint8: np.ndarray | RealReference,
  intended_labels: np.ndarray | None = None,
  cas_key: jax.Array | None = None,
  real_labels: np.ndarray | None = None,
) -> dict[str, Any]:
  """Every sample-quality metric of fake images against real ones (raw uint8 images, or a RealReference built
  once with real_reference), as a flat dict of JSON-able numbers named after the evaluator that produced them.

  Always: fid, classifier_score, precision, recall, class_entropy(_normalized), min_class_share, class_shares.
  With intended_labels (conditional samples): label_agreement. With cas_key and real_labels too: cas, the test
  accuracy on the real images of a classifier trained on the fakes (ganjax.eval.classifiers).
  """
  fake = _check_images(fake_images_uint8, "fake images")
  if cas_key is not None and (intended_labels is None or real_labels is None):
    raise ValueError("CAS (cas_key) needs intended_labels for the fakes and real_labels for the real images")
  if isinstance(real_images_uint8, RealReference):
    reference = real_images_uint8
    if reference.evaluator_sha256 != evaluator.sha256:
      raise ValueError("the RealReference was computed with a different evaluator; rebuild it with this one")
  else:
    reference = real_reference(evaluator, real_images_uint8)
  features, probabilities = map(np.asarray, evaluator.features_and_probabilities(fake))
  predicted = probabilities.argmax(axis=1)
  precision, recall = precision_recall(reference.features, features, reference.k, real_radii=reference.radii)
  results = {
    "evaluator_sha256": evaluator.sha256,
    "num_samples": len(fake),
    "num_real": len(reference.images),
    "fid": frechet_distance(*feature_statistics(features), reference.mean, reference.cov),
    "classifier_score": classifier_score(probabilities),
    "precision": precision,
    "recall": recall,
    **class_balance(predicted, probabilities.shape[1]),
  }
  if intended_labels is not None:
    results["label_agreement"] = label_agreement(predicted, intended_labels)
    if cas_key is not None:
      from ganjax.eval import classifiers

      cas = classifiers.classification_accuracy_score(fake, intended_labels, reference.images, real_labels, cas_key)
      results["cas"] = float(cas)
  return results
