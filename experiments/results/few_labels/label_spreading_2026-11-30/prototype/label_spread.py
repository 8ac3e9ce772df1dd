"""Prototype: label spreading on a kNN graph of all training images, from N labels per class.

Features: raw pixels (PCA) or a trained critic's last conv features (PCA). Reports the accuracy of the spread
labels on the unlabelled images (their hidden labels, read only to measure) and of a kNN read-out on test.
"""

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from configs import default
from ganjax.data import mnist
from ganjax.few_labels import labelled


def load_mnist():
  """Train and test images (uint8) and labels, from the data dir the default config resolves (TFDS_DATA_DIR)."""
  config = default.get_config()
  config.download = False
  return (*mnist.load_split(config, "train"), *mnist.load_split(config, "test"))


def pca(x, dims):
  x = x - x.mean(0)
  cov = (x.T @ x) / len(x)
  vals, vecs = np.linalg.eigh(cov.astype(np.float64))
  return (x @ vecs[:, ::-1][:, :dims]).astype(np.float32)


def critic_features(workdir, images_uint8):
  from ganjax.synth import generation

  run = generation.load_run(workdir)
  critic = run.setup.critic
  params = run.state.critic_params if hasattr(run.state, "critic_params") else run.state.critic.params
  out = []

  @jax.jit
  def feats(x):
    _, inter = critic.apply({"params": params}, x, None, jnp.zeros(x.shape[0], jnp.int32),
                            capture_intermediates=lambda m, n: m.name == "Conv_1", mutable=["intermediates"])
    h = inter["intermediates"]["Conv_1"]["__call__"][0]
    h = jax.nn.leaky_relu(h, critic.leaky_relu_slope)
    return h.reshape(h.shape[0], -1)

  for i in range(0, len(images_uint8), 1000):
    x = images_uint8[i : i + 1000].astype(np.float32) / 127.5 - 1.0
    out.append(np.asarray(feats(x)))
  return np.concatenate(out)


def knn(x, k, chunk=2000):
  xj = jnp.asarray(x)
  sq = jnp.sum(xj * xj, 1)

  @jax.jit
  def block(q, qsq):
    d = qsq[:, None] - 2 * q @ xj.T + sq[None, :]
    neg, idx = jax.lax.top_k(-d, k + 1)
    return -neg, idx

  ds, ids = [], []
  for i in range(0, len(x), chunk):
    d, idx = block(xj[i : i + chunk], sq[i : i + chunk])
    ds.append(np.asarray(d)[:, 1:])
    ids.append(np.asarray(idx)[:, 1:])
  return np.maximum(np.concatenate(ds), 0), np.concatenate(ids)


def spread(dist, idx, seeds, seed_labels, alpha, iterations):
  n, k = idx.shape
  sigma = np.sqrt(dist[:, -1:]) + 1e-8  # self-tuning scale (distance to the k-th neighbour)
  w = np.exp(-dist / (sigma * sigma[idx, 0]))
  graph = sp.csr_matrix((w.ravel(), (np.repeat(np.arange(n), k), idx.ravel())), shape=(n, n))
  graph = graph + graph.T
  deg = np.asarray(graph.sum(1)).ravel()
  dinv = sp.diags(1 / np.sqrt(deg))
  s = dinv @ graph @ dinv
  y = np.zeros((n, 10), np.float32)
  y[seeds, seed_labels] = 1
  f = y.copy()
  for _ in range(iterations):
    f = alpha * (s @ f) + (1 - alpha) * y
  return f


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--features", default="pixels")  # pixels | critic
  parser.add_argument("--workdir", default="/work/runs/few_gan_s0")
  parser.add_argument("--per_class", type=int, default=10)
  parser.add_argument("--label_seeds", default="0")
  parser.add_argument("--dims", type=int, default=50)
  parser.add_argument("--k", type=int, default=10)
  parser.add_argument("--alpha", type=float, default=0.99)
  parser.add_argument("--iterations", type=int, default=50)
  parser.add_argument("--out", default="/work/notes/proto/label_spread.jsonl")
  args = parser.parse_args()
  images, labels, test_images, test_labels = load_mnist()
  start = time.time()
  every = np.concatenate([images, test_images])
  if args.features == "pixels":
    raw = every.reshape(len(every), -1).astype(np.float32) / 255.0
  else:
    raw = critic_features(args.workdir, every)
  feats = pca(raw, args.dims) if args.dims else raw
  t_feat = time.time() - start
  train_f, test_f = feats[: len(images)], feats[len(images) :]
  dist, idx = knn(train_f, args.k)
  t_knn = time.time() - start - t_feat
  for label_seed in [int(s) for s in args.label_seeds.split(",")]:
    few = labelled.split(images, labels, args.per_class, label_seed)
    f = spread(dist, idx, few.labelled_indices, few.labelled_labels, args.alpha, args.iterations)
    pred = f.argmax(1)
    unl = np.setdiff1d(np.arange(len(labels)), few.labelled_indices)
    acc_unl = float(np.mean(pred[unl] == labels[unl]))
    # test: majority of the spread labels of each test image's k nearest training images
    xj, tj = jnp.asarray(train_f), jnp.asarray(test_f)
    d = jnp.sum(tj * tj, 1)[:, None] - 2 * tj @ xj.T + jnp.sum(xj * xj, 1)[None, :]
    _, nn_idx = jax.lax.top_k(-d, args.k)
    votes = np.asarray(f[np.asarray(nn_idx)].sum(1))
    acc_test = float(np.mean(votes.argmax(1) == test_labels))
    conf = f.max(1) / (f.sum(1) + 1e-12)
    top = unl[np.argsort(-conf[unl])[: len(unl) // 2]]
    acc_top_half = float(np.mean(pred[top] == labels[top]))
    row = dict(vars(args), label_seed=label_seed, acc_unlabelled=acc_unl, acc_test_knn=acc_test,
               acc_most_confident_half=acc_top_half, seconds_features=round(t_feat, 1), seconds_knn=round(t_knn, 1))
    print(json.dumps(row), flush=True)
    with open(args.out, "a") as log:
      log.write(json.dumps(row) + "\n")


if __name__ == "__main__":
  main()
