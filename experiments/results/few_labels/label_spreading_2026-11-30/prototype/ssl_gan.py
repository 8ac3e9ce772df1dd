"""Prototype: Improved-GAN (Salimans et al. 2016) feature-matching semi-supervised GAN on MNIST, N labels/class.

Measures test accuracy of the (10-logit) critic per epoch and wall time on this CPU.
"""

import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ganjax.few_labels import labelled

sys.path.insert(0, os.path.dirname(__file__))
import label_spread as ls  # noqa: E402

D_SIZES = [784, 1000, 500, 250, 250, 250, 10]
G_SIZES = [100, 500, 500, 784]


def wn_dense(p, x, train_scale=True):
  v = p["v"]
  g = p["g"] if train_scale else jax.lax.stop_gradient(p["g"])
  w = v * (g / jnp.sqrt(jnp.sum(v * v, axis=0) + 1e-12))
  return x @ w + p["b"]


def critic(params, x, key, noisy=True):
  """Logits [B, 10] and the last hidden features [B, 250]."""
  keys = jax.random.split(key, len(params) + 1)
  h = x
  if noisy:
    h = h + 0.3 * jax.random.normal(keys[-1], h.shape)
  feats = None
  for i, p in enumerate(params):
    h = wn_dense(p, h, train_scale=(i == len(params) - 1))
    if i < len(params) - 1:
      h = jax.nn.relu(h)
      feats = h
      if noisy:
        h = h + 0.5 * jax.random.normal(keys[i], h.shape)
  return h, feats


def generator(params, z):
  h = z
  for p in params[:-1]:
    h = h @ p["w"]
    mean, var = jnp.mean(h, 0), jnp.var(h, 0)
    h = (h - mean) / jnp.sqrt(var + 1e-6) + p["beta"]
    h = jax.nn.softplus(h)
  return jax.nn.sigmoid(wn_dense(params[-1], h))


def init_critic(key, x):
  """Weight-normed dense layers with data-dependent init (unit-variance pre-activations)."""
  key, nkey = jax.random.split(key)
  params, h = [], x + 0.3 * jax.random.normal(nkey, x.shape)
  for i, (n_in, n_out) in enumerate(zip(D_SIZES[:-1], D_SIZES[1:])):
    key, sub, nkey = jax.random.split(key, 3)
    v = 0.1 * jax.random.normal(sub, (n_in, n_out))
    p = {"v": v, "g": jnp.ones(n_out), "b": jnp.zeros(n_out)}
    pre = wn_dense(p, h)
    m, s = jnp.mean(pre, 0), jnp.std(pre, 0) + 1e-6
    p = {"v": v, "g": 1.0 / s, "b": -m / s}
    h = wn_dense(p, h)
    if i < len(D_SIZES) - 2:
      h = jax.nn.relu(h) + 0.5 * jax.random.normal(nkey, h.shape)
    params.append(p)
  return params


def init_generator(key, batch):
  params = []
  for n_in, n_out in zip(G_SIZES[:-2], G_SIZES[1:-1]):
    key, sub = jax.random.split(key)
    limit = np.sqrt(6 / (n_in + n_out))
    params.append({"w": jax.random.uniform(sub, (n_in, n_out), minval=-limit, maxval=limit), "beta": jnp.zeros(n_out)})
  key, sub, zkey = jax.random.split(key, 3)
  v = 0.05 * jax.random.normal(sub, (G_SIZES[-2], G_SIZES[-1]))
  last = {"v": v, "g": jnp.ones(G_SIZES[-1]), "b": jnp.zeros(G_SIZES[-1])}
  params.append(last)
  return params


def logsumexp(x):
  return jax.nn.logsumexp(x, axis=1)


def critic_loss(dparams, gparams, x_lab, y_lab, x_unl, key, unl_weight):
  k1, k2, k3, kz = jax.random.split(key, 4)
  fake = generator(gparams, jax.random.uniform(kz, (x_unl.shape[0], 100)))
  fake = jax.lax.stop_gradient(fake)
  l_lab, _ = critic(dparams, x_lab, k1)
  l_unl, _ = critic(dparams, x_unl, k2)
  l_fake, _ = critic(dparams, fake, k3)
  loss_lab = jnp.mean(logsumexp(l_lab) - jnp.take_along_axis(l_lab, y_lab[:, None], 1)[:, 0])
  z_unl = logsumexp(l_unl)
  loss_unl = 0.5 * (-jnp.mean(z_unl) + jnp.mean(jax.nn.softplus(z_unl)) + jnp.mean(jax.nn.softplus(logsumexp(l_fake))))
  err = jnp.mean(jnp.argmax(l_lab, 1) != y_lab)
  return loss_lab + unl_weight * loss_unl, (loss_lab, loss_unl, err)


