"""The training state and the pure update steps: critic_step, generator_step, train_step, sample.
Their per-example random draws are in example_draws.py, what changes with the step (decays, EMA) in schedules.py.

Everything here is a pure function of (state, batch, key); static choices (loss family, n_critic, the
models and optimisers) live in a `GanSetup` bound with functools.partial before jit.
"""

import dataclasses
import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from ganjax import config as config_lib
from ganjax import diff_augment, example_draws, losses, optimizers, schedules
from ganjax import images as images_lib
from ganjax.conditioning import Conditioning
from ganjax.models import Critic, CriticOutput, Generator

PyTree = Any
Metrics = dict[str, jax.Array]


@flax.struct.dataclass
class TrainState:
  """All mutable training state, one pytree: what a checkpoint holds (with the RNG key and data position)."""

  step: jax.Array  # generator updates done
  generator_params: PyTree
  generator_batch_stats: PyTree  # BatchNorm moving statistics, used when sampling
  critic_params: PyTree
  generator_opt_state: optax.OptState
  critic_opt_state: optax.OptState
  # Exponential moving average of generator_params when config.ema_decay > 0 (else None): used for sampling.
  generator_ema_params: PyTree = None
  # Runs conditioned on clusters (config.conditioning clusters or digit_clusters): each cluster's share of the
  # training images, float [num_labels]; what G's clusters are drawn from, in training and sampling.
  cluster_shares: jax.Array | None = None


@dataclasses.dataclass(frozen=True)
class GanSetup:
  """The static part of a run: models, optimisers, objective, conditioning and sampling."""

  generator: Generator
  critic: Critic
  generator_optimizer: optax.GradientTransformation
  critic_optimizer: optax.GradientTransformation
  objective: losses.Objective
  num_critic_steps: int
  latent_dim: int
  conditioning: Conditioning = Conditioning()
  class_head: str = "none"  # none | ac | tac: the critic's class heads (losses.CLASS_HEADS)
  class_head_weight: float = 1.0  # their losses' weight, in the critic's loss and G's
  twin_loss_cap: float = 0.0  # > 0: G's per-fake twin cross-entropy is capped here (losses.generator_class_head_terms)
  learning_rate_decay: str = "none"  # none | linear | cosine: both step sizes over the run (schedules.py)
  learning_rate_decay_start: float = 0.0  # the fraction of the run after which the decay starts
  total_steps: int = 0  # the run's generator steps (train.build sets them; the decays need them)
  ema_decay: float = 0.0  # > 0: keep an exponential moving average of the generator's parameters
  sampling_batch_norm: str = "moving"  # moving | batch: G's BatchNorm statistics when sampling (see sample)
  sampling_latent_scale: float = 1.0  # the std of G's noise when sampling (see sample)
  critic_augment: tuple[str, ...] = ()  # DiffAugment operations on every critic input (ganjax/diff_augment.py)
  # Data parallelism (ganjax.parallel): the pmap axis to average over, or the jit mesh's example sharding.
  axis_name: str | None = None
  example_sharding: jax.sharding.Sharding | None = None

  @property
  def num_labels(self) -> int:
    """The size of the models' label set (0: unconditional)."""
    return self.conditioning.num_labels


