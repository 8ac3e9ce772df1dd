"""The classifiers and their trainer: shapes, determinism, data order, the augment hook, learning on real MNIST."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import tiny
from ganjax.data import mnist
from ganjax.eval import classifiers

# A few steps of the small net: enough to see learning, seconds on two cores.
TINY_RECIPE = classifiers.Recipe(model=classifiers.SmallCNN(), num_steps=4, batch_size=16, learning_rate=1e-3)


def random_set(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  rng = np.random.default_rng(seed)
  return rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int32)


@pytest.fixture(scope="module")
def real_mnist(real_mnist_data_dir):
  """(train images, train labels, test images, test labels) of real MNIST; skipped where it is not prepared."""
  config = tiny.get_config()
  config.data_dir, config.download, config.train_subset = real_mnist_data_dir, False, 0
  return (*mnist.load_split(config, "train"), *mnist.load_split(config, "test"))


@pytest.mark.parametrize(
  "model",
  [pytest.param(classifiers.EvaluatorCNN(), marks=pytest.mark.slow), classifiers.SmallCNN()],
  ids=lambda m: type(m).__name__,
)
def test_models_map_images_to_logits_and_128_features(model):
  images = jnp.zeros((3, 28, 28, 1))
  variables = jax.jit(model.init)(jax.random.key(0), images)
  assert set(variables) == {"params"}  # no BatchNorm statistics: features do not depend on the batch
  logits, features = jax.jit(model.apply, static_argnames="return_features")(variables, images, return_features=True)
  assert logits.shape == (3, 10) and features.shape == (3, 128)
  apply_train = jax.jit(model.apply, static_argnames="train")
  train_logits = apply_train(variables, images + 1, train=True, dropout_key=jax.random.key(1))
  assert train_logits.shape == (3, 10)


def test_parameter_counts_are_pinned():
  shapes = lambda model: jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
  count = lambda model: sum(x.size for x in jax.tree.leaves(shapes(model)))
  assert count(classifiers.EvaluatorCNN()) == 197_482
  assert count(classifiers.SmallCNN()) == 184_586


@pytest.mark.slow
def test_training_is_deterministic_in_the_key():
  images, labels = random_set(40)
  first = classifiers.train_classifier(TINY_RECIPE, images, labels, jax.random.key(0))
  again = classifiers.train_classifier(TINY_RECIPE, images, labels, jax.random.key(0))
  other = classifiers.train_classifier(TINY_RECIPE, images, labels, jax.random.key(1))
  jax.tree.map(np.testing.assert_array_equal, first, again)
  assert not np.array_equal(first["Dense_1"]["kernel"], other["Dense_1"]["kernel"])


def test_batches_are_successive_slices_of_per_epoch_permutations():
  batches = list(classifiers.batch_indices(jax.random.key(0), num_examples=10, batch_size=4, num_steps=10))
  assert all(b.shape == (4,) for b in batches)
  stream = np.concatenate(batches)
  for epoch in range(4):  # 40 indices = 4 whole epochs, each a permutation, each a different one
    np.testing.assert_array_equal(np.sort(stream[10 * epoch : 10 * epoch + 10]), np.arange(10))
  assert len({tuple(stream[10 * e : 10 * e + 10]) for e in range(4)}) == 4


@pytest.mark.slow
def test_training_set_smaller_than_a_batch_works():
  images, labels = random_set(5)
  recipe = dataclasses.replace(TINY_RECIPE, batch_size=16, num_steps=3)
  params = classifiers.train_classifier(recipe, images, labels, jax.random.key(0))
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(params))


def test_zero_steps_return_the_initial_params_and_training_moves_them():
  images, labels = random_set(32)
  initial = classifiers.train_classifier(
    dataclasses.replace(TINY_RECIPE, num_steps=0), images, labels, jax.random.key(0)
  )
  trained = classifiers.train_classifier(TINY_RECIPE, images, labels, jax.random.key(0))
  assert not np.array_equal(initial["Conv_0"]["kernel"], trained["Conv_0"]["kernel"])


@pytest.mark.slow
def test_augment_runs_inside_the_step_on_float_batches():
  images, labels = random_set(32)
  seen = []

  def blank(key, batch):
    seen.append((batch.shape, batch.dtype))
    assert isinstance(key, jax.Array)
    return jnp.zeros_like(batch)

  initial = classifiers.train_classifier(
    dataclasses.replace(TINY_RECIPE, num_steps=0), images, labels, jax.random.key(0)
  )
  trained = classifiers.train_classifier(TINY_RECIPE, images, labels, jax.random.key(0), augment=blank)
  assert seen == [((16, 28, 28, 1), jnp.float32)]  # traced once, jitted: not called per step on the host
  # All-zero inputs give the first convolution's kernel an exactly zero gradient, hence an unchanged kernel.
  np.testing.assert_array_equal(initial["Conv_0"]["kernel"], trained["Conv_0"]["kernel"])
  assert not np.array_equal(initial["Dense_1"]["bias"], trained["Dense_1"]["bias"])  # while the read-out learnt


def test_random_shift_moves_each_image_by_at_most_max_shift():
  images = jnp.full((64, 28, 28, 1), -1.0).at[:, 14, 14, 0].set(1.0)
  shifted = np.asarray(classifiers.random_shift(jax.random.key(0), images, 2))
  assert shifted.shape == images.shape
  rows, cols = np.nonzero(shifted[..., 0] == 1.0)[1:]
  assert len(rows) == 64  # the bright pixel survives once per image ...
  assert set(rows) == set(range(12, 17)) and set(cols) == set(range(12, 17))  # ... moved by every offset in +-2
  assert np.all(np.sort(shifted.reshape(64, -1), axis=1)[:, :-1] == -1.0)  # filled with background


def test_predictions_do_not_depend_on_the_chunk_size():
  model = classifiers.SmallCNN()
  params = model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))["params"]
  images, _ = random_set(23)
  logits = classifiers.predict_logits(model, params, images)
  np.testing.assert_allclose(classifiers.predict_logits(model, params, images, batch_size=10), logits, atol=1e-5)
  features = classifiers.features(model, params, images, batch_size=10)
  assert logits.shape == (23, 10) and features.shape == (23, 128) and features.min() >= 0
  floats = np.asarray(images, np.float32) / 127.5 - 1  # float images in [-1, 1] are taken as they are
  np.testing.assert_allclose(classifiers.predict_logits(model, params, floats), logits, atol=1e-5)
  assert classifiers.accuracy(model, params, images, logits.argmax(-1)) == 1.0


@pytest.mark.slow
def test_small_cnn_learns_real_mnist_and_cas_sees_wrong_labels(real_mnist):
  train_images, train_labels, test_images, test_labels = real_mnist
  recipe = classifiers.small_cnn_recipe(num_steps=100)
  subset = slice(0, 2000)
  test = (test_images[:1000], test_labels[:1000])
  cas = classifiers.classification_accuracy_score(
    train_images[subset], train_labels[subset], *test, jax.random.key(0), recipe=recipe
  )
  assert cas > 0.85
  shuffled = np.random.default_rng(0).permutation(train_labels[subset])
  cas_shuffled = classifiers.classification_accuracy_score(
    train_images[subset], shuffled, *test, jax.random.key(0), recipe=recipe
  )
  assert cas_shuffled < 0.3


def test_small_cnn_recipe_budget_does_not_depend_on_the_data():
  assert classifiers.SMALL_CNN_RECIPE.num_steps == 2000 and classifiers.SMALL_CNN_RECIPE.batch_size == 64
  scaled = classifiers.small_cnn_recipe(num_steps=500)
  assert scaled == dataclasses.replace(classifiers.SMALL_CNN_RECIPE, num_steps=500)
  assert classifiers.EVALUATOR_RECIPE.to_dict()["model"] == "EvaluatorCNN"
