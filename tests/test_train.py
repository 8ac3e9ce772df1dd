"""End-to-end: the training loop, its outputs, exact resume, crashes, corrupt checkpoints, bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from conftest import REPO

from ganjax import conditioning, metric_writers, saved_run, train
from ganjax.errors import ConfigError, TrainingDiverged, WorkdirError


def assert_states_equal(a, b):
  jax.tree.map(np.testing.assert_array_equal, a, b)


def run_main(workdir, *overrides, data_dir, timeout=300, check=True, env=None):
  command = [
    sys.executable,
    "main.py",
    "--config=configs/tiny.py",
    f"--workdir={workdir}",
    f"--config.data_dir={data_dir}",
    *overrides,
  ]
  result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)
  if check:
    assert result.returncode == 0, result.stderr[-3000:]
  return result


@pytest.mark.slow
def test_main_trains_and_writes_every_output(tmp_path, mnist_data_dir):
  workdir, cache = tmp_path / "run", tmp_path / "xla_cache"
  env = {**os.environ, "GANJAX_COMPILATION_CACHE": str(cache)}
  result = run_main(workdir, "--config.loss=wgan_gp", "--config.num_critic_steps=2", data_dir=mnist_data_dir, env=env)
  assert any(name.startswith("jit_train_step-") for name in os.listdir(cache))  # the next run loads, not compiles
  assert "step 8/8" in result.stderr  # the progress line: 2 epochs x 8 batches / 2 critic steps
  assert "img/s" in result.stderr
  assert sorted(os.listdir(workdir / "checkpoints")) == ["4", "8"]
  assert sorted(os.listdir(workdir / "samples")) == ["epoch_001.png", "final.png"]
  assert (workdir / "losses.png").stat().st_size > 0
  assert any(name.startswith("events.out.tfevents") for name in os.listdir(workdir / "tensorboard"))
  config = json.loads((workdir / "config.json").read_text())
  assert config["loss"] == "wgan_gp" and config["num_critic_steps"] == 2
  records = metric_writers.read_metrics(str(workdir))
  assert [r["step"] for r in records] == [2, 4, 6, 8]
  for key in ("critic_loss", "generator_loss", "wasserstein_estimate", "gradient_penalty", "images_per_sec", "epoch"):
    assert np.isfinite(records[-1][key])
  assert records[-1]["epoch"] == pytest.approx(2.0)


@pytest.mark.slow
def test_resume_is_exact(tmp_path, tiny_config):
  tiny_config.loss, tiny_config.num_critic_steps = "wgan_gp", 2
  straight = train.train_and_evaluate(tiny_config, str(tmp_path / "straight"))
  tiny_config.num_train_steps = 4  # stop half way ...
  half = train.train_and_evaluate(tiny_config, str(tmp_path / "resumed"))
  assert int(half.step) == 4
  tiny_config.num_train_steps = -1  # ... and run the same command again
  resumed = train.train_and_evaluate(tiny_config, str(tmp_path / "resumed"))
  assert int(resumed.step) == int(straight.step) == 8
  assert_states_equal(resumed, straight)  # bit-identical on CPU
  # The resumed run's metrics continue the first half's, without duplicates.
  assert [r["step"] for r in metric_writers.read_metrics(str(tmp_path / "resumed"))] == [2, 4, 6, 8]


def test_the_learning_rate_decay_runs_over_the_whole_run(tmp_path, tiny_config):
  tiny_config.learning_rate_decay = "linear"
  experiment = train.build(tiny_config, str(tmp_path / "run"))
  try:
    assert experiment.setup.total_steps == experiment.total_steps == 16  # 2 epochs of 8 batches of 16
  finally:
    train.release(experiment)


@pytest.mark.slow
def test_a_finished_run_rerun_changes_nothing(tmp_path, tiny_config):
  first = train.train_and_evaluate(tiny_config, str(tmp_path / "run"))
  again = train.train_and_evaluate(tiny_config, str(tmp_path / "run"))
  assert_states_equal(first, again)


@pytest.mark.slow
def test_kill_9_then_the_same_command_resumes_from_the_last_checkpoint(tmp_path, mnist_data_dir):
  workdir = tmp_path / "run"
  args = [
    sys.executable,
    "main.py",
    "--config=configs/tiny.py",
    f"--workdir={workdir}",
    f"--config.data_dir={mnist_data_dir}",
    "--config.num_epochs=100",
    "--config.checkpoint_every_steps=20",
  ]
  process = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    deadline = time.time() + 240
    while time.time() < deadline:
      saved = (
        [int(s) for s in os.listdir(workdir / "checkpoints") if s.isdigit()]
        if (workdir / "checkpoints").exists()
        else []
      )
      if saved and max(saved) >= 40:
        break
      time.sleep(0.2)
    else:
      pytest.fail("no checkpoint was written in time")
  finally:
    process.send_signal(signal.SIGKILL)
    process.wait()
  result = run_main(
    workdir, "--config.num_epochs=100", "--config.checkpoint_every_steps=20", data_dir=mnist_data_dir, timeout=600
  )
  resumed_from = int(result.stderr.split("resumed from step ")[1].split()[0])
  assert resumed_from >= 40
  assert "step 800/800" in result.stderr
  assert os.path.isdir(workdir / "checkpoints" / "800")


@pytest.mark.slow
def test_an_unreadable_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, tiny_config):
  workdir = tmp_path / "run"
  tiny_config.num_train_steps = 8
  expected = train.train_and_evaluate(tiny_config, str(workdir))
  for root, _, files in os.walk(workdir / "checkpoints" / "8" / "state"):
    for name in files:
      with open(os.path.join(root, name), "r+b") as f:
        f.truncate(0)  # as a crash of the disk or a full disk might leave it
  tiny_config.num_train_steps = 8
  state = train.train_and_evaluate(tiny_config, str(workdir))  # resumes from step 4, redoes 5..8
  assert_states_equal(state, expected)
  assert os.path.isdir(str(workdir / "checkpoints") + "-unreadable/8")  # kept for inspection, not deleted


@pytest.mark.slow
def test_a_checkpoint_of_another_config_is_an_error_and_is_kept(tmp_path, tiny_config):
  workdir = tmp_path / "run"
  tiny_config.num_train_steps = 4
  train.train_and_evaluate(tiny_config, str(workdir))
  config_json = (workdir / "config.json").read_text()
  tiny_config.generator_features = (16, 8, 4)
  with pytest.raises(ConfigError, match=r"config.generator_features=\(16, 8, 4\) but the run in .* was started with"):
    train.train_and_evaluate(tiny_config, str(workdir))
  assert os.listdir(workdir / "checkpoints") == ["4"]
  assert (workdir / "config.json").read_text() == config_json  # still the run's, for evaluate.py and export.py


@pytest.mark.slow
def test_divergence_stops_the_run_and_keeps_the_checkpoint_before_it(tmp_path, tiny_config):
  workdir = tmp_path / "run"
  tiny_config.num_train_steps = 8
  train.train_and_evaluate(tiny_config, str(workdir))
  # Continue the same run with an absurd learning rate: parameters blow up and the losses become NaN.
  tiny_config.num_train_steps = 40
  tiny_config.critic_optimizer.learning_rate = 1e30
  tiny_config.generator_optimizer.learning_rate = 1e30
  kept = r"the last checkpoint before it is kept \(step 8\)"  # not called good: it may be unverified
  with pytest.raises(TrainingDiverged, match=rf"(diverged before step \d+: .*=(nan|inf)|became NaN/inf).*{kept}"):
    train.train_and_evaluate(tiny_config, str(workdir))
  assert sorted(os.listdir(workdir / "checkpoints")) == ["4", "8"]  # no NaN state was saved over them


def test_an_unwritable_workdir_fails_at_start_up(tmp_path, tiny_config):
  blocker = tmp_path / "a_file"
  blocker.write_text("")
  with pytest.raises(WorkdirError, match="cannot write to workdir"):
    train.train_and_evaluate(tiny_config, str(blocker / "run"))


@pytest.mark.slow
@pytest.mark.parametrize(
  "override, message",
  [
    ("--config.loss=hinge", "error: config.loss='hinge' is not allowed; allowed: minimax, non_saturating"),
    ("--config.num_critic_steps=0", "error: config.num_critic_steps=0 is not allowed"),
    ("--config.critic_optimizer.name=adamax2", "error: config.critic_optimizer.name='adamax2' is not an optimiser"),
    ("--config.batch_size=70000", "error: config.batch_size=70000 is not allowed"),
    ("--config.num_critics=5", "error: --config.num_critics is not a config field"),
    ("--config.num_epochs=many", "error: flag --config.num_epochs=many: invalid literal for int()"),
  ],
)
def test_main_reports_bad_input_in_one_line_and_fails(tmp_path, mnist_data_dir, override, message):
  result = run_main(tmp_path / "run", override, data_dir=mnist_data_dir, check=False)
  assert result.returncode != 0
  assert any(line.startswith(message) for line in result.stderr.strip().splitlines()[-2:])
  assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_main_without_data_or_network_names_the_data_dir(tmp_path):
  result = run_main(tmp_path / "run", "--config.download=False", data_dir=tmp_path / "nothing", check=False)
  assert result.returncode != 0
  assert (
    result.stderr.strip().splitlines()[-1].startswith(f"error: MNIST is not prepared in data dir '{tmp_path}/nothing'")
  )


@pytest.mark.slow
def test_a_self_conditioned_run_clusters_once_trains_on_the_clusters_and_is_evaluated_unconditionally(
  tmp_path, tiny_config
):
  from ganjax.data import clusters
  from ganjax.synth import export, generation

  tiny_config.conditioning, tiny_config.num_clusters = "clusters", 4
  tiny_config.eval_at_end, tiny_config.num_train_steps = True, 4
  workdir = str(tmp_path / "run")
  half = train.train_and_evaluate(tiny_config, workdir)
  with np.load(os.path.join(workdir, saved_run.CLUSTERS_FILE)) as f:
    assignments = f["assignments"]
  assert assignments.shape == (tiny_config.train_subset,) and set(np.unique(assignments)) <= set(range(4))
  np.testing.assert_allclose(half.cluster_shares, clusters.shares(assignments, 4))
  result = json.loads((tmp_path / "run" / "eval.json").read_text())
  assert "fid" in result and "label_agreement" not in result  # an unconditional model to the metrics
  tiny_config.num_train_steps = -1
  resumed = train.train_and_evaluate(tiny_config, workdir)  # the same clusters, from the checkpoint and file
  np.testing.assert_array_equal(resumed.cluster_shares, half.cluster_shares)
  # Samples draw clusters by their shares: with all the mass on one cluster, every image is of that cluster.
  run = generation.load_run(workdir)
  shares = np.zeros(4, np.float32)
  shares[1] = 1.0
  state = run.state.replace(cluster_shares=shares)
  key = jax.random.key(0)
  images = generation.generate(run.setup, state, key, 6, batch_size=6)
  np.testing.assert_array_equal(
    images, generation.generate(run.setup, state, key, 6, np.ones(6, np.int32), batch_size=6)
  )
  with pytest.raises(ConfigError, match="filter='critic' needs the conditioning of every image"):
    export.sample_dataset(run, export.ExportOptions(num_per_class=1, filter="critic"))


@pytest.mark.slow
def test_clusters_within_digits_train_on_digit_cluster_pairs_and_sample_the_asked_digits(tmp_path, tiny_config):
  from ganjax.data import clusters
  from ganjax.synth import generation

  tiny_config.conditioning, tiny_config.num_clusters, tiny_config.class_head = "digit_clusters", 2, "ac"
  tiny_config.eval_at_end, tiny_config.num_train_steps = True, 4
  workdir = str(tmp_path / "run")
  state = train.train_and_evaluate(tiny_config, workdir)
  run = generation.load_run(workdir)
  assert run.setup.num_labels == 20 and run.setup.conditioning.num_digits == 10
  assert run.state.critic_params["auxiliary_classifier"]["kernel"].shape[-1] == 10  # the AC head reads digits
  with np.load(os.path.join(workdir, saved_run.CLUSTERS_FILE)) as f:
    assignments = f["assignments"]
  np.testing.assert_allclose(state.cluster_shares, clusters.shares(assignments, 20))
  result = json.loads((tmp_path / "run" / "eval.json").read_text())
  assert "label_agreement" in result  # evaluated per digit, as a conditional model
  # A digit's cluster is drawn by its share among that digit's clusters: all of 3's mass on its 2nd cluster.
  shares = np.full(20, 0.05, np.float32)
  shares[6], shares[7] = 0.0, 0.05
  digits = np.full(6, 3, np.int32)
  labels = conditioning.digit_cluster_labels(run.setup.conditioning, shares, digits, jax.random.key(1))
  np.testing.assert_array_equal(labels, np.full(6, 7))
  key = jax.random.key(0)
  state = run.state.replace(cluster_shares=shares)
  images = generation.generate(run.setup, state, key, 6, digits, batch_size=6)
  direct = generation._sample_batch(run.setup, state, jax.random.fold_in(key, 0), labels, True)
  np.testing.assert_array_equal(images, generation.images_lib.to_uint8(np.asarray(direct)))
