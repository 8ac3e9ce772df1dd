"""The few-labels benchmark: N labelled images per class and the other training images unlabelled.

For each labelled subset (N, label seed s; seeds 0..subsets-1) the fixed classifier recipe
(classifiers.small_cnn_recipe(classifier_steps)) is trained under five treatments, tested on the 10k MNIST
test images:
  real                        the N labelled images per class
  real + classic              with classic augmentation (the self-training's round 0)
  pseudo-labels + classic     self-training with classic augmentation (the baseline without a GAN)
  real + classic + GAN        the labelled images and labelled synthetic digits, classic augmentation
  pseudo-labels + classic + GAN   the baseline's training set and the synthetic digits
and, with strong_steps > 0, two more with a strong classifier (classifiers.EvaluatorCNN from scratch, the
evaluator's recipe with strong_steps steps: 99.60 % on the 60k true labels at 3750), to say what the labelled
sets are worth to a classifier able to reach the published semi-supervised numbers:
  pseudo-labels, strong CNN          the labelled images and every unlabelled one with its final pseudo-label
  pseudo-labels + GAN, strong CNN    and the synthetic digits
and, with ssl_workdirs, one semi_supervised GAN run per subset: its critic alone, and with strong_steps > 0 the
strong CNN on the critic's labels, without and with G's digits it names (ganjax/studies/few_labels_ssl.py).
The GAN is one label-free run (conditioning clusters or few_labels: the same training) that serves every
subset: each subset's self-trained classifier names its clusters and checks its samples (few_labels/naming).
Each subset's synthetic set is also measured on its own: label agreement (the evaluator's reading) and CAS.
Finished cells are lines of <out_dir>/few_labels.jsonl, skipped on rerun; each subset's namer is kept in
<out_dir>/namers/. Without a GAN workdir only the cells without a GAN run. experiments/few_labels.py is the
command line.
"""

import dataclasses
import functools
import os
import time

import jax
import numpy as np

from ganjax import files, saved_run
from ganjax.conditioning import NUM_DIGITS
from ganjax.data import labelled, mnist
from ganjax.errors import ConfigError, GenerationError, WorkdirError
from ganjax.eval import classifiers, metrics
from ganjax.few_labels import naming, self_training
from ganjax.studies import augmentation_gans as gans
from ganjax.studies import cells
from ganjax.studies import few_labels_namers as namers
from ganjax.studies import few_labels_report as report
from ganjax.studies import few_labels_ssl as ssl
from ganjax.synth import generation

TREATMENTS = (
  ("real", "real"),
  ("classic", "real + classic"),
  ("pseudo", "pseudo-labels + classic"),
  ("classic+gan", "real + classic + GAN"),
  ("pseudo+gan", "pseudo-labels + classic + GAN"),
)
STRONG_TREATMENTS = (
  ("pseudo:strong", "pseudo-labels, strong CNN"),
  ("pseudo+gan:strong", "pseudo-labels + GAN, strong CNN"),
)
KEY_FIELDS = ("n_per_class", "label_seed", "treatment", "classifier_steps", "rounds", "labeller", "gan", "strong_steps")
OLD_ROW_DEFAULTS = {"labeller": "classifier", "strong_steps": 0}  # rows written before a key field existed


def row_key(row: dict) -> tuple:
  return cells.row_key(row, KEY_FIELDS, OLD_ROW_DEFAULTS)


@dataclasses.dataclass(frozen=True)
class Settings:
  """What the few-labels benchmark measures; experiments/few_labels.py's flags of the same names."""

  subsets: tuple[tuple[int, int], ...] = ((1, 3), (10, 5), (100, 3))  # (labelled per class, label subsets)
  classifier_steps: int = classifiers.SMALL_CNN_RECIPE.num_steps
  rounds: int = 2  # self-training rounds after the labelled-only one
  labeller: str = self_training.SelfTraining.labeller  # who labels the unlabelled images (self_training.LABELLERS)
  gan_workdir: str = ""  # a trained label-free run (conditioning clusters or few_labels); '' = no GAN cells
  synthetic_per_class: int = 1000  # synthetic digits per class, checked by the subset's namer
  min_confidence: float = 0.9  # the namer's check (config.few_labels_min_confidence)
  cas: bool = True  # also train a classifier on each subset's synthetic set alone (CAS)
  report_only: bool = False  # write the report from the cells done so far; run none
  strong_steps: int = 0  # > 0: also the strong-CNN treatments, with this many steps (the full recipe: 3750)
  ssl_workdirs: str = ""  # each subset's semi_supervised run: a path with {labels_per_class}, {label_seed}; '' = none
  only: tuple[str, ...] = ()  # run only these treatments (their keys); () = all. The report shows every cell done
  out_dir: str = "experiments/results/few_labels"

  @property
  def treatments(self) -> tuple[tuple[str, str], ...]:
    """Every treatment these settings measure (and report)."""
    return TREATMENTS + (STRONG_TREATMENTS if self.strong_steps else ()) + ssl.treatments(self)

  @property
  def to_run(self) -> tuple[str, ...]:
    """The treatments whose cells run: those named by `only`, else every one."""
    return tuple(t for t, _ in self.treatments if not self.only or t in self.only)

  @property
  def namer_training(self) -> self_training.SelfTraining:
    """How each subset's namer is self-trained (ganjax/studies/few_labels_namers.py)."""
    return self_training.SelfTraining(self.rounds, self.classifier_steps, self.labeller)

  @property
  def strong_recipe(self) -> classifiers.Recipe:
    return dataclasses.replace(classifiers.EVALUATOR_RECIPE, num_steps=self.strong_steps)


