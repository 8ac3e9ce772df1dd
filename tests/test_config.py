import glob
import os

import pytest
from conftest import REPO

from configs import default
from ganjax import config as config_lib
from ganjax.errors import ConfigError


def load(name):
  import importlib

  return importlib.import_module(f"configs.{name}").get_config()


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "configs", "*.py"))))
def test_every_shipped_config_is_valid(path):
  name = os.path.basename(path)[:-3]
  if name != "__init__":
    config_lib.validate(load(name))


def test_paper_configs_hold_the_paper_hyperparameters():
  gan, wgan, wgan_gp = load("gan"), load("wgan"), load("wgan_gp")
  assert (gan.loss, gan.batch_size, gan.num_epochs, gan.num_critic_steps) == ("non_saturating", 256, 60, 1)
  assert gan.generator_optimizer.learning_rate == gan.critic_optimizer.learning_rate == 1e-4
  assert (wgan.loss, wgan.clip_value, wgan.num_critic_steps, wgan.critic_optimizer.name) == ("wgan", 0.01, 5, "rmsprop")
  assert wgan.critic_optimizer.learning_rate == 5e-5
  assert (wgan_gp.loss, wgan_gp.gradient_penalty_weight, wgan_gp.num_critic_steps) == ("wgan_gp", 10.0, 5)
  assert (wgan_gp.critic_optimizer.b1, wgan_gp.critic_optimizer.b2) == (0.5, 0.9)


@pytest.mark.parametrize(
  "field, value, message",
  [
    ("loss", "hinge", "config.loss='hinge' is not allowed; allowed: minimax, non_saturating, wgan, wgan_gp"),
    ("num_critic_steps", 0, "config.num_critic_steps=0 is not allowed; it must be an integer >= 1"),
    ("batch_size", 60001, "config.batch_size=60001 is not allowed; it must be at most the 60000"),
    ("dropout_rate", 1.0, "config.dropout_rate=1.0"),
    ("generator_features", (8, 8), "config.generator_features=(8, 8)"),
    ("num_sample_images", 10, "config.num_sample_images=10 is not allowed; it must be a square number"),
    ("sample_epochs", (0,), "config.sample_epochs=(0,)"),
    ("conv_impl", "fast", "config.conv_impl='fast' is not allowed; allowed: auto, plain, phase, hybrid"),
    ("num_classes", 5, "config.num_classes=5 is not allowed; allowed: 0 (unconditional) or 10"),
    ("critic_conditioning", "film", "config.critic_conditioning='film' is not allowed; allowed: projection, concat"),
    ("sampling_batch_norm", "ema", "config.sampling_batch_norm='ema' is not allowed; allowed: moving, batch"),
    ("sampling_latent_scale", 0.0, "config.sampling_latent_scale=0.0 is not allowed; it must be a number > 0"),
    (
      "auxiliary_classifier_weight",
      1.0,
      "config.auxiliary_classifier_weight=1.0 is not allowed; it must be >= 0, and 0",
    ),
    ("twin_auxiliary_classifier", True, "config.twin_auxiliary_classifier=True is not allowed; .* unless auxiliary_"),
    ("num_clusters", 1, "config.num_clusters=1 is not allowed; it must be 0 (no self-conditioning) or an integer"),
    ("clusters_per_class", 1, "config.clusters_per_class=1 is not allowed; it must be 0 (off) or an integer >= 2"),
    ("clusters_per_class", 4, "config.clusters_per_class=4 is not allowed; .* 0 unless the model is conditional"),
    ("ema_decay", 1.0, "config.ema_decay=1.0 is not allowed; it must be in"),
    ("examples_per_class", -1, "config.examples_per_class=-1 is not allowed"),
    ("eval_num_samples", 5, "config.eval_num_samples=5 is not allowed; it must be an integer >= 10"),
  ],
)
def test_bad_values_are_named_with_what_is_allowed(field, value, message):
  config = default.get_config()
  config[field] = value
  with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
    config_lib.validate(config)


def test_self_conditioning_is_only_for_unconditional_models():
  config = default.get_config()
  config.num_classes, config.num_clusters = 10, 50
  with pytest.raises(ConfigError, match="num_clusters=50 is not allowed; .* 0 for a conditional model"):
    config_lib.validate(config)
  config.num_classes = 0
  config_lib.validate(config)


def test_unknown_optimizer_and_argument_are_named():
  config = default.get_config()
  config.critic_optimizer.name = "adagrad2"
  with pytest.raises(ConfigError, match="config.critic_optimizer.name='adagrad2' is not an optimiser; allowed: adam"):
    config_lib.validate(config)
  config = default.get_config()
  config.generator_optimizer.momentum = 0.9  # adam has no momentum
  with pytest.raises(ConfigError, match="optax.adam takes no argument 'momentum'"):
    config_lib.validate(config)


def test_epoch_arithmetic_counts_real_batches():
  config = load("wgan")  # 5 real batches per generator step
  assert config_lib.batches_per_epoch(config, 60_000) == 234
  config.num_epochs = 10
  assert config_lib.total_train_steps(config, 60_000) == 2340 // 5
  config.num_train_steps = 7
  assert config_lib.total_train_steps(config, 60_000) == 7


def test_auto_conv_impl_is_hybrid_on_cpu_and_plain_elsewhere():
  assert config_lib.resolve_conv_impl("auto", "cpu") == "hybrid"
  assert config_lib.resolve_conv_impl("auto", "gpu") == "plain"
  assert config_lib.resolve_conv_impl("plain", "cpu") == "plain"


def test_the_batch_must_fit_in_the_examples_per_class_subset():
  config = default.get_config()
  config.examples_per_class = 10  # 100 images
  with pytest.raises(ConfigError, match="config.batch_size=256 is not allowed; it must be at most the 100"):
    config_lib.validate(config)
  config.batch_size = 100
  config_lib.validate(config)


@pytest.mark.parametrize(
  "tuned, paper",
  [
    ("gan_tuned", "gan"),
    ("cgan_tuned", "cgan"),
    ("wgan_gp_tuned", "wgan_gp"),
    ("cwgan_gp_tuned", "cwgan_gp"),
  ],
)
def test_tuned_recipes_keep_the_paper_models_loss_and_batch_and_change_only_how_they_train(tuned, paper):
  tuned_config, paper_config = load(tuned).to_dict(), load(paper).to_dict()
  changed = {field for field in paper_config if tuned_config[field] != paper_config[field]}
  assert set(tuned_config) == set(paper_config)
  training = {"generator_optimizer", "critic_optimizer", "ema_decay", "num_critic_steps"}
  # The class heads (AC-GAN and its TAC twin) are read-outs of the critic's features, used only in the losses.
  heads = {"auxiliary_classifier_weight", "twin_auxiliary_classifier"}
  # Self-conditioning adds a cluster input to the same layers (as the conditional models' label input);
  # sampling_batch_norm and sampling_latent_scale change only how a trained G is sampled.
  assert changed <= training | heads | {"num_clusters", "sampling_batch_norm", "sampling_latent_scale"}
  assert {"generator_optimizer", "ema_decay"} <= changed  # what the measurements support
  paper_fields = ("generator_features", "critic_features", "latent_dim", "dropout_rate", "batch_size", "loss")
  for field in (*paper_fields, "gradient_penalty_weight", "num_classes"):
    assert tuned_config[field] == paper_config[field]
