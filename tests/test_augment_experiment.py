"""experiments/augment.py end to end (--quick_test): every cell, the table, the plot, and resuming."""

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# (regime, treatment) of every cell at one N and seed: real-only cells are shared by both regimes.
EXPECTED_CELLS = [
  ("none", "real"),
  ("none", "classic"),
  ("a", "gan"),
  ("a", "classic+gan"),
  ("b", "gan"),
  ("b", "classic+gan"),
]


def run_augment(out_dir, data_dir) -> subprocess.CompletedProcess:
  command = [sys.executable, "experiments/augment.py", "--quick_test", f"--out_dir={out_dir}"]
  env = {**os.environ, "TFDS_DATA_DIR": data_dir}
  output = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
  assert output.returncode == 0, output.stderr[-3000:]
  return output


def test_quick_test_writes_every_cell_a_table_and_a_plot_and_resumes(tmp_path, mnist_data_dir):
  first = run_augment(tmp_path, mnist_data_dir)
  rows = [json.loads(line) for line in (tmp_path / "augment.jsonl").read_text().splitlines()]
  assert [(r["regime"], r["treatment"]) for r in rows] == EXPECTED_CELLS
  for row in rows:
    assert row["n_per_class"] == 10 and row["seed"] == 0 and row["num_real"] == 100
    assert 0.0 <= row["accuracy"] <= 1.0
    assert row["num_synthetic"] == (0 if row["regime"] == "none" else 100)  # ratio 1, 10 per class
  assert first.stdout.count("training cGAN") == 2  # one small-data cGAN (a), one full-data cGAN (b)
  assert os.path.exists(tmp_path / "gans" / "a_N10_s0" / "checkpoints")
  table = (tmp_path / "augment.md").read_text()
  assert "| N / class | real | real + classic | + GAN (a) |" in table
  (row_10,) = [line for line in table.splitlines() if line.startswith("| 10 |")]
  assert row_10.count("±") == 6 and row_10.split("|")[-3].strip() == "1"  # six means, one seed
  assert (tmp_path / "augment.png").stat().st_size > 5000

  # Rerun after losing the last cell: only that cell is computed again, from the cGAN already trained.
  lines = (tmp_path / "augment.jsonl").read_text().splitlines()
  (tmp_path / "augment.jsonl").write_text("\n".join(lines[:-1]) + "\n")
  second = run_augment(tmp_path, mnist_data_dir)
  assert "training cGAN" not in second.stdout
  assert second.stdout.count(": accuracy ") == 1 and "+ classic + GAN (b): accuracy" in second.stdout
  rerun_rows = [json.loads(line) for line in (tmp_path / "augment.jsonl").read_text().splitlines()]
  assert [(r["regime"], r["treatment"]) for r in rerun_rows] == EXPECTED_CELLS
  assert rerun_rows[-1]["accuracy"] == rows[-1]["accuracy"]  # same seed, same machine: the same classifier
