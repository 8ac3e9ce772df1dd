"""ganjax.studies.ablation: a 2-cell sweep end to end, resuming without retraining, and its up-front errors."""

import csv
import glob
import json
import math
import os
import subprocess
import sys

import pytest
from conftest import REPO

from ganjax.errors import ConfigError, TrainingDiverged, WorkdirError
from ganjax.studies import ablation, sweeps

SWEEP = "generator_optimizer.learning_rate=1e-4,3e-4"


def tiny_sets(data_dir: str) -> list[str]:
  # One device and 100 evaluation samples: the test's cost is two compilations and the test-set reference.
  return [f"data_dir={data_dir}", "download=False", "num_train_steps=2", "eval_num_samples=100", "num_devices=1"]


def outputs(out_dir) -> dict[str, float]:
  """mtime of every file a cell writes when it trains or evaluates."""
  paths = glob.glob(os.path.join(out_dir, "runs", "*", "checkpoints", "**", "*"), recursive=True)
  paths += glob.glob(os.path.join(out_dir, "runs", "*", "*.json"))
  return {p: os.path.getmtime(p) for p in paths if os.path.isfile(p)}


@pytest.mark.slow
def test_sweep_trains_each_cell_once_writes_both_tables_and_a_rerun_skips_every_cell(tmp_path, mnist_data_dir, capsys):
  args = (["configs/tiny.py"], [SWEEP], tiny_sets(mnist_data_dir), ["0"], str(tmp_path))
  command = "python experiments/ablate.py (test)"
  ablation.ablate(*args, command=command)
  assert capsys.readouterr().out.count(": training") == 2
  with open(tmp_path / "results.csv") as f:
    rows = list(csv.DictReader(f))
  assert [(r["config"], r["generator_optimizer.learning_rate"], r["seed"]) for r in rows] == [
    ("tiny", "0.0001", "0"),
    ("tiny", "0.0003", "0"),
  ]
  for row in rows:
    assert math.isfinite(float(row["fid"])) and 0 <= float(row["precision"]) <= 1
    assert row["steps"] == "2" and float(row["wall_s"]) > 0 and row["hardware"].startswith("1 x ")
    assert len(row["evaluator_sha256"]) == 64 and os.path.exists(os.path.join(row["workdir"], "eval.json"))
  assert row["label_agreement"] == row["cas"] == ""  # unconditional, no CAS
  assert len({r["workdir"] for r in rows}) == 2
  table = (tmp_path / "results.md").read_text()
  assert "2 of 2 cells finished" in table and "`python experiments/ablate.py (test)`" in table
  assert table.count("| tiny | 0.0003 | 1 | ") == 1  # the summary row: config, swept value, 1 seed
  assert table.count("| tiny | 0.0003 | 0 | finished | 0.25 | 2 | ") == 1  # the cell row: seed, status, epochs, steps

  # Rerun the same command: every cell is skipped, no file of a run is rewritten, the tables are the same.
  before, csv_text = outputs(tmp_path), (tmp_path / "results.csv").read_text()
  ablation.ablate(*args, command=command)
  out = capsys.readouterr().out
  assert out.count("skipped (done)") == 2 and ": training" not in out
  assert outputs(tmp_path) == before and len(before) > 6
  assert (tmp_path / "results.csv").read_text() == csv_text and (tmp_path / "results.md").read_text() == table

  ablation.ablate(*args, dry_run=True)
  listing = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
  assert listing == [["done", os.path.basename(r["workdir"])] for r in rows]


@pytest.mark.parametrize(
  "sweep, message",
  [
    ("emma_decay=0,0.9", r'--sweep=emma_decay \(configs/tiny.py\): cannot set .*Did you mean "ema_decay"'),
    ("generator_optimizer.lr=1e-4", r"cannot set generator_optimizer.lr=0.0001"),
    ("ema_decay=0,1.5", r"config.ema_decay=1.5 is not allowed"),
    ("ema_decay", r"--sweep='ema_decay' is malformed; expected field=v1,v2,..."),
    ("ema_decay=0,,1", r"--sweep='ema_decay=0,,1' is malformed"),
    ("seed=1,2", r"seed is set by the runner"),
  ],
)
def test_a_bad_sweep_is_one_clear_error_before_anything_trains(tmp_path, sweep, message):
  with pytest.raises(ConfigError, match=message):
    ablation.ablate(["configs/tiny.py"], [sweep], [], ["0"], out_dir=str(tmp_path))
  assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_a_diverged_cell_is_recorded_as_a_result_and_not_retried(tmp_path, mnist_data_dir, monkeypatch, capsys):
  calls = []

  def diverge(config, workdir):
    calls.append(workdir)
    raise TrainingDiverged("training diverged before step 2: critic_loss=nan")

  monkeypatch.setattr(ablation.train, "train_and_evaluate", diverge)
  args = (["configs/tiny.py"], ["ema_decay=0.5"], tiny_sets(mnist_data_dir), ["0"], str(tmp_path))
  for _ in range(2):
    ablation.ablate(*args, command="ablate")
  assert len(calls) == 1 and "skipped (done)" in capsys.readouterr().out
  with open(tmp_path / "results.csv") as f:
    (row,) = list(csv.DictReader(f))
  assert row["status"] == "diverged" and row["fid"] == "" and float(row["wall_s"]) >= 0
  assert "| tiny | 0.5 | 0 (+1 diverged) |" in (tmp_path / "results.md").read_text()


