"""Summarise finished or running training runs from their workdirs: speed, where the losses ended, blow-ups.

  python experiments/run_summary.py runs/gan runs/wgan_gp
  python experiments/run_summary.py --blow_ups runs/cwgan_gp_tuned     # and each run's blow-ups, one by one

Prints a markdown table: config, steps done, epochs, seconds per epoch and real images/s (median over the
logged windows, so compilation and the odd slow window do not count), the last logged losses, and how many
blow-ups the critic's loss had (ganjax/studies/stability.py: a logged record more than 10 robust standard
deviations from the median of the 10 usual records before it). With --blow_ups, a table per run of every
blow-up of the critic loss, gradient penalty, Wasserstein estimate and generator loss: where it started,
its peak, the usual value and where it was back.
"""

import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ganjax import metric_writers, saved_run
from ganjax.data import mnist
from ganjax.studies import stability


def train_records(workdir: str) -> list[dict]:
  """The training records of metrics.jsonl (evaluation records, which carry eval_* only, left out)."""
  records = [r for r in metric_writers.read_metrics(workdir) if "critic_loss" in r]
  if not records:
    raise SystemExit(f"error: {workdir} has no training metrics yet")
  return records


def summarise(workdir: str, records: list[dict]) -> dict:
  """One table row: `workdir`'s config, speed, last losses and blow-up count, from its training `records`."""
  config = saved_run.load(workdir)
  images_per_sec = statistics.median(r["images_per_sec"] for r in records if "images_per_sec" in r)
  num_images = config.train_subset or mnist.TRAIN_SIZE
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
    "critic_loss blow-ups": len(stability.blow_ups(records, "critic_loss")),
  }


def blow_up_table(workdir: str, records: list[dict]) -> str:
  events = [e for metric in stability.DEFAULT_METRICS for e in stability.blow_ups(records, metric)]
  if not events:
    return f"{workdir}: no blow-ups"
  return f"{workdir}:\n\n{stability.markdown(events)}"


def main(args: list[str]) -> None:
  workdirs = [a for a in args if a != "--blow_ups"]
  if not workdirs:
    raise SystemExit(__doc__)
  for workdir in workdirs:
    if not os.path.isdir(workdir):
      raise SystemExit(f"error: {workdir} is not a directory; give the workdirs of training runs")
  records = {workdir: train_records(workdir) for workdir in workdirs}  # each metrics.jsonl read once
  rows = [summarise(w, records[w]) for w in workdirs]
  print("| " + " | ".join(rows[0]) + " |")
  print("|" + "---|" * len(rows[0]))
  for row in rows:
    print("| " + " | ".join(str(v) for v in row.values()) + " |")
  if "--blow_ups" in args:
    for workdir in workdirs:
      print("\n" + blow_up_table(workdir, records[workdir]))


if __name__ == "__main__":
  main(sys.argv[1:])
