"""Scalar metrics to metrics.jsonl (one JSON object per line) and TensorBoard event files (tensorboardX,
no TensorFlow), plus the human-readable progress line."""

import json
import math
import os

from absl import logging
from tensorboardX import SummaryWriter

from ganjax import files
from ganjax.errors import WorkdirError

METRICS_FILE = "metrics.jsonl"


def read_metrics(workdir: str) -> list[dict]:
  """The records of metrics.jsonl. A last line that is not a whole record (a power cut mid-append leaves one) is
  dropped with a warning; a damaged line before it is a WorkdirError naming it."""
  path = os.path.join(workdir, METRICS_FILE)
  if not os.path.exists(path):
    return []
  with open(path, "rb") as f:
    lines = f.read().split(b"\n")
  records = []
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      records.append(json.loads(line))
    except ValueError as e:  # JSONDecodeError, or bytes that are not UTF-8
      if any(rest.strip() for rest in lines[number:]):
        raise WorkdirError(f"{path} line {number} is not a JSON record ({e}); repair or delete that line") from None
      logging.warning("dropped the last record of %s: it was cut short (a write interrupted by a crash)", path)
  return records


class MetricWriter:
  """Appends records; on resume, drops records past the restored step (that training was discarded)."""

  def __init__(self, workdir: str, resume_step: int):
    self.path = os.path.join(workdir, METRICS_FILE)
    kept = [r for r in read_metrics(workdir) if r["step"] <= resume_step]
    files.atomic_write(self.path, "".join(json.dumps(r) + "\n" for r in kept))  # a crash leaves the old file whole
    self.file = open(self.path, "a")
    self.tensorboard = SummaryWriter(os.path.join(workdir, "tensorboard"), purge_step=resume_step + 1)

  def write(self, step: int, scalars: dict[str, float]) -> None:
    self.file.write(json.dumps({"step": step, **scalars}) + "\n")
    self.file.flush()
    for name, value in scalars.items():
      self.tensorboard.add_scalar(name, value, step)

  def close(self) -> None:
    self.file.close()
    self.tensorboard.close()


def format_duration(seconds: float) -> str:
  seconds = int(seconds)
  return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def progress_line(step: int, total_steps: int, epoch: float, num_epochs: float, scalars: dict, eta_s: float) -> str:
  """'step 120/14040 (0.9%) epoch 0.51/60 | critic_loss 1.2034 generator_loss 0.8123 ... | 812 img/s | eta 1h02m'

  Without images_per_sec in `scalars` (no step timed yet) the rate reads '?', as does an infinite ETA."""
  losses = " ".join(f"{k} {v:.4f}" for k, v in scalars.items() if k not in ("epoch", "images_per_sec", "steps_per_sec"))
  eta = format_duration(eta_s) if math.isfinite(eta_s) else "?"
  rate = f"{scalars['images_per_sec']:.0f}" if "images_per_sec" in scalars else "?"
  return (
    f"step {step}/{total_steps} ({100 * step / total_steps:.1f}%) epoch {epoch:.2f}/{num_epochs:.2f} | {losses} | "
    f"{rate} img/s | eta {eta}"
  )
