"""Config validation and the few quantities derived from a config, checked once at start-up."""

import math

import jax
import ml_collections

from ganjax import conditioning, diff_augment, losses, models, optimizers
from ganjax.data import mnist
from ganjax.ssl import config as ssl_config
from ganjax.validation import is_int, is_number, positive_ints, require

PARALLEL_MODES = ("jit", "pmap")  # ganjax.parallel: jit over a device mesh, or pmap
CONV_IMPL_CHOICES = ("auto", *models.CONV_IMPLS)
SAMPLING_BATCH_NORM_MODES = ("moving", "batch")  # steps.sample: BatchNorm statistics of G when sampling
# Who labels the unlabelled images after each round of the few-labels namer (ganjax/few_labels/self_training.py).
SELF_TRAINING_LABELLERS = ("spreading", "classifier")


def resolve_conv_impl(conv_impl: str, backend: str | None = None) -> str:
  """'auto' -> the measured-fastest implementation for the backend: 'hybrid' on CPU, 'plain' elsewhere."""
  if conv_impl != "auto":
    return conv_impl
  return "hybrid" if (backend or jax.default_backend()) == "cpu" else "plain"


# How both optimisers' step sizes fall over a run (schedules.learning_rate_scale).
LEARNING_RATE_DECAYS = ("none", "linear", "cosine")


def is_valid_latent_scale(scale) -> bool:
  """A std for G's sampling noise: a finite number > 0 (config.sampling_latent_scale, export's override)."""
  return is_number(scale) and scale > 0


def validate_sampling(config: ml_collections.ConfigDict) -> None:
  """The fields that only change how a trained G is sampled (also checked when a finished run is re-sampled)."""
  batch_norm = config.sampling_batch_norm
  allowed_modes = ", ".join(SAMPLING_BATCH_NORM_MODES)
  require(batch_norm in SAMPLING_BATCH_NORM_MODES, "sampling_batch_norm", batch_norm, f"allowed: {allowed_modes}")
  scale = config.sampling_latent_scale
  require(
    is_valid_latent_scale(scale), "sampling_latent_scale", scale, "it must be a number > 0 (1: z ~ N(0, I) as trained)"
  )


def validate_data(config: ml_collections.ConfigDict) -> None:
  """Which images a run trains on, in batches of what size."""
  positive_ints(config, "batch_size")
  require(
    is_int(config.train_subset) and 0 <= config.train_subset <= mnist.TRAIN_SIZE,
    "train_subset",
    config.train_subset,
    f"it must be 0 (all) or a number of images up to {mnist.TRAIN_SIZE}",
  )
  require(
    is_int(config.examples_per_class) and config.examples_per_class >= 0,
    "examples_per_class",
    config.examples_per_class,
    "it must be 0 (all) or a number of images per class",
  )
  num_images = config.train_subset or mnist.TRAIN_SIZE
  if config.examples_per_class:
    num_images = min(num_images, mnist.NUM_DIGITS * config.examples_per_class)
  require(
    config.batch_size <= num_images,
    "batch_size",
    config.batch_size,
    f"it must be at most the {num_images} training images",
  )


def validate_length(config: ml_collections.ConfigDict) -> None:
  require(
    config.num_epochs > 0 or config.num_train_steps > 0,
    "num_epochs",
    config.num_epochs,
    "it must be > 0 (or set num_train_steps > 0)",
  )
  require(
    is_int(config.num_train_steps),
    "num_train_steps",
    config.num_train_steps,
    "it must be an integer (-1: from num_epochs)",
  )


def validate_model(config: ml_collections.ConfigDict) -> None:
  positive_ints(config, "latent_dim")
  require(
    len(config.generator_features) == 3 and all(is_int(f) and f >= 1 for f in config.generator_features),
    "generator_features",
    config.generator_features,
    "it must be 3 positive widths (Dense 7x7xF0, ConvT F1, ConvT F2): the 28x28 output fixes the depth",
  )
  require(
    len(config.critic_features) >= 1 and all(is_int(f) and f >= 1 for f in config.critic_features),
    "critic_features",
    config.critic_features,
    "it must be one or more positive widths",
  )
  require(0 <= config.dropout_rate < 1, "dropout_rate", config.dropout_rate, "it must be in [0, 1)")
  require(
    0 < config.batch_norm_momentum < 1, "batch_norm_momentum", config.batch_norm_momentum, "it must be in (0, 1)"
  )
  require(
    config.conv_impl in CONV_IMPL_CHOICES, "conv_impl", config.conv_impl, f"allowed: {', '.join(CONV_IMPL_CHOICES)}"
  )
  augment = config.critic_augment
  require(isinstance(augment, str), "critic_augment", augment, "it must be a string such as 'translation,cutout'")
  try:
    diff_augment.parse(augment)
  except ValueError as error:
    require(False, "critic_augment", augment, f"{error} ('' is off)")


