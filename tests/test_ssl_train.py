"""The semi-supervised GAN through the training loop (conditioning semi_supervised): a run writes what a run
writes plus its critic's test accuracy and curve, resumes exactly, refuses bad configs in one line, and stops
when it collapses."""

import json
import os
import shutil

import jax
import ml_collections
import numpy as np
import pytest

from configs import ssl_gan, ssl_gan_conv
from ganjax import config as config_lib
from ganjax import metric_writers, periodic, saved_run, train
from ganjax.errors import ConfigError, TrainingDiverged, WorkdirError
from ganjax.ssl import actions, experiment


def tiny_ssl_config(data_dir: str, num_epochs: int = 2) -> ml_collections.ConfigDict:
  """configs/ssl_gan.py with narrow MLPs on 400 images: 8 steps per epoch, a checkpoint every 4."""
  config = ssl_gan.get_config()
  config.data_dir, config.download = data_dir, False
  config.ssl_critic_features, config.ssl_generator_features = (24, 12), (16,)
  config.train_subset, config.batch_size, config.labelled_batch_size = 400, 50, 10
  config.labels_per_class, config.num_epochs = 1, num_epochs
  config.log_every_steps, config.checkpoint_every_steps, config.keep_checkpoints = 2, 4, 10
  config.sample_epochs, config.num_sample_images = (1,), 16
  return config


@pytest.fixture(scope="module")
def ssl_run(tmp_path_factory, mnist_data_dir):
  """One uninterrupted tiny run of 2 epochs: (config, workdir, final state)."""
  config = tiny_ssl_config(mnist_data_dir)
  workdir = str(tmp_path_factory.mktemp("ssl") / "run")
  state = train.train_and_evaluate(config.copy_and_resolve_references(), workdir)
  return config, workdir, state


def _records(workdir: str) -> list[dict]:
  timing = {"steps_per_sec", "images_per_sec", "eval_eval_seconds"}
  return [{k: v for k, v in r.items() if k not in timing} for r in metric_writers.read_metrics(workdir)]


@pytest.mark.slow
def test_run_writes_the_critics_curve_grids_and_evaluation(ssl_run):
  config, workdir, _ = ssl_run
  for name in ("recognition.png", "losses.png", "samples/epoch_001.png", "samples/final.png", "config.json"):
    assert os.path.exists(os.path.join(workdir, name)), name
  with open(os.path.join(workdir, "eval.json")) as f:
    result = json.load(f)
  assert result["step"] == 16 and 0.0 <= result["test_accuracy"] <= 1.0
  assert result["test_errors_per_10k"] == pytest.approx((1 - result["test_accuracy"]) * 10_000, abs=0.05)
  evaluations = [r for r in metric_writers.read_metrics(workdir) if "eval_test_accuracy" in r]
  assert [r["epoch"] for r in evaluations] == [1.0, 2.0]  # every epoch, the last one by the final evaluation
  losses = [r for r in metric_writers.read_metrics(workdir) if "unlabelled_loss" in r]
  assert {"labelled_loss", "unlabelled_loss", "generator_loss", "critic_loss"} <= set(losses[-1])


@pytest.mark.slow
def test_resumed_run_equals_the_uninterrupted_one(ssl_run, tmp_path):
  config, workdir, uninterrupted = ssl_run
  resumed_dir = str(tmp_path / "resumed")
  first = tiny_ssl_config(config.data_dir, num_epochs=1)  # 8 steps, then resumed to 16 with the full config
  train.train_and_evaluate(first, resumed_dir)
  resumed = train.train_and_evaluate(config.copy_and_resolve_references(), resumed_dir)
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(resumed), jax.device_get(uninterrupted))
  loss_records = lambda d: [r for r in _records(d) if "critic_loss" in r]  # noqa: E731
  assert loss_records(resumed_dir) == loss_records(workdir)
  _, _, loaded = experiment.load_recognizer_parts(resumed_dir)
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(loaded), jax.device_get(uninterrupted))


@pytest.mark.slow
def test_a_class_balanced_run_resumes_exactly_with_its_moving_average(mnist_data_dir, tmp_path):
  def balanced(num_epochs: int) -> ml_collections.ConfigDict:
    config = tiny_ssl_config(mnist_data_dir, num_epochs)
    config.class_balance_weight = 1.0
    return config

  uninterrupted = train.train_and_evaluate(balanced(2), str(tmp_path / "uninterrupted"))
  train.train_and_evaluate(balanced(1), str(tmp_path / "resumed"))
  resumed = train.train_and_evaluate(balanced(2), str(tmp_path / "resumed"))
  assert resumed.class_marginal is not None and np.abs(np.asarray(resumed.class_marginal) - 0.1).max() > 0
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(resumed), jax.device_get(uninterrupted))


