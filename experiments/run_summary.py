"""Summarise finished or running training runs from their workdirs: speed and where the losses ended.

  python experiments/run_summary.py runs/gan runs/wgan_gp

Prints a markdown table: config, steps done, epochs, seconds per epoch and real images/s (median over the
logged windows, so compilation and the odd slow window do not count), and the last logged losses.
"""

import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ganjax import config as config_lib
from ganjax import metric_writers


def summarise(workdir: str) -> dict:
  config = config_lib.load(workdir)
  records = metric_writers.read_metrics(workdir)
  if not records:
    raise SystemExit(f"error: {workdir} has no metrics yet")
  images_per_sec = statistics.median(r["images_per_sec"] for r in records if "images_per_sec" in r)
  num_images = config.train_subset or config_lib.MNIST_TRAIN_SIZE
  images_per_epoch = num_images // config.batch_size * config.batch_size
  last = records[-1]
  return {
    "workdir": workdir,
    "loss": config.loss,
    "step": last["step"],
    "epoch": f"{last['epoch']:.2f}",
    "s/epoch": f"{images_per_epoch / images_per_sec:.0f}",
    "real img/s": f"{images_per_sec:.0f}",
    "critic_loss": f"{last['critic_loss']:.4f}",
    "generator_loss": f"{last['generator_loss']:.4f}",
  }


def main(workdirs: list[str]) -> None:
  rows = [summarise(w) for w in workdirs]
  print("| " + " | ".join(rows[0]) + " |")
  print("|" + "---|" * len(rows[0]))
  for row in rows:
    print("| " + " | ".join(str(v) for v in row.values()) + " |")


if __name__ == "__main__":
  if len(sys.argv) < 2:
    raise SystemExit(__doc__)
  main(sys.argv[1:])
