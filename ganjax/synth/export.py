"""Export a labelled synthetic dataset from a trained run: uint8 digits + labels + provenance in one .npz.

  python export.py --workdir=runs/cwgan_gp --num_per_class=1000 --out=synthetic/cwgan_gp.npz

The .npz holds `images` uint8 [N, 28, 28], `labels` int32 [N] (class-balanced) and `provenance`, a JSON
string: the run's config (with the noise scale sampled at), the checkpoint step, the seed, EMA or not, the
filter and the evaluator's hash when one was used. A PNG grid per class is written beside it. Conditional
runs are labelled by their own conditioning; unconditional runs by the evaluator classifier's prediction
(recorded as label_source); a semi_supervised run's samples by its critic (ganjax/ssl/synthesis.py); a few_labels
run's by its namer, or by a semi_supervised run's critic (namer_workdir, ganjax/ssl/namer.py). A filter keeps
num_per_class of 1 / keep_fraction candidates per digit: the best by a score, or a cover of them (diverse).
Several exports mix into one with ganjax/synth/mixing.py.
"""

import dataclasses
import datetime
import functools
import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np

from ganjax import conditioning, files, images
from ganjax.config import is_valid_latent_scale
from ganjax.data import mnist
from ganjax.errors import ConfigError, DataError
from ganjax.few_labels import naming as few_labels_naming
from ganjax.ssl import namer as ssl_namer
from ganjax.ssl import synthesis as ssl_synthesis
from ganjax.synth import generation

FILTERS = ("none", "evaluator", "critic", "diverse")
COVER_KEY_TAG = 7919  # folded into an export's key for the diverse filter's first pick, apart from its noise's rounds


@dataclasses.dataclass(frozen=True)
class ExportOptions:
  num_per_class: int = 1000
  seed: int = 0
  use_ema: bool = True  # the EMA generator when the run has one
  filter: str = "none"  # none | evaluator (its confidence in the label) | critic (its logit) | diverse (select_diverse)
  keep_fraction: float = 0.5  # with a filter: keep this fraction of 1 / keep_fraction candidates
  latent_scale: float | None = None  # the std of G's noise (None: the run's config.sampling_latent_scale)

  @property
  def candidates_per_class(self) -> int:
    """How many candidates of each digit are drawn: num_per_class, or 1 / keep_fraction as many with a filter."""
    return math.ceil(self.num_per_class / (self.keep_fraction if self.filter != "none" else 1.0))

  def validate(self) -> None:
    if self.num_per_class < 1:
      raise ConfigError(f"num_per_class={self.num_per_class}; it must be >= 1")
    if self.filter not in FILTERS:
      raise ConfigError(f"filter={self.filter!r}; allowed: {', '.join(FILTERS)}")
    if not 0 < self.keep_fraction <= 1:
      raise ConfigError(f"keep_fraction={self.keep_fraction}; it must be in (0, 1]")
    if self.latent_scale is not None and not is_valid_latent_scale(self.latent_scale):
      raise ConfigError(f"latent_scale={self.latent_scale}; it must be > 0 (1: z ~ N(0, I) as trained)")


