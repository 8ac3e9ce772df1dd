"""The semi-supervised GAN's part of setting up a run (conditioning semi_supervised; ganjax/experiment.py calls
it): its setup, a new state, the batches of every step and the compiled step; and a saved run's critic, for
recognition.

The labelled few are drawn from the training images' digits with (labels_per_class, label_seed), as
few_labels draws them; no other training label reaches a batch.
"""

import dataclasses
import os
from collections.abc import Callable

import jax
import ml_collections
import numpy as np
from absl import logging

from ganjax import checkpoints as checkpoints_lib
from ganjax import config as config_lib
from ganjax import rng, saved_run
from ganjax.data import labelled as labelled_lib
from ganjax.errors import WorkdirError
from ganjax.ssl import data, pseudo_labels, steps

INIT_IMAGES = 500  # the data-dependent init's batch (the reference's)


@dataclasses.dataclass(frozen=True)
class SslRecipe:
  """What a semi_supervised run trains with, before its state exists."""

  setup: steps.SslSetup
  images: np.ndarray  # uint8 [N, 28, 28, 1]: every training image (the unlabelled pool)
  labelled_indices: np.ndarray  # int [L]: the labelled few
  labelled_labels: np.ndarray  # int32 [L]: their digits
  pseudo_labels: np.ndarray | None = None  # int32 [N]: the anchor's digits (-1: none), when its weight is > 0

  def new_state(self, key: jax.Array) -> steps.SslState:
    """A fresh state: the critic's data-dependent init runs on INIT_IMAGES training images drawn with `key`."""
    init_key, state_key = jax.random.split(key)
    count = min(INIT_IMAGES, len(self.images))
    return steps.create_state(self.setup, state_key, data.init_images(self.images, init_key, count))

  def batches(self, config: ml_collections.ConfigDict, root_key: jax.Array) -> data.SslBatches:
    """The run's batch streams, drawn from its root key: step s trains on batches.batch(s)."""
    key = rng.stream(root_key, rng.SHUFFLE)
    return data.SslBatches(
      self.images,
      self.labelled_indices,
      self.labelled_labels,
      key,
      config.batch_size,
      config.labelled_batch_size,
      self.pseudo_labels,
    )


def recipe(
  config: ml_collections.ConfigDict,
  images: np.ndarray,
  digits: np.ndarray,
  workdir: str,
  write: bool = True,
) -> SslRecipe:
  """The recipe of a validated semi_supervised config on the training images and their digits. An anchored run's
  pseudo-labels are kept in `workdir` (pseudo_labels.npz, written when `write`), so a resume reads them."""
  labelled_indices = labelled_lib.draw_labelled(digits, config.labels_per_class, config.label_seed)
  labelled_labels = np.asarray(digits)[labelled_indices].astype(np.int32)
  total_steps = config_lib.total_train_steps(config, len(images))
  setup = steps.make_setup(config, total_steps, config_lib.batches_per_epoch(config, len(images)))
  pseudo = None
  if config.pseudo_label_weight > 0:
    inputs = (images, labelled_indices, labelled_labels, config.pseudo_label_fraction, config.pseudo_label_graph)
    path = os.path.join(workdir, saved_run.PSEUDO_LABELS_FILE)
    pseudo = pseudo_labels.load_or_spread(
      path, *inputs, write=write, min_probability=config.pseudo_label_min_probability
    )
    warning = pseudo_labels.uneven_digits(pseudo)
    if warning:
      logging.warning(warning)
  return SslRecipe(setup, images, labelled_indices, labelled_labels, pseudo)


def step_batches(batches: data.SslBatches) -> Callable:
  """position -> the batch of the step taken from it (one iteration per step)."""
  return lambda position: batches.batch(position.step)


def load_recognizer_parts(workdir: str) -> tuple[ml_collections.ConfigDict, steps.SslSetup, steps.SslState]:
  """(config, setup, state) of the semi_supervised run in `workdir`, from its newest checkpoint that restores
  and verifies; WorkdirError if the workdir holds no such run."""
  config = saved_run.load(workdir)
  if config.get("conditioning") != "semi_supervised":
    raise WorkdirError(
      f"{workdir} holds a run with conditioning {config.get('conditioning')!r}; only a semi_supervised run's "
      "critic recognizes digits (configs/ssl_gan.py)"
    )
  setup = steps.make_setup(config)
  images = np.zeros((INIT_IMAGES, 28, 28, 1), np.uint8)
  template = jax.eval_shape(lambda key: steps.create_state(setup, key, images), jax.random.key(0))
  directory = os.path.join(workdir, saved_run.CHECKPOINTS_DIR)
  state, _ = checkpoints_lib.restore_for_reading(directory, template)
  return config, setup, state
