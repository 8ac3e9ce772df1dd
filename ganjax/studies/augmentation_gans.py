"""The augmentation benchmark's conditional GANs: their configs, training each once, and sampling them."""

import functools
import json
import os
import time

import jax
import ml_collections
import numpy as np

from ganjax import files, train
from ganjax.synth import export, generation

GAN_RECORD = "augment_gan.json"  # in each cGAN's workdir: its steps, data, batch, widths and training wall time


def gan_config(
  base: ml_collections.ConfigDict, per_class: int, steps: int, seed: int, overrides: dict
) -> ml_collections.ConfigDict:
  """The conditional GAN `base` on the first `per_class` images of each class (0: all), for `steps` steps."""
  config = base.copy_and_resolve_references()
  config.examples_per_class, config.num_train_steps, config.seed = per_class, steps, seed
  config.update({k: v for k, v in overrides.items() if k != "batch_size"})
  num_images = 10 * per_class if per_class else 60_000
  devices = jax.device_count()  # the trainer splits each batch over every device
  config.batch_size = max(devices, min(overrides.get("batch_size", 256), num_images) // devices * devices)
  config.eval_at_end = False  # the benchmark's measure is the classifier; a GAN evaluation costs minutes on CPU
  return config


def ensure_gan(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Train (or finish) the cGAN in workdir; the first training's wall time goes to workdir/augment_gan.json."""
  record = os.path.join(workdir, GAN_RECORD)
  if [r["steps"] for r in files.read_json_lines(record)] == [config.num_train_steps]:
    return
  start = time.perf_counter()
  print(f"training cGAN {workdir} ({config.num_train_steps} steps, batch {config.batch_size})", flush=True)
  train.train_and_evaluate(config, workdir)
  wall = time.perf_counter() - start
  print(f"  done in {wall:.0f} s", flush=True)
  info = {"steps": config.num_train_steps, "examples_per_class": config.examples_per_class, "wall_s": round(wall, 1)}
  info |= {"batch_size": config.batch_size, "generator_features": list(config.generator_features)}
  files.atomic_write(record, json.dumps(info))


@functools.cache
def trained_run(workdir: str) -> generation.TrainedRun:
  """A finished cGAN, restored once per process: every seed and N samples it with the same compiled G."""
  return generation.load_run(workdir)


def sample(workdir: str, num_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """(images uint8, labels): num_per_class images of every digit from the finished cGAN in workdir."""
  options = export.ExportOptions(num_per_class=num_per_class, seed=seed)
  images, labels, _, _ = export.sample_dataset(trained_run(os.path.abspath(workdir)), options)
  return images, labels


def gan_lines(gans_dir: str, given_workdir: str) -> list[str]:
  """A markdown table of the cGANs trained under gans_dir (and the one given, if any)."""
  lines = ["| cGAN | images / class | generator steps | batch | generator widths | train wall s |", "|---" * 6 + "|"]
  for name in sorted(os.listdir(gans_dir)) if os.path.isdir(gans_dir) else []:
    for g in files.read_json_lines(os.path.join(gans_dir, name, GAN_RECORD)):
      lines.append(
        f"| {name} | {g['examples_per_class'] or 'all'} | {g['steps']} | {g['batch_size']} "
        f"| {g['generator_features']} | {g['wall_s']:.0f} |"
      )
  if given_workdir:
    lines.append(f"| {given_workdir} (given) | all | (its config) | | | |")
  return lines
