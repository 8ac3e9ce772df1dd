"""The semi-supervised GAN's training state and pure update steps: critic_step, generator_step, train_step,
and the critic's accuracy.

One iteration (Improved GAN, Salimans et al. 2016): a critic update on a labelled, an unlabelled and a
generated batch (cross-entropy + the real-vs-fake term with the implicit fake logit), then a generator update
by feature matching against a real batch drawn separately. Real images come in as uint8 and are scaled to
[0, 1]; the static choices live in an `SslSetup` bound with functools.partial before jit.
"""

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from ganjax import losses, optimizers, schedules
from ganjax.ssl.models import FROZEN, NOISE, SslCritic, SslCriticOutput, SslGenerator, init_critic
from ganjax.synth import augmentations

PyTree = Any
Metrics = dict[str, jax.Array]
# Folded into a critic step's key, one per view of real images (its shift, then its augmentation).
SHIFT_LABELLED, SHIFT_UNLABELLED, SHIFT_SECOND_VIEW = 1001, 1002, 1003
# The class-balance term's moving average of the unlabelled digits' probabilities: ~100 batches (10k images).
CLASS_MARGINAL_MOMENTUM = 0.99


@flax.struct.dataclass
class SslState:
  """All mutable training state, one pytree."""

  step: jax.Array  # iterations done: one critic and one generator update each
  critic_params: PyTree  # what the critic's optimiser trains
  critic_frozen: PyTree  # the hidden layers' weight-norm scales, set by the data-dependent init, never updated
  generator_params: PyTree
  critic_opt_state: optax.OptState
  generator_opt_state: optax.OptState
  # a <- a + (1 - decay) (p - a) after every critic update, from a = 0 and without bias correction, as the
  # reference; `averaged_critic_params` can correct the bias.
  critic_ema_params: PyTree
  # The unlabelled batches' mean digit probabilities, averaged (CLASS_MARGINAL_MOMENTUM) from uniform; None
  # unless the class-balance term is on.
  class_marginal: jax.Array | None = None


def reference_optimizer(learning_rate: float = 3e-3) -> optax.GradientTransformation:
  """The reference's Adam: beta1 0.5 and its epsilon *inside* the root, m / sqrt(v + 1e-8)."""
  return optax.adam(learning_rate, b1=0.5, b2=0.999, eps=0.0, eps_root=1e-8)


@dataclasses.dataclass(frozen=True)
class SslSetup:
  """The static part of a run: models, optimisers and the loss weights."""

  critic: SslCritic = dataclasses.field(default_factory=SslCritic)
  generator: SslGenerator = dataclasses.field(default_factory=SslGenerator)
  critic_optimizer: optax.GradientTransformation = dataclasses.field(default_factory=reference_optimizer)
  generator_optimizer: optax.GradientTransformation = dataclasses.field(default_factory=reference_optimizer)
  latent_dim: int = 100
  unlabelled_weight: float = 1.0  # of the real-vs-fake term in the critic's loss
  ema_decay: float = 0.9999
  labelled_shift: int = 0  # the labelled images move by up to this many pixels per axis (random, per image)
  unlabelled_shift: int = 0  # and the unlabelled ones the critic sees
  labelled_augment: float = 0.0  # > 0: and then a classic augmentation (affine + elastic) of this strength
  unlabelled_augment: float = 0.0  # of the unlabelled ones (both views)
  entropy_weight: float = 0.0  # of the unlabelled digits' class entropy (losses.class_entropy)
  consistency_weight: float = 0.0  # > 0: a second view of the unlabelled batch (losses.consistency_loss)
  class_balance_weight: float = 0.0  # of the unlabelled digits' average probabilities' distance to uniform
  pseudo_label_weight: float = 0.0  # of the unlabelled digits' cross-entropy to their pseudo-labels, if any
  pseudo_label_fade_steps: int = 0  # > 0: that weight falls linearly to 0 over this many iterations
  learning_rate_decay: str = "none"  # none | linear | cosine: both step sizes over the run (ganjax/schedules.py)
  learning_rate_decay_start: float = 0.0  # the fraction of the run after which the decay starts
  total_steps: int = 0  # the run's iterations (recipe sets them; a decay needs them)


