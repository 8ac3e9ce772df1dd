"""Prototype: label spreading (kNN graph) + the SmallCNN with classic augmentation, iterated.

Round 0: spread the N labels per class on a graph of critic (or pixel) features.
Round r: train the classifier recipe on the labelled images and the most confident fraction of the spread
labels; then rebuild the graph on the classifier's features (or keep it) and spread again, seeded with the
labelled images (and optionally the classifier's confident predictions).
"""

import argparse
import functools
import json
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import label_spread as ls  # noqa: E402

from ganjax.eval import classifiers  # noqa: E402
from ganjax.few_labels import labelled, self_training  # noqa: E402
from ganjax.synth import augmentations  # noqa: E402

CLASSIC = functools.partial(augmentations.classic, strength=1.0)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--label_seeds", default="0")
  parser.add_argument("--per_class", type=int, default=10)
  parser.add_argument("--features", default="critic")
  parser.add_argument("--dims", type=int, default=100)
  parser.add_argument("--k", type=int, default=10)
  parser.add_argument("--cnn_dims", type=int, default=100)
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--fractions", default="0.5,1.0")
  parser.add_argument("--regraph", type=int, default=1)  # rebuild the graph on the CNN's features
  parser.add_argument("--steps", type=int, default=2000)
  parser.add_argument("--out", default="/work/notes/proto/spread_chain.jsonl")
  args = parser.parse_args()
  images, labels, test_images, test_labels = ls.load_mnist()
  cache = f"/tmp/feats_{args.features}_{args.dims}.npy"
  if os.path.exists(cache):
    train_f = np.load(cache)
  else:
    raw = images.reshape(len(images), -1).astype(np.float32) / 255 if args.features == "pixels" else ls.critic_features("/work/runs/few_gan_s0", images)
    train_f = ls.pca(raw, args.dims)
    np.save(cache, train_f)
  dist, idx = ls.knn(train_f, args.k)
  fractions = [float(f) for f in args.fractions.split(",")]
  recipe = classifiers.small_cnn_recipe(args.steps)
  for label_seed in [int(s) for s in args.label_seeds.split(",")]:
    few = labelled.split(images, labels, args.per_class, label_seed)
    unl = np.setdiff1d(np.arange(len(labels)), few.labelled_indices)
    f = ls.spread(dist, idx, few.labelled_indices, few.labelled_labels, 0.99, 50)
    probs = f / (f.sum(1, keepdims=True) + 1e-12)
    log = dict(label_seed=label_seed, round=0, acc_unlabelled=float(np.mean(probs[unl].argmax(1) == labels[unl])))
    print(json.dumps(log), flush=True)
    key = jax.random.key(label_seed)
    start = time.time()
    for r in range(1, args.rounds + 1):
      chosen = self_training.most_confident(probs[unl], fractions[min(r - 1, len(fractions) - 1)])
      kept = unl[chosen]
      x = np.concatenate([few.labelled_images, images[kept]])
      y = np.concatenate([few.labelled_labels, probs[kept].argmax(1).astype(np.int32)])
      kept_acc = float(np.mean(probs[kept].argmax(1) == labels[kept]))
      params = classifiers.train_classifier(recipe, x, y, jax.random.fold_in(key, r), CLASSIC)
      test_acc = classifiers.accuracy(recipe.model, params, test_images, test_labels)
      cnn_probs = self_training.probabilities(recipe, params, images)
      cnn_unl_acc = float(np.mean(cnn_probs[unl].argmax(1) == labels[unl]))
      if args.regraph:
        feats = classifiers.features(recipe.model, params, images)
        d2, i2 = ls.knn(ls.pca(feats, args.cnn_dims), args.k)
        f = ls.spread(d2, i2, few.labelled_indices, few.labelled_labels, 0.99, 50)
        probs = f / (f.sum(1, keepdims=True) + 1e-12)
      else:
        probs = cnn_probs
      row = dict(vars(args), label_seed=label_seed, round=r, kept=len(kept), kept_acc=kept_acc, test_acc=test_acc,
                 cnn_unlabelled_acc=cnn_unl_acc, next_labels_acc=float(np.mean(probs[unl].argmax(1) == labels[unl])),
                 seconds=round(time.time() - start, 1))
      print(json.dumps(row), flush=True)
      with open(args.out, "a") as out:
        out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
  main()
