"""An ablation's tables: results.csv (one row per finished cell) and results.md (mean ± std over seeds)."""

import csv
import io
import os

import numpy as np

from ganjax import files
from ganjax.studies import cells as cells_lib

METRICS = ("fid", "classifier_score", "precision", "recall", "min_class_share", "label_agreement", "cas")
EXTRA_COLUMNS = ("wall_s", "hardware", "evaluator_sha256", "workdir", "resumed_from_step")


def show(value, spec: str = ".4g") -> str:
  """A table cell: floats formatted, a missing value as a dash."""
  if value is None:
    return "–"
  return format(value, spec) if isinstance(value, float) else str(value)


def summary_lines(rows: list[dict], fields: list[str], metrics: list[str]) -> list[str]:
  """Mean ± std (ddof 1) over seeds of each metric and the wall time, per config x override combination."""
  groups = {}
  for row in rows:
    groups.setdefault((row["config"], *(show(row[f]) for f in fields)), []).append(row)
  lines = []
  for key, group in groups.items():
    cells = []
    for metric in [*metrics, "wall_s"]:
      values = [r[metric] for r in group if r[metric] is not None]
      std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
      cells.append(f"{np.mean(values):.4g} ± {std:.2g}" if values else "–")
    diverged = sum(r["status"] == "diverged" for r in group)
    lines.append([*key, f"{len(group) - diverged}" + (f" (+{diverged} diverged)" if diverged else ""), *cells])
  return cells_lib.markdown_table(["config", *fields, "seeds", *metrics, "wall s"], lines)


def write_results(out_dir: str, fields: list[str], num_cells: int, rows: list[dict], command: str) -> None:
  """results.csv and results.md of the finished cells (rows, swept `fields`), both replaced atomically."""
  columns = ["config", *fields, "seed", "status", "epochs", "steps"]
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, [*columns, *METRICS, *EXTRA_COLUMNS], lineterminator="\n")
  writer.writeheader()
  writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
  files.atomic_write(os.path.join(out_dir, "results.csv"), buffer.getvalue())
  metrics = [m for m in METRICS if any(r[m] is not None for r in rows)]
  per_cell = [[*(show(r[k]) for k in [*columns, *metrics]), show(r["wall_s"], ".0f")] for r in rows]
  hardware = "; ".join(sorted({r["hardware"] for r in rows if r["hardware"]})) or "–"
  evaluators = ", ".join(sorted({r["evaluator_sha256"][:12] for r in rows if r["evaluator_sha256"]})) or "–"
  resumed = " (resumed cells: the last attempt only)" if any(r["resumed_from_step"] for r in rows) else ""
  text = [
    f"# Ablation {os.path.basename(out_dir)}: {len(rows)} of {num_cells} cells finished",
    "",
    f"`{command}`",
    "",
    f"Hardware: {hardware}. Evaluator sha256: {evaluators}. Wall s: training + evaluation of a cell{resumed}.",
    "",
    "## Mean ± std over seeds",
    "",
    *summary_lines(rows, fields, metrics),
    "",
    "## Cells",
    "",
    *cells_lib.markdown_table([*columns, *metrics, "wall s"], per_cell),
  ]
  files.atomic_write(os.path.join(out_dir, "results.md"), "\n".join(text) + "\n")
