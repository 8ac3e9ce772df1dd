import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import losses


def sigmoid(x):
  return 1 / (1 + math.exp(-x))


def test_gan_critic_loss_is_minus_log_likelihood_of_eq1():
  real, fake = jnp.array([2.0, -1.0]), jnp.array([0.5, -3.0])
  expected = -(
    (math.log(sigmoid(2.0)) + math.log(sigmoid(-1.0))) / 2
    + (math.log(1 - sigmoid(0.5)) + math.log(1 - sigmoid(-3.0))) / 2
  )
  assert float(losses.gan_critic_loss(real, fake)) == pytest.approx(expected, rel=1e-6)


def test_generator_losses_by_hand():
  fake = jnp.array([0.5, -3.0])
  minimax = (math.log(1 - sigmoid(0.5)) + math.log(1 - sigmoid(-3.0))) / 2
  non_saturating = -(math.log(sigmoid(0.5)) + math.log(sigmoid(-3.0))) / 2
  assert float(losses.minimax_generator_loss(fake)) == pytest.approx(minimax, rel=1e-6)
  assert float(losses.non_saturating_generator_loss(fake)) == pytest.approx(non_saturating, rel=1e-6)


def test_wasserstein_losses_by_hand():
  real, fake = jnp.array([1.0, 3.0]), jnp.array([-1.0, 0.0])
  assert float(losses.wasserstein_critic_loss(real, fake)) == pytest.approx(-0.5 - 2.0)
  assert float(losses.wasserstein_generator_loss(fake)) == pytest.approx(0.5)


def test_gan_losses_stay_finite_for_extreme_logits():
  logits = jnp.array([-1e4, 1e4])
  for value in (
    losses.gan_critic_loss(logits, logits),
    losses.minimax_generator_loss(logits),
    losses.non_saturating_generator_loss(logits),
  ):
    assert np.isfinite(float(value))


def test_minimax_generator_gradient_saturates_where_non_saturating_does_not():
  """At D(G(z)) ~ 0 (a confident critic, logit -10), eq. (1)'s G gradient vanishes; the variant's doesn't."""
  fake = jnp.array([-10.0])
  minimax_grad = float(jax.grad(losses.minimax_generator_loss)(fake)[0])
  non_saturating_grad = float(jax.grad(losses.non_saturating_generator_loss)(fake)[0])
  assert abs(minimax_grad) == pytest.approx(sigmoid(-10.0), rel=1e-4)  # ~4.5e-5
  assert abs(non_saturating_grad) == pytest.approx(1 - sigmoid(-10.0), rel=1e-4)  # ~1
  assert abs(non_saturating_grad) > 1e4 * abs(minimax_grad)
  # Both push the logit up (the same direction), as the generator must.
  assert minimax_grad < 0 and non_saturating_grad < 0


def test_interpolation_mixes_each_sample_with_its_own_epsilon():
  real = jnp.ones((4, 28, 28, 1))
  fake = -jnp.ones((4, 28, 28, 1))
  eps = jnp.array([0.0, 0.25, 0.5, 1.0])
  x_hat = losses.interpolate(real, fake, eps)
  for i, e in enumerate([0.0, 0.25, 0.5, 1.0]):
    np.testing.assert_allclose(x_hat[i], jnp.full((28, 28, 1), e * 1 + (1 - e) * -1))


def test_gradient_norms_are_per_sample_over_all_pixels():
  w = jax.random.normal(jax.random.key(0), (28, 28, 1))
  critic_fn = lambda x: jnp.sum(jnp.square(x) * w, axis=(1, 2, 3))  # noqa: E731
  x = jax.random.normal(jax.random.key(1), (5, 28, 28, 1))
  norms = losses.per_sample_gradient_norms(critic_fn, x)
  for i in range(5):
    expected = jnp.linalg.norm(jax.grad(lambda xi: critic_fn(xi[None])[0])(x[i]).ravel())
    assert float(norms[i]) == pytest.approx(float(expected), rel=1e-5)


def test_gradient_penalty_is_zero_for_a_linear_critic_with_unit_norm_weight():
  w = jax.random.normal(jax.random.key(0), (28, 28, 1))
  w = w / jnp.linalg.norm(w)
  critic_fn = lambda x: jnp.sum(x * w, axis=(1, 2, 3)) + 3.0  # noqa: E731
  x = jax.random.normal(jax.random.key(1), (8, 28, 28, 1))
  assert float(losses.gradient_penalty(critic_fn, x)) == pytest.approx(0.0, abs=1e-10)
  # ... and (2 - 1)^2 = 1 when the weight has norm 2.
  assert float(losses.gradient_penalty(lambda x: 2 * critic_fn(x), x)) == pytest.approx(1.0, rel=1e-5)


def test_gradient_penalty_has_a_finite_gradient_at_a_zero_gradient_critic():
  x = jnp.zeros((2, 28, 28, 1))
  grad = jax.grad(lambda s: losses.gradient_penalty(lambda x: s * jnp.sum(x, axis=(1, 2, 3)), x))(0.0)
  assert np.isfinite(float(grad))


def test_clip_params_bounds_every_leaf():
  params = {"a": jnp.array([-1.0, 0.005, 2.0]), "b": {"c": jnp.array([[0.3, -0.02]])}}
  clipped = losses.clip_params(params, 0.01)
  np.testing.assert_allclose(clipped["a"], [-0.01, 0.005, 0.01])
  np.testing.assert_allclose(clipped["b"]["c"], [[0.01, -0.01]])


def test_tac_generator_term_is_ac_minus_twin_cross_entropy_and_the_cap_bounds_the_twin_reward():
  digits = jnp.array([0, 1])
  class_logits = jnp.array([[2.0, 0.0], [0.0, 1.0]])
  # Fake 0: the twin is sure of the wrong digit (CE 60); fake 1: it is right (CE 0.31 < the cap, log 2).
  twin_logits = jnp.array([[-30.0, 30.0], [0.0, 1.0]])
  ce = lambda logits: optax_ce(logits, digits)
  loss, metrics = losses.generator_class_head_terms("tac", class_logits, twin_logits, digits)
  np.testing.assert_allclose(loss, ce(class_logits).mean() - ce(twin_logits).mean(), rtol=1e-6)
  capped, capped_metrics = losses.generator_class_head_terms("tac", class_logits, twin_logits, digits, math.log(2))
  expected = ce(class_logits).mean() - (math.log(2) + ce(twin_logits)[1]) / 2
  np.testing.assert_allclose(capped, expected, rtol=1e-6)
  assert capped_metrics["generator_twin_loss"] == pytest.approx(float(metrics["generator_twin_loss"]))
  grad = jax.grad(lambda t: losses.generator_class_head_terms("tac", class_logits, t, digits, math.log(2))[0])
  np.testing.assert_array_equal(grad(twin_logits)[0], 0.0)  # no reward left for fooling the twin further
  assert np.all(np.asarray(grad(twin_logits)[1]) != 0.0)  # below the cap, as published


def optax_ce(logits, labels):
  log_probs = jax.nn.log_softmax(logits)
  return -jnp.take_along_axis(log_probs, labels[:, None], axis=1)[:, 0]
