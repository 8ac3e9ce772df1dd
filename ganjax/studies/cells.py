"""What the classifier benchmarks (studies/augmentation.py, studies/few_labels_benchmark.py) share: the resumable
runner of their cells (JSON lines, read by files.read_json_lines) that skips a cell already there, the description
of the hardware they ran on, and the markdown page they write."""

import json
import os
import time
from collections.abc import Iterable

import jax

from ganjax import files, runtime


def row_key(row: dict, key_fields: tuple[str, ...], old_row_defaults: dict | None = None) -> tuple:
  """A row's resume key: its key_fields in order; a field missing from an older row takes its old default."""
  defaults = old_row_defaults or {}
  return tuple(row.get(field, defaults.get(field)) for field in key_fields)


class CellRunner:
  """A benchmark's finished cells, one JSON line each in `path`: a cell whose key is already there is skipped
  on rerun, and each finished one is appended at once, so an interruption loses at most the cell it was in."""

  def __init__(self, path: str, key_fields: tuple[str, ...], old_row_defaults: dict | None = None):
    self.path, self.key_fields, self.old_row_defaults = path, key_fields, old_row_defaults or {}
    data = b""
    if os.path.exists(path):
      with open(path, "rb") as f:
        data = f.read()
    rows, end = files.parse_json_lines(path, data)
    kept = data[:end] if data[:end].endswith(b"\n") or not end else data[:end] + b"\n"
    if kept != data:  # a torn line cut off, or a newline ended: the next row starts a line of its own
      files.atomic_write(path, kept)
    self.done = {self.key_of(row) for row in rows}
    self.start = time.perf_counter()

  def key_of(self, row: dict) -> tuple:
    return row_key(row, self.key_fields, self.old_row_defaults)

  def todo(self, keys: Iterable[tuple]) -> list[tuple]:
    """The keys, in order, of the cells not done yet."""
    return [key for key in keys if key not in self.done]

  def record(self, key: tuple, result: dict, wall_s: float) -> dict:
    """Append the finished cell's row: its key fields, `result`, its wall time and this process's device."""
    row = dict(zip(self.key_fields, key, strict=True)) | result
    row |= {"wall_s": round(wall_s, 1), "device": jax.devices()[0].device_kind}
    with open(self.path, "a") as f:
      f.write(json.dumps(row) + "\n")
    self.done.add(key)
    return row

  def seconds(self) -> float:
    """Seconds since the runner started: the progress lines' 'so far'."""
    return time.perf_counter() - self.start


def hardware() -> dict:
  """This process's machine: device kind, platform and count, CPUs and CPU model, and a line naming them."""
  device = jax.devices()[0]
  kind, count, cpus = device.device_kind, jax.device_count(), os.cpu_count()
  cpu = runtime.cpu_model()
  line = f"{count} x {kind} ({device.platform}), {cpus} CPUs ({cpu}), jax {jax.__version__}"
  machine = {"device_kind": kind, "platform": device.platform, "device_count": count, "cpu_count": cpus, "cpu": cpu}
  return machine | {"line": line}


def devices_of(rows: list[dict]) -> str:
  """The devices the rows ran on (else this process's) and the CPU, e.g. 'cpu (AMD ..., 2 CPUs)'."""
  machine = hardware()
  devices = sorted({r["device"] for r in rows}) or [machine["device_kind"]]
  return f"{', '.join(devices)} ({machine['cpu']}, {machine['cpu_count']} CPUs)"


def cost_line(rows: list[dict], wall_s: float, cells: str = "Cells") -> str:
  """'Hardware: ... . Cells: N s in all; this invocation: M s.' of a benchmark's page."""
  spent = sum(r["wall_s"] for r in rows)
  return f"Hardware: {devices_of(rows)}. {cells}: {spent:.0f} s in all; this invocation: {wall_s:.0f} s."


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
  return ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"] + ["| " + " | ".join(r) + " |" for r in rows]


def write_page(path: str, title: str, command: str, about: str, cost: str, body: list[str]) -> None:
  """A benchmark's markdown page, written atomically: its title, the command, what it measured, the hardware
  and wall times, then its tables."""
  text = [f"# {title}", "", f"`{command}`", "", about, "", cost, "", *body]
  files.atomic_write(path, "\n".join(text) + "\n")
