import glob
import inspect
import json
import os
import re

import pytest
from conftest import REPO

from configs import default
from ganjax import config as config_lib
from ganjax import optimizers, saved_run
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
    ("conditioning", "style", "config.conditioning='style' is not allowed; allowed: none, digit, clusters, digit_"),
    ("critic_label_input", "film", "config.critic_label_input='film' is not allowed; allowed: projection, concat"),
    ("sampling_batch_norm", "ema", "config.sampling_batch_norm='ema' is not allowed; allowed: moving, batch"),
    ("sampling_latent_scale", 0.0, "config.sampling_latent_scale=0.0 is not allowed; it must be a number > 0"),
    ("class_head", "ac", "config.class_head='ac' is not allowed; it must be none unless conditioning is digit or"),
    ("class_head", "twin", "config.class_head='twin' is not allowed; allowed: none, ac, tac"),
    ("class_head_weight", 0.0, "config.class_head_weight=0.0 is not allowed; it must be a number > 0"),
    ("learning_rate_decay", "step", "config.learning_rate_decay='step' is not allowed; allowed: none, linear, cosine"),
    ("learning_rate_decay_start", 1.0, "config.learning_rate_decay_start=1.0 is not allowed; it must be in "),
    ("twin_loss_cap", 2.3, "config.twin_loss_cap=2.3 is not allowed; it must be a number >= 0, and 0 unless class_"),
    ("num_clusters", 4, "config.num_clusters=4 is not allowed; it must be an integer >= 2 with conditioning clusters"),
    ("progress_every_seconds", -1.0, "config.progress_every_seconds=-1.0 is not allowed; it must be >= 0"),
    ("ema_decay", 1.0, "config.ema_decay=1.0 is not allowed; it must be in"),
    ("examples_per_class", -1, "config.examples_per_class=-1 is not allowed"),
    ("eval_num_samples", 5, "config.eval_num_samples=5 is not allowed; it must be an integer >= 10"),
    (
      "critic_augment",
      "flip",
      "config.critic_augment='flip' is not allowed; 'flip' is not a critic augmentation; allo",
    ),
    ("critic_augment", "cutout,cutout", "config.critic_augment='cutout,cutout' is not allowed; 'cutout,cutout' names"),
  ],
)
def test_bad_values_are_named_with_what_is_allowed(field, value, message):
  config = default.get_config()
  config[field] = value
  with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
    config_lib.validate(config)


@pytest.mark.parametrize("kind", ["clusters", "digit_clusters"])
def test_clustered_conditioning_needs_a_cluster_count_and_class_heads_need_the_digit(kind):
  config = default.get_config()
  config.conditioning, config.num_clusters = kind, 1
  with pytest.raises(ConfigError, match="num_clusters=1 is not allowed; it must be an integer >= 2"):
    config_lib.validate(config)
  config.num_clusters = 50
  config_lib.validate(config)
  config.class_head = "tac"
  if kind == "clusters":  # the heads classify digits, which self-conditioning does not use
    with pytest.raises(ConfigError, match="config.class_head='tac' is not allowed"):
      config_lib.validate(config)
  else:
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


@pytest.mark.parametrize(
  "base, name, expected",
  [
    ("default", "sgd", {"learning_rate": 1e-4}),  # adam's b1, b2, eps left behind
    ("default", "rmsprop", {"learning_rate": 1e-4, "eps": 1e-7}),
    ("wgan", "adam", {"learning_rate": 5e-5, "eps": 1e-7}),  # rmsprop's decay, eps_in_sqrt left behind
    ("wgan", "sgd", {"learning_rate": 5e-5}),
  ],
)
def test_switching_the_optimizer_by_name_drops_the_fields_of_the_one_it_replaces(base, name, expected):
  config = load(base)
  config.critic_optimizer.name = name  # as --config.critic_optimizer.name=... does
  config_lib.validate(config)
  assert optimizers.optimizer_arguments(config.critic_optimizer, "config.critic_optimizer") == (name, expected)
  optimizers.make_optimizer(config.critic_optimizer, "config.critic_optimizer")  # optax takes them


