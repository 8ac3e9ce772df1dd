import jax
import jax.numpy as jnp
import numpy as np

from configs import default
from ganjax import steps
from ganjax.models import Critic, Generator


def count(tree) -> int:
  return sum(x.size for x in jax.tree.leaves(tree))


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


def test_critic_returns_one_logit_per_image_and_dropout_only_in_training():
  critic = Critic(features=(4, 8), dropout_rate=0.5)
  images = jax.random.uniform(jax.random.key(0), (3, 28, 28, 1), minval=-1, maxval=1)
  params = critic.init(jax.random.key(1), images, train=False)
  assert critic.apply(params, images, train=False).shape == (3,)
  eval_a = critic.apply(params, images, train=False)
  eval_b = critic.apply(params, images, train=False)
  np.testing.assert_array_equal(eval_a, eval_b)
  train_a = critic.apply(params, images, train=True, rngs={"dropout": jax.random.key(2)})
  train_b = critic.apply(params, images, train=True, rngs={"dropout": jax.random.key(3)})
  assert not np.allclose(train_a, train_b)


def test_critic_scores_samples_independently():
  """No BatchNorm in the critic: a sample's logit does not depend on the rest of the batch."""
  critic = Critic(features=(4, 8))
  images = jax.random.uniform(jax.random.key(0), (4, 28, 28, 1), minval=-1, maxval=1)
  params = critic.init(jax.random.key(1), images, train=False)
  whole = critic.apply(params, images, train=False)
  alone = critic.apply(params, images[:1], train=False)
  np.testing.assert_allclose(whole[:1], alone, rtol=1e-5)
