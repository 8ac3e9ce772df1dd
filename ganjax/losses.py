"""GAN and WGAN objectives as pure functions of critic logits, plus the WGAN-GP gradient penalty.

Every loss is written as a quantity to *minimise*. Logit-space formulas (softplus) keep the GAN losses
finite where a sigmoid would round D(x) to exactly 0 or 1.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class Objective(NamedTuple):
  """The critic's and the generator's losses for one loss family."""

  critic_loss: Callable[[jax.Array, jax.Array], jax.Array]  # (real_logits, fake_logits) -> scalar
  generator_loss: Callable[[jax.Array], jax.Array]  # fake_logits -> scalar


def gan_critic_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """-(E log D(x) + E log(1 - D(G(z)))), with D = sigmoid(logit): the discriminator side of eq. (1).

  log sigmoid(l) = -softplus(-l) and log(1 - sigmoid(l)) = -softplus(l).
  """
  return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))


def minimax_generator_loss(fake_logits: jax.Array) -> jax.Array:
  """E log(1 - D(G(z))): eq. (1) verbatim. Saturates: its gradient vanishes as D(G(z)) -> 0."""
  return -jnp.mean(jax.nn.softplus(fake_logits))


def non_saturating_generator_loss(fake_logits: jax.Array) -> jax.Array:
  """-E log D(G(z)): the same fixed point as eq. (1) with strong gradients early in training."""
  return jnp.mean(jax.nn.softplus(-fake_logits))


def wasserstein_critic_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """E D(G(z)) - E D(x): the critic maximises the Wasserstein estimate E D(x) - E D(G(z))."""
  return jnp.mean(fake_logits) - jnp.mean(real_logits)


def wasserstein_generator_loss(fake_logits: jax.Array) -> jax.Array:
  """-E D(G(z))."""
  return -jnp.mean(fake_logits)


OBJECTIVES: dict[str, Objective] = {
  "minimax": Objective(gan_critic_loss, minimax_generator_loss),
  "non_saturating": Objective(gan_critic_loss, non_saturating_generator_loss),
  "wgan": Objective(wasserstein_critic_loss, wasserstein_generator_loss),
  "wgan_gp": Objective(wasserstein_critic_loss, wasserstein_generator_loss),
}
WASSERSTEIN_LOSSES = ("wgan", "wgan_gp")


def class_loss(class_logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Mean cross-entropy of the critic's class head (AC-GAN's auxiliary loss)."""
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(class_logits, labels))


def interpolate(real: jax.Array, fake: jax.Array, eps: jax.Array) -> jax.Array:
  """x_hat = eps * x + (1 - eps) * G(z), with one eps ~ U[0, 1] per sample (eps: [B])."""
  eps = eps.reshape((-1,) + (1,) * (real.ndim - 1))
  return eps * real + (1.0 - eps) * fake


def per_sample_gradient_norms(critic_fn: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
  """||grad_x D(x_i)||_2 for each sample i, the norm over all of the sample's pixels.

  The critic treats samples independently (no BatchNorm), so the gradient of the sum of the logits with
  respect to the batch holds every sample's own gradient. The 1e-12 keeps the norm's gradient finite at 0.
  """
  grads = jax.grad(lambda x: jnp.sum(critic_fn(x)))(x)
  return jnp.sqrt(jnp.sum(jnp.square(grads), axis=tuple(range(1, x.ndim))) + 1e-12)


def gradient_penalty(critic_fn: Callable[[jax.Array], jax.Array], x_hat: jax.Array) -> jax.Array:
  """E (||grad D(x_hat)||_2 - 1)^2 (Gulrajani et al. 2017); weighted by lambda in the critic loss."""
  return jnp.mean(jnp.square(per_sample_gradient_norms(critic_fn, x_hat) - 1.0))


def clip_params(params, clip_value: float):
  """Clip every critic parameter to [-c, c]: WGAN's crude enforcement of the Lipschitz constraint."""
  return jax.tree.map(lambda p: jnp.clip(p, -clip_value, clip_value), params)
