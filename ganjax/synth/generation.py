"""Images from a trained generator: reload a run from its workdir, draw (labelled) samples in batches.

Used by evaluation (during training and afterwards), export and the augmentation benchmark. Everything is a
function of (state, key): the same checkpoint and seed give the same images.
"""

import dataclasses
import functools
import os
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ganjax import checkpoints as checkpoints_lib
from ganjax import conditioning, saved_run, steps
from ganjax import config as config_lib
from ganjax import images as images_lib
from ganjax.data import mnist
from ganjax.errors import GenerationError, WorkdirError


@dataclasses.dataclass(frozen=True)
class TrainedRun:
  """A trained run reloaded from its workdir: its config, models, state and checkpoint step (and epoch)."""

  config: ml_collections.ConfigDict
  setup: steps.GanSetup
  state: steps.TrainState
  step: int
  epoch: float
  workdir: str
  naming: conditioning.Naming | None = None  # how a run that needs one samples digits (load_run's load_naming)

  def at_step(self, step: int) -> "TrainedRun":
    """The same run restored at another checkpoint, with the same setup (jitted sampling is not recompiled)."""
    state, record = _restore(self.workdir, self.setup, step)
    return dataclasses.replace(self, state=state, step=int(record["step"]), epoch=record["epoch"])

  def with_sampling(self, batch_norm: str | None = None, latent_scale: float | None = None) -> "TrainedRun":
    """The same checkpoint sampled another way (None: as the run's config says): G's BatchNorm statistics
    (config.sampling_batch_norm: moving | batch) and the std of its noise (config.sampling_latent_scale)."""
    overrides = {"sampling_batch_norm": batch_norm, "sampling_latent_scale": latent_scale}
    overrides = {field: value for field, value in overrides.items() if value is not None}
    config = ml_collections.ConfigDict(self.config.to_dict())
    config.update(overrides)
    config_lib.validate_sampling(config)
    return dataclasses.replace(self, config=config, setup=dataclasses.replace(self.setup, **overrides))


def load_run(
  workdir: str, step: int | None = None, load_naming: Callable[[str], conditioning.Naming] | None = None
) -> TrainedRun:
  """The newest checkpoint of `workdir` (or that of `step`) on the default device. A run whose conditioning
  needs a naming to sample digits gets load_naming(workdir) (e.g. ganjax.few_labels.naming.load)."""
  workdir = os.path.abspath(workdir)
  config = saved_run.load(workdir)
  refuse_semi_supervised(config, workdir)
  setup = steps.make_setup(config)
  state, record = _restore(workdir, setup, step)
  naming = load_naming(workdir) if setup.conditioning.needs_naming and load_naming is not None else None
  return TrainedRun(config, setup, state, int(record["step"]), record["epoch"], workdir, naming)


def refuse_semi_supervised(config: ml_collections.ConfigDict, workdir: str) -> None:
  """WorkdirError in one line for a semi_supervised run, whose G and critic (ganjax/ssl/) no GAN tool loads."""
  if conditioning.Conditioning(config.conditioning).recognizes:
    raise WorkdirError(
      f"{workdir} holds a semi_supervised run (ganjax/ssl/), which this tool cannot load (it reads GAN runs); "
      f"its digits: python export.py --workdir={workdir} --out=digits.npz, then python evaluate.py --npz=digits.npz "
      f"(or python evaluate.py --workdir={workdir}); its critic: python recognize.py --workdir={workdir}"
    )


def _restore(workdir: str, setup: steps.GanSetup, step: int | None):
  """(state, record) of checkpoint `step` (None: the newest) of `workdir`; nothing is created on disk."""
  template = steps.create_state(setup, jax.random.key(0))
  return checkpoints_lib.restore_for_reading(os.path.join(workdir, saved_run.CHECKPOINTS_DIR), template, step)