def make_setup(config: ml_collections.ConfigDict, total_steps: int = 0, steps_per_epoch: int = 0) -> SslSetup:
  """The setup of a validated semi_supervised config (ganjax/config_defaults.py's semi-supervised fields) for a
  run of `total_steps` iterations of `steps_per_epoch` each (needed only by a learning-rate decay and a fading
  pseudo-label weight)."""
  critic = SslCritic(
    hidden_features=tuple(config.ssl_critic_features),
    input_noise=config.critic_input_noise,
    hidden_noise=config.critic_hidden_noise,
    freeze_hidden_scales=config.freeze_hidden_scales,
    conv_features=tuple(config.ssl_critic_conv_features),
    conv_dropout=config.critic_conv_dropout,
  )
  return SslSetup(
    critic=critic,
    generator=SslGenerator(hidden_features=tuple(config.ssl_generator_features)),
    critic_optimizer=optimizers.make_optimizer(config.critic_optimizer, "config.critic_optimizer"),
    generator_optimizer=optimizers.make_optimizer(config.generator_optimizer, "config.generator_optimizer"),
    latent_dim=config.latent_dim,
    unlabelled_weight=config.unlabelled_weight,
    ema_decay=config.critic_ema_decay,
    labelled_shift=config.labelled_shift,
    unlabelled_shift=config.unlabelled_shift,
    labelled_augment=config.labelled_augment,
    unlabelled_augment=config.unlabelled_augment,
    entropy_weight=config.unlabelled_entropy_weight,
    consistency_weight=config.consistency_weight,
    class_balance_weight=config.class_balance_weight,
    pseudo_label_weight=config.pseudo_label_weight,
    pseudo_label_fade_steps=round(config.pseudo_label_epochs * steps_per_epoch),
    learning_rate_decay=config.learning_rate_decay,
    learning_rate_decay_start=config.learning_rate_decay_start,
    total_steps=total_steps,
  )


def to_unit_images(images: jax.Array) -> jax.Array:
  """uint8 pixels -> float32 in [0, 1], the scale the reference trains on."""
  return images.astype(jnp.float32) / 255.0


def create_state(setup: SslSetup, key: jax.Array, init_images: jax.Array) -> SslState:
  """A fresh state; the critic's data-dependent init runs on init_images (uint8 [B, 28, 28, 1], B ~ 500)."""
  critic_key, generator_key = jax.random.split(key)
  critic_params, critic_frozen = init_critic(setup.critic, critic_key, to_unit_images(init_images))
  generator_params = setup.generator.init(generator_key, jnp.zeros((2, setup.latent_dim)))["params"]
  return SslState(
    step=jnp.zeros((), jnp.int32),
    critic_params=critic_params,
    critic_frozen=critic_frozen,
    generator_params=generator_params,
    critic_opt_state=setup.critic_optimizer.init(critic_params),
    generator_opt_state=setup.generator_optimizer.init(generator_params),
    critic_ema_params=jax.tree.map(jnp.zeros_like, critic_params),
    class_marginal=uniform_marginal(setup.critic.num_classes) if setup.class_balance_weight > 0 else None,
  )


def uniform_marginal(num_classes: int) -> jax.Array:
  """Where the class-balance term's moving average starts: every digit 1/K."""
  return jnp.full((num_classes,), 1.0 / num_classes)


def shift_images(key: jax.Array, images: jax.Array, max_shift: int) -> jax.Array:
  """Each image [B, H, W, C] moved by its own integer offset, uniform in [-max_shift, max_shift] per axis; what
  moves in is background (0). The identity when max_shift is 0."""
  if max_shift == 0:
    return images
  height, width = images.shape[1:3]
  pad = ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0))
  padded = jnp.pad(images, pad)
  offsets = jax.random.randint(key, (images.shape[0], 2), 0, 2 * max_shift + 1)
  crop = lambda image, offset: jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (height, width, image.shape[-1]))  # noqa: E731
  return jax.vmap(crop)(padded, offsets)


def real_view(key: jax.Array, images: jax.Array, max_shift: int, augment_strength: float) -> jax.Array:
  """What the critic sees of real images in [0, 1]: shift_images with `key`, then, with a strength > 0,
  augmentations.classic (affine + elastic, its own key folded from `key`). The identity when both are 0."""
  images = shift_images(key, images, max_shift)
  if augment_strength == 0:
    return images
  augmented = augmentations.classic(jax.random.fold_in(key, 1), 2.0 * images - 1.0, augment_strength)
  return (augmented + 1.0) / 2.0


