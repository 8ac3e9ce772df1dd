"""What changes with the generator step inside the update steps: the learning-rate decay, the EMA's decay and
the semi-supervised critic's pseudo-label fade.

Pure functions of the step (traced inside the jitted train_step); the static choices come from the setup (a
GanSetup, or the semi-supervised GAN's SslSetup, which has the same decay fields).
"""

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

if TYPE_CHECKING:  # steps imports this module
  from ganjax.ssl.steps import SslSetup
  from ganjax.steps import GanSetup


def learning_rate_scale(setup: "GanSetup", step: jax.Array) -> jax.Array:
  """The factor on both optimisers' updates at generator step `step` (0-based): 1 until the decay starts, then
  falling (linearly, or as a half cosine) to 0 at setup.total_steps.

  Scaling the optimiser's update is scaling its learning rate (Adam, RMSprop, SGD alike), and leaves the
  optimiser states, and so every checkpoint, as they are without a decay.
  """
  if setup.learning_rate_decay == "none":
    return jnp.ones(())
  if setup.total_steps < 1:
    raise ValueError(f"learning_rate_decay={setup.learning_rate_decay!r} needs the run's total_steps in its setup")
  start = setup.learning_rate_decay_start * setup.total_steps
  progress = jnp.clip((step - start) / (setup.total_steps - start), 0.0, 1.0)
  if setup.learning_rate_decay == "linear":
    return 1.0 - progress
  return 0.5 * (1.0 + jnp.cos(jnp.pi * progress))


def scale_updates(setup: "GanSetup", updates, step: jax.Array):
  """An optimiser's updates times learning_rate_scale at `step` (unchanged without a decay)."""
  if setup.learning_rate_decay == "none":
    return updates
  scale = learning_rate_scale(setup, step)
  return jax.tree.map(lambda u: scale * u, updates)


def ema_decay_at(decay: float, step: jax.Array) -> jax.Array:
  """The decay used at generator update `step` (0-based): min(decay, (1 + step) / (10 + step)).

  The warm-up (TensorFlow's ExponentialMovingAverage with num_updates) keeps the average from being
  dominated by the random initial weights early in training and in short runs.
  """
  return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def update_ema(decay: float, ema_params, params, step: jax.Array):
  """ema <- d * ema + (1 - d) * params with d = ema_decay_at(decay, step); None when the EMA is off."""
  if ema_params is None:
    return None
  d = ema_decay_at(decay, step)
  return jax.tree.map(lambda e, p: d * e + (1.0 - d) * p, ema_params, params)


def pseudo_label_scale(setup: "SslSetup", step: jax.Array) -> jax.Array:
  """The pseudo-label term's weight at `step`: pseudo_label_weight, falling linearly to 0 at
  pseudo_label_fade_steps when that is > 0 (the anchor holds while the digits' clusters form, then lets go)."""
  if setup.pseudo_label_fade_steps <= 0:
    return jnp.asarray(setup.pseudo_label_weight, jnp.float32)
  remaining = jnp.clip(1.0 - step.astype(jnp.float32) / setup.pseudo_label_fade_steps, 0.0, 1.0)
  return setup.pseudo_label_weight * remaining