@pytest.mark.slow
def test_an_anchored_run_fades_its_pseudo_labels_and_resumes_exactly(mnist_data_dir, tmp_path):
  def anchored(num_epochs: int) -> ml_collections.ConfigDict:
    config = tiny_ssl_config(mnist_data_dir, num_epochs)
    config.pseudo_label_weight, config.pseudo_label_epochs = 1.0, 1
    return config

  uninterrupted = train.train_and_evaluate(anchored(2), str(tmp_path / "uninterrupted"))
  train.train_and_evaluate(anchored(1), str(tmp_path / "resumed"))
  resumed = train.train_and_evaluate(anchored(2), str(tmp_path / "resumed"))
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(resumed), jax.device_get(uninterrupted))
  assert os.path.exists(tmp_path / "resumed" / saved_run.PSEUDO_LABELS_FILE)  # what the resume read back
  records = [r for r in metric_writers.read_metrics(str(tmp_path / "uninterrupted")) if "pseudo_label_loss" in r]
  assert records and all(np.isfinite(r["pseudo_label_loss"]) for r in records)
  images, digits = np.zeros((400, 28, 28, 1), np.uint8), np.arange(400) % 10
  recipe = experiment.recipe(anchored(2), images, digits, str(tmp_path / "recipe"), write=False)
  assert recipe.setup.pseudo_label_fade_steps == 8  # 1 epoch of 400 images in batches of 50


def test_the_recipe_spreads_with_the_configs_floor_and_warns_of_an_uneven_share(mnist_data_dir, tmp_path, monkeypatch):
  config = tiny_ssl_config(mnist_data_dir)
  config.pseudo_label_weight, config.pseudo_label_fraction, config.pseudo_label_min_probability = 0.3, 0.35, 0.7
  asked, warned = [], []

  def spread(path, images, indices, labels, fraction, graph, write, min_probability):
    asked.append((fraction, graph, min_probability))
    return np.where(np.arange(len(images)) % 4 == 0, 9, np.arange(len(images)) % 10)  # digit 9: ~3.3x its share

  monkeypatch.setattr(experiment.pseudo_labels, "load_or_spread", spread)
  monkeypatch.setattr(experiment.logging, "warning", warned.append)
  images, digits = np.zeros((400, 28, 28, 1), np.uint8), np.arange(400) % 10
  experiment.recipe(config, images, digits, str(tmp_path), write=False)
  assert asked == [(0.35, "deskewed", 0.7)]
  assert len(warned) == 1 and warned[0].startswith("label spreading gives digit 9 3.")


@pytest.mark.slow
def test_resume_refuses_another_labelled_subset(ssl_run, tmp_path):
  config, workdir, _ = ssl_run
  copy = str(tmp_path / "copy")
  shutil.copytree(workdir, copy)
  other = config.copy_and_resolve_references()
  other.label_seed = 1
  with pytest.raises(ConfigError, match="label_seed=1 but the run .* was started with 0"):
    train.train_and_evaluate(other, copy)


@pytest.mark.parametrize(
  "field, value, message",
  [
    (
      "loss",
      "wgan_gp",
      "config.loss='wgan_gp' is not allowed; allowed with conditioning semi_supervised: feature_matching",
    ),
    ("num_devices", 0, "semi_supervised trains on one device"),
    ("labels_per_class", 0, "it must be an integer >= 1 with conditioning few_labels or semi_supervised"),
    ("num_critic_steps", 2, "semi_supervised takes 1"),
    ("collapse_patience", -1, "an integer >= 0"),
    ("ssl_critic_features", (), "one or more positive widths"),
    ("ssl_critic_conv_features", (8, 0), "config.ssl_critic_conv_features=(8, 0) is not allowed; positive channel"),
    ("critic_conv_dropout", 1.0, "config.critic_conv_dropout=1.0 is not allowed; it must be in "),
    ("consistency_weight", -1.0, "config.consistency_weight=-1.0 is not allowed"),
    ("class_balance_weight", -0.5, "config.class_balance_weight=-0.5 is not allowed"),
    ("pseudo_label_weight", -1.0, "config.pseudo_label_weight=-1.0 is not allowed"),
    ("pseudo_label_fraction", 0.0, "config.pseudo_label_fraction=0.0 is not allowed; it must be in (0, 1]"),
    (
      "pseudo_label_min_probability",
      1.0,
      "config.pseudo_label_min_probability=1.0 is not allowed; it must be in ",
    ),
    ("pseudo_label_epochs", -2.0, "config.pseudo_label_epochs=-2.0 is not allowed"),
    ("pseudo_label_graph", "edges", "config.pseudo_label_graph='edges' is not allowed; one of ('deskewed', 'pixels')"),
  ],
)
def test_bad_semi_supervised_config_is_one_line(mnist_data_dir, field, value, message):
  config = tiny_ssl_config(mnist_data_dir)
  config[field] = value
  with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
    config_lib.validate(config)
  assert "\n" not in str(error.value)


