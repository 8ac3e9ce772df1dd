"""Ablations: train and evaluate every config x override x seed cell of a sweep, into one results table.

  python experiments/ablate.py --configs=configs/cgan.py,configs/cwgan_gp.py --seeds=0,1 \
    --sweep=ema_decay=0,0.999 --sweep=generator_optimizer.learning_rate=1e-4,2e-4 --set=num_epochs=10
  python experiments/ablate.py ... --dry_run      # list the cells and which are done; train nothing

The cells are the product of --configs, every --sweep=field=v1,v2,... (values: Python literals, e.g.
1e-4,2e-4 or (8,8,4),(16,16,8), else comma-separated strings; dotted fields reach into sub-configs) and
--seeds; each --set=field=value applies to every cell. A cell is train.train_and_evaluate(config,
<out_dir>/runs/<cell id>) with eval_at_end=True, its metrics that run's eval.json. Every config file, field
and value is checked before anything trains.

Resumable: rerun the same command. Cells whose eval.json is at the config's last step are skipped; an
interrupted cell resumes from its checkpoint; a workdir trained under other settings is an error, never
reused. A diverged cell is a result (status 'diverged', no metrics), not the end of the sweep. A finished
cell's wall time (training + evaluation) and hardware go to <workdir>/ablate_cell.json, so reruns report the
original numbers. After every finished cell <out_dir>/results.csv (one row per cell) and results.md (the
command, mean ± std over seeds per config x overrides, the cells) are rewritten atomically.
Default --out_dir: experiments/results/ablation/<--name>; default --name: config names + swept fields.
"""

import ast
import csv
import dataclasses
import hashlib
import importlib.util
import io
import itertools
import json
import os
import re
import shlex
import sys
import time

import jax
import numpy as np
from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # the config files import `configs.default`

from ganjax import cli, train
from ganjax import config as config_lib
from ganjax.data import mnist
from ganjax.errors import ConfigError, TrainingDiverged, WorkdirError
from ganjax.eval import sample_quality

_CONFIGS = flags.DEFINE_list("configs", ["configs/cgan.py"], "Config files (get_config()), comma-separated.")
_SWEEP = flags.DEFINE_multi_string("sweep", [], "field=v1,v2,...: one axis of the sweep (repeatable).")
_SET = flags.DEFINE_multi_string("set", [], "field=value: a fixed override of every cell (repeatable).")
_SEEDS = flags.DEFINE_list("seeds", ["0"], "config.seed values: the cells repeated per seed.")
_OUT_DIR = flags.DEFINE_string("out_dir", "", "Output directory (default experiments/results/ablation/<name>).")
_NAME = flags.DEFINE_string("name", "", "Name of the ablation (default: config names and swept fields).")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Only list the cells and which are done.")

CELL_FILE = "ablate_cell.json"  # in each cell's workdir: wall time and hardware of the run that finished it
METRICS = ("fid", "classifier_score", "precision", "recall", "min_class_share", "label_agreement", "cas")
# Fields a resumed workdir may differ in: where the data is, how long to train (the step check covers it), and
# logging/checkpoint cadence. Any other difference would mix two experiments under one cell id.
RESUMABLE_FIELDS = ("data_dir", "mnist_idx_dir", "download", "mnist_url", "num_epochs", "num_train_steps")
RESUMABLE_FIELDS += ("log_every_steps", "checkpoint_every_steps", "keep_checkpoints")


@dataclasses.dataclass(frozen=True)
class Cell:
  """One run of the sweep: which config, with which swept values, under which seed."""

  config_name: str
  swept: tuple  # ((field, value), ...) in --sweep order
  seed: int
  config: object  # ml_collections.ConfigDict, with every override applied
  id: str  # the workdir's name: config name, swept values and seed, made safe for file names
  workdir: str


def parse_value(text: str):
  """A Python literal (1e-4, (8, 8, 4), False), else the text itself as a string."""
  try:
    return ast.literal_eval(text.strip())
  except (ValueError, SyntaxError):
    return text.strip()