@pytest.mark.parametrize(
  "name, field, value, message",
  [
    ("adam", "b1", 2.0, "config.generator_optimizer.b1=2.0 is not allowed; it must be a number in [0, 1)"),
    ("adam", "b1", 1.0, "config.generator_optimizer.b1=1.0 is not allowed; it must be a number in [0, 1)"),
    ("adam", "b2", -0.1, "config.generator_optimizer.b2=-0.1 is not allowed; it must be a number in [0, 1)"),
    ("adam", "eps", -1e-8, "config.generator_optimizer.eps=-1e-08 is not allowed; it must be a number >= 0"),
    ("adam", "eps", float("nan"), "config.generator_optimizer.eps=nan is not allowed; it must be a number >= 0"),
    ("adam", "eps_root", -1.0, "config.generator_optimizer.eps_root=-1.0 is not allowed; it must be a number >= 0"),
    ("adam", "nesterov", 1, "config.generator_optimizer.nesterov=1 is not allowed; it must be True or False"),
    ("adam", "mu_dtype", "float33", "config.generator_optimizer.mu_dtype='float33' is not allowed; it must be None"),
    ("adam", "learning_rate", 0.0, "config.generator_optimizer.learning_rate=0.0 is not allowed; it must be a num"),
    ("adam", "learning_rate", float("inf"), "config.generator_optimizer.learning_rate=inf is not allowed"),
    ("adamw", "weight_decay", -0.1, "config.generator_optimizer.weight_decay=-0.1 is not allowed; it must be a nu"),
    ("rmsprop", "decay", 1.5, "config.generator_optimizer.decay=1.5 is not allowed; it must be a number in [0, 1)"),
    ("rmsprop", "momentum", 1.0, "config.generator_optimizer.momentum=1.0 is not allowed; it must be None (no mo"),
    ("rmsprop", "initial_scale", -1.0, "config.generator_optimizer.initial_scale=-1.0 is not allowed; it must be"),
    ("rmsprop", "centered", "yes", "config.generator_optimizer.centered='yes' is not allowed; it must be True or"),
    ("sgd", "momentum", -0.5, "config.generator_optimizer.momentum=-0.5 is not allowed; it must be None (no mome"),
    ("sgd", "accumulator_dtype", 3, "config.generator_optimizer.accumulator_dtype=3 is not allowed; it must be"),
  ],
)
def test_every_optimizer_field_out_of_range_is_named_with_what_is_allowed(name, field, value, message):
  config = default.get_config()
  config.generator_optimizer.name = name
  with config.unlocked():
    config.generator_optimizer[field] = value
  with pytest.raises(ConfigError, match="^" + re.escape(message)):
    config_lib.validate(config)


@pytest.mark.parametrize(
  "name, fields",
  [
    ("adam", dict(b1=0.0, b2=0.0, eps=0.0, eps_root=1e-8, mu_dtype="bfloat16", nesterov=True)),
    ("adamw", dict(weight_decay=0.0, mask=None)),
    ("rmsprop", dict(decay=0.0, momentum=0.9, centered=True, initial_scale=1.0, bias_correction=True)),
    ("sgd", dict(momentum=None, nesterov=False, accumulator_dtype="float32")),
  ],
)
def test_optimizer_fields_at_the_edges_of_their_ranges_are_accepted(name, fields):
  config = default.get_config()
  config.generator_optimizer.name = name
  with config.unlocked():
    config.generator_optimizer.update(fields)
  config_lib.validate(config)
  assert optimizers.optimizer_arguments(config.generator_optimizer, "g")[1].items() >= fields.items()


@pytest.mark.parametrize("name", sorted(optimizers.OPTIMIZERS))
def test_every_argument_of_every_optimizer_has_a_range(name):
  arguments = inspect.signature(optimizers.OPTIMIZERS[name]).parameters
  assert set(arguments) <= set(optimizers.ARGUMENT_RANGES), "an optax upgrade added an argument: give it a range"


def test_a_bad_optimizer_field_stops_a_run_before_it_loads_data_or_touches_its_workdir(tmp_path):
  from ganjax import train

  config = default.get_config()
  config.generator_optimizer.b1 = 2.0  # issue 34 item 8: this trained and exited 0
  config.data_dir, config.download = str(tmp_path / "no_data"), False
  with pytest.raises(ConfigError, match=r"^config.generator_optimizer.b1=2.0 is not allowed"):
    train.build(config, str(tmp_path / "run"))
  assert os.listdir(tmp_path) == []


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
  heads = {"class_head"}
  # Self-conditioning adds a cluster input to the same layers (as the conditional models' label input);
  # sampling_batch_norm and sampling_latent_scale change only how a trained G is sampled.
  clusters = {"conditioning", "num_clusters"}  # unconditional -> clusters only (checked below)
  assert changed <= training | heads | clusters | {"sampling_batch_norm", "sampling_latent_scale"}
  assert {"generator_optimizer", "ema_decay"} <= changed  # what the measurements support
  paper_fields = ("generator_features", "critic_features", "latent_dim", "dropout_rate", "batch_size", "loss")
  for field in (*paper_fields, "gradient_penalty_weight"):
    assert tuned_config[field] == paper_config[field]
  if "conditioning" in changed:  # told the digit stays told the digit; only unconditional recipes add clusters
    assert (paper_config["conditioning"], tuned_config["conditioning"]) == ("none", "clusters")