@pytest.mark.slow
def test_a_conv_critic_trains_end_to_end_with_its_logits_after_the_convolutions(mnist_data_dir, tmp_path):
  config = tiny_ssl_config(mnist_data_dir, num_epochs=1)
  config.ssl_critic_conv_features, config.ssl_critic_features = (4, 8), ()  # configs/ssl_gan_conv.py, narrow
  config_lib.validate(config)
  state = train.train_and_evaluate(config.copy_and_resolve_references(), str(tmp_path / "conv"))
  assert int(state.step) == 8
  assert sorted(state.critic_params) == ["conv_0", "conv_1", "logits"]
  assert state.critic_params["logits"]["direction"].shape == (7 * 7 * 8, 10)  # 28 -> 14 -> 7 pixels, 8 channels
  assert sorted(state.critic_frozen) == ["conv_0", "conv_1"]
  with open(tmp_path / "conv" / "eval.json") as f:
    assert 0.0 <= json.load(f)["test_accuracy"] <= 1.0


def test_the_conv_recipe_validates_with_no_dense_layer():
  config = ssl_gan_conv.get_config()
  config_lib.validate(config)
  assert tuple(config.ssl_critic_conv_features) == (64, 128) and tuple(config.ssl_critic_features) == ()


def test_feature_matching_is_only_for_semi_supervised(tiny_config):
  tiny_config.loss = "feature_matching"
  with pytest.raises(ConfigError, match="feature_matching is for conditioning semi_supervised"):
    config_lib.validate(tiny_config)


class _Saver:
  def last_kept(self) -> str:
    return "step 40"


def _collapse_check(patience: int = 3) -> actions.CheckCollapse:
  config = ml_collections.ConfigDict(
    dict(collapse_patience=patience, collapse_unlabelled_loss=0.02, collapse_generator_loss=30.0)
  )
  schedule = periodic.Schedule(1000, 10, 100, (), 0, False)  # a metric window every 10 steps
  return actions.CheckCollapse(schedule, config, _Saver())


def _feed(check: actions.CheckCollapse, step: int, unlabelled: float, generator: float) -> None:
  """One window of 10 steps with these losses, ending at `step`."""
  for s in range(step - 9, step + 1):
    before, after = periodic.Position(s - 1, s - 1, 100), periodic.Position(s, s, 100)
    check(before, after, None, {"unlabelled_loss": np.float32(unlabelled), "generator_loss": np.float32(generator)})


def test_collapse_is_named_with_step_and_values():
  check = _collapse_check()
  _feed(check, 10, 0.4, 3.0)
  _feed(check, 20, 0.01, 50.0)
  _feed(check, 30, 0.005, 80.0)
  with pytest.raises(
    TrainingDiverged,
    match=r"collapsed by step 40: unlabelled_loss 0.001 < 0.02 and "
    r"generator_loss 106 > 30 in 3 metric windows in a row since step 20; .*\(step 40\)",
  ):
    _feed(check, 40, 0.001, 106.0)


def test_isolated_spikes_and_healthy_windows_do_not_stop_the_run():
  check = _collapse_check()
  for step, (unlabelled, generator) in zip(range(10, 100, 10), [(0.4, 3), (0.01, 35), (0.01, 40), (0.3, 30.5)] * 2):
    _feed(check, step, unlabelled, generator)  # two windows in a row at most, then a healthy one
  off = _collapse_check(patience=0)
  for step in range(10, 60, 10):
    _feed(off, step, 0.0, 1000.0)


def test_load_recognizer_parts_refuses_a_gan_run(tiny_config, tmp_path):
  tiny_config.conditioning = "digit"
  saved_run.write_config(str(tmp_path), tiny_config)
  with pytest.raises(WorkdirError, match="conditioning 'digit'; only a semi_supervised run's critic recognizes"):
    experiment.load_recognizer_parts(str(tmp_path))
  saved_run.write_config(str(tmp_path), tiny_ssl_config(tiny_config.data_dir))
  with pytest.raises(WorkdirError, match="no checkpoint in .* yet; train first"):
    experiment.load_recognizer_parts(str(tmp_path))