def parse_assignment(spec: str, flag: str, many: bool) -> tuple[str, list]:
  """'field=v1,v2' -> ('field', [v1, v2]) (--set: one value, all of the text); ConfigError if malformed.
  Values are one Python literal list if they parse as one ('(8, 8, 4),(16, 16, 8)' keeps its tuples)."""
  field, sep, text = spec.partition("=")
  values = parse_value(f"[{text}]") if many else [parse_value(text)] if text.strip() else []
  if isinstance(values, str):  # not one literal list: 'adam,sgd'
    texts = text.split(",")
    values = [parse_value(t) for t in texts] if all(t.strip() for t in texts) else []
  if not sep or not values or not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", field.strip()):
    example = "field=v1,v2,..." if many else "field=value"
    raise ConfigError(f"--{flag}={spec!r} is malformed; expected {example}, e.g. --{flag}=ema_decay=0.999")
  if field.strip() in ("seed", "eval_at_end"):
    raise ConfigError(f"--{flag}={spec!r}: {field.strip()} is set by the runner (use --seeds)")
  return field.strip(), values


def load_config(path: str):
  """(name, ConfigDict) of a config file, found from the working directory or the repository root."""
  found = next((p for p in (path, os.path.join(ROOT, path)) if os.path.isfile(p)), None)
  if found is None or not path.endswith(".py"):
    raise ConfigError(f"--configs: no config file {path!r} (a .py file with get_config(), e.g. configs/cgan.py)")
  name = os.path.splitext(os.path.basename(found))[0]
  spec = importlib.util.spec_from_file_location(f"ablate_config_{name}", found)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise ConfigError(f"--configs: {path!r} defines no get_config()")
  return name, module.get_config()


def set_field(config, field: str, value, where: str) -> None:
  """config.<field> = value; the locked ConfigDict rejects unknown fields and wrong types, named here."""
  *parents, leaf = field.split(".")
  config.lock()
  try:
    node = config
    for parent in parents:
      node = node[parent]
    node[leaf] = value
  except (KeyError, AttributeError, TypeError) as e:
    message = str(e.args[0]) if e.args else str(e)
    hint = message[message.find("Did you mean") :] if "Did you mean" in message else message.split("Other fields")[0]
    raise ConfigError(f"{where}: cannot set {field}={value!r}: {hint.strip()}") from e
  finally:
    config.unlock()


def slug(text: str) -> str:
  """A file-name-safe form of text; a short hash keeps lossy or shortened forms unique."""
  safe = re.sub(r"[^A-Za-z0-9._=+-]", "_", text)
  if safe != text or len(safe) > 150:
    safe = f"{safe[:140]}~{hashlib.sha1(text.encode()).hexdigest()[:6]}"
  return safe


def plan_cells(config_paths, sweeps, sets, seeds, out_dir: str) -> list[Cell]:
  """Every cell, its config overridden and validated: all errors surface before the first cell trains."""
  axes = [parse_assignment(s, "sweep", many=True) for s in sweeps]
  fixed = [parse_assignment(s, "set", many=False) for s in sets]
  fields = [f for f, _ in axes] + [f for f, _ in fixed]
  if len(set(fields)) < len(fields):
    raise ConfigError(f"a field is given twice in --sweep/--set: {min(f for f in fields if fields.count(f) > 1)}")
  try:
    seeds = [int(s) for s in seeds]
  except ValueError as e:
    raise ConfigError(f"--seeds={','.join(seeds)}: seeds are integers") from e
  cells = []
  for path in config_paths:
    name, base = load_config(path)
    for values in itertools.product(*[vs for _, vs in axes]):
      swept = tuple((f, v) for (f, _), v in zip(axes, values))
      for seed in seeds:
        config = base.copy_and_resolve_references()
        for field, (value,) in fixed:
          set_field(config, field, value, f"--set={field} ({path})")
        for field, value in swept:
          set_field(config, field, value, f"--sweep={field} ({path})")
        config.seed, config.eval_at_end = seed, True
        config_lib.validate(config)
        cell_id = slug("-".join([name, *(f"{f}={v}" for f, v in swept), f"s{seed}"]))
        cells.append(Cell(name, swept, seed, config, cell_id, os.path.join(out_dir, "runs", cell_id)))
  duplicates = sorted({c.id for c in cells if [d.id for d in cells].count(c.id) > 1})
  if duplicates:
    raise ConfigError(f"cell {duplicates[0]!r} appears twice: a config, sweep value or seed is repeated")
  return cells


def total_steps(config) -> int:
  """The generator steps the cell trains for (data is read only when the length is given in epochs)."""
  if config.num_train_steps > 0:
    return config.num_train_steps
  return config_lib.total_train_steps(config, len(mnist.load_split(config, "train")[1]))


