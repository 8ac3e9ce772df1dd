import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from ganjax import steps
from ganjax.models import Critic, Generator, per_example_dropout


def count(tree) -> int:
  return sum(x.size for x in jax.tree.leaves(tree))


@pytest.mark.slow
def test_paper_models_have_the_tf_tutorial_parameter_counts():
  setup = steps.make_setup(default.get_config())
  state = steps.create_state(setup, jax.random.key(0))
  # Keras's model.summary() of the TF DCGAN tutorial networks: 2,305,472 trainable in G, 212,865 in D.
  assert count(state.generator_params) == 2_305_472
  assert count(state.generator_batch_stats) == 2 * (7 * 7 * 256 + 128 + 64)
  assert count(state.critic_params) == 212_865


def test_generator_maps_noise_to_28x28_images_in_tanh_range():
  generator = Generator(features=(16, 8, 4))
  z = 3.0 * jax.random.normal(jax.random.key(0), (5, 100))
  variables = generator.init(jax.random.key(1), z, train=False)
  images, _ = generator.apply(variables, z, train=True, mutable=["batch_stats"])
  assert images.shape == (5, 28, 28, 1)
  assert float(jnp.max(jnp.abs(images))) <= 1.0
  assert float(jnp.std(images)) > 0


def test_critic_returns_one_logit_per_image_and_dropout_only_with_keys():
  critic = Critic(features=(4, 8), dropout_rate=0.5)
  images = jax.random.uniform(jax.random.key(0), (3, 28, 28, 1), minval=-1, maxval=1)
  params = critic.init(jax.random.key(1), images)
  assert critic.apply(params, images).logits.shape == (3,)
  np.testing.assert_array_equal(critic.apply(params, images).logits, critic.apply(params, images).logits)
  keys_a, keys_b = jax.random.split(jax.random.key(2), (2, 3))
  train_a = critic.apply(params, images, keys_a).logits
  assert not np.allclose(train_a, critic.apply(params, images, keys_b).logits)
  # An example's mask comes from its own key alone: the same keys give the same logits in any batch.
  np.testing.assert_allclose(critic.apply(params, images[1:], keys_a[1:]).logits, train_a[1:], rtol=1e-5)


@pytest.mark.parametrize("rate", [0.3, 0.5, 0.9])
def test_per_example_dropout_keeps_the_expected_fraction_and_rescales(rate):
  x = jnp.ones((64, 14, 14, 7))  # an odd element count per example: the last 16-bit half is unused
  dropped = np.asarray(per_example_dropout(x, rate, jax.random.split(jax.random.key(0), 64)))
  kept = dropped > 0
  # 87,808 Bernoulli draws: the kept fraction is within 5 standard deviations of 1 - rate.
  assert abs(kept.mean() - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / kept.size)
  np.testing.assert_allclose(dropped[kept], 1 / (1 - rate), rtol=1e-4)
  assert abs(dropped.mean() - 1.0) < 0.05  # inverted dropout keeps the expected value
  # Masks differ between examples, and (nearly) every element position is kept in some and dropped in others.
  assert not np.array_equal(kept[0], kept[1])
  assert kept.any(axis=0).mean() > 0.99 and (~kept).any(axis=0).mean() > 0.99


def test_critic_scores_samples_independently():
  """No BatchNorm in the critic: a sample's logit does not depend on the rest of the batch."""
  critic = Critic(features=(4, 8))
  images = jax.random.uniform(jax.random.key(0), (4, 28, 28, 1), minval=-1, maxval=1)
  params = critic.init(jax.random.key(1), images)
  whole = critic.apply(params, images).logits
  alone = critic.apply(params, images[:1]).logits
  np.testing.assert_allclose(whole[:1], alone, rtol=1e-5)


