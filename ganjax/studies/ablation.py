"""The ablation runner: train and evaluate every config x override x seed cell of a sweep, into one table.

A cell is train.train_and_evaluate(config, <out_dir>/runs/<cell id>) with eval_at_end=True; its metrics are
that run's eval.json. Every config file, field and value is checked before anything trains. Resumable: cells
whose eval.json is at the config's last step are skipped, an interrupted cell resumes from its checkpoint,
and a workdir trained under other settings is an error, never reused. A diverged cell is a result, not the
end of the sweep. experiments/ablate.py is the command line; its docstring shows the flags.
"""

import dataclasses
import itertools
import json
import os
import time

import ml_collections

from ganjax import config as config_lib
from ganjax import files, train
from ganjax import saved_run
from ganjax.data import mnist
from ganjax.errors import ConfigError, TrainingDiverged, WorkdirError
from ganjax.eval import sample_quality
from ganjax.studies import ablation_report, sweeps
from ganjax.studies import cells as cells_lib

CELL_FILE = "ablate_cell.json"  # in each cell's workdir: wall time and hardware of the run that finished it
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
  config: ml_collections.ConfigDict  # with every override applied
  id: str  # the workdir's name: config name, swept values and seed, made safe for file names
  workdir: str


def plan_cells(
  config_paths: list[str], sweep_specs: list[str], sets: list[str], seeds: list[str], out_dir: str
) -> list[Cell]:
  """Every cell, its config overridden and validated: all errors surface before the first cell trains."""
  axes = [sweeps.parse_assignment(s, "sweep", many=True) for s in sweep_specs]
  fixed = [sweeps.parse_assignment(s, "set", many=False) for s in sets]
  fields = [f for f, _ in axes] + [f for f, _ in fixed]
  if len(set(fields)) < len(fields):
    raise ConfigError(f"a field is given twice in --sweep/--set: {min(f for f in fields if fields.count(f) > 1)}")
  try:
    seeds = [int(s) for s in seeds]
  except ValueError as e:
    raise ConfigError(f"--seeds={','.join(seeds)}: seeds are integers") from e
  cells = []
  for path in config_paths:
    name, base = sweeps.load_config(path)
    for values in itertools.product(*[vs for _, vs in axes]):
      swept = tuple((f, v) for (f, _), v in zip(axes, values))
      for seed in seeds:
        config = base.copy_and_resolve_references()
        for field, (value,) in fixed:
          sweeps.set_field(config, field, value, f"--set={field} ({path})")
        for field, value in swept:
          sweeps.set_field(config, field, value, f"--sweep={field} ({path})")
        config.seed, config.eval_at_end = seed, True
        config_lib.validate(config)
        cell_id = sweeps.slug("-".join([name, *(f"{f}={v}" for f, v in swept), f"s{seed}"]))
        cells.append(Cell(name, swept, seed, config, cell_id, os.path.join(out_dir, "runs", cell_id)))
  duplicates = sorted({c.id for c in cells if [d.id for d in cells].count(c.id) > 1})
  if duplicates:
    raise ConfigError(f"cell {duplicates[0]!r} appears twice: a config, sweep value or seed is repeated")
  return cells


def total_steps(config: ml_collections.ConfigDict) -> int:
  """The generator steps the cell trains for (data is read only when the length is given in epochs)."""
  if config.num_train_steps > 0:
    return config.num_train_steps
  return config_lib.total_train_steps(config, len(mnist.load_split(config, "train")[1]))


def read_json(path: str) -> dict:
  """The JSON object in path, {} if there is no such file."""
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return json.load(f)


def check_workdir(cell: Cell) -> None:
  """A workdir that trained under other settings must not be resumed or reported as this cell.

  The saved config is read in today's schema (saved_run.read_saved_config), so a workdir written before a field
  existed resumes when the sweep asks for the value that reproduces it.
  """
  saved = saved_run.read_saved_config(cell.workdir)
  if saved is None:
    return
  old = json.loads(saved.to_json_best_effort())
  new = json.loads(cell.config.to_json_best_effort())
  for field in sorted(set(old) | set(new)):
    if field not in RESUMABLE_FIELDS and old.get(field) != new.get(field):
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
  machine = cells_lib.hardware()
  kind, count, cpus = machine["device_kind"], cell.config.num_devices or machine["device_count"], machine["cpu_count"]
  record |= {"wall_s": round(time.perf_counter() - start + earlier_wall_s, 1), "device_kind": kind}
  record |= {"device_count": count, "extended_from_step": record["resumed_from_step"] if earlier_wall_s else 0}
  record |= {"cpu_count": cpus, "hardware": f"{count} x {kind}, {cpus} CPUs ({machine['cpu']})"}
  if not record["diverged"] and (sample_quality.read_json(cell.workdir) or {}).get("step") != record["total_steps"]:
    raise WorkdirError(f"cell {cell.id}: {cell.workdir}/eval.json is not at step {record['total_steps']}")
  os.makedirs(cell.workdir, exist_ok=True)
  files.atomic_write(os.path.join(cell.workdir, CELL_FILE), json.dumps(record, indent=2) + "\n")


def result_row(cell: Cell, result: dict) -> dict:
  """One results.csv row: the cell's settings, eval.json's metrics and ablate_cell.json's cost."""
  record = read_json(os.path.join(cell.workdir, CELL_FILE))
  row = {"config": cell.config_name, **{f: v for f, v in cell.swept}, "seed": cell.seed}
  row["status"] = "diverged" if result.get("diverged") else "finished"
  row |= {"epochs": result.get("epoch"), "steps": result.get("step")}
  row |= {m: result.get(m) for m in ablation_report.METRICS}
  row |= {k: record.get(k) for k in ("wall_s", "hardware")}
  row |= {"evaluator_sha256": result.get("evaluator_sha256"), "workdir": cell.workdir}
  return row | {"resumed_from_step": record.get("resumed_from_step")}


def ablate(
  config_paths: list[str],
  sweep_specs: list[str],
  sets: list[str],
  seeds: list[str],
  out_dir: str,
  dry_run: bool = False,
  command: str = "",
) -> list[dict]:
  """Plan, validate, then train every cell not yet done; returns the results.csv rows of the finished cells.

  sweep_specs: 'field=v1,v2,...' axes; sets: 'field=value' overrides of every cell; command: the line that
  results.md quotes. After every finished cell, out_dir/results.{csv,md} are rewritten.
  """
  cells = plan_cells(config_paths, sweep_specs, sets, seeds, out_dir)
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
    ablation_report.write_results(out_dir, [f for f, _ in cells[0].swept], len(cells), rows, command)
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