def read_json(path: str) -> dict:
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return json.load(f)


def check_workdir(cell: Cell) -> None:
  """A workdir that trained under other settings must not be resumed or reported as this cell."""
  old = read_json(os.path.join(cell.workdir, "config.json"))
  new = json.loads(cell.config.to_json_best_effort())
  for field in sorted(set(old) | set(new)):
    if old and field not in RESUMABLE_FIELDS and old.get(field) != new.get(field):
      raise WorkdirError(
        f"cell {cell.id}: its workdir {cell.workdir} was trained with {field}={old.get(field)!r}, this sweep "
        f"asks for {new.get(field)!r}; use another --name/--out_dir or delete that workdir"
      )


def finished(cell: Cell) -> dict | None:
  """eval.json if the run reached its last step; the ablate_cell.json of a run that diverged; else None."""
  steps = total_steps(cell.config)
  result = sample_quality.read_json(cell.workdir)
  if result is not None and result.get("step") == steps:
    return result
  record = read_json(os.path.join(cell.workdir, CELL_FILE))
  return record if record.get("diverged") and record.get("total_steps") == steps else None


def run_cell(cell: Cell) -> None:
  """Train and evaluate (or resume) the cell; its wall time and hardware go to ablate_cell.json."""
  checkpoints = os.path.join(cell.workdir, "checkpoints")
  steps = [int(n) for n in (os.listdir(checkpoints) if os.path.isdir(checkpoints) else []) if n.isdigit()]
  # resumed_from_step > 0: the wall time misses an interrupted attempt, but includes a finished shorter run
  # that this one extends (same cell, larger num_epochs), so an extended cell reports its whole training.
  record = {"total_steps": total_steps(cell.config), "resumed_from_step": max(steps, default=0), "diverged": ""}
  earlier = read_json(os.path.join(cell.workdir, CELL_FILE))
  extends = earlier.get("total_steps") == record["resumed_from_step"] and not earlier.get("diverged")
  earlier_wall_s = earlier.get("wall_s", 0.0) if extends and record["resumed_from_step"] else 0.0
  for split in ("train", "test"):  # decoded once per process and cached: not part of a cell's time
    mnist.load_split(cell.config, split)
  start = time.perf_counter()
  try:
    train.train_and_evaluate(cell.config, cell.workdir)
  except TrainingDiverged as e:  # a result of the ablation (e.g. too high a learning rate), not the sweep's end
    record["diverged"] = str(e)
  kind, count, cpus = jax.devices()[0].device_kind, cell.config.num_devices or jax.device_count(), os.cpu_count()
  record |= {"wall_s": round(time.perf_counter() - start + earlier_wall_s, 1), "device_kind": kind}
  record |= {"device_count": count, "extended_from_step": record["resumed_from_step"] if earlier_wall_s else 0}
  record |= {"cpu_count": cpus, "hardware": f"{count} x {kind}, {cpus} CPUs"}
  if not record["diverged"] and (sample_quality.read_json(cell.workdir) or {}).get("step") != record["total_steps"]:
    raise WorkdirError(f"cell {cell.id}: {cell.workdir}/eval.json is not at step {record['total_steps']}")
  os.makedirs(cell.workdir, exist_ok=True)
  write_atomic(os.path.join(cell.workdir, CELL_FILE), json.dumps(record, indent=2) + "\n")


def write_atomic(path: str, text: str) -> None:
  """A crash mid-write leaves the previous file, never half of one."""
  with open(path + ".tmp", "w") as f:
    f.write(text)
  os.replace(path + ".tmp", path)


def result_row(cell: Cell, result: dict) -> dict:
  """One results.csv row: the cell's settings, eval.json's metrics and ablate_cell.json's cost."""
  record = read_json(os.path.join(cell.workdir, CELL_FILE))
  row = {"config": cell.config_name, **{f: v for f, v in cell.swept}, "seed": cell.seed}
  row["status"] = "diverged" if result.get("diverged") else "finished"
  row |= {"epochs": result.get("epoch"), "steps": result.get("step")}
  row |= {m: result.get(m) for m in METRICS}
  row |= {k: record.get(k) for k in ("wall_s", "hardware")}
  row |= {"evaluator_sha256": result.get("evaluator_sha256"), "workdir": cell.workdir}
  return row | {"resumed_from_step": record.get("resumed_from_step")}