def test_a_workdir_trained_under_other_settings_is_an_error_not_a_result(tmp_path, mnist_data_dir):
  args = (["configs/tiny.py"], ["ema_decay=0.5"], tiny_sets(mnist_data_dir), ["0"], str(tmp_path))
  (cell,) = ablation.plan_cells(*args)
  config = cell.config.copy_and_resolve_references()
  config.eval_num_samples = 200
  os.makedirs(cell.workdir)
  with open(os.path.join(cell.workdir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort())
  with pytest.raises(WorkdirError, match="was trained with eval_num_samples=200, this sweep asks for 100"):
    ablation.ablate(*args, dry_run=True)


def test_a_workdir_saved_before_a_field_existed_resumes_with_the_value_that_reproduces_it(tmp_path, mnist_data_dir):
  args = (["configs/tiny.py"], ["ema_decay=0.5"], tiny_sets(mnist_data_dir), ["0"], str(tmp_path))
  (cell,) = ablation.plan_cells(*args)
  saved = json.loads(cell.config.to_json_best_effort())
  del saved["learning_rate_decay"], saved["twin_loss_cap"]  # written before these fields existed
  os.makedirs(cell.workdir)
  with open(os.path.join(cell.workdir, "config.json"), "w") as f:
    json.dump(saved, f)
  ablation.check_workdir(cell)  # the defaults reproduce the old run: no error
  saved["ema_decay"] = 0.25
  with open(os.path.join(cell.workdir, "config.json"), "w") as f:
    json.dump(saved, f)
  with pytest.raises(WorkdirError, match="was trained with ema_decay=0.25, this sweep asks for 0.5"):
    ablation.check_workdir(cell)


def test_sweep_values_are_python_literals_or_strings_and_cell_ids_stay_unique_and_safe(tmp_path):
  assert sweeps.parse_assignment("generator_features=(8,8,4),(16,16,8)", "sweep", True)[1] == [(8, 8, 4), (16, 16, 8)]
  assert sweeps.parse_assignment("conv_impl=plain,hybrid", "sweep", True)[1] == ["plain", "hybrid"]
  assert sweeps.parse_assignment("ema_decay=0,0.999", "sweep", True)[1] == [0, 0.999]
  cells = ablation.plan_cells(["configs/tiny.py"], ["mnist_idx_dir=/a/b,/a_b"], [], ["0", "1"], str(tmp_path))
  ids = [cell.id for cell in cells]
  assert len(set(ids)) == 4 and all("/" not in i and i.startswith("tiny-mnist_idx_dir=") for i in ids)
  assert [c.config.mnist_idx_dir for c in cells] == ["/a/b", "/a/b", "/a_b", "/a_b"] and cells[1].config.seed == 1
  assert all(c.config.eval_at_end for c in cells)


@pytest.mark.slow
def test_the_command_line_reports_an_unknown_config_file_in_one_line(tmp_path):
  command = [sys.executable, "experiments/ablate.py", "--configs=configs/nope.py", f"--out_dir={tmp_path}"]
  output = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert output.returncode == 1
  assert output.stderr.strip().splitlines()[-1] == "error: --configs: no config file 'configs/nope.py' " + (
    "(a .py file with get_config(), e.g. configs/cgan.py)"
  )


@pytest.mark.slow
def test_a_longer_rerun_extends_finished_cells_and_their_wall_time_counts_both_parts(tmp_path, mnist_data_dir):
  short = tiny_sets(mnist_data_dir)
  ablation.ablate(["configs/tiny.py"], [], short, ["0"], str(tmp_path), command="short")
  (first,) = glob.glob(str(tmp_path / "runs" / "*" / ablation.CELL_FILE))
  first_wall_s = ablation.read_json(first)["wall_s"]
  longer = [s if s != "num_train_steps=2" else "num_train_steps=4" for s in short]
  ablation.ablate(["configs/tiny.py"], [], longer, ["0"], str(tmp_path), command="longer")
  record = ablation.read_json(first)
  assert record["total_steps"] == 4 and record["resumed_from_step"] == 2 and record["extended_from_step"] == 2
  assert record["wall_s"] > first_wall_s
  with open(tmp_path / "results.csv") as f:
    (row,) = list(csv.DictReader(f))
  assert row["steps"] == "4" and float(row["wall_s"]) == record["wall_s"]
