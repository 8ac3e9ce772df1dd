"""ganjax.studies.cells: the benchmarks' JSON lines (a torn last line dropped), the resumable cell runner, the
hardware line and the markdown page."""

import json
import logging
import os
import shutil

import pytest

from ganjax import files
from ganjax.studies import cells

KEY_FIELDS = ("n_per_class", "seed", "treatment")


def write_rows(path, rows, tail=""):
  path.write_text("".join(json.dumps(r) + "\n" for r in rows) + tail)


def test_a_torn_last_line_is_dropped_and_logged(tmp_path, caplog):
  path = tmp_path / "cells.jsonl"
  rows = [{"n_per_class": 10, "seed": s, "treatment": "real", "accuracy": 0.5} for s in range(2)]
  write_rows(path, rows, tail='{"n_per_class": 10, "seed": 2, "trea')  # killed while appending
  with caplog.at_level(logging.WARNING):
    assert files.read_json_lines(str(path)) == rows
  assert "cut short" in caplog.text
  assert files.read_json_lines(str(tmp_path / "missing.jsonl")) == []


def test_a_bad_line_before_the_last_is_an_error_not_dropped(tmp_path):
  path = tmp_path / "cells.jsonl"
  path.write_text('{"seed": 0}\nnot json\n{"seed": 1}\n')
  with pytest.raises(ValueError, match=r"cells.jsonl:2 is not a JSON line"):
    files.read_json_lines(str(path))


def test_the_runner_skips_the_cells_done_and_appends_after_a_torn_line(tmp_path):
  path = tmp_path / "cells.jsonl"
  done = [{"n_per_class": 10, "seed": 0, "treatment": "real", "accuracy": 0.5, "wall_s": 1.0, "device": "cpu"}]
  write_rows(path, done, tail='{"n_per_class": 10, "seed": 1, "tre')
  runner = cells.CellRunner(str(path), KEY_FIELDS)
  keys = [(10, seed, "real") for seed in range(3)]
  assert runner.todo(keys) == keys[1:]  # the torn cell is not done: it runs again
  row = runner.record(keys[1], {"accuracy": 0.75}, wall_s=2.04)
  assert list(row) == [*KEY_FIELDS, "accuracy", "wall_s", "device"] and row["wall_s"] == 2.0
  assert runner.todo(keys) == keys[2:]
  assert files.read_json_lines(str(path)) == [*done, row]  # the torn line was cut off, not glued to the new row
  assert cells.CellRunner(str(path), KEY_FIELDS).todo(keys) == keys[2:]  # a rerun skips both


def test_a_row_older_than_a_key_field_takes_its_old_default(tmp_path):
  path = tmp_path / "cells.jsonl"
  write_rows(path, [{"n_per_class": 10, "seed": 0}])  # written before "treatment" was a key field
  runner = cells.CellRunner(str(path), KEY_FIELDS, {"treatment": "real"})
  assert runner.todo([(10, 0, "real"), (10, 0, "classic")]) == [(10, 0, "classic")]


def test_the_page_names_the_devices_of_its_rows_and_their_cost(tmp_path):
  rows = [{"device": "TPU v4", "wall_s": 2.4}, {"device": "cpu", "wall_s": 3.0}]
  cost = cells.cost_line(rows, 7.0, "Classifier cells")
  assert cost.startswith("Hardware: TPU v4, cpu (")
  assert cost.endswith("Classifier cells: 5 s in all; this invocation: 7 s.")
  assert cells.markdown_table(["N", "real"], [["10", "0.5"]]) == ["| N | real |", "|---|---|", "| 10 | 0.5 |"]
  cells.write_page(str(tmp_path / "page.md"), "Title", "python x.py", "About.", cost, ["body"])
  assert (tmp_path / "page.md").read_text() == f"# Title\n\n`python x.py`\n\nAbout.\n\n{cost}\n\nbody\n"


def test_the_shipped_results_are_done_cells_under_the_settings_that_wrote_them(tmp_path, monkeypatch):
  """Results written before the shared runner existed resume: their keys are unchanged."""
  from conftest import REPO

  from ganjax.studies import augmentation, few_labels_benchmark

  results = os.path.join(REPO, "experiments", "results")
  settings = augmentation.preset_settings("quick", full_gan_workdir="/work/runs/cwgan_gp_projection")
  keys = [
    augmentation.cell_key(settings, regime, n, treatment, seed)
    for n in settings.per_class_values
    for seed in range(settings.seeds)
    for regime, treatment, _ in settings.columns
  ]
  shutil.copy(os.path.join(results, "augment_quick", "augment.jsonl"), tmp_path / "augment.jsonl")
  runner = cells.CellRunner(str(tmp_path / "augment.jsonl"), augmentation.KEY_FIELDS)
  assert len(keys) == 36 and runner.todo(keys) == []

  monkeypatch.setattr(few_labels_benchmark, "gan_id", lambda settings: "/work/runs/few_gan_s0@1204")
  settings = few_labels_benchmark.Settings(subsets=((10, 1),), strong_steps=3750, gan_workdir="/work/runs/few_gan_s0")
  keys = [few_labels_benchmark.cell_key(settings, 10, 0, treatment) for treatment, _ in settings.treatments]
  shutil.copy(os.path.join(results, "few_labels", "strong_2026-11-30", "few_labels.jsonl"), tmp_path / "few.jsonl")
  old_row_defaults = few_labels_benchmark.OLD_ROW_DEFAULTS  # its rows without a GAN predate strong_steps
  runner = cells.CellRunner(str(tmp_path / "few.jsonl"), few_labels_benchmark.KEY_FIELDS, old_row_defaults)
  assert len(keys) == 7 and runner.todo(keys) == []
