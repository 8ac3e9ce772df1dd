"""The semi-supervised critic's losses against hand computations with an explicit 11th logit at 0."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import losses


def _eleven_class_probabilities(logits: np.ndarray) -> np.ndarray:
  """Softmax over the 10 logits and an explicit 11th ("fake") logit fixed at 0, in float64."""
  with_fake = np.concatenate([logits, np.zeros((len(logits), 1))], axis=1).astype(np.float64)
  e = np.exp(with_fake - with_fake.max(axis=1, keepdims=True))
  return e / e.sum(axis=1, keepdims=True)


@pytest.fixture
def logits():
  real_key, fake_key = jax.random.split(jax.random.key(0))
  return (
    np.asarray(3.0 * jax.random.normal(real_key, (7, 10)), np.float64),
    np.asarray(3.0 * jax.random.normal(fake_key, (5, 10)) - 2.0, np.float64),
  )


def test_unlabelled_loss_is_half_real_and_half_fake_log_likelihood_of_the_eleven_class_softmax(logits):
  real, fake = logits
  d_real = 1.0 - _eleven_class_probabilities(real)[:, 10]  # D(x) = P(not the fake class)
  d_fake = 1.0 - _eleven_class_probabilities(fake)[:, 10]
  expected = -0.5 * np.mean(np.log(d_real)) - 0.5 * np.mean(np.log(1.0 - d_fake))
  np.testing.assert_allclose(losses.unlabelled_loss(jnp.asarray(real), jnp.asarray(fake)), expected, rtol=1e-5)


def test_unlabelled_loss_matches_the_reference_formula_with_lse(logits):
  real, fake = logits
  lse_real = np.log(np.sum(np.exp(real), axis=1))
  lse_fake = np.log(np.sum(np.exp(fake), axis=1))
  softplus = lambda x: np.log1p(np.exp(x))
  expected = -0.5 * lse_real.mean() + 0.5 * softplus(lse_real).mean() + 0.5 * softplus(lse_fake).mean()
  np.testing.assert_allclose(losses.unlabelled_loss(jnp.asarray(real), jnp.asarray(fake)), expected, rtol=1e-5)


def test_unlabelled_loss_is_finite_for_huge_logits():
  real = jnp.full((2, 10), 200.0)  # Z = 10 e^200 overflows float32; lse and softplus do not
  fake = jnp.full((2, 10), -200.0)
  loss = losses.unlabelled_loss(real, fake)
  assert np.isfinite(loss) and loss >= 0.0 and loss < 1e-6


def test_labelled_loss_is_the_eleven_class_cross_entropy_given_real(logits):
  real, _ = logits
  labels = np.array([0, 3, 9, 1, 1, 5, 7])
  p = _eleven_class_probabilities(real)
  p_given_real = p[:, :10] / p[:, :10].sum(axis=1, keepdims=True)
  expected = -np.mean(np.log(p_given_real[np.arange(7), labels]))
  np.testing.assert_allclose(losses.class_loss(jnp.asarray(real), jnp.asarray(labels)), expected, rtol=1e-5)


def test_feature_matching_loss_is_the_mean_squared_difference_of_batch_means():
  real = np.array([[1.0, 2.0, 0.0], [3.0, 4.0, 0.0]])  # means 2, 3, 0
  fake = np.array([[0.0, 3.0, 1.0], [0.0, 3.0, 3.0], [0.0, 3.0, 2.0]])  # means 0, 3, 2
  expected = (4.0 + 0.0 + 4.0) / 3
  np.testing.assert_allclose(losses.feature_matching_loss(jnp.asarray(real), jnp.asarray(fake)), expected, rtol=1e-6)


def test_feature_matching_loss_is_zero_for_equal_means_and_differentiable_in_the_fakes():
  real = jnp.array([[1.0, -1.0], [3.0, 1.0]])
  fake = jnp.array([[2.0, 0.0]])
  assert losses.feature_matching_loss(real, fake) == 0.0
  grad = jax.grad(lambda f: losses.feature_matching_loss(real, f))(fake + 1.0)
  np.testing.assert_allclose(grad, [[1.0, 1.0]])  # d/df mean_j (f_j - m_j)^2 = 2 (f_j - m_j) / 2


def _softmax64(logits: np.ndarray) -> np.ndarray:
  e = np.exp(logits - logits.max(axis=1, keepdims=True))
  return e / e.sum(axis=1, keepdims=True)


def test_class_entropy_is_the_mean_shannon_entropy_of_the_ten_class_softmax(logits):
  real, _ = logits
  p = _softmax64(real)
  expected = np.mean(-np.sum(p * np.log(p), axis=1))
  np.testing.assert_allclose(float(losses.class_entropy(jnp.asarray(real, jnp.float32))), expected, rtol=1e-5)


def test_class_entropy_is_log_k_for_equal_logits_and_near_zero_for_a_sure_digit():
  np.testing.assert_allclose(float(losses.class_entropy(jnp.zeros((3, 10)))), np.log(10.0), rtol=1e-6)
  sure = jnp.zeros((2, 10)).at[:, 4].set(60.0)
  assert float(losses.class_entropy(sure)) < 1e-20


def test_consistency_loss_is_the_mean_squared_distance_of_the_two_softmaxes(logits):
  real, fake = logits
  a, b = real[:5], fake
  expected = np.mean(np.sum(np.square(_softmax64(a) - _softmax64(b)), axis=1))
  actual = losses.consistency_loss(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32))
  np.testing.assert_allclose(float(actual), expected, rtol=1e-5, atol=1e-7)


def test_consistency_loss_is_zero_for_logits_that_differ_by_a_constant_and_pulls_both_views():
  a = jax.random.normal(jax.random.key(1), (4, 10))
  assert float(losses.consistency_loss(a, a + 7.0)) < 1e-12
  b = jax.random.normal(jax.random.key(2), (4, 10))
  grad_a, grad_b = jax.grad(losses.consistency_loss, argnums=(0, 1))(a, b)
  assert float(jnp.abs(grad_a).sum()) > 0 and float(jnp.abs(grad_b).sum()) > 0


def test_class_balance_loss_is_the_kl_from_uniform_to_the_batch_mean_softmax(logits):
  real, _ = logits
  mean_probs = _softmax64(real).mean(axis=0)
  expected = np.sum(0.1 * np.log(0.1 / mean_probs))  # KL(uniform || mean softmax)
  actual = losses.class_balance_loss(jnp.asarray(real, jnp.float32))
  np.testing.assert_allclose(float(actual), expected, rtol=1e-4, atol=1e-6)


def test_class_balance_loss_is_zero_for_a_balanced_batch_and_grows_as_one_digit_takes_over():
  # ten images, each sure of a different digit: the batch's mean is uniform although no image is
  balanced = 60.0 * jnp.eye(10)
  assert abs(float(losses.class_balance_loss(balanced))) < 1e-6
  skewed = balanced.at[7].set(balanced[9])  # the 7 read as a 9: 7 has (almost) no mass left
  one_more = skewed.at[4].set(balanced[9])
  assert float(losses.class_balance_loss(one_more)) > float(losses.class_balance_loss(skewed)) > 1.0


def test_class_balance_loss_with_a_running_average_takes_its_value_and_pushes_the_rare_digits(logits):
  real, _ = logits
  running = np.full(10, 0.1)
  running[7], running[9] = 0.05, 0.15  # 7s under-read, 9s over-read so far
  real = jnp.asarray(real, jnp.float32)
  value = losses.class_balance_loss(real, jnp.asarray(running, jnp.float32))
  # float32: log K - mean log m cancels terms of ~2.3, so the absolute error is a few ulps of 2.3
  np.testing.assert_allclose(float(value), np.sum(0.1 * np.log(0.1 / running)), rtol=1e-5, atol=2e-6)
  # the gradient is this batch's mean softmax weighted by -1 / (K m_k): linear in the batch, from the average
  weights = jnp.asarray(-1.0 / (10 * running), jnp.float32)

  def linear(batch_logits):
    return jnp.sum(weights * jnp.mean(jax.nn.softmax(batch_logits, axis=-1), axis=0))

  grad = jax.grad(losses.class_balance_loss)(real, jnp.asarray(running, jnp.float32))
  np.testing.assert_allclose(grad, jax.grad(linear)(real), rtol=1e-5, atol=1e-7)
  assert float(grad[:, 7].sum()) < 0 < float(grad[:, 9].sum())  # descent raises the 7 logits, lowers the 9s


def test_pseudo_label_loss_is_the_cross_entropy_of_the_labelled_rows_over_the_whole_batch(logits):
  real, _ = logits
  pseudo = np.array([3, -1, 0, 9, -1, -1, 4])
  log_probs = real - np.log(np.sum(np.exp(real), axis=1, keepdims=True))
  expected = -sum(log_probs[i, label] for i, label in enumerate(pseudo) if label >= 0) / len(pseudo)
  actual = losses.pseudo_label_loss(jnp.asarray(real, jnp.float32), jnp.asarray(pseudo))
  np.testing.assert_allclose(float(actual), expected, rtol=1e-5)


def test_pseudo_label_loss_ignores_the_rows_without_a_label(logits):
  real, _ = logits
  pseudo = jnp.asarray([3, -1, 0, 9, -1, -1, 4])
  grad = np.asarray(jax.grad(losses.pseudo_label_loss)(jnp.asarray(real, jnp.float32), pseudo))
  assert np.all(grad[[1, 4, 5]] == 0) and np.all(np.abs(grad[[0, 2, 3, 6]]).sum(axis=1) > 0)
  assert float(losses.pseudo_label_loss(jnp.asarray(real, jnp.float32), jnp.full(7, -1))) == 0.0