def make_setup(
  config: ml_collections.ConfigDict,
  axis_name: str | None = None,
  example_sharding: jax.sharding.Sharding | None = None,
) -> GanSetup:
  """The GanSetup of a validated (or upgraded) config."""
  conv_impl = config_lib.resolve_conv_impl(config.conv_impl)
  conditioning = Conditioning(config.conditioning, config.num_clusters)
  return GanSetup(
    generator=Generator(
      features=tuple(config.generator_features),
      leaky_relu_slope=config.leaky_relu_slope,
      batch_norm_momentum=config.batch_norm_momentum,
      batch_norm_epsilon=config.batch_norm_epsilon,
      axis_name=axis_name,
      conv_impl=conv_impl,
      num_labels=conditioning.num_labels,
    ),
    critic=Critic(
      features=tuple(config.critic_features),
      dropout_rate=config.dropout_rate,
      leaky_relu_slope=config.leaky_relu_slope,
      conv_impl=conv_impl,
      num_labels=conditioning.num_labels,
      label_input=config.critic_label_input,
      class_head=config.class_head,
      class_head_classes=conditioning.num_digits,
    ),
    generator_optimizer=optimizers.make_optimizer(config.generator_optimizer, "config.generator_optimizer"),
    critic_optimizer=optimizers.make_optimizer(config.critic_optimizer, "config.critic_optimizer"),
    objective=losses.make_objective(config.loss, config.clip_value, config.gradient_penalty_weight),
    num_critic_steps=config.num_critic_steps,
    latent_dim=config.latent_dim,
    conditioning=conditioning,
    class_head=config.class_head,
    class_head_weight=config.class_head_weight,
    twin_loss_cap=config.twin_loss_cap,
    learning_rate_decay=config.learning_rate_decay,
    learning_rate_decay_start=config.learning_rate_decay_start,
    ema_decay=config.ema_decay,
    sampling_batch_norm=config.sampling_batch_norm,
    sampling_latent_scale=config.sampling_latent_scale,
    critic_augment=diff_augment.parse(config.critic_augment),
    axis_name=axis_name,
    example_sharding=example_sharding,
  )


def create_state(setup: GanSetup, key: jax.Array, image_shape=(28, 28, 1)) -> TrainState:
  generator_key, critic_key = jax.random.split(key)
  labels = jnp.zeros((1,), jnp.int32) if setup.num_labels else None
  generator_vars = setup.generator.init(generator_key, jnp.zeros((1, setup.latent_dim)), train=False, labels=labels)
  critic_vars = setup.critic.init(critic_key, jnp.zeros((1, *image_shape)), labels=labels)
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    generator_params=generator_vars["params"],
    generator_batch_stats=generator_vars["batch_stats"],
    critic_params=critic_vars["params"],
    generator_opt_state=setup.generator_optimizer.init(generator_vars["params"]),
    critic_opt_state=setup.critic_optimizer.init(critic_vars["params"]),
    # A copy, not the same buffers: the jitted step donates the state, and a buffer can be donated once.
    generator_ema_params=jax.tree.map(jnp.copy, generator_vars["params"]) if setup.ema_decay > 0 else None,
    # Uniform until the run's clusters are known (train.py sets them; checkpoints keep them).
    cluster_shares=jnp.full((setup.num_labels,), 1.0 / setup.num_labels) if setup.conditioning.uses_clusters else None,
  )


# Folded into a step's key for the critic's input augmentation, so runs without it draw every other key as before.
AUGMENT_STREAM = 0xA06


def average_over_devices(setup: GanSetup, tree):
  """Under pmap, the mean over devices (each holds an equal slice); under jit XLA has done it already."""
  return jax.lax.pmean(tree, setup.axis_name) if setup.axis_name is not None else tree


def apply_generator(setup: GanSetup, params, batch_stats, z: jax.Array, labels=None) -> tuple[jax.Array, PyTree]:
  """G(z) in training mode (batch statistics); returns the images and the updated moving statistics."""
  images, updates = setup.generator.apply(
    {"params": params, "batch_stats": batch_stats}, z, train=True, labels=labels, mutable=["batch_stats"]
  )
  return images, updates["batch_stats"]