def validate_conditioning(config: ml_collections.ConfigDict) -> None:
  """What the models are told (ganjax/conditioning.py) and the critic's class heads, which need the digit."""
  kind = config.conditioning
  require(kind in conditioning.KINDS, "conditioning", kind, f"allowed: {', '.join(conditioning.KINDS)}")
  described = conditioning.Conditioning(kind, config.num_clusters)
  clustered = described.uses_clusters
  require(
    is_int(config.num_clusters) and (config.num_clusters >= 2 if clustered else config.num_clusters == 0),
    "num_clusters",
    config.num_clusters,
    "it must be an integer >= 2 with conditioning clusters, digit_clusters or few_labels, else 0",
  )
  _validate_labelled_few(config, described)
  require(
    config.critic_label_input in models.CRITIC_LABEL_INPUTS,
    "critic_label_input",
    config.critic_label_input,
    f"allowed: {', '.join(models.CRITIC_LABEL_INPUTS)}",
  )
  heads = ", ".join(losses.CLASS_HEADS)
  require(config.class_head in losses.CLASS_HEADS, "class_head", config.class_head, f"allowed: {heads}")
  require(
    config.class_head == "none" or described.trains_on_digits,
    "class_head",
    config.class_head,
    "it must be none unless conditioning is digit or digit_clusters (the heads classify digits)",
  )
  weight = config.class_head_weight
  require(is_number(weight) and weight > 0, "class_head_weight", weight, "it must be a number > 0")
  cap = config.twin_loss_cap
  require(
    is_number(cap) and cap >= 0 and (cap == 0 or config.class_head == "tac"),
    "twin_loss_cap",
    cap,
    "it must be a number >= 0, and 0 unless class_head is tac",
  )


def _validate_labelled_few(config: ml_collections.ConfigDict, described: conditioning.Conditioning) -> None:
  """The labelled few (conditioning few_labels, semi_supervised), and the namer of few_labels (ganjax/few_labels/)."""
  few = described.uses_labelled_few
  require(
    is_int(config.labels_per_class) and (config.labels_per_class >= 1 if few else config.labels_per_class == 0),
    "labels_per_class",
    config.labels_per_class,
    "it must be an integer >= 1 with conditioning few_labels or semi_supervised, else 0",
  )
  require(is_int(config.label_seed) and config.label_seed >= 0, "label_seed", config.label_seed, "an integer >= 0")
  if few:
    require(
      not config.examples_per_class,
      "examples_per_class",
      config.examples_per_class,
      f"it must be 0 with {described.kind}, which trains on every image (labels_per_class sets the labelled few)",
    )
  if described.recognizes:
    ssl_config.validate(config)
  elif few:
    _validate_namer(config)


def _validate_namer(config: ml_collections.ConfigDict) -> None:
  require(config.num_clusters >= 10, "num_clusters", config.num_clusters, "few_labels needs >= 10 (the digits)")
  rounds, steps_ = config.self_training_rounds, config.self_training_steps
  require(is_int(rounds) and rounds >= 0, "self_training_rounds", rounds, "it must be an integer >= 0")
  require(is_int(steps_) and steps_ >= 1, "self_training_steps", steps_, "it must be an integer >= 1")
  labeller = config.self_training_labeller
  allowed = ", ".join(SELF_TRAINING_LABELLERS)
  require(labeller in SELF_TRAINING_LABELLERS, "self_training_labeller", labeller, f"allowed: {allowed}")
  confidence = config.few_labels_min_confidence
  require(
    is_number(confidence) and 0 <= confidence < 1, "few_labels_min_confidence", confidence, "it must be in [0, 1)"
  )


