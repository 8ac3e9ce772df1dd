"""The few-labels benchmark's semi-supervised treatments: each labelled subset's own semi_supervised GAN run
(configs/ssl_gan.py), trained on the very same labelled few (ganjax/data/labelled.py draws both), read through
its averaged critic (ganjax/ssl/recognizer.py):
  ssl_critic          the critic itself on the 10k test images (no training)
  ssl_pseudo_cnn      the strong CNN on the labelled few and every other training image with the critic's label
                      (its argmax, no threshold: as the label-spreading treatment takes its pseudo-labels);
                      the CNN `recognize.py --recognizer=cnn` kept for the same checkpoint and recipe is read
                      instead of trained again (the same CNN: same teaching set, order and key)
  ssl_pseudo_cnn_gan  the same and synthetic_per_class of G's digits per class named by the critic (read with
                      probability >= min_confidence), the amount and mix of the "+ GAN" treatments
The runs are named by a pattern with {labels_per_class} and {label_seed} (--ssl_workdirs); each is checked to
be the subset's before any cell runs. A cell's key holds its run and checkpoint step (in the gan field); its row
records the step as ssl_step. few_labels_benchmark.py calls subset_cells; few_labels_report.py adds the rows.
"""

import dataclasses
import os
import time
from collections.abc import Callable

import jax
import numpy as np

from ganjax import saved_run
from ganjax.data import labelled
from ganjax.data.mnist import NUM_DIGITS
from ganjax.errors import ConfigError, GenerationError, WorkdirError
from ganjax.ssl import cnn_recognizer, recognizer, synthesis
from ganjax.synth import generation

TREATMENTS = (
  ("ssl_critic", "semi-supervised critic"),
  ("ssl_pseudo_cnn", "critic's labels, strong CNN"),
  ("ssl_pseudo_cnn_gan", "critic's labels + its GAN, strong CNN"),
)
KEYS = tuple(key for key, _ in TREATMENTS)
STRONG = ("ssl_pseudo_cnn", "ssl_pseudo_cnn_gan")  # trained with the strong CNN (settings.strong_steps)
LABELLER = synthesis.LABEL_SOURCE  # a cell key's labeller field: the critic labels, no self-training
PLACEHOLDERS = ("labels_per_class", "label_seed")


def treatments(settings) -> tuple[tuple[str, str], ...]:
  """The semi-supervised treatments these settings run: none without runs, the critic alone without the strong
  CNN (strong_steps 0)."""
  if not settings.ssl_workdirs:
    return ()
  return TREATMENTS if settings.strong_steps else TREATMENTS[:1]


def workdir(pattern: str, per_class: int, label_seed: int) -> str:
  """The absolute workdir of subset (per_class, label_seed): `pattern` with its placeholders filled."""
  try:
    return os.path.abspath(pattern.format(labels_per_class=per_class, label_seed=label_seed))
  except (KeyError, IndexError, ValueError) as e:
    allowed = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
    raise ConfigError(f"--ssl_workdirs={pattern} cannot be filled ({e!r}); its placeholders: {allowed}") from None


def check_run(path: str, per_class: int, label_seed: int, data_config) -> None:
  """ConfigError / WorkdirError in one line naming `path` and what it must hold, unless it holds a trained
  semi_supervised run of this labelled subset on the benchmark's training split (data_config's)."""
  expected = {
    "conditioning": "semi_supervised",
    "labels_per_class": per_class,
    "label_seed": label_seed,
    "train_subset": data_config.train_subset,
    "examples_per_class": data_config.examples_per_class,
  }
  wanted = ", ".join(f"{k}={v!r}" for k, v in expected.items())
  flags = f"--config.labels_per_class={per_class} --config.label_seed={label_seed} --workdir={path}"
  command = f"train it: python main.py --config=configs/ssl_gan.py {flags}"
  if not os.path.exists(os.path.join(path, saved_run.CONFIG_FILE)):
    raise WorkdirError(f"--ssl_workdirs: {path} holds no run; expected a run with {wanted} ({command})")
  config = saved_run.load(path)
  found = {field: config.get(field) for field in expected}
  if found != expected:
    shown = ", ".join(f"{k}={v!r}" for k, v in found.items())
    raise ConfigError(f"--ssl_workdirs: {path} holds a run with {shown}; expected {wanted}")
  if not generation.checkpoint_steps(path):
    raise WorkdirError(f"--ssl_workdirs: {path} has no checkpoint yet; expected a trained run ({command})")


def check_workdirs(settings, data_config) -> None:
  """Every subset's run checked (check_run), before any cell runs; nothing without --ssl_workdirs."""
  if settings.ssl_workdirs:
    for per_class, num_subsets in settings.subsets:
      for label_seed in range(num_subsets):
        check_run(workdir(settings.ssl_workdirs, per_class, label_seed), per_class, label_seed, data_config)


def run_id(path: str) -> str:
  """'<workdir>@<newest checkpoint step>': the semi-supervised run a cell reads."""
  steps = generation.checkpoint_steps(path)
  if not steps:
    raise WorkdirError(f"--ssl_workdirs: {path} has no checkpoint yet; train it first (python main.py ...)")
  return f"{path}@{steps[-1]}"