def _critic_scores(run: generation.TrainedRun, candidates: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """The critic's logit (inference mode: no dropout) for each candidate; higher = more real to the critic."""
  apply = jax.jit(lambda params, x, y: run.setup.critic.apply({"params": params}, x, labels=y))
  scores = []
  for start in range(0, len(candidates), 1000):
    x = images.to_float_images(jnp.asarray(candidates[start : start + 1000]))
    y = jnp.asarray(labels[start : start + 1000]) if run.setup.num_labels else None
    scores.append(np.asarray(apply(run.state.critic_params, x, y).logits))
  return np.concatenate(scores)


def _filter_scores(run: generation.TrainedRun, filter_name: str, candidates, labels, evaluator) -> np.ndarray:
  """Each candidate's score under a score filter (evaluator, critic); zeros for none, so that select's stable
  sort keeps the first num_per_class of each class."""
  if filter_name == "evaluator":
    return evaluator.probabilities(candidates)[np.arange(len(labels)), labels]
  if filter_name == "critic":
    return _critic_scores(run, candidates, labels)
  return np.zeros(len(labels))


def _candidates(run: generation.TrainedRun, options: ExportOptions, evaluator) -> tuple[np.ndarray, np.ndarray, str]:
  """(images, labels, label source) before any filtering; at least num_per_class / keep_fraction per class."""
  per_class = options.candidates_per_class
  key = jax.random.key(options.seed)
  if run.setup.conditioning.num_digits:
    labels = conditioning.balanced_labels(per_class * mnist.NUM_DIGITS, mnist.NUM_DIGITS)
    candidates = generation.generate(run.setup, run.state, key, len(labels), labels, options.use_ema, naming=run.naming)
    return candidates, labels, "conditioning"
  # Unconditional: label by the evaluator, drawing more until every class has enough (bounded: mode collapse).
  pool_images, pool_labels = [], []
  for round_index in range(20):
    round_key = jax.random.fold_in(key, round_index)
    batch = generation.generate(run.setup, run.state, round_key, per_class * 12, use_ema=options.use_ema)
    pool_images.append(batch)
    pool_labels.append(np.argmax(evaluator.probabilities(batch), axis=-1).astype(np.int32))
    counts = np.bincount(np.concatenate(pool_labels), minlength=mnist.NUM_DIGITS)
    if counts.min() >= per_class:
      return np.concatenate(pool_images), np.concatenate(pool_labels), "evaluator"
  raise ConfigError(
    f"the generator rarely draws digit {counts.argmin()} ({counts.min()} of {counts.sum()} samples): too few for "
    f"num_per_class={options.num_per_class}; lower it or export from a conditional run"
  )


def select(scores: np.ndarray, labels: np.ndarray, num_per_class: int) -> np.ndarray:
  """Indices of the num_per_class highest-scoring candidates of each class, classes in order."""
  chosen = []
  for c in range(mnist.NUM_DIGITS):
    members = np.flatnonzero(labels == c)
    chosen.append(members[np.argsort(-scores[members], kind="stable")[:num_per_class]])
  return np.concatenate(chosen)


def select_diverse(candidates: np.ndarray, labels: np.ndarray, num_per_class: int, key: jax.Array) -> np.ndarray:
  """Indices of num_per_class candidates of each class, classes in order (draw order within a class), that cover
  its candidates: greedy k-center (Gonzalez 1985; Sener & Savarese 2018's core-set) on pixels, from a random
  candidate. A generator draws its typical digits again and again; the cover keeps its rarer ones too, which a
  classifier trained on them needs, and each has passed the run's labelling (docs/augmentation.md#export)."""
  chosen = []
  for c in range(mnist.NUM_DIGITS):
    members = np.flatnonzero(labels == c)
    x = jnp.asarray(candidates[members].reshape(len(members), -1), jnp.float32) / 255.0
    first = jax.random.randint(jax.random.fold_in(key, c), (), 0, len(members))
    chosen.append(members[np.sort(np.asarray(_farthest_points(x, first, num_per_class)))])
  return np.concatenate(chosen)


def cover_key(seed: int) -> jax.Array:
  return jax.random.fold_in(jax.random.key(seed), COVER_KEY_TAG)


@functools.partial(jax.jit, static_argnums=2)
def _farthest_points(x: jax.Array, first: jax.Array, num: int) -> jax.Array:
  """int32 [num]: rows of x, `first` then each next the row farthest (L2) from those chosen; never one twice."""

  def add(i, state):
    chosen, closest = state
    j = jnp.argmax(closest)
    closest = jnp.minimum(closest, jnp.sum((x - x[j]) ** 2, axis=1)).at[j].set(-1.0)
    return chosen.at[i].set(j), closest

  closest = jnp.sum((x - x[first]) ** 2, axis=1).at[first].set(-1.0)
  chosen = jnp.zeros(num, jnp.int32).at[0].set(first)
  return jax.lax.fori_loop(1, num, add, (chosen, closest))[0]


def sample_dataset(run: generation.TrainedRun, options: ExportOptions, evaluator=None):
  """(images [N,28,28,1], labels [N], label source, evaluator sha or None) after the optional filter."""
  options.validate()
  if options.filter == "critic" and run.setup.conditioning.uses_clusters:
    raise ConfigError(
      f"filter='critic' needs the conditioning of every image, and {run.workdir} is conditioned on k-means "
      f"clusters (conditioning={run.setup.conditioning.kind!r}) that exported images do not keep; use filter "
      "'evaluator' or 'none'"
    )
  if options.filter == "evaluator" and run.naming is not None:
    raise ConfigError(
      f"filter='evaluator' would label {run.workdir}'s samples with a classifier trained on all 60k labels, which a "
      "few_labels run does not have; its naming already checks every sample; use filter 'none'"
    )
  needs_evaluator = options.filter == "evaluator" or not run.setup.conditioning.num_digits
  if needs_evaluator and evaluator is None:
    from ganjax.eval import evaluator as evaluator_lib

    evaluator = evaluator_lib.load()
  candidates, labels, label_source = _candidates(run, options, evaluator)
  if options.filter == "diverse":
    keep = select_diverse(candidates, labels, options.num_per_class, cover_key(options.seed))
  else:
    keep = select(_filter_scores(run, options.filter, candidates, labels, evaluator), labels, options.num_per_class)
  return candidates[keep], labels[keep], label_source, (evaluator.sha256 if needs_evaluator else None)


def export_dataset(
  workdir: str,
  out_path: str,
  options: ExportOptions,
  step: int | None = None,
  evaluator=None,
  namer_workdir: str | None = None,
  naming: ssl_synthesis.NamingChoice | None = None,
):
  """Write the .npz (and per-class PNG grids) for run `workdir`; returns the provenance dict. With
  `namer_workdir` (a few_labels run only) a semi_supervised run's critic names the digits (ganjax/ssl/namer.py);
  `naming` says who names a semi_supervised run's digits, or a few_labels run's with namer_workdir, and how sure
  it must be (None: the critic, at the run's few_labels_min_confidence)."""
  options.validate()  # before the (slow) restore
  naming = naming or ssl_synthesis.NamingChoice()
  naming.validate()
  if namer_workdir:
    ssl_namer.check(workdir, namer_workdir)  # a run that is not few_labels is refused here
    load_naming = ssl_namer.loader(namer_workdir, naming)
  elif ssl_synthesis.is_semi_supervised(workdir):
    return _export_semi_supervised(workdir, out_path, options, step, naming)
  else:
    check_own_naming(naming, workdir)
    load_naming = few_labels_naming.load
  run = generation.load_run(workdir, step, load_naming=load_naming)
  run = run.with_sampling(latent_scale=options.latent_scale)
  images_, labels, label_source, evaluator_sha = sample_dataset(run, options, evaluator)
  provenance = {
    "workdir": run.workdir,
    "checkpoint_step": run.step,
    "config": run.config.to_dict(),
    **dataclasses.asdict(options),
    "use_ema": bool(options.use_ema and run.state.generator_ema_params is not None),
    "label_source": label_source,
    "evaluator_sha256": evaluator_sha,
    "num_images": int(len(labels)),
    "few_labels": run.naming.provenance if run.naming is not None else None,
    "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
  }
  write_dataset(out_path, images_, labels, provenance)
  return provenance


def check_own_naming(naming: ssl_synthesis.NamingChoice, workdir: str) -> None:
  """ConfigError in one line when `naming` is not the default: it is for a semi_supervised run's own digits, or a
  few_labels run's named by a semi_supervised run (namer_workdir)."""
  if naming != ssl_synthesis.NamingChoice():
    raise ConfigError(
      f"{naming.flags()}: only for a semi_supervised run's own digits or with --namer_workdir; {workdir} is named "
      "by its namer"
    )


def write_dataset(out_path: str, images_: np.ndarray, labels: np.ndarray, provenance: dict) -> None:
  """The .npz (atomically) and a PNG grid of each class's first images beside it; images uint8 [N, 28, 28, 1]."""
  out_path = os.path.abspath(out_path)
  os.makedirs(os.path.dirname(out_path), exist_ok=True)
  with files.atomic_path(out_path) as tmp, open(tmp, "wb") as f:  # never a truncated dataset
    np.savez_compressed(f, images=images_[..., 0], labels=labels, provenance=np.array(json.dumps(provenance)))
  stem = os.path.splitext(out_path)[0]
  for c in range(mnist.NUM_DIGITS):
    members = images_[labels == c][:100]
    side = math.isqrt(len(members))
    images.save_grid(f"{stem}_digit{c}.png", members[: side * side])


def _export_semi_supervised(
  workdir: str, out_path: str, options: ExportOptions, step: int | None, naming: ssl_synthesis.NamingChoice
) -> dict:
  """export_dataset of a semi_supervised run: G's samples named by its averaged critic (or the CNN it teaches),
  num_per_class of each digit it reads with probability >= min_confidence (ganjax/ssl/synthesis.py); with the
  diverse filter, those that cover 1 / keep_fraction as many."""
  where = f"does not apply to {workdir}, a semi_supervised run"
  if step is not None:
    raise ConfigError(f"step={step} {where}: it exports from the newest verified checkpoint; leave --step out")
  if options.filter not in ("none", "diverse"):
    raise ConfigError(
      f"filter={options.filter!r} {where}: its critic names and checks every sample; use 'none' or 'diverse'"
    )
  if options.latent_scale is not None:
    raise ConfigError(f"latent_scale={options.latent_scale} {where}: its G draws z ~ U[0, 1]; leave it out")
  run = ssl_synthesis.load(workdir, naming)
  quotas = np.full(mnist.NUM_DIGITS, options.candidates_per_class)
  images_, labels = ssl_synthesis.generate_digits(run, jax.random.key(options.seed), quotas)
  if options.filter == "diverse":
    keep = select_diverse(images_, labels, options.num_per_class, cover_key(options.seed))
    images_, labels = images_[keep], labels[keep]
  provenance = {
    "workdir": run.workdir,
    "checkpoint_step": run.step,
    "config": run.config.to_dict(),
    **dataclasses.asdict(options),
    "use_ema": False,  # the semi-supervised G keeps no EMA
    "label_source": run.naming.namer,
    "evaluator_sha256": None,
    "num_images": int(len(labels)),
    "few_labels": run.naming.provenance,
    "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
  }
  write_dataset(out_path, images_, labels, provenance)
  return provenance


def load_dataset(path: str) -> tuple[np.ndarray, np.ndarray, dict]:
  """(images uint8 [N, 28, 28, 1], labels int32 [N], provenance) of an exported .npz; DataError in one line when
  the file is missing, torn, or not an export (images, labels and provenance)."""
  try:
    f = files.load_npz(path)
    return f["images"][..., None], f["labels"].astype(np.int32), json.loads(str(f["provenance"]))
  except (*files.NPZ_READ_ERRORS, json.JSONDecodeError) as e:
    raise DataError(f"{path} does not read as an export of export.py ({e!r}); export it again") from e
