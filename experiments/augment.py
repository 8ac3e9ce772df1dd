"""The augmentation benchmark: does GAN data help a small digit classifier trained on few labels?

  python experiments/augment.py --full_gan_workdir=runs/cwgan_gp      # N in {10, 100, 1000, all}, 3 seeds
  python experiments/augment.py --quick        # ~15 min on 2 CPU cores, into experiments/results/augment_quick
  python experiments/augment.py --quick_test --out_dir=/tmp/augment   # < 1 min: the test's smoke run

A fixed classifier recipe (classifiers.SMALL_CNN_RECIPE: same steps and batch whatever the training set) is
trained on the first N labelled MNIST training images of each class under four treatments: real only; real +
classic augmentation (augmentations.classic, on every batch); real + GAN samples (from a conditional WGAN-GP,
configs/cwgan_gp.py: --synthetic_ratio x as many as the real images, class-balanced, concatenated with them);
real + classic + GAN (the augmentation applied to real and synthetic alike). Two regimes, one panel each:
  (a) small data: one cGAN per N trained only on the same N labelled images per class (--small_gan_steps),
      under <out_dir>/gans/a_N{N}_s{seed}; at N = all it is regime (b)'s GAN, which sees the same 60k images.
  (b) full data: a cGAN trained on all 60k training images (--full_gan_workdir, else trained here under
      <out_dir>/gans/b_full_s0 for --full_gan_steps).
No GAN sees a test image. The score is accuracy on the 10k MNIST test images, mean +- std (ddof 1) over
seeds; the real-only and classic columns do not involve a GAN and are shared by both regimes.

Resumable: each finished cell (regime, N, treatment, seed, and the settings it depends on) is one line of
<out_dir>/augment.jsonl and is skipped on rerun; GAN runs resume from their checkpoints. Writes augment.md
(table, settings, hardware, wall times), augment.jsonl and augment.png to --out_dir.

--quick: N in {10, 100}, 3 seeds, 300 classifier steps (15 % of the recipe), and quarter-width GANs
(generator 64-32-16, critic 16-32, batch <= 64) for 300 generator steps each, the full-data one included
unless --full_gan_workdir is given. It shows the pipeline end to end; its GANs are too short to answer the
question. --quick_test: N = 10, 1 seed, 20 classifier steps, tiny GANs (8-8-4 / 4-8, batch 16) for 3 steps.
"""

import functools
import json
import os
import platform
import sys
import time

import jax
import numpy as np
from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from configs import cwgan_gp, default
from ganjax import cli, train
from ganjax.data import mnist
from ganjax.eval import classifiers
from ganjax.synth import augmentations, export, generation

_N_PER_CLASS = flags.DEFINE_list("n_per_class", ["10", "100", "1000", "all"], "Real labelled images per class.")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds 0..S-1 (classifier init/order/augmentation, GAN sample noise).")
_RATIO = flags.DEFINE_float("synthetic_ratio", 1.0, "Synthetic images per real image in the GAN treatments.")
_CLASSIFIER_STEPS = flags.DEFINE_integer("classifier_steps", classifiers.SMALL_CNN_RECIPE.num_steps, "Steps.")
_STRENGTH = flags.DEFINE_float("classic_strength", 1.0, "augmentations.classic strength (1: its defaults).")
_SMALL_GAN_STEPS = flags.DEFINE_integer("small_gan_steps", 2000, "Generator steps of each regime-(a) cGAN.")
_GAN_PER_SEED = flags.DEFINE_bool("gan_per_seed", False, "Regime (a): one cGAN per seed (else seed 0's for all).")
_FULL_GAN_WORKDIR = flags.DEFINE_string("full_gan_workdir", "", "A trained full-data cGAN run (regime b).")
# ~10 epochs of 60k images at batch 256 with 5 critic batches per generator step.
_FULL_GAN_STEPS = flags.DEFINE_integer("full_gan_steps", 470, "Generator steps of the regime-(b) cGAN trained here.")
_OUT_DIR = flags.DEFINE_string("out_dir", "experiments/results/augment", "Output directory.")
_QUICK = flags.DEFINE_bool("quick", False, "Preset: ~15 min on 2 CPU cores (module docstring).")
_QUICK_TEST = flags.DEFINE_bool("quick_test", False, "Preset: a < 1 min smoke run for tests.")

