"""Sampling from a trained run: balanced labels, deterministic batched generation, reloading a run's checkpoints."""

import json
import shutil

import jax
import numpy as np
import pytest

from ganjax import conditioning, steps
from ganjax import saved_run
from ganjax import images as images_lib
from ganjax.errors import ConfigError, WorkdirError
from ganjax.synth import generation


@pytest.fixture(scope="module")
def trained(tiny_run):
  """(workdir, final state) of the session's tiny conditional run with an EMA generator: 16 steps, checkpoints
  12 and 16. Read only."""
  return tiny_run.workdir, tiny_run.state


@pytest.fixture(scope="module")
def run(trained):
  return generation.load_run(trained[0])


def test_balanced_labels_cycle_through_every_class_equally_often():
  labels = conditioning.balanced_labels(23, 10)
  assert labels.dtype == np.int32
  np.testing.assert_array_equal(labels[:12], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1])
  counts = np.bincount(labels, minlength=10)
  assert counts.sum() == 23 and counts.max() - counts.min() <= 1
  np.testing.assert_array_equal(np.bincount(conditioning.balanced_labels(500, 10)), [50] * 10)


def test_generate_returns_uint8_images_that_are_a_function_of_the_key(run):
  images = generation.generate(run.setup, run.state, jax.random.key(0), 12, batch_size=8)
  assert images.dtype == np.uint8 and images.shape == (12, 28, 28, 1)
  again = generation.generate(run.setup, run.state, jax.random.key(0), 12, batch_size=8)
  np.testing.assert_array_equal(images, again)
  other = generation.generate(run.setup, run.state, jax.random.key(1), 12, batch_size=8)
  assert not np.array_equal(images, other)


def test_a_last_partial_batch_gives_the_first_images_of_a_bigger_draw_with_the_same_key(run):
  # Batch i uses fold_in(key, i) and inference-mode BatchNorm treats samples independently, so padding the last
  # batch changes nothing in the images kept, and a longer draw only appends images.
  short = generation.generate(run.setup, run.state, jax.random.key(3), 7, batch_size=4)
  long = generation.generate(run.setup, run.state, jax.random.key(3), 12, batch_size=4)
  assert short.shape == (7, 28, 28, 1)
  np.testing.assert_array_equal(short, long[:7])


def test_generate_draws_each_image_for_its_own_label(run):
  labels = np.array([3, 3, 7, 7, 1], np.int32)
  key = jax.random.key(5)
  images = generation.generate(run.setup, run.state, key, 5, labels, batch_size=8)
  z = jax.random.normal(jax.random.fold_in(key, 0), (8, run.setup.latent_dim))
  expected = images_lib.to_uint8(steps.sample(run.setup, run.state, z, np.pad(labels, (0, 3)))[:5])
  np.testing.assert_allclose(images.astype(int), expected.astype(int), atol=1)  # jit vs op-by-op rounding
  relabelled = generation.generate(run.setup, run.state, key, 5, np.array([3, 3, 7, 7, 2], np.int32), batch_size=8)
  np.testing.assert_array_equal(relabelled[:4], images[:4])
  assert not np.array_equal(relabelled[4], images[4])


def test_generate_rejects_labels_of_the_wrong_length(run):
  with pytest.raises(ValueError, match=r"labels must have shape \(4,\)"):
    generation.generate(run.setup, run.state, jax.random.key(0), 4, np.zeros(5, np.int32))


def test_a_latent_scale_draws_the_noise_with_that_standard_deviation(run):
  labels, key = np.array([0, 4, 9], np.int32), jax.random.key(2)
  scaled = run.with_sampling(latent_scale=1.5)
  assert scaled.setup.sampling_latent_scale == 1.5 and scaled.config.sampling_latent_scale == 1.5
  assert run.setup.sampling_latent_scale == 1.0  # the run itself is unchanged
  images = generation.generate(scaled.setup, scaled.state, key, 3, labels, batch_size=3)
  z = 1.5 * jax.random.normal(jax.random.fold_in(key, 0), (3, run.setup.latent_dim))
  expected = images_lib.to_uint8(steps.sample(run.setup, run.state, z, labels))
  np.testing.assert_allclose(images.astype(int), expected.astype(int), atol=1)  # jit vs op-by-op rounding
  assert not np.array_equal(images, generation.generate(run.setup, run.state, key, 3, labels, batch_size=3))


def test_with_sampling_keeps_what_is_not_given_and_rejects_a_bad_value_in_one_line(run):
  batch = run.with_sampling(batch_norm="batch")
  assert batch.setup.sampling_batch_norm == "batch" and batch.setup.sampling_latent_scale == 1.0
  unchanged = run.with_sampling()
  assert unchanged.setup == run.setup and unchanged.config == run.config
  with pytest.raises(ConfigError, match=r"config.sampling_latent_scale=-1.0 is not allowed; it must be a number > 0"):
    run.with_sampling(latent_scale=-1.0)


def test_generate_samples_the_ema_generator_unless_told_not_to(run):
  assert run.state.generator_ema_params is not None
  ema = generation.generate(run.setup, run.state, jax.random.key(0), 10, batch_size=10)
  live = generation.generate(run.setup, run.state, jax.random.key(0), 10, use_ema=False, batch_size=10)
  assert not np.array_equal(ema, live)


def test_load_run_restores_the_state_the_training_run_ended_with(trained, run):
  workdir, final_state = trained
  assert run.step == 16 and run.workdir == workdir
  assert run.config.conditioning == "digit" and run.setup.num_labels == 10
  jax.tree.map(np.testing.assert_array_equal, run.state, final_state)


def test_checkpoint_steps_lists_the_kept_checkpoints_oldest_first(trained):
  assert generation.checkpoint_steps(trained[0]) == [12, 16]


def test_load_run_of_an_older_step_restores_that_checkpoint(trained, run):
  older = generation.load_run(trained[0], step=12)
  assert older.step == 12 and int(older.state.step) == 12
  assert not np.array_equal(
    jax.tree.leaves(older.state.generator_params)[0], jax.tree.leaves(run.state.generator_params)[0]
  )


def test_load_run_of_a_missing_step_names_the_steps_there_are(trained):
  with pytest.raises(WorkdirError, match=r"no checkpoint of step 5 in .*; there are: \[12, 16\]"):
    generation.load_run(trained[0], step=5)


def test_load_run_of_a_directory_that_is_not_a_run_says_so(tmp_path):
  with pytest.raises(WorkdirError, match="is not a ganjax run directory"):
    generation.load_run(str(tmp_path))


def test_load_run_of_a_run_without_checkpoints_says_to_train_first(trained, tmp_path):
  shutil.copy(f"{trained[0]}/config.json", tmp_path / "config.json")
  with pytest.raises(WorkdirError, match="no checkpoint in .* yet; train first"):
    generation.load_run(str(tmp_path))


def test_load_config_reads_the_config_the_run_recorded(trained):
  config = saved_run.load(trained[0])
  with open(f"{trained[0]}/config.json") as f:
    assert json.loads(config.to_json()) == json.load(f)
