"""The update steps' per-example random draws: noise, labels, dropout keys and critic-input augmentation.

Each example draws from its own key, folded from its position in the *global* batch, so the numbers do not
depend on how many devices the batch is split over (ganjax/parallel.py).
"""

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from ganjax import diff_augment

if TYPE_CHECKING:  # steps imports this module
  from ganjax.steps import GanSetup


def example_keys(setup: "GanSetup", key: jax.Array, batch_size: int) -> jax.Array:
  """One key per example of this device's batch, from the example's position in the *global* batch.

  Noise, dropout masks and GP interpolation weights drawn from these keys are the same whether the global
  batch sits on one device or is split across eight.
  """
  if setup.axis_name is not None:  # pmap: this device holds rows [i * B, (i + 1) * B) of the global batch
    positions = jax.lax.axis_index(setup.axis_name) * batch_size + jnp.arange(batch_size)
  else:
    positions = jnp.arange(batch_size)
    if setup.example_sharding is not None:  # jit over a mesh: draw each example on the device that holds it
      positions = jax.lax.with_sharding_constraint(positions, setup.example_sharding)
  return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, positions)


def draw_noise(setup: "GanSetup", key: jax.Array, batch_size: int) -> jax.Array:
  """z ~ N(0, I) [batch_size, latent_dim], one draw per example key."""
  keys = example_keys(setup, key, batch_size)
  return jax.vmap(lambda k: jax.random.normal(k, (setup.latent_dim,)))(keys)


def draw_labels(
  setup: "GanSetup", key: jax.Array, batch_size: int, cluster_shares: jax.Array | None = None
) -> jax.Array | None:
  """Class labels [batch_size] for a conditional generator, one draw per example key; else None.

  Uniform over the digits; over clusters (self-conditioning, or clusters within digits) by `cluster_shares`, as
  the real batches are.
  """
  if not setup.num_labels:
    return None
  keys = example_keys(setup, key, batch_size)
  if setup.conditioning.uses_clusters:
    return jax.vmap(lambda k: jax.random.categorical(k, jnp.log(cluster_shares)))(keys).astype(jnp.int32)
  return jax.vmap(lambda k: jax.random.randint(k, (), 0, setup.num_labels))(keys)


def augment_critic_input(setup: "GanSetup", key: jax.Array, images: jax.Array) -> jax.Array:
  """The images the critic sees: with setup.critic_augment's DiffAugment draws (one per example), else as is."""
  if not setup.critic_augment:
    return images
  return diff_augment.augment(setup.critic_augment, example_keys(setup, key, images.shape[0]), images)