QUICK = {"n_per_class": ["10", "100"], "seeds": 3, "classifier_steps": 300, "small_gan_steps": 300}
QUICK |= {"full_gan_steps": 300, "out_dir": "experiments/results/augment_quick"}
QUICK_GAN = {"generator_features": (64, 32, 16), "critic_features": (16, 32), "batch_size": 64}
QUICK_TEST = {"n_per_class": ["10"], "seeds": 1, "classifier_steps": 20, "small_gan_steps": 3, "full_gan_steps": 3}
QUICK_TEST_GAN = {"generator_features": (8, 8, 4), "critic_features": (4, 8), "batch_size": 16}

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


def apply_preset() -> dict:
  """Set --quick / --quick_test's flag values where not given explicitly; returns its GAN config overrides."""
  preset, gan = (QUICK_TEST, QUICK_TEST_GAN) if _QUICK_TEST.value else (QUICK, QUICK_GAN) if _QUICK.value else ({}, {})
  for name, value in preset.items():
    if not flags.FLAGS[name].present:
      flags.FLAGS[name].value = value
  return gan


def per_class_values() -> list[int]:
  return [0 if n == "all" else int(n) for n in _N_PER_CLASS.value]


def gan_config(per_class: int, steps: int, seed: int, overrides: dict):
  """configs/cwgan_gp.py on the first `per_class` images of each class (0: all), for `steps` generator steps."""
  config = cwgan_gp.get_config()
  config.examples_per_class, config.num_train_steps, config.seed = per_class, steps, seed
  config.update({k: v for k, v in overrides.items() if k != "batch_size"})
  num_images = 10 * per_class if per_class else 60_000
  devices = jax.device_count()  # the trainer splits each batch over every device
  config.batch_size = max(devices, min(overrides.get("batch_size", 256), num_images) // devices * devices)
  config.eval_at_end = False  # the benchmark's measure is the classifier; a GAN evaluation costs minutes on CPU
  return config


def read_rows(path: str) -> list[dict]:
  """The JSON lines of path ([] if there is none): the finished cells, or a cGAN's augment_gan.json."""
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def ensure_gan(workdir: str, config) -> None:
  """Train (or finish) the cGAN in workdir; the first training's wall time goes to workdir/augment_gan.json."""
  record = os.path.join(workdir, "augment_gan.json")
  if [r["steps"] for r in read_rows(record)] == [config.num_train_steps]:
    return
  start = time.perf_counter()
  print(f"training cGAN {workdir} ({config.num_train_steps} steps, batch {config.batch_size})", flush=True)
  train.train_and_evaluate(config, workdir)
  wall = time.perf_counter() - start
  print(f"  done in {wall:.0f} s", flush=True)
  info = {"steps": config.num_train_steps, "examples_per_class": config.examples_per_class, "wall_s": round(wall, 1)}
  info |= {"batch_size": config.batch_size, "generator_features": list(config.generator_features)}
  with open(record, "w") as f:
    json.dump(info, f)


def gan_id(regime: str, per_class: int, seed: int) -> str:
  """Which cGAN a cell samples from ('' for none): part of the resume key, known without training it."""
  if regime == "none":
    return ""
  if regime == "a" and per_class:
    return f"a_N{per_class}_s{seed if _GAN_PER_SEED.value else 0}@{_SMALL_GAN_STEPS.value}"
  return os.path.abspath(_FULL_GAN_WORKDIR.value) if _FULL_GAN_WORKDIR.value else f"b_full_s0@{_FULL_GAN_STEPS.value}"


def sample_synthetic(regime: str, per_class: int, seed: int, num_real: int, gan_overrides: dict):
  """(images uint8, labels) from the regime's cGAN (trained here first if needed): ratio x num_real, balanced."""
  if regime == "a" and per_class:
    gan_seed = seed if _GAN_PER_SEED.value else 0
    workdir = os.path.join(_OUT_DIR.value, "gans", f"a_N{per_class}_s{gan_seed}")
    ensure_gan(workdir, gan_config(per_class, _SMALL_GAN_STEPS.value, gan_seed, gan_overrides))
  elif _FULL_GAN_WORKDIR.value:
    workdir = _FULL_GAN_WORKDIR.value
  else:
    workdir = os.path.join(_OUT_DIR.value, "gans", "b_full_s0")
    ensure_gan(workdir, gan_config(0, _FULL_GAN_STEPS.value, 0, gan_overrides))
  options = export.ExportOptions(num_per_class=max(1, round(_RATIO.value * num_real / 10)), seed=seed)
  images, labels, _, _ = export.sample_dataset(trained_run(os.path.abspath(workdir)), options)
  return images, labels


@functools.cache
def trained_run(workdir: str) -> generation.Run:
  """A finished cGAN, restored once per process: every seed and N samples it with the same compiled G."""
  return generation.load_run(workdir)


def run_cell(train_set, test_set, synthetic, seed: int, augment) -> float:
  """Test accuracy of the fixed recipe trained on the real set (+ the synthetic one) with `augment`."""
  images, labels = train_set
  if synthetic is not None:
    images, labels = np.concatenate([images, synthetic[0]]), np.concatenate([labels, synthetic[1]])
  recipe = classifiers.small_cnn_recipe(_CLASSIFIER_STEPS.value)
  params = classifiers.train_classifier(recipe, images, labels, jax.random.key(seed), augment)
  return classifiers.accuracy(recipe.model, params, *test_set)


def cell_key(regime: str, per_class: int, treatment: str, seed: int) -> tuple:
  """The resume key of a cell under the current flags (KEY_FIELDS order)."""
  settings = (_CLASSIFIER_STEPS.value, _RATIO.value, _STRENGTH.value, gan_id(regime, per_class, seed))
  return (regime, per_class, treatment, seed, *settings)


def run_all(jsonl: str, gan_overrides: dict) -> None:
  """Every cell not yet in jsonl, appended to it as it finishes."""
  done = {tuple(r[k] for k in KEY_FIELDS) for r in read_rows(jsonl)}
  augment = functools.partial(augmentations.classic, strength=_STRENGTH.value)  # one object: jit caches per fn
  test_set = mnist.load_split(default.get_config(), "test")
  start = time.perf_counter()
  for per_class in per_class_values():
    config = default.get_config()
    config.examples_per_class = per_class
    train_set = mnist.load_split(config, "train")  # the very images the regime-(a) cGAN trains on
    for seed in range(_SEEDS.value):
      synthetic = {}  # regime -> its samples, drawn once for both of its treatments
      for regime, treatment, title in COLUMNS:
        key = cell_key(regime, per_class, treatment, seed)
        if (regime == "a" and not per_class) or key in done:
          continue  # at N = all, regime (a)'s GAN is regime (b)'s
        if regime != "none" and regime not in synthetic:
          synthetic[regime] = sample_synthetic(regime, per_class, seed, len(train_set[1]), gan_overrides)
        cell_start = time.perf_counter()
        augment_fn = augment if "classic" in treatment else None
        accuracy = run_cell(train_set, test_set, synthetic.get(regime), seed, augment_fn)
        row = dict(zip(KEY_FIELDS, key, strict=True)) | {"accuracy": accuracy, "num_real": len(train_set[1])}
        row["num_synthetic"] = len(synthetic[regime][1]) if regime in synthetic else 0
        row |= {"wall_s": round(time.perf_counter() - cell_start, 1), "device": jax.devices()[0].device_kind}
        with open(jsonl, "a") as f:
          f.write(json.dumps(row) + "\n")
        so_far = f"{row['wall_s']:.0f} s; {time.perf_counter() - start:.0f} s so far"
        print(f"N={per_class or 'all'} seed {seed} {title}: accuracy {accuracy:.4f} ({so_far})", flush=True)


def current_cells(rows: list[dict]) -> dict:
  """{(column title, N): [rows]} of the cells the current flags ask for (not other settings' leftovers)."""
  by_key = {tuple(r[k] for k in KEY_FIELDS): r for r in rows}
  cells = {}
  for per_class in per_class_values():
    for regime, treatment, title in COLUMNS:
      source = "b" if regime == "a" and not per_class else regime
      found = [by_key.get(cell_key(source, per_class, treatment, s)) for s in range(_SEEDS.value)]
      cells[title, per_class] = [c for c in found if c is not None]
  return cells


def summarize(cells: dict) -> dict:
  """{(column title, N): (mean, std (ddof 1), seeds, mean wall s)}."""
  summary = {}
  for column, found in cells.items():
    if found:
      accuracies = [c["accuracy"] for c in found]
      std = float(np.std(accuracies, ddof=1)) if len(found) > 1 else 0.0
      summary[column] = (float(np.mean(accuracies)), std, len(found), np.mean([c["wall_s"] for c in found]))
  return summary


def gan_lines() -> list[str]:
  lines = ["| cGAN | images / class | generator steps | batch | generator widths | train wall s |", "|---" * 6 + "|"]
  gans_dir = os.path.join(_OUT_DIR.value, "gans")
  for name in sorted(os.listdir(gans_dir)) if os.path.isdir(gans_dir) else []:
    for g in read_rows(os.path.join(gans_dir, name, "augment_gan.json")):
      lines.append(
        f"| {name} | {g['examples_per_class'] or 'all'} | {g['steps']} | {g['batch_size']} "
        f"| {g['generator_features']} | {g['wall_s']:.0f} |"
      )
  if _FULL_GAN_WORKDIR.value:
    lines.append(f"| {_FULL_GAN_WORKDIR.value} (given) | all | (its config) | | | |")
  return lines


def hardware(rows: list[dict]) -> str:
  devices = sorted({r["device"] for r in rows}) or [jax.devices()[0].device_kind]
  cpu = platform.processor() or platform.machine()
  if os.path.exists("/proc/cpuinfo"):
    with open("/proc/cpuinfo") as f:
      cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
  return f"{', '.join(devices)} ({cpu}, {os.cpu_count()} CPUs)"


def write_table(summary: dict, rows: list[dict], path: str, wall_s: float) -> str:
  titles = [title for _, _, title in COLUMNS]
  lines = ["| N / class | " + " | ".join(titles) + " | seeds | classifier s / cell |", "|---" * (len(titles) + 3) + "|"]
  for n in per_class_values():
    cells = [summary.get((t, n)) for t in titles]
    shown = [f"{100 * c[0]:.2f} ± {100 * c[1]:.2f}" if c else "–" for c in cells]
    seeds = max((c[2] for c in cells if c), default=0)
    walls = [c[3] for c in cells if c]
    lines.append(f"| {n or 'all'} | " + " | ".join(shown) + f" | {seeds} | {np.mean(walls) if walls else 0:.0f} |")
  text = [
    "# Augmentation benchmark: MNIST test accuracy (%) of a small CNN, mean ± std over seeds",
    "",
    f"`python experiments/augment.py {' '.join(sys.argv[1:])}`",
    "",
    (
      f"Classifier: SmallCNN, {_CLASSIFIER_STEPS.value} steps x batch {classifiers.SMALL_CNN_RECIPE.batch_size} "
      f"whatever the training set. Synthetic images: {_RATIO.value:g} x the real ones, class-balanced. Classic "
      f"augmentation: affine + elastic at strength {_STRENGTH.value:g}. (a): cGAN trained only on the same N "
      "images per class (at N = all: regime (b)'s). (b): cGAN trained on all 60k training images."
    ),
    "",
    (
      f"Hardware: {hardware(rows)}. "
      f"Classifier cells: {sum(r['wall_s'] for r in rows):.0f} s in all; this invocation: {wall_s:.0f} s."
    ),
    "",
    *lines,
    "",
    *gan_lines(),
  ]
  with open(path, "w") as f:
    f.write("\n".join(text) + "\n")
  return "\n".join(lines)


def plot(summary: dict, path: str) -> None:
  from ganjax.plots import plt

  ns = per_class_values()
  x = [n or 6000 for n in ns]  # "all" is ~6000 per class
  figure, panels = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
  for axes, regime, name in zip(panels, "ab", ("(a) cGAN trained on the same N / class", "(b) cGAN trained on 60k")):
    for column_regime, treatment, title in COLUMNS:
      if column_regime not in ("none", regime):
        continue
      points = [(xi, summary[title, n]) for xi, n in zip(x, ns) if (title, n) in summary]
      if points:
        means = [100 * p[1][0] for p in points]
        stds = [100 * p[1][1] for p in points]
        label = "real + " + treatment.replace("+", " + ").replace("gan", "GAN") if column_regime != "none" else title
        axes.errorbar([p[0] for p in points], means, yerr=stds, marker="o", capsize=3, label=label)
    axes.set_xscale("log")
    axes.set_xticks(x, [str(n or "all") for n in ns])
    axes.minorticks_off()
    axes.set(xlabel="real labelled images per class", title=name)
    axes.grid(alpha=0.3)
    axes.legend()
  panels[0].set_ylabel("MNIST test accuracy (%)")
  figure.tight_layout()
  figure.savefig(path, dpi=100)
  plt.close(figure)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  start = time.perf_counter()
  gan_overrides = apply_preset()
  if _RATIO.value <= 0:
    raise app.UsageError("--synthetic_ratio must be > 0")
  os.makedirs(_OUT_DIR.value, exist_ok=True)
  jsonl = os.path.join(_OUT_DIR.value, "augment.jsonl")
  cli.run(run_all, jsonl, gan_overrides)
  cells = current_cells(read_rows(jsonl))
  rows = list({id(r): r for rs in cells.values() for r in rs}.values())  # (a)'s N = all cells are (b)'s
  summary = summarize(cells)
  table = write_table(summary, rows, os.path.join(_OUT_DIR.value, "augment.md"), time.perf_counter() - start)
  plot(summary, os.path.join(_OUT_DIR.value, "augment.png"))
  print(table)
  print(f"wrote {_OUT_DIR.value}/augment.{{md,jsonl,png}} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
  app.run(main)
