"""ganjax.studies.augmentation: its settings and resume keys, and experiments/augment.py end to end (--quick_test):
every cell, the table, the plot, and resuming."""

import json
import os
import subprocess
import sys

import jax
import pytest
from conftest import REPO

from configs import tiny
from ganjax.studies import augmentation, augmentation_report
from ganjax.studies import augmentation_gans as gans

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


def test_a_preset_sets_only_the_settings_not_given_explicitly():
  settings = augmentation.preset_settings("quick_test", seeds=2, out_dir="/tmp/x")
  assert settings.seeds == 2 and settings.out_dir == "/tmp/x"
  assert settings.n_per_class == ("10",) and settings.classifier_steps == 20 and settings.full_gan_steps == 3
  assert settings.gan_overrides["batch_size"] == 16
  assert augmentation.preset_settings("", n_per_class=["10", "all"]).per_class_values == [10, 0]
  assert augmentation.preset_settings("") == augmentation.Settings()


def test_the_table_reads_the_cells_of_the_current_settings_and_n_all_shares_regime_b():
  settings = augmentation.Settings(n_per_class=("10", "all"), seeds=2)
  rows = []
  for per_class in (10, 0):
    for regime, treatment, _ in augmentation.COLUMNS:
      for seed in range(2):
        key = augmentation.cell_key(settings, regime, per_class, treatment, seed)
        rows.append(dict(zip(augmentation.KEY_FIELDS, key)) | {"accuracy": 0.5 + 0.1 * seed, "wall_s": 1.0})
  other = augmentation.cell_key(settings, "none", 10, "real", 0)
  rows.append(dict(zip(augmentation.KEY_FIELDS, other)) | {"classifier_steps": 7, "accuracy": 0.0, "wall_s": 1.0})
  cells = augmentation.current_cells(settings, rows)
  assert all(len(found) == 2 for found in cells.values())  # the classifier_steps=7 leftover is not read
  assert cells["+ GAN (a)", 0] == cells["+ GAN (b)", 0]  # at N = all, regime (a)'s cGAN is regime (b)'s
  mean, std, seeds, wall_s = augmentation_report.summarize(cells)["real", 10]
  assert (round(mean, 6), round(std, 6), seeds, wall_s) == (0.55, round(0.1 / 2**0.5, 6), 2, 1.0)


def test_another_cgan_config_or_diffaugment_names_its_own_cgans_and_cells_and_regimes_select_columns():
  default = augmentation.Settings()
  tuned = augmentation.Settings(gan_config="cwgan_gp_tuned", critic_augment="translation,cutout", regimes=["a"])
  assert augmentation.small_gan_name(default, 10, 3) == "a_N10_s0"  # the names of earlier results are kept
  assert augmentation.small_gan_name(tuned, 10, 3) == "a_N10_s0_cwgan_gp_tuned_da-translation+cutout"
  assert augmentation.gan_id(tuned, "b", 0, 0) == "b_full_s0_cwgan_gp_tuned_da-translation+cutout@470"
  plain_key, tuned_key = (augmentation.cell_key(s, "a", 10, "gan", 0) for s in (default, tuned))
  assert plain_key != tuned_key  # cells of different cGANs never stand in for each other on resume
  # The cells without a GAN are the same cells whatever the cGAN: two invocations share them.
  assert augmentation.cell_key(default, "none", 10, "real", 0) == augmentation.cell_key(tuned, "none", 10, "real", 0)
  assert [c[0] for c in tuned.columns] == ["none", "none", "a", "a"]
  assert augmentation.gan_overrides(tuned) == {"critic_augment": "translation,cutout"}
  assert augmentation.gan_overrides(default) == {}


@pytest.mark.parametrize(
  "flag, message",
  [
    ("--regimes=c", "--regimes=c; allowed: a, b"),
    pytest.param("--gan_config=gan", "--gan_config=gan; allowed: cwgan_gp, cwgan_gp_tuned", marks=pytest.mark.slow),
    pytest.param(
      "--critic_augment=flip", "--critic_augment=flip: 'flip' is not a critic augmentation", marks=pytest.mark.slow
    ),
  ],
)
def test_a_bad_gan_flag_is_named_before_any_cell_runs(tmp_path, flag, message):
  command = [sys.executable, "experiments/augment.py", flag, f"--out_dir={tmp_path}"]
  output = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert output.returncode != 0 and message in output.stderr
  assert not os.listdir(tmp_path)


@pytest.mark.slow
def test_few_labels_is_no_longer_an_augment_flag_and_points_to_its_script(tmp_path):
  command = [sys.executable, "experiments/augment.py", "--few_labels", "--quick_test", f"--out_dir={tmp_path}"]
  output = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert output.returncode != 0 and "python experiments/few_labels.py" in output.stderr
  assert not os.listdir(tmp_path)


def test_a_cgan_batch_is_a_multiple_of_the_devices_and_at_most_its_images():
  config = gans.gan_config(tiny.get_config(), 5, 3, 1, {"batch_size": 256, "critic_features": (4, 8)})
  assert (config.examples_per_class, config.num_train_steps, config.seed) == (5, 3, 1)
  devices = jax.device_count()  # the trainer splits each batch over every device
  assert config.batch_size == 50 // devices * devices and config.critic_features == (4, 8) and not config.eval_at_end


@pytest.mark.slow
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


@pytest.mark.slow
def test_regime_a_alone_with_diffaugment_trains_its_own_cgan_with_the_policy(tmp_path, mnist_data_dir):
  flags = ["--regimes=a", "--critic_augment=translation,cutout"]
  command = [sys.executable, "experiments/augment.py", "--quick_test", f"--out_dir={tmp_path}", *flags]
  env = {**os.environ, "TFDS_DATA_DIR": mnist_data_dir}
  output = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
  assert output.returncode == 0, output.stderr[-3000:]
  rows = [json.loads(line) for line in (tmp_path / "augment.jsonl").read_text().splitlines()]
  assert [(r["regime"], r["treatment"]) for r in rows] == EXPECTED_CELLS[:4]  # no regime (b) cGAN
  (gan_dir,) = os.listdir(tmp_path / "gans")
  assert gan_dir == "a_N10_s0_da-translation+cutout"
  saved = json.loads((tmp_path / "gans" / gan_dir / "config.json").read_text())
  assert saved["critic_augment"] == "translation,cutout"
  # Its report is named after the variant: a default run's augment.md in the same out_dir is left alone.
  assert "with DiffAugment (translation,cutout)" in (tmp_path / "augment_da-translation+cutout.md").read_text()
  assert (tmp_path / "augment_da-translation+cutout.png").exists() and not (tmp_path / "augment.md").exists()