def critic_step(
  setup: GanSetup, state: TrainState, real_images: jax.Array, key: jax.Array, real_labels: jax.Array | None = None
):
  """One critic update on one real batch (float, [-1, 1]) and a fresh batch of fakes.

  A conditional critic sees fakes drawn for the real batch's labels: real and fake then carry the same
  labels, so the gradient penalty's interpolates have one well-defined label each.
  """
  z_key, real_key, fake_key, eps_key, gp_key = jax.random.split(key, 5)
  batch_size = real_images.shape[0]
  labels = real_labels if setup.num_labels else None
  z = example_draws.draw_noise(setup, z_key, batch_size)
  # G runs in training mode as in the reference trainers, so its moving statistics advance here too.
  fake_images, batch_stats = apply_generator(setup, state.generator_params, state.generator_batch_stats, z, labels)
  fake_images = jax.lax.stop_gradient(fake_images)
  objective = setup.objective
  augment_key = jax.random.fold_in(key, AUGMENT_STREAM)

  def loss_fn(critic_params):
    def critic_fn(images, dropout_key, augment_index) -> CriticOutput:
      images = example_draws.augment_critic_input(setup, jax.random.fold_in(augment_key, augment_index), images)
      keys = example_draws.example_keys(setup, dropout_key, batch_size)
      return setup.critic.apply({"params": critic_params}, images, keys, labels=labels)

    fake, real = critic_fn(fake_images, fake_key, 0), critic_fn(real_images, real_key, 1)
    digits = setup.conditioning.digits_of(labels) if setup.class_head != "none" else None
    metrics = losses.critic_class_head_terms(setup.class_head, real.class_logits, fake.twin_logits, digits)
    loss = objective.critic_loss(real.logits, fake.logits)
    for term in metrics.values():  # the class heads learn from real digits (AC) and from fakes (its twin)
      loss = loss + setup.class_head_weight * term
    metrics.update(real_logit=jnp.mean(real.logits), fake_logit=jnp.mean(fake.logits))
    if objective.wasserstein:  # the critic's own estimate, without the class heads' terms
      metrics["wasserstein_estimate"] = -objective.critic_loss(real.logits, fake.logits)
    if objective.penalises_gradients:
      eps = jax.vmap(jax.random.uniform)(example_draws.example_keys(setup, eps_key, batch_size))
      x_hat = losses.interpolate(real_images, fake_images, eps)
      penalty = losses.gradient_penalty(lambda x: critic_fn(x, gp_key, 2).logits, x_hat)
      loss = loss + objective.gradient_penalty_weight * penalty
      metrics["gradient_penalty"] = penalty
    metrics["critic_loss"] = loss
    return loss, metrics

  grads, metrics = jax.grad(loss_fn, has_aux=True)(state.critic_params)
  grads = average_over_devices(setup, grads)
  updates, critic_opt_state = setup.critic_optimizer.update(grads, state.critic_opt_state, state.critic_params)
  updates = schedules.scale_updates(setup, updates, state.step)
  critic_params = optax.apply_updates(state.critic_params, updates)
  if objective.clips:
    critic_params = losses.clip_params(critic_params, objective.clip_value)
  state = state.replace(
    critic_params=critic_params, critic_opt_state=critic_opt_state, generator_batch_stats=batch_stats
  )
  return state, metrics


