"""Config validation and the few quantities derived from a config, checked once at start-up."""

import inspect
import math

import jax
import ml_collections
import optax

from ganjax import losses, models
from ganjax.errors import ConfigError

OPTIMIZERS = {"adam": optax.adam, "adamw": optax.adamw, "rmsprop": optax.rmsprop, "sgd": optax.sgd}
MNIST_TRAIN_SIZE = 60_000
MNIST_NUM_CLASSES = 10
PARALLEL_MODES = ("jit", "pmap")  # ganjax.parallel: jit over a device mesh, or pmap
CONV_IMPL_CHOICES = ("auto", *models.CONV_IMPLS)
SAMPLING_BATCH_NORM_MODES = ("moving", "batch")  # steps.sample: BatchNorm statistics of G when sampling


def resolve_conv_impl(conv_impl: str, backend: str | None = None) -> str:
  """'auto' -> the measured-fastest implementation for the backend: 'hybrid' on CPU, 'plain' elsewhere."""
  if conv_impl != "auto":
    return conv_impl
  return "hybrid" if (backend or jax.default_backend()) == "cpu" else "plain"


def make_optimizer(optimizer_config: ml_collections.ConfigDict, field: str) -> optax.GradientTransformation:
  """The optax optimiser a config sub-dict names, e.g. {name: 'adam', learning_rate: 1e-4, b1: 0.5}."""
  kwargs = dict(optimizer_config)
  name = kwargs.pop("name", None)
  if name not in OPTIMIZERS:
    raise ConfigError(f"{field}.name={name!r} is not an optimiser; allowed: {', '.join(OPTIMIZERS)}")
  allowed = inspect.signature(OPTIMIZERS[name]).parameters
  unknown = sorted(set(kwargs) - set(allowed))
  if unknown:
    raise ConfigError(f"{field}: optax.{name} takes no argument {unknown[0]!r}; allowed: {', '.join(allowed)}")
  if not kwargs.get("learning_rate", 0) > 0:
    raise ConfigError(f"{field}.learning_rate={kwargs.get('learning_rate')!r}; it must be > 0")
  return OPTIMIZERS[name](**kwargs)


def _require(ok: bool, field: str, value, allowed: str) -> None:
  if not ok:
    raise ConfigError(f"config.{field}={value!r} is not allowed; {allowed}")


def _is_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def is_valid_latent_scale(scale) -> bool:
  """A std for G's sampling noise: a finite number > 0 (config.sampling_latent_scale, export's override)."""
  return isinstance(scale, (int, float)) and not isinstance(scale, bool) and math.isfinite(scale) and scale > 0


def validate_sampling(config: ml_collections.ConfigDict) -> None:
  """The fields that only change how a trained G is sampled (also checked when a finished run is re-sampled;
  configs saved before a field existed get its default)."""
  batch_norm = config.get("sampling_batch_norm", "moving")
  allowed_modes = ", ".join(SAMPLING_BATCH_NORM_MODES)
  _require(batch_norm in SAMPLING_BATCH_NORM_MODES, "sampling_batch_norm", batch_norm, f"allowed: {allowed_modes}")
  scale = config.get("sampling_latent_scale", 1.0)
  _require(
    is_valid_latent_scale(scale), "sampling_latent_scale", scale, "it must be a number > 0 (1: z ~ N(0, I) as trained)"
  )