# Seconds: a tiny GAN's samples are noise to the namer, so none is checked (min_confidence 0).
QUICK_TEST = Settings(
  subsets=((5, 1),), classifier_steps=20, rounds=1, synthetic_per_class=20, min_confidence=0.0, strong_steps=5
)


def gan_id(settings: Settings) -> str:
  """The GAN a cell samples from: its workdir and checkpoint step ('' for none)."""
  return _gan_id(os.path.abspath(settings.gan_workdir)) if settings.gan_workdir else ""


@functools.cache
def _gan_id(workdir: str) -> str:
  steps = generation.checkpoint_steps(workdir)
  if not steps:
    raise ValueError(f"--gan_workdir={workdir} has no checkpoint; train it first (python main.py ...)")
  return f"{workdir}@{steps[-1]}"


def cell_key(settings: Settings, per_class: int, label_seed: int, treatment: str) -> tuple:
  if treatment in ssl.KEYS:
    return ssl.cell_key(settings, per_class, label_seed, treatment)
  synthetic = f"{gan_id(settings)} x{settings.synthetic_per_class} conf{settings.min_confidence:g}"
  gan = synthetic if "gan" in treatment else ""
  strong_steps = settings.strong_steps if treatment.endswith(":strong") else 0
  key = (per_class, label_seed, treatment, settings.classifier_steps, settings.rounds, settings.labeller, gan)
  return (*key, strong_steps)


def synthetic_set(settings: Settings, few: labelled.FewLabels, namer: namers.Namer) -> tuple[np.ndarray, np.ndarray]:
  """(images uint8, labels): synthetic_per_class digits of each class from the GAN, named by this subset."""
  run = gans.trained_run(os.path.abspath(settings.gan_workdir))
  if not run.setup.conditioning.self_conditioned:
    raise ValueError(
      f"{settings.gan_workdir} has conditioning {run.setup.conditioning.kind!r}; the few-labels benchmark needs a "
      "label-free run (conditioning clusters or few_labels)"
    )
  path = os.path.join(run.workdir, saved_run.CLUSTERS_FILE)
  try:
    assignments = files.load_npz(path)["assignments"]
  except files.NPZ_READ_ERRORS as e:
    raise WorkdirError(f"--gan_workdir: {path} does not read ({e!r}); rerun the GAN's training command") from e
  num_clusters = run.setup.conditioning.num_clusters
  subset_naming = naming.name(assignments, num_clusters, few, namer.result, settings.min_confidence, {})
  digits = np.repeat(np.arange(NUM_DIGITS, dtype=np.int32), settings.synthetic_per_class)
  key = jax.random.key(few.label_seed)
  images = generation.generate_named(run.setup, run.state, key, digits, subset_naming, True, 500)
  return images, digits


def gan_measures(settings: Settings, synthetic, test_set, label_seed: int) -> dict:
  """The synthetic set's label agreement (the evaluator's reading vs the label) and, if asked, its CAS."""
  from ganjax.eval import evaluator as evaluator_lib

  evaluator = evaluator_lib.load()
  agreement = float(np.mean(evaluator.probabilities(synthetic[0]).argmax(axis=-1) == synthetic[1]))
  measures = {"label_agreement": agreement}
  if settings.cas:
    recipe = classifiers.small_cnn_recipe(settings.classifier_steps)
    key = jax.random.key(label_seed)
    measures["cas"] = classifiers.classification_accuracy_score(*synthetic, *test_set, key, recipe)
  return measures


def train_cell(settings: Settings, images, labels, label_seed: int, augment, test_set, strong=False) -> tuple:
  """(test accuracy, confusion matrix as lists: rows true digits) of the cell's classifier trained on the set."""
  recipe = settings.strong_recipe if strong else classifiers.small_cnn_recipe(settings.classifier_steps)
  params = classifiers.train_classifier(recipe, images, labels, jax.random.key(label_seed), augment)
  test_images, test_labels = test_set
  predicted = classifiers.predict_logits(recipe.model, params, test_images).argmax(axis=-1)
  return float(np.mean(predicted == np.asarray(test_labels))), metrics.confusion_matrix(test_labels, predicted).tolist()