def generator_step(setup: GanSetup, state: TrainState, batch_size: int, key: jax.Array):
  """One generator update against the current critic (critic in training mode, as the critic saw fakes)."""
  z_key, dropout_key, label_key = jax.random.split(key, 3)
  z = example_draws.draw_noise(setup, z_key, batch_size)
  labels = example_draws.draw_labels(setup, label_key, batch_size, state.cluster_shares)

  def loss_fn(generator_params):
    fake_images, batch_stats = apply_generator(setup, generator_params, state.generator_batch_stats, z, labels)
    fake_images = example_draws.augment_critic_input(setup, jax.random.fold_in(key, AUGMENT_STREAM), fake_images)
    keys = example_draws.example_keys(setup, dropout_key, batch_size)
    fake = setup.critic.apply({"params": state.critic_params}, fake_images, keys, labels=labels)
    loss = setup.objective.generator_loss(fake.logits)
    if setup.class_head == "none":
      return loss, (batch_stats, {})
    digits = setup.conditioning.digits_of(labels)
    class_loss, metrics = losses.generator_class_head_terms(
      setup.class_head, fake.class_logits, fake.twin_logits, digits, setup.twin_loss_cap
    )
    return loss + setup.class_head_weight * class_loss, (batch_stats, metrics)

  (loss, (batch_stats, extra_metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.generator_params)
  grads = average_over_devices(setup, grads)
  updates, opt_state = setup.generator_optimizer.update(grads, state.generator_opt_state, state.generator_params)
  updates = schedules.scale_updates(setup, updates, state.step)
  generator_params = optax.apply_updates(state.generator_params, updates)
  ema_params = schedules.update_ema(setup.ema_decay, state.generator_ema_params, generator_params, state.step)
  state = state.replace(
    generator_params=generator_params,
    generator_opt_state=opt_state,
    generator_batch_stats=batch_stats,
    generator_ema_params=ema_params,
  )
  return state, {"generator_loss": loss, **extra_metrics}


def train_step(setup: GanSetup, state: TrainState, batch: dict[str, jax.Array], key: jax.Array):
  """n_critic critic updates, each on its own real batch, then one generator update.

  batch["image"]: uint8 [n_critic, B, 28, 28, 1] (under pmap, this device's B / num_devices examples).
  `key` is the run's step key; the step number is folded in here, so a resumed run draws exactly the
  numbers an uninterrupted one would.
  """
  images, labels = batch["image"], batch.get("label")
  if images.shape[0] != setup.num_critic_steps:
    raise ValueError(f"batch holds {images.shape[0]} real batches, expected n_critic={setup.num_critic_steps}")
  *critic_keys, generator_key = jax.random.split(jax.random.fold_in(key, state.step), setup.num_critic_steps + 1)
  critic_metrics = []
  # Unrolled on purpose: under lax.scan XLA:CPU loses its fast convolution path (docs/performance.md).
  for i, critic_key in enumerate(critic_keys):
    real_labels = labels[i] if setup.num_labels else None
    state, metrics = critic_step(setup, state, images_lib.to_float_images(images[i]), critic_key, real_labels)
    critic_metrics.append(metrics)
  state, generator_metrics = generator_step(setup, state, images.shape[1], generator_key)
  metrics = jax.tree.map(lambda *m: jnp.mean(jnp.stack(m)), *critic_metrics)
  metrics = average_over_devices(setup, {**metrics, **generator_metrics})
  return state.replace(step=state.step + 1), metrics


def sample(
  setup: GanSetup, state: TrainState, z: jax.Array, labels: jax.Array | None = None, use_ema: bool = True
) -> jax.Array:
  """G(s z[, labels]) in inference mode, s = setup.sampling_latent_scale (1: as trained): images in [-1, 1].

  Uses the EMA parameters when the run keeps them (config.ema_decay > 0) and use_ema, else the live ones.
  BatchNorm normalises with its moving statistics (setup.sampling_batch_norm "moving", Keras's inference mode)
  or with the statistics of this batch ("batch", as in training; the moving statistics are left unchanged).
  The moving averages trail the live weights and belong to them, not to the EMA weights, which is why "batch"
  can give cleaner samples early in training (docs/recipes.md).
  """
  z = setup.sampling_latent_scale * z  # z ~ N(0, I) drawn by the caller: grids, evaluation, export alike
  ema = state.generator_ema_params
  params = ema if (use_ema and ema is not None) else state.generator_params
  variables = {"params": params, "batch_stats": state.generator_batch_stats}
  if setup.sampling_batch_norm == "batch":
    generator = setup.generator.clone(axis_name=None)  # statistics of this (per-device) batch only
    images, _ = generator.apply(variables, z, train=True, labels=labels, mutable=["batch_stats"])
    return images
  return setup.generator.apply(variables, z, train=False, labels=labels)


def make_train_step(setup: GanSetup):
  """train_step jitted once with the setup bound statically and the state donated."""
  return jax.jit(functools.partial(train_step, setup), donate_argnums=0)