def generator_loss(gparams, dparams, x_unl, key):
  k1, k2, kz = jax.random.split(key, 3)
  fake = generator(gparams, jax.random.uniform(kz, (x_unl.shape[0], 100)))
  _, f_fake = critic(dparams, fake, k1)
  _, f_real = critic(dparams, x_unl, k2)
  return jnp.mean(jnp.square(jnp.mean(f_fake, 0) - jnp.mean(jax.lax.stop_gradient(f_real), 0)))


def make_step(d_opt, g_opt, unl_weight, ema_decay):
  @jax.jit
  def step(state, x_lab, y_lab, x_unl, x_unl2, key):
    dparams, gparams, dstate, gstate, ema = state
    kd, kg = jax.random.split(key)
    (_, aux), dgrad = jax.value_and_grad(critic_loss, has_aux=True)(dparams, gparams, x_lab, y_lab, x_unl, kd, unl_weight)
    upd, dstate = d_opt.update(dgrad, dstate, dparams)
    dparams = optax.apply_updates(dparams, upd)
    gl, ggrad = jax.value_and_grad(generator_loss)(gparams, dparams, x_unl2, kg)
    upd, gstate = g_opt.update(ggrad, gstate, gparams)
    gparams = optax.apply_updates(gparams, upd)
    ema = jax.tree.map(lambda e, p: ema_decay * e + (1 - ema_decay) * p, ema, dparams)
    return (dparams, gparams, dstate, gstate, ema), (*aux, gl)

  return step


@jax.jit
def predict(dparams, x):
  logits, _ = critic(dparams, x, jax.random.key(0), noisy=False)
  return jnp.argmax(logits, 1)


def accuracy(dparams, x, y):
  preds = np.concatenate([np.asarray(predict(dparams, x[i : i + 1000])) for i in range(0, len(x), 1000)])
  return float(np.mean(preds == y))


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--per_class", type=int, default=10)
  parser.add_argument("--label_seed", type=int, default=0)
  parser.add_argument("--seed", type=int, default=1)
  parser.add_argument("--epochs", type=int, default=20)
  parser.add_argument("--batch", type=int, default=100)
  parser.add_argument("--lr", type=float, default=0.003)
  parser.add_argument("--unl_weight", type=float, default=1.0)
  parser.add_argument("--ema", type=float, default=0.999)
  parser.add_argument("--max_steps", type=int, default=0)
  parser.add_argument("--out", default="/work/notes/proto/ssl_gan.jsonl")
  args = parser.parse_args()
  images, labels, test_images, test_labels = ls.load_mnist()
  few = labelled.split(images, labels, args.per_class, args.label_seed)
  to_float = lambda a: (a.reshape(len(a), -1).astype(np.float32) / 255.0)
  x_lab, y_lab = to_float(few.labelled_images), few.labelled_labels
  x_all = to_float(images)  # every training image, its label unused (as the reference does)
  x_test = to_float(test_images)
  rng = np.random.RandomState(args.seed)
  key = jax.random.key(args.seed)
  kd, kg, key = jax.random.split(key, 3)
  dparams = init_critic(kd, jnp.asarray(x_all[rng.permutation(len(x_all))[:500]]))
  gparams = init_generator(kg, args.batch)
  d_opt = optax.adam(args.lr, b1=0.5)
  g_opt = optax.adam(args.lr, b1=0.5)
  state = (dparams, gparams, d_opt.init(dparams), g_opt.init(gparams), dparams)
  step = make_step(d_opt, g_opt, args.unl_weight, args.ema)
  steps_per_epoch = args.max_steps or len(x_all) // args.batch
  start = time.time()
  with open(args.out, "a") as log:
    for epoch in range(args.epochs):
      reps = -(-steps_per_epoch * args.batch // len(x_lab))
      lab_order = np.concatenate([rng.permutation(len(x_lab)) for _ in range(reps)])
      unl1, unl2 = rng.permutation(len(x_all)), rng.permutation(len(x_all))
      sums = np.zeros(4)
      for t in range(steps_per_epoch):
        sl = slice(t * args.batch, (t + 1) * args.batch)
        key, sub = jax.random.split(key)
        li = lab_order[sl]
        state, aux = step(state, x_lab[li], y_lab[li], x_all[unl1[sl]], x_all[unl2[sl]], sub)
        sums += np.asarray(jnp.stack(aux))
      sums /= steps_per_epoch
      acc_raw = accuracy(state[0], x_test, test_labels)
      acc_ema = accuracy(state[4], x_test, test_labels)
      row = dict(vars(args), epoch=epoch + 1, seconds=round(time.time() - start, 1), loss_lab=sums[0], loss_unl=sums[1],
                 train_err=sums[2], loss_gen=sums[3], test_acc=acc_raw, test_acc_ema=acc_ema)
      print(json.dumps(row), flush=True)
      log.write(json.dumps(row) + "\n")
      log.flush()


if __name__ == "__main__":
  main()
