"""The augmentation benchmark: does GAN data help a small digit classifier trained on few labels?

A fixed classifier recipe (classifiers.small_cnn_recipe: same steps and batch whatever the training set) is
trained on the first N labelled MNIST training images of each class under four treatments: real only; real +
classic augmentation (augmentations.classic, on every batch); real + GAN samples (synthetic_ratio x as many
as the real images, class-balanced, concatenated with them); real + classic + GAN. Two regimes: (a) one cGAN
per N trained only on the same N images per class; (b) one cGAN trained on all 60k training images. No GAN
sees a test image; the score is accuracy on the 10k test images, mean ± std over seeds. Each finished cell
is one line of <out_dir>/augment.jsonl and is skipped on rerun; cGAN runs resume from their checkpoints.
experiments/augment.py is the command line; its docstring shows the flags and presets.
"""

import dataclasses
import functools
import os
import time

import jax
import ml_collections
import numpy as np

from ganjax import files
from ganjax.data import mnist
from ganjax.eval import classifiers
from ganjax.studies import augmentation_gans as gans
from ganjax.studies import augmentation_report as report
from ganjax.studies import cells
from ganjax.synth import augmentations


@dataclasses.dataclass(frozen=True)
class Settings:
  """What the benchmark measures and where; the fields are experiments/augment.py's flags of the same names."""

  n_per_class: tuple[str, ...] = ("10", "100", "1000", "all")  # real labelled images per class
  seeds: int = 3  # seeds 0..seeds-1: classifier init, order and augmentation; GAN sample noise
  synthetic_ratio: float = 1.0  # synthetic images per real image in the GAN treatments
  classifier_steps: int = classifiers.SMALL_CNN_RECIPE.num_steps
  classic_strength: float = 1.0  # augmentations.classic's strength (1: its defaults)
  small_gan_steps: int = 2000  # generator steps of each regime-(a) cGAN
  gan_per_seed: bool = False  # regime (a): one cGAN per seed (else seed 0's for all)
  full_gan_workdir: str = ""  # a trained full-data cGAN run for regime (b); else one is trained here
  full_gan_steps: int = 470  # ~10 epochs of 60k images at batch 256 with 5 critic batches per generator step
  out_dir: str = "experiments/results/augment"
  gan_overrides: dict = dataclasses.field(default_factory=dict)  # config fields of every cGAN trained here
  gan_config: str = "cwgan_gp"  # the configs/ module of the cGANs trained here (e.g. cwgan_gp_tuned)
  critic_augment: str = ""  # DiffAugment policy of the cGANs trained here (config.critic_augment; '' = off)
  regimes: tuple[str, ...] = ("a", "b")  # the GAN regimes to run (the columns without a GAN always run)

  def __post_init__(self):
    object.__setattr__(self, "n_per_class", tuple(self.n_per_class))  # a flag's list is accepted too
    object.__setattr__(self, "regimes", tuple(self.regimes))

  @property
  def gan_variant(self) -> str:
    """'' for the default cGAN (configs/cwgan_gp.py, no DiffAugment), else a suffix naming its config and
    policy: part of the cGANs' workdir names and of the cells' resume keys."""
    variant = "" if self.gan_config == "cwgan_gp" else f"_{self.gan_config}"
    return variant + (f"_da-{self.critic_augment.replace(',', '+')}" if self.critic_augment else "")

  @property
  def report_name(self) -> str:
    """augment.md / .png's stem: one per cGAN variant, so invocations sharing an out_dir keep each other's."""
    return "augment" + self.gan_variant

  @property
  def columns(self) -> tuple:
    """The COLUMNS of the regimes these settings run."""
    return tuple(c for c in COLUMNS if c[0] == "none" or c[0] in self.regimes)

  @property
  def per_class_values(self) -> list[int]:
    return [0 if n == "all" else int(n) for n in self.n_per_class]


QUICK = {"n_per_class": ("10", "100"), "seeds": 3, "classifier_steps": 300, "small_gan_steps": 300}
QUICK |= {"full_gan_steps": 300, "out_dir": "experiments/results/augment_quick"}
QUICK |= {"gan_overrides": {"generator_features": (64, 32, 16), "critic_features": (16, 32), "batch_size": 64}}
QUICK_TEST = {"n_per_class": ("10",), "seeds": 1, "classifier_steps": 20, "small_gan_steps": 3, "full_gan_steps": 3}
QUICK_TEST |= {"gan_overrides": {"generator_features": (8, 8, 4), "critic_features": (4, 8), "batch_size": 16}}
PRESETS = {"": {}, "quick": QUICK, "quick_test": QUICK_TEST}


