"""The semi-supervised GAN's networks: weight norm and its data-dependent init, the noise, shapes and sizes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax.ssl import models

CRITIC_PARAMS = 784 * 1000 + 1000 * 500 + 500 * 250 + 2 * 250 * 250 + 250 * 10 + (1000 + 500 + 3 * 250 + 10) + 10
GENERATOR_PARAMS = 100 * 500 + 500 + 500 * 500 + 500 + 500 * 784 + 2 * 784


def _size(tree) -> int:
  return sum(leaf.size for leaf in jax.tree.leaves(tree))


@pytest.fixture(scope="module")
def init_batch():
  return jax.random.uniform(jax.random.key(1), (200, 28, 28, 1))


@pytest.fixture(scope="module")
def critic_variables(init_batch):
  return models.init_critic(models.SslCritic(), jax.random.key(0), init_batch)


def test_data_dependent_init_standardises_every_pre_activation_on_the_init_batch(init_batch, critic_variables):
  params, frozen = critic_variables
  _, noise_key = jax.random.split(jax.random.key(0))  # the init pass's noise, drawn again
  _, captured = models.SslCritic().apply(
    {"params": params, models.FROZEN: frozen},
    init_batch,
    train=True,
    rngs={models.NOISE: noise_key},
    capture_intermediates=lambda module, _: isinstance(module, models.WeightNormDense),
  )
  names = sorted(captured["intermediates"])
  assert names == ["hidden_0", "hidden_1", "hidden_2", "hidden_3", "hidden_4", "logits"]
  for name in names:
    pre_activations = captured["intermediates"][name]["__call__"][0]
    np.testing.assert_allclose(jnp.mean(pre_activations, axis=0), 0.0, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(jnp.var(pre_activations, axis=0), 1.0, rtol=1e-4, err_msg=name)


def test_data_dependent_init_differs_from_plain_init(init_batch, critic_variables):
  params, frozen = critic_variables
  assert not np.allclose(frozen["hidden_0"]["scale"], 1.0)
  assert not np.allclose(params["hidden_0"]["bias"], 0.0)


def test_only_the_logits_scale_is_trainable_the_hidden_scales_are_frozen(critic_variables):
  params, frozen = critic_variables
  assert [name for name in params if "scale" in params[name]] == ["logits"]
  assert sorted(frozen) == [f"hidden_{i}" for i in range(5)]
  assert all(list(frozen[name]) == ["scale"] for name in frozen)


def test_critic_and_generator_parameter_counts(critic_variables):
  params, frozen = critic_variables
  assert _size(params) == CRITIC_PARAMS == 1_538_770
  assert _size(frozen) == 1000 + 500 + 3 * 250
  generator_params = models.SslGenerator().init(jax.random.key(0), jnp.zeros((2, 100)))["params"]
  assert _size(generator_params) == GENERATOR_PARAMS == 694_568
  assert "scale" not in generator_params["norm_0"]  # batch norm without scale


def test_critic_shapes_and_noise_only_in_training(init_batch, critic_variables):
  params, frozen = critic_variables
  variables = {"params": params, models.FROZEN: frozen}
  critic = models.SslCritic()
  images = init_batch[:5]
  out = critic.apply(variables, images, train=False)
  assert out.logits.shape == (5, 10) and out.features.shape == (5, 250)
  np.testing.assert_array_equal(out.logits, critic.apply(variables, images, train=False).logits)
  rngs = lambda seed: {models.NOISE: jax.random.key(seed)}
  noisy = critic.apply(variables, images, train=True, rngs=rngs(3)).logits
  assert not np.allclose(noisy, out.logits)
  np.testing.assert_array_equal(noisy, critic.apply(variables, images, train=True, rngs=rngs(3)).logits)


def test_weight_norm_dense_is_a_dense_layer_with_normalised_columns():
  layer = models.WeightNormDense(3, epsilon=1e-6)
  x = jax.random.normal(jax.random.key(0), (4, 5))
  params = layer.init(jax.random.key(1), x)["params"]
  params = {**params, "scale": jnp.array([0.5, 2.0, 1.0]), "bias": jnp.array([1.0, 0.0, -1.0])}
  v = np.asarray(params["direction"], np.float64)
  kernel = v * params["scale"] / np.sqrt(np.sum(v**2, axis=0) + 1e-6)
  np.testing.assert_allclose(layer.apply({"params": params}, x), x @ kernel + params["bias"], rtol=1e-5, atol=1e-6)


def test_generator_makes_images_in_the_unit_interval():
  generator = models.SslGenerator()
  z = jax.random.uniform(jax.random.key(0), (8, 100))
  params = generator.init(jax.random.key(1), z)
  images = generator.apply(params, z)
  assert images.shape == (8, 28, 28, 1)
  assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0


def test_conv_critic_standardises_every_channel_on_the_init_batch_and_matches_its_flat_features(init_batch):
  critic = models.SslCritic(hidden_features=(), conv_features=(8, 16))
  params, frozen = models.init_critic(critic, jax.random.key(0), init_batch)
  _, noise_key = jax.random.split(jax.random.key(0))  # the init pass's noise and dropout, drawn again
  output, captured = critic.apply(
    {"params": params, models.FROZEN: frozen},
    init_batch,
    train=True,
    rngs={models.NOISE: noise_key},
    capture_intermediates=lambda module, _: isinstance(module, (models.WeightNormConv, models.WeightNormDense)),
  )
  shapes = {name: value["__call__"][0].shape for name, value in captured["intermediates"].items()}
  assert shapes == {"conv_0": (200, 14, 14, 8), "conv_1": (200, 7, 7, 16), "logits": (200, 10)}
  for name, value in captured["intermediates"].items():
    pre_activations = value["__call__"][0]
    axes = tuple(range(pre_activations.ndim - 1))  # per channel, over the batch and every position
    np.testing.assert_allclose(jnp.mean(pre_activations, axis=axes), 0.0, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(jnp.var(pre_activations, axis=axes), 1.0, rtol=1e-4, err_msg=name)
  slope = critic.leaky_relu_slope
  convolved = captured["intermediates"]["conv_1"]["__call__"][0]
  expected = jnp.where(convolved > 0, convolved, slope * convolved).reshape(200, -1)  # before the dropout
  np.testing.assert_allclose(output.features, expected, rtol=1e-6)
  assert sorted(frozen) == ["conv_0", "conv_1"] and [n for n in params if "scale" in params[n]] == ["logits"]


def test_conv_critic_drops_out_only_in_training(init_batch):
  critic = models.SslCritic(hidden_features=(), conv_features=(8,), input_noise=0.0, conv_dropout=0.5)
  variables = dict(zip(("params", models.FROZEN), models.init_critic(critic, jax.random.key(0), init_batch)))
  images = init_batch[:4]
  quiet = critic.apply(variables, images, train=False).logits
  np.testing.assert_array_equal(quiet, critic.apply(variables, images, train=False).logits)
  dropped = critic.apply(variables, images, train=True, rngs={models.NOISE: jax.random.key(5)}).logits
  assert not np.allclose(dropped, quiet)
  no_dropout = models.SslCritic(hidden_features=(), conv_features=(8,), input_noise=0.0, conv_dropout=0.0)
  kept = no_dropout.apply(variables, images, train=True, rngs={models.NOISE: jax.random.key(5)}).logits
  np.testing.assert_allclose(kept, quiet, rtol=1e-6)