def subset_cells(settings: Settings, few: labelled.FewLabels, test_set, done: set, write) -> None:
  """The treatments of one labelled subset not yet done; write(row) records each as it finishes."""
  key = lambda treatment: cell_key(settings, few.labels_per_class, few.label_seed, treatment)
  keyed_write = lambda treatment, *rest: write(key(treatment), *rest)
  todo = [t for t in settings.to_run if key(t) not in done]
  if any(t in ssl.KEYS for t in todo):
    train = functools.partial(_train_and_write, settings, few.label_seed, test_set, keyed_write)
    measure = lambda synthetic: gan_measures(settings, synthetic, test_set, few.label_seed)
    ssl.subset_cells(settings, few, test_set, [t for t in todo if t in ssl.KEYS], keyed_write, train, measure)
  todo = [t for t in todo if t not in ssl.KEYS and (settings.gan_workdir or "gan" not in t)]
  if not todo:
    return
  start = time.perf_counter()
  if "real" in todo:
    accuracy, confusion = train_cell(settings, few.labelled_images, few.labelled_labels, few.label_seed, None, test_set)
    keyed_write("real", accuracy, time.perf_counter() - start, {"confusion": confusion})
  if todo == ["real"]:  # nothing else needs the namer
    return
  namer = namers.ensure_namer(settings.namer_training, os.path.join(settings.out_dir, "namers"), few, test_set)
  per_round = namer.wall_s / (settings.rounds + 1)
  kept = {"pseudo_labelled": int(namer.result.kept_per_round[-1]), "round_accuracies": namer.round_accuracies}
  for treatment, accuracy in (("classic", namer.round_accuracies[0]), ("pseudo", namer.round_accuracies[-1])):
    if treatment in todo:
      keyed_write(treatment, accuracy, per_round * (1 if treatment == "classic" else settings.rounds + 1), kept)
  labelled_set = (few.labelled_images, few.labelled_labels)
  pseudo_set = (few.unlabelled_images, namer.result.pseudo_labels)
  if "pseudo:strong" in todo:
    _train_and_write(settings, few.label_seed, test_set, keyed_write, "pseudo:strong", [labelled_set, pseudo_set], {})
  gan_todo = [t for t in todo if "gan" in t]
  if settings.gan_workdir and gan_todo:
    _gan_cells(settings, few, namer, gan_todo, (labelled_set, pseudo_set), test_set, keyed_write)


def _train_and_write(settings: Settings, label_seed: int, test_set, write, treatment: str, parts, extra: dict):
  """Train treatment's classifier on the concatenated (images, labels) parts; write its row."""
  start = time.perf_counter()
  images, labels = (np.concatenate(column) for column in zip(*parts, strict=True))
  strong = treatment.endswith(":strong") or treatment in ssl.STRONG
  # the strong recipe shifts its images; the small one gets classic
  augment = None if strong else naming.CLASSIC
  accuracy, confusion = train_cell(settings, images, labels, label_seed, augment, test_set, strong)
  write(treatment, accuracy, time.perf_counter() - start, extra | {"confusion": confusion})


def _gan_cells(settings: Settings, few, namer: namers.Namer, todo: list, real_sets: tuple, test_set, write):
  """The treatments with the subset's synthetic set (recorded as failed when it cannot be drawn);
  real_sets: (the labelled images, the pseudo-labelled ones)."""
  start = time.perf_counter()
  try:
    synthetic = synthetic_set(settings, few, namer)
  except GenerationError as e:  # e.g. a namer from 1 label per digit that is never sure of some digit
    for treatment in todo:
      write(treatment, None, time.perf_counter() - start, {"failed": str(e)})
    return
  measures = gan_measures(settings, synthetic, test_set, few.label_seed) | {"synthetic_s": time.perf_counter() - start}
  measures["num_synthetic"] = len(synthetic[1])
  labelled_set, pseudo_set = real_sets
  parts = {
    "classic+gan": [labelled_set, synthetic],
    "pseudo+gan": [labelled_set, pseudo_set, synthetic],
    "pseudo+gan:strong": [labelled_set, pseudo_set, synthetic],
  }
  for treatment in todo:
    _train_and_write(settings, few.label_seed, test_set, write, treatment, parts[treatment], measures)