def test_conv_transpose_is_keras_conv2d_transpose_with_a_flipped_kernel():
  # Keras's Conv2DTranspose(padding='same') is the input gradient of a 'SAME' strided conv (TF's
  # conv2d_transpose). Flax's ConvTranspose equals it with the kernel flipped in space: the same taps and
  # output alignment, so the paper's generator is reproduced exactly (the flip is absorbed by the init).
  x = jax.random.normal(jax.random.key(0), (2, 7, 7, 3))
  module = nn.ConvTranspose(4, (5, 5), (2, 2), "SAME", use_bias=False)
  params = module.init(jax.random.key(1), x)
  kernel = params["params"]["kernel"]  # [5, 5, in, out]
  tf_kernel = jnp.swapaxes(kernel[::-1, ::-1], 2, 3)  # TF's conv2d_transpose layout [5, 5, out, in]

  def strided_conv(y):
    return jax.lax.conv_general_dilated(y, tf_kernel, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

  _, input_gradient = jax.vjp(strided_conv, jnp.zeros((2, 14, 14, 4)))
  np.testing.assert_allclose(module.apply(params, x), input_gradient(x)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model, inputs", [(Generator, (3, 100)), (Critic, (3, 28, 28, 1))])
def test_conv_impls_share_parameters_and_compute_the_same_function(model, inputs):
  x = jax.random.normal(jax.random.key(0), inputs)
  kwargs = {"train": False} if model is Generator else {}
  plain, phase = model(conv_impl="plain"), model(conv_impl="phase")
  variables = plain.init(jax.random.key(1), x, **kwargs)
  jax.tree.map(np.testing.assert_array_equal, variables, phase.init(jax.random.key(1), x, **kwargs))
  jax.tree.map(
    functools.partial(np.testing.assert_allclose, rtol=1e-4, atol=1e-5),
    phase.apply(variables, x, **kwargs),
    plain.apply(variables, x, **kwargs),
  )


def test_unknown_conv_impl_is_named():
  with pytest.raises(ValueError, match="conv_impl='fast'; expected one of"):
    Critic(conv_impl="fast").init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))


@pytest.mark.parametrize("label_input", ["projection", "concat"])
def test_a_conditional_critic_depends_on_the_label(label_input):
  critic = Critic(features=(4, 8), num_labels=10, label_input=label_input)
  images = jax.random.uniform(jax.random.key(0), (4, 28, 28, 1), minval=-1, maxval=1)
  labels = jnp.array([0, 1, 2, 3])
  params = critic.init(jax.random.key(1), images, labels=labels)
  logits = critic.apply(params, images, labels=labels).logits
  assert logits.shape == (4,)
  assert not np.allclose(logits, critic.apply(params, images, labels=labels + 1).logits)
  with pytest.raises(ValueError, match="num_labels=10 needs labels"):
    critic.apply(params, images)


def test_a_conditional_generator_draws_different_images_per_label_from_the_same_noise():
  generator = Generator(features=(16, 8, 4), num_labels=10)
  z = jnp.repeat(jax.random.normal(jax.random.key(0), (1, 100)), 10, axis=0)
  variables = generator.init(jax.random.key(1), z, train=False, labels=jnp.zeros(10, jnp.int32))
  images = generator.apply(variables, z, train=False, labels=jnp.arange(10))
  assert images.shape == (10, 28, 28, 1)
  assert all(not np.allclose(images[0], images[i]) for i in range(1, 10))
  # Only the first Dense sees the label: the one-hot rows add 10 x 7*7*16 weights.
  assert variables["params"]["Dense_0"]["kernel"].shape == (110, 7 * 7 * 16)
  with pytest.raises(ValueError, match="labels must have shape"):
    generator.apply(variables, z, train=False, labels=jnp.arange(5))


def test_an_unconditional_model_refuses_labels():
  critic = Critic(features=(4, 8))
  images = jnp.zeros((2, 28, 28, 1))
  params = critic.init(jax.random.key(0), images)
  with pytest.raises(ValueError, match="num_labels=0 takes no labels"):
    critic.apply(params, images, labels=jnp.zeros(2, jnp.int32))


@pytest.mark.parametrize(
  "class_head, heads", [("none", ()), ("ac", ("class_logits",)), ("tac", ("class_logits", "twin_logits"))]
)
def test_the_critic_returns_exactly_the_class_heads_it_has(class_head, heads):
  critic = Critic(features=(4, 8), num_labels=10, class_head=class_head, class_head_classes=10)
  images, labels = jnp.zeros((3, 28, 28, 1)), jnp.zeros(3, jnp.int32)
  params = critic.init(jax.random.key(0), images, labels=labels)
  output = critic.apply(params, images, labels=labels)
  assert output.logits.shape == (3,)
  for name in ("class_logits", "twin_logits"):
    assert (getattr(output, name) is not None) == (name in heads)
    if name in heads:
      assert getattr(output, name).shape == (3, 10)
  assert {"auxiliary_classifier", "twin_classifier"} & set(params["params"]) == {
    {"class_logits": "auxiliary_classifier", "twin_logits": "twin_classifier"}[h] for h in heads
  }
  with pytest.raises(ValueError, match="class_head='twin'; expected one of"):
    Critic(features=(4, 8), class_head="twin").init(jax.random.key(0), images)