def preset_settings(preset: str, **explicit) -> Settings:
  """The Settings of a preset ('', 'quick' or 'quick_test'), with the explicitly given fields over it."""
  return Settings(**(PRESETS[preset] | explicit))


# (regime, treatment, column title). Regime "none": no GAN involved, the same cells serve both panels.
COLUMNS = (
  ("none", "real", "real"),
  ("none", "classic", "real + classic"),
  ("a", "gan", "+ GAN (a)"),
  ("a", "classic+gan", "+ classic + GAN (a)"),
  ("b", "gan", "+ GAN (b)"),
  ("b", "classic+gan", "+ classic + GAN (b)"),
)
KEY_FIELDS = ("regime", "n_per_class", "treatment", "seed", "classifier_steps", "synthetic_ratio", "strength", "gan")


def gan_id(settings: Settings, regime: str, per_class: int, seed: int) -> str:
  """Which cGAN a cell samples from ('' for none): part of the resume key, known without training it."""
  if regime == "none":
    return ""
  if regime == "a" and per_class:
    return f"{small_gan_name(settings, per_class, seed)}@{settings.small_gan_steps}"
  if settings.full_gan_workdir:
    return os.path.abspath(settings.full_gan_workdir)
  return f"b_full_s0{settings.gan_variant}@{settings.full_gan_steps}"


def small_gan_name(settings: Settings, per_class: int, seed: int) -> str:
  """The workdir name (under <out_dir>/gans) of the regime-(a) cGAN a cell at (N, seed) samples from."""
  return f"a_N{per_class}_s{seed if settings.gan_per_seed else 0}{settings.gan_variant}"


def gan_overrides(settings: Settings) -> dict:
  """The config fields of every cGAN trained here: gan_overrides and the DiffAugment policy."""
  return settings.gan_overrides | ({"critic_augment": settings.critic_augment} if settings.critic_augment else {})


def cell_key(settings: Settings, regime: str, per_class: int, treatment: str, seed: int) -> tuple:
  """The resume key of a cell under these settings (KEY_FIELDS order)."""
  classifier = (settings.classifier_steps, settings.synthetic_ratio, settings.classic_strength)
  return (regime, per_class, treatment, seed, *classifier, gan_id(settings, regime, per_class, seed))


def sample_synthetic(settings: Settings, gan_base, regime: str, per_class: int, seed: int, num_real: int):
  """(images uint8, labels) from the regime's cGAN (trained here first if needed): ratio x num_real, balanced."""
  if regime == "a" and per_class:
    gan_seed = seed if settings.gan_per_seed else 0
    workdir = os.path.join(settings.out_dir, "gans", small_gan_name(settings, per_class, seed))
    config = gans.gan_config(gan_base, per_class, settings.small_gan_steps, gan_seed, gan_overrides(settings))
    gans.ensure_gan(workdir, config)
  elif settings.full_gan_workdir:
    workdir = settings.full_gan_workdir
  else:
    workdir = os.path.join(settings.out_dir, "gans", f"b_full_s0{settings.gan_variant}")
    gans.ensure_gan(workdir, gans.gan_config(gan_base, 0, settings.full_gan_steps, 0, gan_overrides(settings)))
  return gans.sample(workdir, max(1, round(settings.synthetic_ratio * num_real / 10)), seed)


def run_cell(train_set, test_set, synthetic, seed: int, augment, classifier_steps: int) -> float:
  """Test accuracy of the fixed recipe trained on the real set (+ the synthetic one) with `augment`."""
  images, labels = train_set
  if synthetic is not None:
    images, labels = np.concatenate([images, synthetic[0]]), np.concatenate([labels, synthetic[1]])
  recipe = classifiers.small_cnn_recipe(classifier_steps)
  params = classifiers.train_classifier(recipe, images, labels, jax.random.key(seed), augment)
  return classifiers.accuracy(recipe.model, params, *test_set)


