"""The benchmark's FLOP model and tiny end-to-end benchmark and scaling runs."""

import json
import subprocess
import sys

import pytest
from conftest import REPO

# experiments/benchmark.py's analytic_flops of configs/<name>.py, printed as JSON. Run in a fresh interpreter:
# the scripts define absl flags when imported, so the test process imports none of them.
ANALYTIC_FLOPS = """
import json, runpy
from configs import gan, wgan, wgan_gp
analytic_flops = runpy.run_path("experiments/benchmark.py")["analytic_flops"]
configs = {"gan": gan, "wgan": wgan, "wgan_gp": wgan_gp}
print(json.dumps({name: analytic_flops(c.get_config())["per_generator_step"] for name, c in configs.items()}))
"""


@pytest.fixture(scope="module")
def analytic_flops() -> dict[str, float]:
  command = [sys.executable, "-c", ANALYTIC_FLOPS]
  output = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert output.returncode == 0, output.stderr[-2000:]
  return json.loads(output.stdout.splitlines()[-1])


@pytest.mark.parametrize("config_name, gflop", [("gan", 147.4), ("wgan", 379.4), ("wgan_gp", 485.4)])
def test_analytic_flops_match_the_reference_trainers_count(analytic_flops, config_name, gflop):
  # ../shared/peers/README.md: 147.4, 379.4 and 485.4 GFLOP per generator step at batch 256.
  assert round(analytic_flops[config_name] / 1e9, 1) == gflop


@pytest.mark.slow
def test_benchmark_measures_ganjax_and_writes_a_table_and_json_lines(tmp_path):
  results = tmp_path / "bench.jsonl"
  command = [sys.executable, "experiments/benchmark.py", "--losses=gan", "--rounds=1", "--steps=3", "--warmup=1"]
  command += ["--batch=16", f"--json={results}"]
  output = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert output.returncode == 0, output.stderr[-2000:]
  assert "| gan | ganjax |" in output.stdout
  (record,) = [json.loads(line) for line in results.read_text().splitlines()]
  assert record["framework"] == "ganjax" and record["loss"] == "gan" and record["timed_steps"] == 2
  assert record["gen_steps_per_s"] > 0 and record["peak_rss_mb"] > 100
  assert record["real_images_per_s"] == pytest.approx(16 * record["gen_steps_per_s"])
  assert record["conv_impl"] == "hybrid"  # 'auto' on CPU


@pytest.mark.slow
def test_benchmark_measures_a_tuned_recipe_with_ganjax_only(tmp_path):
  # The peers have no class heads or self-conditioning: --frameworks=tf is skipped for a tuned config (no TF venv
  # needed), and the recipe's own step is timed.
  results = tmp_path / "bench.jsonl"
  command = [sys.executable, "experiments/benchmark.py", "--losses=cwgan_gp_tuned", "--frameworks=ganjax,tf"]
  command += ["--rounds=1", "--steps=3", "--warmup=1", "--batch=16", f"--json={results}"]
  command += ["--tf_python=/nonexistent/python"]
  output = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert output.returncode == 0, output.stderr[-2000:]
  (record,) = [json.loads(line) for line in results.read_text().splitlines()]
  assert (record["framework"], record["loss"], record["timed_steps"]) == ("ganjax", "cwgan_gp_tuned", 2)
  assert record["real_images_per_s"] == pytest.approx(16 * record["gen_steps_per_s"])  # n_critic 1


def test_benchmark_names_an_unknown_config_and_what_is_allowed():
  command = [sys.executable, "experiments/benchmark.py", "--losses=wgan_tunned"]
  output = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert output.returncode != 0
  assert "--losses: unknown 'wgan_tunned'; allowed: cgan, cgan_tuned, cwgan_gp," in output.stderr


@pytest.mark.slow
def test_scaling_sweeps_batch_and_device_count_and_writes_table_and_plot(tmp_path):
  command = [sys.executable, "experiments/scaling.py", "--losses=wgan", "--batches=8,16", "--cpu_devices=2"]
  command += ["--batch=16", "--steps=2", "--warmup=1", f"--out={tmp_path}"]
  output = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert output.returncode == 0, output.stderr[-2000:]
  rows = [json.loads(line) for line in (tmp_path / "scaling.jsonl").read_text().splitlines()]
  assert [(r["sweep"], r["batch"], r["devices"]) for r in rows] == [
    ("batch", 8, 1),
    ("batch", 16, 1),
    ("devices", 16, 2),
  ]
  assert rows[2]["device"].startswith("2 x")  # the worker really saw two devices
  for row in rows:  # an epoch is 60000 // batch real batches, 5 per wgan generator step
    assert row["s_per_epoch"] == pytest.approx(60000 // row["batch"] / 5 / row["gen_steps_per_s"])
  assert (tmp_path / "scaling.png").stat().st_size > 1000
  assert "| wgan | devices | 16 | 2 |" in (tmp_path / "scaling.md").read_text()


def _write_grid(workdir, epoch: int, value: int) -> None:
  import numpy as np

  from ganjax import images

  images.save_grid(str(workdir / "samples" / f"epoch_{epoch:03d}.png"), np.full((4, 28, 28, 1), value, np.uint8))


def test_paper_figures_puts_each_runs_grids_side_by_side(tmp_path):
  import matplotlib.pyplot as plt

  for run, value in (("gan", 40), ("wgan", 150)):
    for epoch in (10, 60):
      _write_grid(tmp_path / run, epoch, value + epoch)
  out = tmp_path / "figure.png"
  command = [sys.executable, "experiments/paper_figures.py", f"--runs=gan={tmp_path / 'gan'},wgan={tmp_path / 'wgan'}"]
  output = subprocess.run(
    command + [f"--out={out}"], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
  )
  assert output.returncode == 0, output.stderr[-2000:]
  figure = plt.imread(str(out))
  # Two rows (runs) by two columns (epochs): the four grids' distinct grey levels all appear in the figure.
  levels = {round(float(v) * 255) for v in figure[..., 0].ravel()}
  assert {40 + 10, 40 + 60, 150 + 10, 150 + 60} <= levels


def test_paper_figures_names_a_missing_grid_and_writes_nothing(tmp_path):
  _write_grid(tmp_path / "gan", 10, 50)
  out = tmp_path / "figure.png"
  command = [sys.executable, "experiments/paper_figures.py", f"--runs=gan={tmp_path / 'gan'}", f"--out={out}"]
  output = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert output.returncode == 1
  assert output.stderr.strip().splitlines()[-1].startswith("error: no sample grid at ")
  assert "epoch_060.png" in output.stderr and not out.exists()
