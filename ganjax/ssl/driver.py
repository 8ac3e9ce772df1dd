"""A minimal loop that trains the semi-supervised GAN's reference recipe on MNIST and reports the critic's test
accuracy after every epoch: a check that the pure parts learn, until the recipe runs through ganjax.train.

No checkpoints, no workdir: what it measures is returned (and passed to `log`) as one dict per epoch.
"""

import time
from collections.abc import Callable

import jax
import ml_collections
import numpy as np

from ganjax.data import mnist
from ganjax.ssl import data, steps

# Folded into the run's key: the batch order, the critic's init and the steps' draws are independent streams.
DATA_STREAM, INIT_STREAM, STEP_STREAM = range(3)


def _epoch_record(setup, state, epoch_metrics: list, test_set) -> dict[str, float]:
  """The epoch's mean training metrics and the test accuracy of the live, averaged and debiased critics."""
  metrics = jax.device_get(epoch_metrics)
  record = {name: float(np.mean([m[name] for m in metrics])) for name in metrics[0]}
  frozen = state.critic_frozen
  record["test_accuracy"] = steps.critic_accuracy(setup, state.critic_params, frozen, *test_set)
  for name, debias in (("test_accuracy_ema", False), ("test_accuracy_ema_debiased", True)):
    params = steps.averaged_critic_params(setup, state, debias)
    record[name] = steps.critic_accuracy(setup, params, frozen, *test_set)
  return record


def train_reference(
  config: ml_collections.ConfigDict,
  num_epochs: int = 3,
  labels_per_class: int = 10,
  label_seed: int = 0,
  seed: int = 0,
  iterations_per_epoch: int = 600,
  setup: steps.SslSetup | None = None,
  log: Callable[[dict], None] = print,
) -> list[dict]:
  """Train `setup` (default: the reference recipe) for num_epochs x iterations_per_epoch iterations.

  `config` only says where MNIST is (ganjax.data.mnist.load_split). The labelled few are drawn as
  ganjax.few_labels draws them. Returns per epoch: the training metrics' means, train_seconds (test passes
  excluded) and the test accuracy of the live critic, its EMA as the reference reads it, and the debiased EMA.
  """
  setup = setup or steps.SslSetup()
  images, labels = mnist.load_split(config, "train")
  test_set = mnist.load_split(config, "test")
  key = jax.random.key(seed)
  batches = data.few_labels_batches(images, labels, labels_per_class, label_seed, jax.random.fold_in(key, DATA_STREAM))
  state = steps.create_state(setup, jax.random.fold_in(key, INIT_STREAM), batches.init_images())
  train_step, step_key = steps.make_train_step(setup), jax.random.fold_in(key, STEP_STREAM)
  records, train_seconds = [], 0.0
  for epoch in range(num_epochs):
    start, epoch_metrics = time.perf_counter(), []
    for iteration in range(epoch * iterations_per_epoch, (epoch + 1) * iterations_per_epoch):
      state, metrics = train_step(state, batches.batch(iteration), step_key)
      epoch_metrics.append(metrics)
    jax.block_until_ready(state)
    train_seconds += time.perf_counter() - start
    record = {"epoch": epoch + 1, "iteration": int(state.step), "train_seconds": round(train_seconds, 1)}
    record.update(_epoch_record(setup, state, epoch_metrics, test_set))
    log(record)
    records.append(record)
  return records