def run_all(settings: Settings, data_config, jsonl: str) -> None:
  """Every cell not yet in jsonl, subset by subset, appended as it finishes."""
  runner = cells.CellRunner(jsonl, KEY_FIELDS, OLD_ROW_DEFAULTS)
  images, labels = mnist.load_split(data_config, "train")
  test_set = mnist.load_split(data_config, "test")

  def write(key, accuracy, wall_s, extra):
    errors = None if accuracy is None else round(1e4 * (1 - accuracy))
    runner.record(key, {"accuracy": accuracy, "errors_per_10k": errors} | extra, wall_s)
    shown = f"accuracy {accuracy:.4f}" if accuracy is not None else f"failed: {extra['failed']}"
    title = dict(TREATMENTS + STRONG_TREATMENTS + ssl.TREATMENTS)[key[2]]
    print(f"N={key[0]} subset {key[1]} {title}: {shown} ({runner.seconds():.0f} s so far)", flush=True)

  for per_class, num_subsets in settings.subsets:
    for label_seed in range(num_subsets):
      few = labelled.split(images, labels, per_class, label_seed)
      subset_cells(settings, few, test_set, runner.done, write)


def current_rows(settings: Settings, rows: list[dict]) -> list[dict]:
  """The rows these settings ask for (not other settings' or another GAN checkpoint's leftovers)."""
  wanted = {
    cell_key(settings, n, s, t)
    for n, subsets in settings.subsets
    for s in range(subsets)
    for t, _ in settings.treatments
  }
  return [r for r in rows if row_key(r) in wanted]


def write_markdown(settings: Settings, rows: list[dict], wall_s: float, command: str) -> None:
  """few_labels.md: the command, the settings, the tables (accuracy, errors per 10k, the GAN's sets, wall times)."""
  per_class = [n for n, _ in settings.subsets]
  strong = f"Strong CNN: EvaluatorCNN from scratch, {settings.strong_steps} steps x 128, +-2 px shifts. "
  digits = f"{settings.synthetic_per_class} digits per class for each subset"
  checked = f"checked by its namer (min confidence {settings.min_confidence:g})"
  gan = f"GAN: {gan_id(settings)}, {digits}, {checked}. " if settings.gan_workdir else "GAN: none. "
  about = (
    f"Classifier: SmallCNN, {settings.classifier_steps} steps x batch 64 whatever the training set. Self-training: "
    f"{settings.rounds} pseudo-labelling rounds after the labelled-only one, labeller {settings.labeller}. "
    f"{strong if settings.strong_steps else ''}{gan}Mean ± std (ddof 1) over label subsets (label seeds 0, 1, ...)."
    + (f" Semi-supervised runs: {settings.ssl_workdirs}." if settings.ssl_workdirs else "")
  )
  summary = report.summarize(rows, settings.treatments)
  tables = report.tables(summary, settings.treatments, per_class, rows)
  title = "Few labels: MNIST test accuracy of a small CNN from N labelled images per class and the unlabelled rest"
  path = os.path.join(settings.out_dir, "few_labels.md")
  cells.write_page(path, title, command, about, cells.cost_line(rows, wall_s), tables)
  report.plot(summary, settings.treatments, per_class, os.path.join(settings.out_dir, "few_labels.png"))
  print("\n".join(tables))  # the console gets the tables, not the settings


def check_only(settings: Settings) -> None:
  """ConfigError in one line, before any cell, if `only` names a treatment these settings do not measure, or one
  with the GAN's digits without a GAN run."""
  allowed = [t for t, _ in settings.treatments]
  unknown = [t for t in settings.only if t not in allowed]
  if unknown:
    raise ConfigError(
      f"--only={','.join(settings.only)}: {', '.join(unknown)} is not a treatment of these settings; allowed: "
      f"{', '.join(allowed)} (the strong-CNN ones need --strong_steps, the semi-supervised ones --ssl_workdirs)"
    )
  needs_gan = [t for t in settings.only if "gan" in t and t not in ssl.KEYS]
  if needs_gan and not settings.gan_workdir:  # else their cells would be skipped without a word
    raise ConfigError(
      f"--only={','.join(settings.only)}: {', '.join(needs_gan)} need --gan_workdir, a trained label-free run "
      "(conditioning clusters or few_labels) whose digits they add"
    )


def run_benchmark(settings: Settings, data_config, command: str) -> None:
  """Every cell not yet done, then few_labels.md, few_labels.jsonl and few_labels.png in settings.out_dir."""
  start = time.perf_counter()
  check_only(settings)
  ssl.check_workdirs(settings, data_config)  # a missing or mismatched run: one line, before any cell
  os.makedirs(settings.out_dir, exist_ok=True)
  jsonl = os.path.join(settings.out_dir, "few_labels.jsonl")
  if not settings.report_only:
    run_all(settings, data_config, jsonl)
  rows = current_rows(settings, files.read_json_lines(jsonl))
  write_markdown(settings, rows, time.perf_counter() - start, command)
  print(f"wrote {settings.out_dir}/few_labels.{{md,jsonl,png}} in {time.perf_counter() - start:.0f} s")
