"""Labelled digits from a semi-supervised GAN (conditioning semi_supervised): its unconditional G's samples, each
named by the run's critic, or by the strong CNN the critic teaches (ganjax/ssl/cnn_recognizer.py; stricter with G's
ambiguous samples: docs/ssl_gan.md), and kept when it reads a digit with probability >= min_confidence (the
run's few_labels_min_confidence unless given).

G cannot be asked for a digit, so its samples are drawn in rounds, named, and poured into one bucket per digit
until every bucket holds its quota (cheaper than redrawing slot by slot); a digit G rarely draws fails in one
line after MAX_ROUNDS rounds. G normalises each layer over its batch, so it samples in batches of the run's
batch_size, as it trained. export.py and evaluate.py sample such a run through this module.
"""

import dataclasses
import functools
import math
import os
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ganjax import conditioning, saved_run
from ganjax.data.mnist import IMAGE_SHAPE, NUM_DIGITS
from ganjax.errors import ConfigError, GenerationError
from ganjax.ssl import cnn_recognizer, experiment, recognizer, steps

MAX_ROUNDS = 30  # rounds of candidates, each as many as the images asked for, before a digit fails
LABEL_SOURCE = "semi_supervised_critic"  # an export's label_source when the critic names G's digits
NAMERS = {"critic": LABEL_SOURCE, "cnn": "semi_supervised_cnn"}  # --recognizer -> the namer's name in provenance


@dataclasses.dataclass(frozen=True)
class SslRun:
  """A semi_supervised run reloaded to sample digits: G's parameters and the critic that names its samples."""

  config: ml_collections.ConfigDict
  setup: steps.SslSetup
  state: steps.SslState
  step: int
  workdir: str
  naming: recognizer.CriticNaming  # the averaged critic, with the run's few_labels_min_confidence


def is_semi_supervised(workdir: str) -> bool:
  """Whether `workdir` holds a semi_supervised run (WorkdirError if it holds no run)."""
  config = saved_run.load(os.path.abspath(workdir))
  return conditioning.Conditioning(config.get("conditioning", "none")).recognizes


@dataclasses.dataclass(frozen=True)
class NamingChoice:
  """Who names a semi_supervised run's digits (export.py / evaluate.py --recognizer: NAMERS) and how sure it must
  be to keep one (--min_confidence; None: the run's few_labels_min_confidence)."""

  recognizer: str = "critic"
  min_confidence: float | None = None

  def validate(self) -> None:
    """ConfigError in one line naming the bad flag and what it allows."""
    if self.recognizer not in NAMERS:
      raise ConfigError(f"--recognizer={self.recognizer!r}; it must be one of {', '.join(NAMERS)}")
    if self.min_confidence is not None and not 0 <= self.min_confidence < 1:
      raise ConfigError(f"--min_confidence={self.min_confidence}; it must be in [0, 1) (a digit's probability)")

  def flags(self) -> str:
    """The flags that differ from the defaults, as given."""
    given = {"recognizer": self.recognizer, "min_confidence": self.min_confidence}
    return " ".join(f"--{name}={value}" for name, value in given.items() if value != getattr(NamingChoice(), name))


def load(workdir: str, choice: NamingChoice = NamingChoice()) -> SslRun:
  """The run in `workdir` at its newest verified checkpoint, its digits named as `choice` says: by the averaged
  critic, or by the CNN it teaches (the one kept in the workdir, or trained now and kept); the naming's provenance
  names the namer, its threshold and the critic's step."""
  choice.validate()
  workdir = os.path.abspath(workdir)
  config, setup, state = experiment.load_recognizer_parts(workdir)
  step = int(state.step)
  source = {
    "workdir": workdir,
    "step": step,
    "labels_per_class": config.labels_per_class,
    "label_seed": config.label_seed,
  }
  naming = recognizer.CriticNaming(recognizer.from_state(setup, state), config.few_labels_min_confidence, source)
  return SslRun(config, setup, state, step, workdir, choose_naming(naming, choice, workdir, config, step))