def show(value, spec: str = ".4g") -> str:
  if value is None:
    return "–"
  return format(value, spec) if isinstance(value, float) else str(value)


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
  return ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"] + ["| " + " | ".join(r) + " |" for r in rows]


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
  return markdown_table(["config", *fields, "seeds", *metrics, "wall s"], lines)


def write_results(out_dir: str, cells: list[Cell], rows: list[dict], command: str) -> None:
  """results.csv and results.md of the finished cells (rows), both replaced atomically."""
  fields = [f for f, _ in cells[0].swept]
  columns = ["config", *fields, "seed", "status", "epochs", "steps"]
  buffer = io.StringIO()
  extra = ["wall_s", "hardware", "evaluator_sha256", "workdir", "resumed_from_step"]
  writer = csv.DictWriter(buffer, [*columns, *METRICS, *extra], lineterminator="\n")
  writer.writeheader()
  writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
  write_atomic(os.path.join(out_dir, "results.csv"), buffer.getvalue())
  metrics = [m for m in METRICS if any(r[m] is not None for r in rows)]
  per_cell = [[*(show(r[k]) for k in [*columns, *metrics]), show(r["wall_s"], ".0f")] for r in rows]
  hardware = "; ".join(sorted({r["hardware"] for r in rows if r["hardware"]})) or "–"
  evaluators = ", ".join(sorted({r["evaluator_sha256"][:12] for r in rows if r["evaluator_sha256"]})) or "–"
  resumed = " (resumed cells: the last attempt only)" if any(r["resumed_from_step"] for r in rows) else ""
  text = [
    f"# Ablation {os.path.basename(out_dir)}: {len(rows)} of {len(cells)} cells finished",
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
    *markdown_table([*columns, *metrics, "wall s"], per_cell),
  ]
  write_atomic(os.path.join(out_dir, "results.md"), "\n".join(text) + "\n")


def ablate(config_paths, sweeps, sets, seeds, out_dir: str = "", name: str = "", dry_run=False, command="") -> list:
  """Plan, validate, then train every cell not yet done; returns the results.csv rows of the finished cells."""
  if not name:
    names = [os.path.splitext(os.path.basename(p))[0] for p in config_paths]
    name = slug("+".join(names) + "".join("-" + s.partition("=")[0] for s in sweeps))
  out_dir = out_dir or os.path.join(ROOT, "experiments", "results", "ablation", name)
  cells = plan_cells(config_paths, sweeps, sets, seeds, out_dir)
  for cell in cells:
    check_workdir(cell)
  done = {cell.id: finished(cell) for cell in cells}
  print(f"{len(cells)} cells, {sum(r is not None for r in done.values())} done, in {out_dir}", flush=True)
  if dry_run:
    for cell in cells:
      status = "pending" if not done[cell.id] else "diverged" if done[cell.id].get("diverged") else "done"
      print(f"  {status:8} {cell.id}", flush=True)
    return []
  os.makedirs(out_dir, exist_ok=True)

  def report() -> list[dict]:
    rows = [result_row(c, done[c.id]) for c in cells if done[c.id]]
    write_results(out_dir, cells, rows, command)
    return rows

  for number, cell in enumerate(cells, 1):
    if done[cell.id]:
      print(f"cell {number}/{len(cells)} {cell.id}: skipped (done)", flush=True)
      continue
    print(f"cell {number}/{len(cells)} {cell.id}: training", flush=True)
    run_cell(cell)
    done[cell.id] = finished(cell)
    report()  # after every cell: a crash leaves the table of the cells finished so far
    outcome = done[cell.id].get("diverged") or sample_quality.summary_line(done[cell.id])
    print(f"cell {number}/{len(cells)} {cell.id}: {outcome}", flush=True)
  rows = report()  # (again) for a rerun with every cell done: the same table under this command
  print(f"wrote {out_dir}/results.{{md,csv}}", flush=True)
  return rows


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  command = "python experiments/ablate.py " + shlex.join(sys.argv[1:])
  args = (_CONFIGS.value, _SWEEP.value, _SET.value, _SEEDS.value, _OUT_DIR.value, _NAME.value, _DRY_RUN.value)
  cli.run(ablate, *args, command=command)


if __name__ == "__main__":
  app.run(main)