def draw_latents(setup: SslSetup, key: jax.Array, batch_size: int) -> jax.Array:
  """z ~ U[0, 1]^latent_dim, [batch_size, latent_dim]."""
  return jax.random.uniform(key, (batch_size, setup.latent_dim))


def apply_critic(setup: SslSetup, params, frozen, images: jax.Array, noise_key: jax.Array | None) -> SslCriticOutput:
  """The critic on float images in [0, 1]: in training mode (noise on) with a noise key, else noise off."""
  variables = {"params": params, FROZEN: frozen}
  if noise_key is None:
    return setup.critic.apply(variables, images, train=False)
  return setup.critic.apply(variables, images, train=True, rngs={NOISE: noise_key})


def critic_step(setup: SslSetup, state: SslState, batch: dict[str, jax.Array], key: jax.Array):
  """One critic update on batch["labelled_image"] / ["label"], batch["unlabelled_image"] and as many fakes.

  The batches go through the critic as one: it has no batch statistics and its noise is per element. With a
  consistency weight, a second view of the unlabelled batch (its own shift, augmentation and noise) goes last.
  The EMA takes the parameters before this update, as the reference's simultaneous Theano updates do.
  """
  z_key, noise_key = jax.random.split(key)
  raw_unlabelled = to_unit_images(batch["unlabelled_image"])
  labelled = to_unit_images(batch["labelled_image"])
  labelled = real_view(jax.random.fold_in(key, SHIFT_LABELLED), labelled, setup.labelled_shift, setup.labelled_augment)
  unlabelled_streams = (SHIFT_UNLABELLED, SHIFT_SECOND_VIEW) if setup.consistency_weight > 0 else (SHIFT_UNLABELLED,)
  views = [
    real_view(jax.random.fold_in(key, stream), raw_unlabelled, setup.unlabelled_shift, setup.unlabelled_augment)
    for stream in unlabelled_streams
  ]
  num_labelled, num_unlabelled = labelled.shape[0], raw_unlabelled.shape[0]
  fake = setup.generator.apply({"params": state.generator_params}, draw_latents(setup, z_key, num_unlabelled))
  images = jnp.concatenate([labelled, views[0], jax.lax.stop_gradient(fake), *views[1:]])

  def loss_fn(params):
    logits = apply_critic(setup, params, state.critic_frozen, images, noise_key).logits
    labelled_logits, logits = logits[:num_labelled], logits[num_labelled:]
    unlabelled_logits, fake_logits = logits[:num_unlabelled], logits[num_unlabelled : 2 * num_unlabelled]
    metrics = {
      "labelled_loss": losses.class_loss(labelled_logits, batch["label"]),
      "unlabelled_loss": losses.unlabelled_loss(unlabelled_logits, fake_logits),
      "labelled_error": jnp.mean(jnp.argmax(labelled_logits, axis=-1) != batch["label"]),
    }
    loss = metrics["labelled_loss"] + setup.unlabelled_weight * metrics["unlabelled_loss"]
    if setup.entropy_weight > 0:
      metrics["unlabelled_entropy"] = losses.class_entropy(unlabelled_logits)
      loss += setup.entropy_weight * metrics["unlabelled_entropy"]
    if setup.consistency_weight > 0:
      metrics["consistency_loss"] = losses.consistency_loss(unlabelled_logits, logits[2 * num_unlabelled :])
      loss += setup.consistency_weight * metrics["consistency_loss"]
    marginal = state.class_marginal
    if setup.class_balance_weight > 0:
      marginal = updated_class_marginal(state.class_marginal, unlabelled_logits)
      metrics["class_balance_loss"] = losses.class_balance_loss(unlabelled_logits, marginal)
      loss += setup.class_balance_weight * metrics["class_balance_loss"]
    if setup.pseudo_label_weight > 0:
      metrics["pseudo_label_loss"] = losses.pseudo_label_loss(unlabelled_logits, batch["pseudo_label"])
      loss += schedules.pseudo_label_scale(setup, state.step) * metrics["pseudo_label_loss"]
    return loss, ({**metrics, "critic_loss": loss}, marginal)

  grads, (metrics, marginal) = jax.grad(loss_fn, has_aux=True)(state.critic_params)
  updates, opt_state = setup.critic_optimizer.update(grads, state.critic_opt_state, state.critic_params)
  updates = schedules.scale_updates(setup, updates, state.step)
  ema = jax.tree.map(lambda a, p: a + (1.0 - setup.ema_decay) * (p - a), state.critic_ema_params, state.critic_params)
  state = state.replace(
    critic_params=optax.apply_updates(state.critic_params, updates),
    critic_opt_state=opt_state,
    critic_ema_params=ema,
    class_marginal=marginal,
  )
  return state, metrics


