"""Workdirs written by earlier ganjax still load, evaluate, export and resume.

tests/data/workdir_2026-11-28 was trained by ganjax before the conditioning schema (its config.json has
num_classes, clusters_per_class, auxiliary_classifier_weight, twin_auxiliary_classifier): a tiny run with
clusters within digits, both class heads, an EMA generator and batch-statistics sampling at noise 1.1, 4 steps,
checkpoints at steps 2 and 4.
"""

import json
import os
import shutil

import jax
import numpy as np
import pytest
from conftest import REPO

from configs import tiny
from ganjax import train
from ganjax.conditioning import Conditioning
from ganjax.eval import sample_quality
from ganjax.synth import export, generation

OLD_WORKDIR = os.path.join(REPO, "tests", "data", "workdir_2026-11-28")


@pytest.fixture
def old_workdir(tmp_path, mnist_data_dir) -> str:
  workdir = str(tmp_path / "old")
  shutil.copytree(OLD_WORKDIR, workdir)
  path = os.path.join(workdir, "config.json")
  with open(path) as f:
    saved = json.load(f)
  saved["data_dir"] = mnist_data_dir
  with open(path, "w") as f:
    json.dump(saved, f)
  return workdir


def test_an_old_workdir_loads_as_the_run_it_was(old_workdir):
  run = generation.load_run(old_workdir)
  assert run.step == 4 and generation.checkpoint_steps(old_workdir) == [2, 4]
  assert run.setup.conditioning == Conditioning("digit_clusters", 2) and run.setup.num_labels == 20
  assert (run.setup.class_head, run.setup.class_head_weight) == ("tac", 1.0)
  assert (run.setup.sampling_batch_norm, run.setup.sampling_latent_scale, run.setup.ema_decay) == ("batch", 1.1, 0.9)
  assert run.state.critic_params["twin_classifier"]["kernel"].shape[-1] == 10


def test_an_old_workdir_evaluates_and_exports_per_digit(old_workdir):
  run = generation.load_run(old_workdir)
  config = run.config
  config.eval_num_samples = 100
  result = sample_quality.Evaluation.create(config).evaluate_state(run.setup, run.state, config, jax.random.key(0))
  assert 0 <= result["label_agreement"] <= 1 and np.isfinite(result["fid"])
  images, labels, source, _ = export.sample_dataset(run, export.ExportOptions(num_per_class=2))
  assert images.shape == (20, 28, 28, 1) and source == "conditioning"
  np.testing.assert_array_equal(np.bincount(labels), [2] * 10)


@pytest.mark.slow
def test_an_old_workdir_resumes_with_todays_config(old_workdir, mnist_data_dir):
  config = tiny.get_config()
  config.data_dir, config.download = mnist_data_dir, False
  config.conditioning, config.num_clusters, config.class_head = "digit_clusters", 2, "tac"
  config.latent_dim, config.generator_features, config.ema_decay = 8, (4, 4, 4), 0.9
  config.sampling_batch_norm, config.sampling_latent_scale, config.num_sample_images = "batch", 1.1, 100
  config.num_train_steps, config.checkpoint_every_steps, config.keep_checkpoints = 6, 2, 2
  state = train.train_and_evaluate(config, old_workdir)
  assert int(state.step) == 6 and generation.checkpoint_steps(old_workdir) == [4, 6]
  with open(os.path.join(old_workdir, "metrics.jsonl")) as f:
    steps = [json.loads(line)["step"] for line in f]
  assert steps == sorted(steps) and steps[-1] == 6 and 4 in steps  # the old records kept, the new appended