def validate(config: ml_collections.ConfigDict) -> None:
  """Raise ConfigError naming the first bad field and what it may be."""
  _require(config.loss in losses.OBJECTIVES, "loss", config.loss, f"allowed: {', '.join(losses.OBJECTIVES)}")
  for field in (
    "num_critic_steps",
    "batch_size",
    "latent_dim",
    "log_every_steps",
    "checkpoint_every_steps",
    "keep_checkpoints",
    "num_sample_images",
  ):
    value = config[field]
    _require(_is_int(value) and value >= 1, field, value, "it must be an integer >= 1")
  _require(
    _is_int(config.train_subset) and 0 <= config.train_subset <= MNIST_TRAIN_SIZE,
    "train_subset",
    config.train_subset,
    f"it must be 0 (all) or a number of images up to {MNIST_TRAIN_SIZE}",
  )
  _require(
    _is_int(config.examples_per_class) and config.examples_per_class >= 0,
    "examples_per_class",
    config.examples_per_class,
    "it must be 0 (all) or a number of images per class",
  )
  num_images = config.train_subset or MNIST_TRAIN_SIZE
  if config.examples_per_class:
    num_images = min(num_images, MNIST_NUM_CLASSES * config.examples_per_class)
  _require(
    config.batch_size <= num_images,
    "batch_size",
    config.batch_size,
    f"it must be at most the {num_images} training images",
  )
  _require(
    math.isqrt(config.num_sample_images) ** 2 == config.num_sample_images,
    "num_sample_images",
    config.num_sample_images,
    "it must be a square number (the grid is square)",
  )
  _require(
    config.num_epochs > 0 or config.num_train_steps > 0,
    "num_epochs",
    config.num_epochs,
    "it must be > 0 (or set num_train_steps > 0)",
  )
  _require(
    _is_int(config.num_train_steps),
    "num_train_steps",
    config.num_train_steps,
    "it must be an integer (-1: from num_epochs)",
  )
  _require(
    len(config.generator_features) == 3 and all(_is_int(f) and f >= 1 for f in config.generator_features),
    "generator_features",
    config.generator_features,
    "it must be 3 positive widths (Dense 7x7xF0, ConvT F1, ConvT F2): the 28x28 output fixes the depth",
  )
  _require(
    len(config.critic_features) >= 1 and all(_is_int(f) and f >= 1 for f in config.critic_features),
    "critic_features",
    config.critic_features,
    "it must be one or more positive widths",
  )
  _require(0 <= config.dropout_rate < 1, "dropout_rate", config.dropout_rate, "it must be in [0, 1)")
  _require(
    0 < config.batch_norm_momentum < 1, "batch_norm_momentum", config.batch_norm_momentum, "it must be in (0, 1)"
  )
  _require(config.clip_value > 0, "clip_value", config.clip_value, "it must be > 0")
  _require(
    config.gradient_penalty_weight >= 0, "gradient_penalty_weight", config.gradient_penalty_weight, "it must be >= 0"
  )
  _require(
    all(_is_int(e) and e >= 1 for e in config.sample_epochs),
    "sample_epochs",
    config.sample_epochs,
    "it must be a tuple of epochs >= 1",
  )
  _require(
    config.conv_impl in CONV_IMPL_CHOICES, "conv_impl", config.conv_impl, f"allowed: {', '.join(CONV_IMPL_CHOICES)}"
  )
  _require(
    config.num_classes in (0, MNIST_NUM_CLASSES),
    "num_classes",
    config.num_classes,
    f"allowed: 0 (unconditional) or {MNIST_NUM_CLASSES} (conditional on the digit)",
  )
  _require(
    config.critic_conditioning in models.CRITIC_CONDITIONINGS,
    "critic_conditioning",
    config.critic_conditioning,
    f"allowed: {', '.join(models.CRITIC_CONDITIONINGS)}",
  )
  validate_sampling(config)
  _require(
    config.auxiliary_classifier_weight >= 0 and (config.auxiliary_classifier_weight == 0 or config.num_classes > 0),
    "auxiliary_classifier_weight",
    config.auxiliary_classifier_weight,
    "it must be >= 0, and 0 unless the model is conditional (num_classes > 0)",
  )
  _require(
    isinstance(config.twin_auxiliary_classifier, bool)
    and (not config.twin_auxiliary_classifier or config.auxiliary_classifier_weight > 0),
    "twin_auxiliary_classifier",
    config.twin_auxiliary_classifier,
    "it must be True or False, and False unless auxiliary_classifier_weight > 0 (TAC-GAN twins the AC head)",
  )
  _require(
    _is_int(config.num_clusters)
    and (config.num_clusters == 0 or (config.num_clusters >= 2 and config.num_classes == 0)),
    "num_clusters",
    config.num_clusters,
    "it must be 0 (no self-conditioning) or an integer >= 2, and 0 for a conditional model (num_classes > 0)",
  )
  clusters_per_class = config.get("clusters_per_class", 0)  # configs saved before it existed: off
  _require(
    _is_int(clusters_per_class)
    and (clusters_per_class == 0 or (clusters_per_class >= 2 and config.num_classes > 0)),
    "clusters_per_class",
    clusters_per_class,
    "it must be 0 (off) or an integer >= 2, and 0 unless the model is conditional on the digit (num_classes > 0)",
  )
  _require(0 <= config.ema_decay < 1, "ema_decay", config.ema_decay, "it must be in [0, 1) (0: no EMA)")
  _require(config.eval_every_epochs >= 0, "eval_every_epochs", config.eval_every_epochs, "it must be >= 0 (0: never)")
  _require(
    _is_int(config.eval_num_samples) and config.eval_num_samples >= 10,
    "eval_num_samples",
    config.eval_num_samples,
    "it must be an integer >= 10",
  )
  _require(config.parallel in PARALLEL_MODES, "parallel", config.parallel, f"allowed: {', '.join(PARALLEL_MODES)}")
  _require(
    _is_int(config.num_devices) and config.num_devices >= 0,
    "num_devices",
    config.num_devices,
    "it must be 0 (every device) or a device count",
  )
  make_optimizer(config.generator_optimizer, "config.generator_optimizer")
  make_optimizer(config.critic_optimizer, "config.critic_optimizer")


def batches_per_epoch(config: ml_collections.ConfigDict, num_examples: int) -> int:
  """Real batches in one pass over the data; the partial last batch is dropped."""
  return num_examples // config.batch_size


def total_train_steps(config: ml_collections.ConfigDict, num_examples: int) -> int:
  """Generator steps of the whole run: num_train_steps, or num_epochs passes of real batches."""
  if config.num_train_steps > 0:
    return config.num_train_steps
  batches = math.floor(config.num_epochs * batches_per_epoch(config, num_examples))
  return max(1, batches // config.num_critic_steps)