def checkpoint_steps(workdir: str) -> list[int]:
  """The steps of the checkpoints kept in `workdir`, oldest first (none: [], and nothing is created)."""
  if not os.path.isdir(os.path.join(workdir, saved_run.CHECKPOINTS_DIR)):
    return []
  checkpoints = checkpoints_lib.Checkpoints(
    os.path.join(os.path.abspath(workdir), saved_run.CHECKPOINTS_DIR), 1, 1_000_000, writer=False
  )
  try:
    return checkpoints.steps()
  finally:
    checkpoints.close()


@functools.partial(jax.jit, static_argnums=(0, 4))
def _sample_batch(setup, state, key, labels, use_ema):
  z = jax.random.normal(key, (labels.shape[0], setup.latent_dim))
  return steps.sample(setup, state, z, labels if setup.num_labels else None, use_ema)


def generate(
  setup: steps.GanSetup,
  state: steps.TrainState,
  key: jax.Array,
  num_images: int,
  labels: np.ndarray | None = None,
  use_ema: bool = True,
  batch_size: int = 500,
  naming=None,
) -> np.ndarray:
  """uint8 [num_images, 28, 28, 1] from G in inference mode, for `labels` (conditional models: digits; default:
  balanced over the digits, or clusters drawn by their shares for a self-conditioned run), in fixed-size
  batches (one compilation; the last batch is padded). A digit_clusters run draws each digit's cluster here; a
  run whose conditioning needs a naming (few_labels) draws through its `naming` and redraws rejected samples."""
  if setup.conditioning.needs_naming:
    if naming is None:
      kind = setup.conditioning.kind
      raise ValueError(f"conditioning {kind!r} samples digits through the run's naming; pass naming=")
    if labels is None:
      labels = conditioning.balanced_labels(num_images, mnist.NUM_DIGITS)
    return generate_named(setup, state, key, np.asarray(labels, np.int32), naming, use_ema, batch_size)
  labels = conditioning.sample_labels(setup.conditioning, state.cluster_shares, key, num_images, labels)
  return _generate_for(setup, state, key, labels, use_ema, batch_size)


def _generate_for(setup, state, key: jax.Array, model_labels: np.ndarray, use_ema: bool, batch_size: int) -> np.ndarray:
  """uint8 images for these model labels, batch i with noise key fold_in(key, i)."""
  chunks = []
  for i, start in enumerate(range(0, len(model_labels), batch_size)):
    chunk = model_labels[start : start + batch_size]
    padded = np.pad(chunk, (0, batch_size - len(chunk)))
    images = _sample_batch(setup, state, jax.random.fold_in(key, i), jnp.asarray(padded), use_ema)
    chunks.append(images_lib.to_uint8(np.asarray(images[: len(chunk)])))
  return np.concatenate(chunks)


MAX_NAMED_ROUNDS = 50


def generate_named(setup, state, key: jax.Array, digits: np.ndarray, naming, use_ema: bool, batch_size: int):
  """uint8 images of `digits` from a label-free GAN: each slot draws a cluster from P(cluster | digit) and a
  sample, and is redrawn (next round's key) until the naming's classifier reads the sample as its digit."""
  out = np.zeros((len(digits), *mnist.IMAGE_SHAPE), np.uint8)
  pending = np.arange(len(digits))
  for round_index in range(MAX_NAMED_ROUNDS):
    round_key = jax.random.fold_in(key, round_index)
    wanted = digits[pending]
    clusters = conditioning.sample_labels(setup.conditioning, None, round_key, len(wanted), wanted, naming)
    candidates = _generate_for(setup, state, round_key, clusters, use_ema, batch_size)
    accepted = naming.accepts(candidates, wanted)
    out[pending[accepted]] = candidates[accepted]
    pending = pending[~accepted]
    if not len(pending):
      return out
  worst = np.bincount(digits[pending], minlength=mnist.NUM_DIGITS).argmax()
  raise GenerationError(
    f"after {MAX_NAMED_ROUNDS} rounds the naming's classifier still rejects {len(pending)} samples (most of digit "
    f"{worst}): the generator rarely draws that digit; train it longer or lower few_labels_min_confidence"
  )