def choose_naming(
  naming: recognizer.CriticNaming, choice: NamingChoice, workdir: str, config: ml_collections.ConfigDict, step: int
) -> recognizer.CriticNaming:
  """`naming` (the averaged critic of the semi_supervised run in `workdir`, config, at `step`) as `choice` says:
  its threshold replaced when choice gives one, and for the CNN the CNN that critic teaches in its place (the one
  kept in the workdir for this step, else trained now and kept there), named in the provenance."""
  if choice.min_confidence is not None:
    naming = dataclasses.replace(naming, min_confidence=choice.min_confidence)
  if choice.recognizer != "cnn":
    return naming
  cnn, record, _ = cnn_recognizer.for_critic(workdir, config, naming.recognizer, step, cnn_recognizer.STEPS)
  cnn_source = naming.source | {"cnn_steps": record["recipe"]["num_steps"], "cnn_file": cnn_recognizer.KEPT_FILE}
  return dataclasses.replace(naming, recognizer=cnn, source=cnn_source, namer=NAMERS["cnn"])


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def _sample_batches(setup: steps.SslSetup, generator_params, key: jax.Array, num_batches: int, batch_size: int):
  """uint8 [num_batches * batch_size, 28, 28, 1]: G on z ~ U[0, 1], each batch normalised on its own."""
  z = steps.draw_latents(setup, key, num_batches * batch_size).reshape(num_batches, batch_size, setup.latent_dim)
  images = jax.vmap(lambda batch: setup.generator.apply({"params": generator_params}, batch))(z)
  return jnp.clip(jnp.round(images * 255.0), 0, 255).astype(jnp.uint8).reshape(-1, *IMAGE_SHAPE)


def sample(run: SslRun, key: jax.Array, num_batches: int) -> np.ndarray:
  """uint8 [num_batches * config.batch_size, 28, 28, 1]: G's samples (it has no EMA: generator_params)."""
  return np.asarray(_sample_batches(run.setup, run.state.generator_params, key, num_batches, run.config.batch_size))


def name_samples(naming: recognizer.CriticNaming, images: np.ndarray) -> np.ndarray:
  """int32 [N]: the digit the critic reads in each image (its argmax), or -1 where its probability is below
  naming.min_confidence: the one digit naming.accepts would accept, in one pass of the critic."""
  probabilities, digits = naming.recognizer.classify(images)
  confident = probabilities[np.arange(len(digits)), digits] >= naming.min_confidence
  return np.where(confident, digits, -1).astype(np.int32)


def fill_quotas(
  draw: Callable[[int], np.ndarray],
  name: Callable[[np.ndarray], np.ndarray],
  quotas: np.ndarray,
  max_rounds: int = MAX_ROUNDS,
  namer: str = "the critic",
) -> tuple[np.ndarray, np.ndarray]:
  """(images, labels int32) holding quotas[d] images named d, digits in order: draw(r) gives round r's
  candidates and name(candidates) each one's digit (-1: none); each digit keeps its first candidates in draw
  order. GenerationError naming the digit furthest from its quota when max_rounds rounds do not fill them."""
  quotas = np.asarray(quotas, np.int64)
  kept: list[list[np.ndarray]] = [[] for _ in quotas]
  counts = np.zeros_like(quotas)
  num_drawn = 0
  for round_index in range(max_rounds):
    candidates = draw(round_index)
    digits = name(candidates)
    num_drawn += len(candidates)
    for d in np.flatnonzero(counts < quotas):
      members = np.flatnonzero(digits == d)[: quotas[d] - counts[d]]
      kept[d].append(candidates[members])
      counts[d] += len(members)
    if (counts >= quotas).all():
      images = np.concatenate([chunk for chunks in kept for chunk in chunks])
      return images, np.repeat(np.arange(len(quotas), dtype=np.int32), quotas)
  short = int(np.argmax(quotas - counts))
  raise GenerationError(
    f"after {max_rounds} rounds ({num_drawn} samples) {namer} named digit {short} confidently in only "
    f"{counts[short]} of the {quotas[short]} asked for: the generator rarely draws it; ask for fewer per digit "
    "or train the run longer"
  )


def generate_digits(run: SslRun, key: jax.Array, quotas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(uint8 [sum(quotas), 28, 28, 1], int32 labels): quotas[d] of G's samples named d by the run's critic,
  digits in order; round r draws from fold_in(key, r) as many candidates as asked for (in whole batches)."""
  num_batches = math.ceil(int(np.sum(quotas)) / run.config.batch_size)
  draw = lambda round_index: sample(run, jax.random.fold_in(key, round_index), num_batches)  # noqa: E731
  namer = "the CNN" if run.naming.namer == NAMERS["cnn"] else "the critic"
  return fill_quotas(draw, functools.partial(name_samples, run.naming), quotas, namer=namer)


def per_class_quotas(num_images: int) -> np.ndarray:
  """int [10]: num_images split over the digits as evenly as conditioning.balanced_labels splits them."""
  return np.bincount(conditioning.balanced_labels(num_images, NUM_DIGITS), minlength=NUM_DIGITS)