def cell_key(settings, per_class: int, label_seed: int, treatment: str) -> tuple:
  """A semi-supervised cell's key, in few_labels_benchmark.KEY_FIELDS' order: no small CNN and no rounds, the
  critic as labeller, its run (and G's digits) as the gan field, the strong CNN's steps for the CNN cells."""
  run = run_id(workdir(settings.ssl_workdirs, per_class, label_seed))
  digits = f" x{settings.synthetic_per_class} conf{settings.min_confidence:g}"
  gan = run + (digits if treatment == "ssl_pseudo_cnn_gan" else "")
  strong_steps = settings.strong_steps if treatment in STRONG else 0
  return (per_class, label_seed, treatment, 0, 0, LABELLER, gan, strong_steps)


def load_run(settings, few: labelled.FewLabels) -> synthesis.SslRun:
  """The subset's run (check_workdirs checked it) at the checkpoint its cells are keyed by, its critic naming
  G's digits with settings.min_confidence."""
  path = workdir(settings.ssl_workdirs, few.labels_per_class, few.label_seed)
  keyed = run_id(path)
  run = synthesis.load(path)
  if f"{run.workdir}@{run.step}" != keyed:
    raise WorkdirError(f"--ssl_workdirs: {keyed}'s newest checkpoint did not restore (step {run.step} did)")
  return dataclasses.replace(run, naming=dataclasses.replace(run.naming, min_confidence=settings.min_confidence))


def synthetic_set(run: synthesis.SslRun, label_seed: int, per_class: int) -> tuple[np.ndarray, np.ndarray]:
  """per_class of G's digits of each class named by the run's critic: what `export.py --workdir=<run>
  --num_per_class=<per_class> --seed=<label_seed>` writes when the run's few_labels_min_confidence is the naming's."""
  return synthesis.generate_digits(run, jax.random.key(label_seed), np.full(NUM_DIGITS, per_class))


def subset_cells(settings, few: labelled.FewLabels, test_set, todo: list[str], write, train, measure) -> None:
  """The semi-supervised cells of one subset in `todo`. write(treatment, accuracy, wall_s, extra) records a cell;
  train(treatment, parts, extra) trains the strong CNN on the concatenated (images, labels) parts and records
  it; measure(synthetic) gives the synthetic set's measures (label agreement, CAS)."""
  start = time.perf_counter()
  run = load_run(settings, few)
  critic = run.naming.recognizer
  extra = {"ssl_step": run.step}
  if "ssl_critic" in todo:
    result = recognizer.report(critic, *test_set)
    write("ssl_critic", result["accuracy"], time.perf_counter() - start, extra | {"confusion": result["confusion"]})
  extra = extra | {"pseudo_labelled": len(few.unlabelled_images)}
  kept = kept_cnn(settings, run) if "ssl_pseudo_cnn" in todo else None
  if kept is not None:
    _write_kept(kept, test_set, write, extra)
  todo = [t for t in todo if t != "ssl_pseudo_cnn" or kept is None]
  if any(t in STRONG for t in todo):
    teaching_set = cnn_recognizer.teaching_set(critic, few)  # what recognize.py --recognizer=cnn trains on
  if "ssl_pseudo_cnn" in todo:
    train("ssl_pseudo_cnn", [teaching_set], extra)
  if "ssl_pseudo_cnn_gan" in todo:
    _gan_cell(settings, run, few.label_seed, [teaching_set], extra, write, train, measure)


def kept_cnn(settings, run: synthesis.SslRun) -> tuple[cnn_recognizer.CnnRecognizer, dict] | None:
  """(the CNN, its record) that `recognize.py --recognizer=cnn` kept in the run's workdir, when it was trained from
  this very checkpoint with the benchmark's strong recipe: the ssl_pseudo_cnn cell's CNN (same teaching set, order
  and key), read instead of trained again; else None."""
  wanted = cnn_recognizer.provenance(run.config, run.step, cnn_recognizer.recipe(settings.strong_steps))
  return cnn_recognizer.read_kept(run.workdir, wanted)


def _write_kept(kept: tuple, test_set, write, extra: dict) -> None:
  """The ssl_pseudo_cnn row from a kept CNN: its test accuracy and confusion, with the wall time of its training
  (as recorded when it was kept) plus this reading, and cnn_kept naming the file."""
  start = time.perf_counter()
  cnn, record = kept
  result = recognizer.report(cnn, *test_set)  # as the ssl_critic cell reads its critic
  measures = {"confusion": result["confusion"], "cnn_kept": cnn_recognizer.KEPT_FILE}
  wall_s = record.get("train_s", 0.0) + time.perf_counter() - start
  write("ssl_pseudo_cnn", result["accuracy"], wall_s, extra | measures)


def _gan_cell(settings, run, label_seed: int, real_parts: list, extra: dict, write, train, measure: Callable):
  """ssl_pseudo_cnn_gan: G's digits added to real_parts, or the cell recorded as failed when they cannot be drawn."""
  start = time.perf_counter()
  try:
    synthetic = synthetic_set(run, label_seed, settings.synthetic_per_class)
  except GenerationError as e:  # G rarely draws some digit the critic reads with confidence
    write("ssl_pseudo_cnn_gan", None, time.perf_counter() - start, extra | {"failed": str(e)})
    return
  measures = extra | measure(synthetic) | {"synthetic_s": time.perf_counter() - start}
  train("ssl_pseudo_cnn_gan", [*real_parts, synthetic], measures | {"num_synthetic": len(synthetic[1])})