def run_all(settings: Settings, gan_base, data_config, jsonl: str) -> None:
  """Every cell not yet in jsonl, appended to it as it finishes."""
  runner = cells.CellRunner(jsonl, KEY_FIELDS)
  augment = functools.partial(augmentations.classic, strength=settings.classic_strength)  # one object: jit caches
  test_set = mnist.load_split(data_config, "test")
  for per_class in settings.per_class_values:
    config = data_config.copy_and_resolve_references()
    config.examples_per_class = per_class
    train_set = mnist.load_split(config, "train")  # the very images the regime-(a) cGAN trains on
    for seed in range(settings.seeds):
      columns = {  # at N = all, regime (a)'s GAN is regime (b)'s: those cells are (b)'s
        cell_key(settings, regime, per_class, treatment, seed): (regime, treatment, title)
        for regime, treatment, title in settings.columns
        if regime != "a" or per_class
      }
      synthetic = {}  # regime -> its samples, drawn once for both of its treatments
      for key in runner.todo(columns):
        regime, treatment, title = columns[key]
        if regime != "none" and regime not in synthetic:
          synthetic[regime] = sample_synthetic(settings, gan_base, regime, per_class, seed, len(train_set[1]))
        cell_start = time.perf_counter()
        augment_fn = augment if "classic" in treatment else None
        accuracy = run_cell(train_set, test_set, synthetic.get(regime), seed, augment_fn, settings.classifier_steps)
        result = {"accuracy": accuracy, "num_real": len(train_set[1])}
        result["num_synthetic"] = len(synthetic[regime][1]) if regime in synthetic else 0
        row = runner.record(key, result, time.perf_counter() - cell_start)
        so_far = f"{row['wall_s']:.0f} s; {runner.seconds():.0f} s so far"
        print(f"N={per_class or 'all'} seed {seed} {title}: accuracy {accuracy:.4f} ({so_far})", flush=True)


def current_cells(settings: Settings, rows: list[dict]) -> dict:
  """{(column title, N): [rows]} of the cells these settings ask for (not other settings' leftovers)."""
  by_key = {cells.row_key(r, KEY_FIELDS): r for r in rows}
  current = {}
  for per_class in settings.per_class_values:
    for regime, treatment, title in settings.columns:
      source = "b" if regime == "a" and not per_class else regime
      found = [by_key.get(cell_key(settings, source, per_class, treatment, s)) for s in range(settings.seeds)]
      current[title, per_class] = [c for c in found if c is not None]
  return current


def write_markdown(settings: Settings, summary: dict, rows: list[dict], wall_s: float, command: str) -> str:
  """<report_name>.md (the command, the settings, hardware and wall times, the table, the cGANs); returns the
  table."""
  table = report.table_lines(summary, [title for _, _, title in settings.columns], settings.per_class_values)
  about = (
    f"Classifier: SmallCNN, {settings.classifier_steps} steps x batch {classifiers.SMALL_CNN_RECIPE.batch_size} "
    f"whatever the training set. Synthetic images: {settings.synthetic_ratio:g} x the real ones, class-balanced. "
    f"Classic augmentation: affine + elastic at strength {settings.classic_strength:g}. (a): cGAN trained only "
    "on the same N images per class (at N = all: regime (b)'s). (b): cGAN trained on all 60k training images. "
    f"cGANs trained here: configs/{settings.gan_config}.py"
    + (f" with DiffAugment ({settings.critic_augment})." if settings.critic_augment else ".")
  )
  cells.write_page(
    os.path.join(settings.out_dir, f"{settings.report_name}.md"),
    "Augmentation benchmark: MNIST test accuracy (%) of a small CNN, mean ± std over seeds",
    command,
    about,
    cells.cost_line(rows, wall_s, "Classifier cells"),
    [*table, "", *gans.gan_lines(os.path.join(settings.out_dir, "gans"), settings.full_gan_workdir)],
  )
  return "\n".join(table)


def run_benchmark(
  settings: Settings, gan_base: ml_collections.ConfigDict, data_config: ml_collections.ConfigDict, command: str
) -> None:
  """Every cell not yet done, then augment.jsonl (all cells) and <report_name>.md and .png in settings.out_dir.

  gan_base: the conditional GAN's config (configs/<settings.gan_config>.py); data_config: where MNIST is
  (configs/default.py); command: the line augment.md quotes.
  """
  start = time.perf_counter()
  os.makedirs(settings.out_dir, exist_ok=True)
  jsonl = os.path.join(settings.out_dir, "augment.jsonl")
  run_all(settings, gan_base, data_config, jsonl)
  current = current_cells(settings, files.read_json_lines(jsonl))
  rows = list({id(r): r for rs in current.values() for r in rs}.values())  # (a)'s N = all cells are (b)'s
  summary = report.summarize(current)
  table = write_markdown(settings, summary, rows, time.perf_counter() - start, command)
  report_path = os.path.join(settings.out_dir, settings.report_name)
  report.plot(summary, settings.columns, settings.per_class_values, f"{report_path}.png")
  print(table)
  print(f"wrote {report_path}.{{md,png}} and {jsonl} in {time.perf_counter() - start:.0f} s")
