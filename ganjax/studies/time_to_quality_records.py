"""The records of a time-to-quality measurement (ganjax/studies/time_to_quality.py): one JSON line per evaluation,
resumed with the checkpoint they belong to, and the summary (console line and markdown page) of where every
target first held, or how close each came."""

import json
import math
import os

from ganjax import files
from ganjax.errors import ConfigError, WorkdirError
from ganjax.eval import sample_quality


def write_records(path: str, records: list[dict]) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  files.atomic_write(path, "".join(json.dumps(r) + "\n" for r in records))


def resumed_records(path: str, step: int, num_samples: int) -> list[dict]:
  """The records the checkpoint at `step` (0: none) continues; later ones are to be dropped (their training is
  redone). Every checkpoint of this study follows its record, so a checkpoint without one is another's."""
  records = files.read_json_lines(path)  # rewritten whole at each evaluation, never left cut short
  if step and not any(r["step"] == step for r in records):
    raise WorkdirError(
      f"the workdir's checkpoint at step {step} has no record in {path}: it was not written by this measurement; "
      "give that measurement's --out_dir, or a fresh --workdir"
    )
  if not step and records:
    raise WorkdirError(f"{path} holds a measurement whose workdir is not this one; use a fresh --out_dir")
  if records and records[0].get("num_samples", num_samples) != num_samples:
    raise ConfigError(f"--num_samples={num_samples}, but {path} was measured with {records[0]['num_samples']:g}")
  return [r for r in records if r["step"] <= step]


def summarise(records: list[dict], targets, stopped: str) -> dict:
  """The first evaluation where every target held (or the last one), and the best value of each metric seen
  with how far it is from its target (short_by <= 0: met)."""
  hit = next((r for r in records if r["all_met"]), None)
  at = hit or (records[-1] if records else {"step": 0, "epoch": 0.0, "train_seconds": 0.0, "first_step_seconds": 0})
  best = {}
  for name in dict.fromkeys(n for r in records for n in r["targets"]):
    seen = [(r[name], r["step"]) for r in records if isinstance(r.get(name), float) and math.isfinite(r[name])]
    if seen:
      value, step = min(seen, key=lambda pair: targets.short_by(name, pair[0]))  # the closest to its target
      best[name] = {"value": value, "step": step, "target": getattr(targets, name)}
      best[name]["short_by"] = targets.short_by(name, value)
  summary = {"reached": hit is not None, "stopped": "every target met" if hit else stopped}
  summary |= {k: at[k] for k in ("step", "epoch", "train_seconds", "first_step_seconds")}
  return summary | {"evaluations": len(records), "eval_seconds": sum(r["eval_seconds"] for r in records), "best": best}


def summary_line(name: str, summary: dict) -> str:
  """'<name>: every target met after 812.3 s of training (step ..., epoch ...; 14 evaluations took 420 s more)',
  or 'not reached ...; best <metric value (short by d)> ...' naming the targets never met."""
  where = f"step {summary['step']}, epoch {summary['epoch']:.2f}, first step {summary['first_step_seconds']:.1f} s"
  evals = f"{summary['evaluations']} evaluations took {summary['eval_seconds']:.0f} s more"
  if summary["reached"]:
    return f"{name}: every target met after {summary['train_seconds']:.1f} s of training ({where}; {evals})"
  best = summary["best"].items()
  missed = [f"{k} {b['value']:.4g} (short by {b['short_by']:.3g})" for k, b in best if b["short_by"] > 0]
  head = f"{name}: not reached in {summary['train_seconds']:.1f} s of training"
  return f"{head} ({where}; {summary['stopped']}; {evals}); best {', '.join(missed)}"


METRICS = ("fid", "classifier_score", "recall", "min_class_share", "label_agreement", "cas")


def write_markdown(path: str, name: str, summary: dict, records: list[dict], command: str) -> None:
  """The summary, the best value of each metric against its target, and every evaluation."""
  lines = [f"# Time to quality: {name}", "", f"{summary['date']}, {summary['hardware']['line']}.", ""]
  lines += [f"`{command}`", ""] if command else []
  lines += [f"**{summary_line(name, summary)}**", ""]
  lines += ["| metric | target | best | at step | short by |", "|---" * 5 + "|"]
  for key, b in summary["best"].items():
    lines.append(f"| {key} | {b['target']:.4g} | {b['value']:.4g} | {b['step']} | {max(b['short_by'], 0):.3g} |")
  lines += ["", f"| step | epoch | train s | eval s | {' | '.join(METRICS)} | met |", "|---" * (len(METRICS) + 5) + "|"]
  for r in records:
    cells = [str(r["step"]), f"{r['epoch']:.2f}", f"{r['train_seconds']:.1f}", f"{r['eval_seconds']:.1f}"]
    cells += [f"{r[m]:.4g}" if m in r else "-" for m in METRICS]
    cells.append(f"{sum(v is True for v in r['targets'].values())}/{len(r['targets'])}")
    lines.append("| " + " | ".join(cells) + " |")
  files.atomic_write(path, "\n".join(lines) + "\n")


def record_line(record: dict) -> str:
  """The console line of one evaluation: training time, evaluation time, metrics, targets met."""
  checks = record["targets"]
  missed = [n if m is False else f"{n} unchecked" for n, m in checks.items() if m is not True]
  met = f"targets met {sum(m is True for m in checks.values())}/{len(checks)}"
  return (
    f"step {record['step']} epoch {record['epoch']:.2f}: {record['train_seconds']:.1f} s of training "
    f"(+{record['eval_seconds']:.1f} s evaluating) | {sample_quality.summary_line(record)} | {met}"
    + (f", not: {', '.join(missed)}" if missed else "")
  )
