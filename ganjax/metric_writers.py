"""Scalar metrics to metrics.jsonl (one JSON object per line) and TensorBoard event files (tensorboardX,
no TensorFlow), plus the human-readable progress line."""

import json
import math
import os

from tensorboardX import SummaryWriter

from ganjax import files
from ganjax.errors import WorkdirError

METRICS_FILE = "metrics.jsonl"


def read_metrics(workdir: str) -> list[dict]:
  """The records of metrics.jsonl. A last line that is not a whole record (a power cut mid-append leaves one) is
  dropped with a warning; a damaged line before it is a WorkdirError naming it."""
  try:
    return files.read_json_lines(os.path.join(workdir, METRICS_FILE))
  except files.JsonLinesError as e:
    message = f"{e.path} line {e.line} is not a JSON record ({e.reason}); repair or delete that line"
    raise WorkdirError(message) from None


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