def test_the_fast_recipe_keeps_the_paper_models_and_loss_and_samples_as_cwgan_gp_tuned():
  # Issue 21: the paper's generator and critic; everything else (batch, rates, length) may change.
  fast, paper, tuned = load("cwgan_gp_fast"), load("cwgan_gp"), load("cwgan_gp_tuned")
  model = ("generator_features", "critic_features", "latent_dim", "dropout_rate", "leaky_relu_slope", "loss")
  assert all(fast[field] == paper[field] for field in (*model, "conditioning", "gradient_penalty_weight"))
  sampling = ("ema_decay", "sampling_batch_norm", "sampling_latent_scale", "class_head")
  assert all(fast[field] == tuned[field] for field in sampling)
  assert fast.batch_size < tuned.batch_size and fast.twin_loss_cap == pytest.approx(2.302585, abs=1e-6)


def old_saved_config(**fields) -> dict:
  """A config.json as ganjax wrote it before the conditioning schema: the five old knobs, no newer fields."""
  saved = default.get_config().to_dict()
  for field in ("conditioning", "num_clusters", "critic_label_input", "class_head", "class_head_weight"):
    saved.pop(field)
  for field in ("progress_every_seconds", "conv_impl", "ema_decay", "sampling_batch_norm", "sampling_latent_scale"):
    saved.pop(field)
  saved.update(num_classes=0, critic_conditioning="projection", auxiliary_classifier_weight=0.0)
  saved.update(fields)
  return saved


@pytest.mark.parametrize(
  "old, new",
  [
    ({}, dict(conditioning="none", num_clusters=0, class_head="none")),
    (dict(num_classes=10), dict(conditioning="digit", num_clusters=0, class_head="none")),
    (dict(num_clusters=100), dict(conditioning="clusters", num_clusters=100, class_head="none")),
    (dict(num_classes=10, clusters_per_class=10), dict(conditioning="digit_clusters", num_clusters=10)),
    (dict(num_classes=10, auxiliary_classifier_weight=0.5), dict(class_head="ac", class_head_weight=0.5)),
    (
      dict(num_classes=10, auxiliary_classifier_weight=1.0, twin_auxiliary_classifier=True),
      dict(conditioning="digit", class_head="tac", class_head_weight=1.0),
    ),
    (dict(critic_conditioning="concat", num_classes=10), dict(critic_label_input="concat")),
  ],
)
def test_upgrade_maps_an_old_saved_config_onto_the_schema_as_the_same_run(old, new):
  config = saved_run.upgrade(old_saved_config(**old))
  for field, value in new.items():
    assert config[field] == value, field
  # Fields added since take the values that reproduce old runs, whatever today's defaults are.
  assert (config.conv_impl, config.ema_decay, config.sampling_batch_norm, config.sampling_latent_scale) == (
    "auto",
    0.0,
    "moving",
    1.0,
  )
  config_lib.validate(config)
  assert not {"num_classes", "clusters_per_class", "auxiliary_classifier_weight"} & set(config)


def test_a_field_only_few_labels_reads_upgrades_to_the_old_value_there_and_to_today_s_elsewhere():
  saved = default.get_config().to_dict()
  del saved["self_training_labeller"]
  assert saved_run.upgrade(saved).self_training_labeller == default.get_config().self_training_labeller
  few = {**saved, "conditioning": "few_labels", "num_clusters": 100, "labels_per_class": 10}
  assert saved_run.upgrade(few).self_training_labeller == "classifier"  # the namer it was trained with


def test_upgrade_keeps_a_current_config_and_refuses_unknown_fields():
  current = default.get_config()
  current.conditioning, current.num_clusters = "clusters", 7
  assert saved_run.upgrade(current.to_dict()).to_dict() == current.to_dict()
  with pytest.raises(ConfigError, match="unknown field 'wings'"):
    saved_run.upgrade({**current.to_dict(), "wings": 2})


def test_upgrade_keeps_a_saved_optimiser_whole_and_a_shipped_config_resumes_its_own_saved_run():
  from ganjax import workdir as workdir_lib

  wgan = load("wgan")  # RMSprop, where the default is Adam: the saved dict must not gain Adam's b1 / b2
  saved = json.loads(wgan.to_json())
  for field in ("progress_every_seconds", "divergence_bound", "conditioning", "class_head", "class_head_weight"):
    saved.pop(field)
  upgraded = saved_run.upgrade(saved)
  assert upgraded.critic_optimizer.to_dict() == wgan.critic_optimizer.to_dict()
  saved_run.check_resume(upgraded, wgan, "/a/run")  # the same run: accepted