def validate_objective(config: ml_collections.ConfigDict) -> None:
  recognizes = conditioning.Conditioning(config.conditioning).recognizes
  allowed = losses.SEMI_SUPERVISED_OBJECTIVES if recognizes else losses.OBJECTIVES
  where = " with conditioning semi_supervised" if recognizes else ""
  if config.loss in losses.SEMI_SUPERVISED_OBJECTIVES and not recognizes:
    where = " (feature_matching is for conditioning semi_supervised)"
  require(config.loss in allowed, "loss", config.loss, f"allowed{where}: {', '.join(allowed)}")
  positive_ints(config, "num_critic_steps")
  require(config.clip_value > 0, "clip_value", config.clip_value, "it must be > 0")
  require(
    config.gradient_penalty_weight >= 0, "gradient_penalty_weight", config.gradient_penalty_weight, "it must be >= 0"
  )
  require(0 <= config.ema_decay < 1, "ema_decay", config.ema_decay, "it must be in [0, 1) (0: no EMA)")
  bound = config.divergence_bound
  require(is_number(bound) and bound > 0, "divergence_bound", bound, "it must be a number > 0")
  optimizers.make_optimizer(config.generator_optimizer, "config.generator_optimizer")
  optimizers.make_optimizer(config.critic_optimizer, "config.critic_optimizer")
  decays = ", ".join(LEARNING_RATE_DECAYS)
  require(
    config.learning_rate_decay in LEARNING_RATE_DECAYS,
    "learning_rate_decay",
    config.learning_rate_decay,
    f"allowed: {decays}",
  )
  start = config.learning_rate_decay_start
  require(is_number(start) and 0 <= start < 1, "learning_rate_decay_start", start, "it must be in [0, 1)")


def validate_parallel(config: ml_collections.ConfigDict) -> None:
  require(config.parallel in PARALLEL_MODES, "parallel", config.parallel, f"allowed: {', '.join(PARALLEL_MODES)}")
  require(
    is_int(config.num_devices) and config.num_devices >= 0,
    "num_devices",
    config.num_devices,
    "it must be 0 (every device) or a device count",
  )


def validate_output(config: ml_collections.ConfigDict) -> None:
  """Logs, checkpoints, grids and evaluations: what a run writes and how often."""
  positive_ints(config, "log_every_steps", "checkpoint_every_steps", "keep_checkpoints", "num_sample_images")
  seconds = config.progress_every_seconds
  require(is_number(seconds) and seconds >= 0, "progress_every_seconds", seconds, "it must be >= 0 (0: off)")
  require(
    math.isqrt(config.num_sample_images) ** 2 == config.num_sample_images,
    "num_sample_images",
    config.num_sample_images,
    "it must be a square number (the grid is square)",
  )
  require(
    all(is_int(e) and e >= 1 for e in config.sample_epochs),
    "sample_epochs",
    config.sample_epochs,
    "it must be a tuple of epochs >= 1",
  )
  require(config.eval_every_epochs >= 0, "eval_every_epochs", config.eval_every_epochs, "it must be >= 0 (0: never)")
  require(
    is_int(config.eval_num_samples) and config.eval_num_samples >= 10,
    "eval_num_samples",
    config.eval_num_samples,
    "it must be an integer >= 10",
  )


def validate(config: ml_collections.ConfigDict) -> None:
  """Raise ConfigError naming the first bad field and what it may be; each section is checked here, once."""
  for section in (
    validate_objective,
    validate_data,
    validate_length,
    validate_model,
    validate_conditioning,
    validate_sampling,
    validate_parallel,
    validate_output,
  ):
    section(config)


def batches_per_epoch(config: ml_collections.ConfigDict, num_examples: int) -> int:
  """Real batches in one pass over the data; the partial last batch is dropped."""
  return num_examples // config.batch_size


def total_train_steps(config: ml_collections.ConfigDict, num_examples: int) -> int:
  """Generator steps of the whole run: num_train_steps, or num_epochs passes of real batches."""
  if config.num_train_steps > 0:
    return config.num_train_steps
  batches = math.floor(config.num_epochs * batches_per_epoch(config, num_examples))
  return max(1, batches // config.num_critic_steps)