def updated_class_marginal(marginal: jax.Array, unlabelled_logits: jax.Array) -> jax.Array:
  """The moving average of the unlabelled batches' mean digit probabilities after this batch (no gradient)."""
  batch_mean = jnp.mean(jax.nn.softmax(jax.lax.stop_gradient(unlabelled_logits), axis=-1), axis=0)
  return CLASS_MARGINAL_MOMENTUM * marginal + (1.0 - CLASS_MARGINAL_MOMENTUM) * batch_mean


def generator_step(setup: SslSetup, state: SslState, real_images: jax.Array, key: jax.Array):
  """One generator update by feature matching: the critic's last hidden features (noise on) of as many fakes
  as real_images (uint8) match the real batch's in mean. Only G's parameters change."""
  z_key, real_noise_key, fake_noise_key = jax.random.split(key, 3)
  real = to_unit_images(real_images)
  real_features = apply_critic(setup, state.critic_params, state.critic_frozen, real, real_noise_key).features
  z = draw_latents(setup, z_key, real.shape[0])

  def loss_fn(generator_params):
    fake = setup.generator.apply({"params": generator_params}, z)
    fake_features = apply_critic(setup, state.critic_params, state.critic_frozen, fake, fake_noise_key).features
    return losses.feature_matching_loss(real_features, fake_features)

  loss, grads = jax.value_and_grad(loss_fn)(state.generator_params)
  updates, opt_state = setup.generator_optimizer.update(grads, state.generator_opt_state, state.generator_params)
  updates = schedules.scale_updates(setup, updates, state.step)
  state = state.replace(
    generator_params=optax.apply_updates(state.generator_params, updates), generator_opt_state=opt_state
  )
  return state, {"generator_loss": loss}


def train_step(setup: SslSetup, state: SslState, batch: dict[str, jax.Array], key: jax.Array):
  """One iteration: critic_step, then generator_step on batch["matching_image"].

  `key` is the run's key; the step number is folded in here, so a resumed run draws what an uninterrupted one
  would.
  """
  critic_key, generator_key = jax.random.split(jax.random.fold_in(key, state.step))
  state, critic_metrics = critic_step(setup, state, batch, critic_key)
  state, generator_metrics = generator_step(setup, state, batch["matching_image"], generator_key)
  return state.replace(step=state.step + 1), {**critic_metrics, **generator_metrics}


def make_train_step(setup: SslSetup) -> Callable:
  """train_step jitted once with the setup bound statically and the state donated."""
  return jax.jit(functools.partial(train_step, setup), donate_argnums=0)


def averaged_critic_params(setup: SslSetup, state: SslState, debias: bool = False) -> PyTree:
  """The critic's EMA parameters; with debias, divided by 1 - decay^step (the weight the zero start lacks)."""
  if not debias:
    return state.critic_ema_params
  weight = 1.0 - jnp.power(setup.ema_decay, jnp.maximum(state.step, 1).astype(jnp.float32))
  return jax.tree.map(lambda a: a / weight, state.critic_ema_params)


def critic_predictions(setup: SslSetup, params, frozen, images: jax.Array) -> jax.Array:
  """The digits (argmax of the K logits, noise off) of uint8 images [B, 28, 28, 1]."""
  return jnp.argmax(apply_critic(setup, params, frozen, to_unit_images(images), None).logits, axis=-1)


_jit_predictions = jax.jit(critic_predictions, static_argnums=0)


def critic_accuracy(
  setup: SslSetup, params, frozen, images: np.ndarray, labels: np.ndarray, batch_size: int = 1000
) -> float:
  """The fraction of images whose digit the critic with `params` (live or averaged) names right, noise off."""
  correct = 0
  for start in range(0, len(images), batch_size):
    predictions = _jit_predictions(setup, params, frozen, images[start : start + batch_size])
    correct += int(np.sum(np.asarray(predictions) == labels[start : start + batch_size]))
  return correct / len(images)
