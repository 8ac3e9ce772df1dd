"""Label spreading (Zhou et al. 2004, "Learning with local and global consistency"): a few labels flow along a
k-nearest-neighbour graph of all images, so every unlabelled image gets the digit of the labelled images its
neighbourhood leads to.

Self-training uses it as the labeller of the unlabelled images (self_training.SelfTraining.labeller
"spreading"): first on the pixels, then on the last classifier's features, where neighbours share a digit more
often. The graph's edge i-j weighs exp(-d_ij^2 / (s_i s_j)), s_i the distance to i's k-th neighbour
(self-tuning scales, Zelnik-Manor & Perona 2004), symmetrised; scores iterate F <- alpha S F + (1 - alpha) Y
with S = D^-1/2 W D^-1/2 and Y the one-hot labels of the labelled images (zeros elsewhere).
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Spreading:
  """The graph and the iteration; the defaults are the measured ones (docs/few_labels.md)."""

  neighbours: int = 10  # k of the k-NN graph
  pixel_dims: int = 50  # principal components of the pixels the first graph is built on
  feature_dims: int = 100  # principal components of a classifier's features, for the later graphs
  alpha: float = 0.99  # how far labels flow (1: only along the graph; 0: no spreading)
  iterations: int = 50


def principal_components(x: np.ndarray, dims: int) -> np.ndarray:
  """float32 [N, dims]: x [N, D] centred and projected on its dims leading principal axes (all if dims >= D)."""
  x = np.asarray(x, np.float32).reshape(len(x), -1)
  x = x - x.mean(axis=0)
  covariance = (x.T @ x).astype(np.float64) / len(x)
  _, axes = np.linalg.eigh(covariance)  # ascending eigenvalues
  return (x @ axes[:, ::-1][:, :dims].astype(np.float32)).astype(np.float32)


@functools.partial(jax.jit, static_argnames="k")
def _block_neighbours(queries, query_offset, points, k):
  squared = jnp.sum(queries**2, 1)[:, None] - 2 * queries @ points.T + jnp.sum(points**2, 1)[None, :]
  own = query_offset + jnp.arange(len(queries))
  squared = squared.at[jnp.arange(len(queries)), own].set(jnp.inf)  # a point is not its own neighbour
  negative, indices = jax.lax.top_k(-squared, k)
  return jnp.maximum(-negative, 0.0), indices


def nearest_neighbours(x: np.ndarray, k: int, block: int = 2000) -> tuple[np.ndarray, np.ndarray]:
  """(squared distances float32 [N, k], indices int32 [N, k]) of each point's k nearest other points, nearest
  first; exact, in blocks of `block` queries (one compiled shape: the last block is padded)."""
  x = np.asarray(x, np.float32)
  if not 1 <= k < len(x):
    raise ValueError(f"neighbours={k}; it must be in [1, {len(x) - 1}] for {len(x)} points")
  points, block = jnp.asarray(x), min(block, len(x))
  distances, indices = [], []
  for start in range(0, len(x), block):
    queries = x[start : start + block]
    padded = np.concatenate([queries, np.zeros((block - len(queries), x.shape[1]), np.float32)])
    d, i = _block_neighbours(jnp.asarray(padded), start, points, k)
    distances.append(np.asarray(d)[: len(queries)])
    indices.append(np.asarray(i)[: len(queries)])
  return np.concatenate(distances), np.concatenate(indices).astype(np.int32)


@functools.partial(jax.jit, static_argnames=("num_classes", "iterations"))
def spread(distances, indices, seeds, seed_labels, num_classes: int, alpha: float, iterations: int) -> jax.Array:
  """float32 [N, num_classes]: the spread scores of every point (rows not normalised; 0 where no label reaches).

  distances, indices: the k-NN graph (nearest_neighbours); seeds int [L]: the labelled points; seed_labels [L].
  """
  n, k = indices.shape
  scale = jnp.sqrt(distances[:, -1]) + 1e-8
  weights = jnp.exp(-distances / (scale[:, None] * scale[indices]))  # [N, k]
  rows = jnp.repeat(jnp.arange(n), k)

  def graph_times(f):  # (W + W^T) f: W's rows gather from the neighbours; W^T scatters back to them
    gathered = jnp.einsum("nk,nkc->nc", weights, f[indices])
    scattered = jax.ops.segment_sum((weights.reshape(-1, 1) * f[rows]), indices.reshape(-1), num_segments=n)
    return gathered + scattered

  degree = graph_times(jnp.ones((n, 1)))[:, 0]
  inverse_root = jnp.where(degree > 0, 1 / jnp.sqrt(degree), 0.0)[:, None]
  targets = jnp.zeros((n, num_classes)).at[seeds, seed_labels].set(1.0)
  step = lambda _, f: alpha * inverse_root * graph_times(inverse_root * f) + (1 - alpha) * targets
  return jax.lax.fori_loop(0, iterations, step, targets)


def label_probabilities(
  features: np.ndarray, seeds: np.ndarray, seed_labels: np.ndarray, num_classes: int, dims: int, settings: Spreading
) -> np.ndarray:
  """float32 [N, num_classes]: each point's spread scores as a distribution (uniform where no label reaches),
  on a k-NN graph of the features' `dims` principal components."""
  graph = nearest_neighbours(principal_components(features, dims), settings.neighbours)
  scores = spread(*graph, np.asarray(seeds), np.asarray(seed_labels), num_classes, settings.alpha, settings.iterations)
  scores = np.asarray(scores, np.float64)
  totals = scores.sum(axis=1, keepdims=True)
  uniform = np.full_like(scores, 1 / num_classes)
  return np.where(totals > 0, scores / np.where(totals > 0, totals, 1), uniform).astype(np.float32)
