"""The semi-supervised GAN's update steps and batches: what each step changes, where labelled batches come from."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import schedules
from ganjax.ssl import data, driver, models, steps

BATCH = 20


def _tiny_setup() -> steps.SslSetup:
  critic = models.SslCritic(hidden_features=(32, 16))
  return steps.SslSetup(critic=critic, generator=models.SslGenerator(hidden_features=(32,)), latent_dim=8)


def _images(count: int) -> np.ndarray:
  """uint8 images whose first two pixels spell their index (base 256), the rest random."""
  images = np.random.default_rng(0).integers(0, 256, (count, 28, 28, 1), dtype=np.uint8)
  images[:, 0, 0, 0], images[:, 0, 1, 0] = np.arange(count) // 256, np.arange(count) % 256
  return images


def _index_of(images: np.ndarray) -> np.ndarray:
  return images[:, 0, 0, 0].astype(int) * 256 + images[:, 0, 1, 0]


def _equal(a, b) -> bool:
  return all(jax.tree.leaves(jax.tree.map(lambda x, y: bool(jnp.array_equal(x, y)), a, b)))


@pytest.fixture(scope="module")
def batches():
  images = _images(300)
  labels = np.arange(300) % 10
  return data.few_labels_batches(
    images, labels, labels_per_class=2, label_seed=0, key=jax.random.key(1), batch_size=BATCH
  )


@pytest.fixture(scope="module")
def state(batches):
  return steps.create_state(_tiny_setup(), jax.random.key(0), batches.init_images(100))


def test_feature_matching_step_updates_only_the_generator(state, batches):
  setup = _tiny_setup()
  after, metrics = jax.jit(functools.partial(steps.generator_step, setup))(
    state, batches.batch(0)["matching_image"], jax.random.key(2)
  )
  assert not _equal(after.generator_params, state.generator_params)
  assert not _equal(after.generator_opt_state, state.generator_opt_state)
  for field in ("critic_params", "critic_frozen", "critic_opt_state", "critic_ema_params", "step"):
    assert _equal(getattr(after, field), getattr(state, field)), field
  assert np.isfinite(metrics["generator_loss"])


def test_critic_step_updates_only_the_critic_and_its_average_of_the_previous_weights(state, batches):
  setup = _tiny_setup()
  after, metrics = jax.jit(functools.partial(steps.critic_step, setup))(state, batches.batch(0), jax.random.key(3))
  assert not _equal(after.critic_params, state.critic_params)
  for field in ("generator_params", "generator_opt_state", "critic_frozen"):
    assert _equal(getattr(after, field), getattr(state, field)), field
  # a = 0 + (1 - 0.9999) (p_before - 0): the zero-started average of the weights *before* the update
  expected = jax.tree.map(lambda p: (1.0 - setup.ema_decay) * p, state.critic_params)
  jax.tree.map(lambda a, e: np.testing.assert_allclose(a, e, rtol=1e-6), after.critic_ema_params, expected)
  debiased = steps.averaged_critic_params(setup, after.replace(step=jnp.ones((), jnp.int32)), debias=True)
  jax.tree.map(lambda a, p: np.testing.assert_allclose(a, p, rtol=1e-3), debiased, state.critic_params)
  assert set(metrics) == {"critic_loss", "labelled_loss", "unlabelled_loss", "labelled_error"}


def test_train_step_is_deterministic_and_counts_iterations(state, batches):
  setup = _tiny_setup()
  train_step = jax.jit(lambda s, b, k: steps.train_step(setup, s, b, k))
  first, metrics = train_step(state, batches.batch(0), jax.random.key(4))
  again, _ = train_step(state, batches.batch(0), jax.random.key(4))
  assert _equal(first, again) and int(first.step) == 1
  second, _ = train_step(first, batches.batch(1), jax.random.key(4))  # the step number changes the draws
  assert int(second.step) == 2 and all(np.isfinite(v) for v in jax.device_get(metrics).values())


def test_labelled_batches_come_only_from_the_labelled_indices_and_their_labels(batches):
  labelled = set(batches.labelled_indices.tolist())
  for iteration in range(12):
    batch = batches.batch(iteration)
    chosen = _index_of(batch["labelled_image"])
    assert set(chosen.tolist()) <= labelled
    np.testing.assert_array_equal(batch["label"], chosen % 10)


def test_hiding_every_other_label_changes_no_batch(batches):
  labels = np.arange(300) % 10
  hidden = np.full(300, -1)
  hidden[batches.labelled_indices] = labels[batches.labelled_indices]
  blind = data.few_labels_batches(batches.images, hidden, 2, 0, jax.random.key(1), batch_size=BATCH)
  for iteration in range(5):
    jax.tree.map(np.testing.assert_array_equal, blind.batch(iteration), batches.batch(iteration))


def test_a_labelled_batch_tiles_fresh_permutations_of_the_labelled_few(batches):
  # 20 labelled images, batches of 20: every batch holds each exactly once, in a new order.
  orders = [_index_of(batches.batch(i)["labelled_image"]) for i in range(3)]
  for order in orders:
    assert sorted(order.tolist()) == sorted(batches.labelled_indices.tolist())
  assert not np.array_equal(orders[0], orders[1])
  # 7 examples, batches of 20: every 7 positions are a permutation, across batch boundaries too.
  stream = data.TiledShuffler(jax.random.key(5), 7, 20)
  positions = np.concatenate([stream.indices(b) for b in range(7)])
  for tile in positions.reshape(-1, 7):
    assert sorted(tile.tolist()) == list(range(7))


def test_unlabelled_and_matching_streams_are_different_epochs_of_all_images(batches):
  per_epoch = 300 // BATCH
  unlabelled = np.concatenate([_index_of(batches.batch(i)["unlabelled_image"]) for i in range(per_epoch)])
  matching = np.concatenate([_index_of(batches.batch(i)["matching_image"]) for i in range(per_epoch)])
  assert sorted(unlabelled.tolist()) == sorted(matching.tolist()) == list(range(300))
  assert not np.array_equal(unlabelled, matching)


def test_critic_accuracy_is_the_fraction_of_argmax_hits_with_the_noise_off(state):
  setup = _tiny_setup()
  images = _images(50)
  logits = steps.apply_critic(setup, state.critic_params, state.critic_frozen, steps.to_unit_images(images), None)
  labels = np.array(jnp.argmax(logits.logits, axis=-1))
  labels[:10] = (labels[:10] + 1) % 10
  accuracy = steps.critic_accuracy(setup, state.critic_params, state.critic_frozen, images, labels, batch_size=16)
  assert accuracy == pytest.approx(0.8)


@pytest.mark.slow
def test_the_reference_driver_trains_and_reports_every_epoch(tiny_config):
  tiny_config.train_subset = 0  # the labelled few need every digit: up to 1024 synthetic images, or real MNIST
  records = driver.train_reference(
    tiny_config, num_epochs=2, labels_per_class=1, iterations_per_epoch=2, setup=_tiny_setup(), log=lambda r: None
  )
  assert [r["epoch"] for r in records] == [1, 2] and records[-1]["iteration"] == 4
  for name in ("test_accuracy", "test_accuracy_ema", "test_accuracy_ema_debiased"):
    assert 0.0 <= records[-1][name] <= 1.0
  assert all(np.isfinite(records[-1][name]) for name in ("critic_loss", "generator_loss", "unlabelled_loss"))


def test_shift_images_moves_each_image_within_the_bound():
  images = np.zeros((64, 28, 28, 1), np.float32)
  images[:, 10:18, 9:15] = np.random.default_rng(0).uniform(0.1, 1.0, (64, 8, 6, 1))  # away from the borders
  shifted = np.asarray(steps.shift_images(jax.random.key(0), jnp.asarray(images), 2))
  np.testing.assert_array_equal(np.asarray(steps.shift_images(jax.random.key(0), jnp.asarray(images), 0)), images)
  seen = set()
  for original, moved in zip(images, shifted):
    matches = [
      (dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
      if np.array_equal(np.roll(original, (dy, dx), axis=(0, 1)), moved)
    ]  # fmt: skip
    assert len(matches) == 1
    seen.add(matches[0])
  assert len(seen) > 10  # offsets differ between images (25 possible)


def _critic_step(setup, state, batch):
  return jax.jit(functools.partial(steps.critic_step, setup))(state, batch, jax.random.key(3))


def test_the_entropy_term_adds_its_weighted_entropy_and_changes_the_update(state, batches):
  plain, weighted = _tiny_setup(), dataclasses.replace(_tiny_setup(), entropy_weight=0.5)
  before, plain_metrics = _critic_step(plain, state, batches.batch(0))
  after, metrics = _critic_step(weighted, state, batches.batch(0))
  base = metrics["labelled_loss"] + metrics["unlabelled_loss"]
  np.testing.assert_allclose(metrics["critic_loss"], base + 0.5 * metrics["unlabelled_entropy"], rtol=1e-6)
  assert 0.0 < float(metrics["unlabelled_entropy"]) <= np.log(10.0) + 1e-6
  # the same draws: the base terms are the plain step's, the parameters differ by the entropy's gradient
  np.testing.assert_allclose(metrics["unlabelled_loss"], plain_metrics["unlabelled_loss"], rtol=1e-6)
  assert not _equal(after.critic_params, before.critic_params)


def test_the_class_balance_term_adds_its_weighted_loss_and_averages_the_digit_probabilities(state, batches):
  plain, weighted = _tiny_setup(), dataclasses.replace(_tiny_setup(), class_balance_weight=2.0)
  assert state.class_marginal is None  # off: no running average in the state (older checkpoints restore)
  balanced = steps.create_state(weighted, jax.random.key(0), batches.init_images(100))
  np.testing.assert_allclose(balanced.class_marginal, np.full(10, 0.1), rtol=1e-6)
  balanced = balanced.replace(critic_params=state.critic_params, critic_frozen=state.critic_frozen)
  _, plain_metrics = _critic_step(plain, state, batches.batch(0))
  after, metrics = _critic_step(weighted, balanced, batches.batch(0))
  base = metrics["labelled_loss"] + metrics["unlabelled_loss"]
  np.testing.assert_allclose(metrics["critic_loss"], base + 2.0 * metrics["class_balance_loss"], rtol=1e-6)
  np.testing.assert_allclose(metrics["unlabelled_loss"], plain_metrics["unlabelled_loss"], rtol=1e-6)
  assert "class_balance_loss" not in plain_metrics
  marginal = np.asarray(after.class_marginal, np.float64)  # 0.99 uniform + 0.01 this batch's mean softmax
  np.testing.assert_allclose(marginal.sum(), 1.0, rtol=1e-6)
  assert 0 < np.abs(marginal - 0.1).max() <= 0.01 * 0.9 + 1e-7
  expected = np.sum(0.1 * np.log(0.1 / marginal))  # KL(uniform || the running average)
  np.testing.assert_allclose(float(metrics["class_balance_loss"]), expected, rtol=1e-3, atol=1e-6)


def test_two_identical_views_cost_nothing_and_noisy_views_a_consistency_loss(state, batches):
  quiet_critic = models.SslCritic(hidden_features=(32, 16), input_noise=0.0, hidden_noise=0.0)
  quiet = dataclasses.replace(_tiny_setup(), critic=quiet_critic, consistency_weight=1.0)
  _, metrics = _critic_step(quiet, state, batches.batch(0))
  assert float(metrics["consistency_loss"]) < 1e-12  # no shift, no noise: the two views are one image
  noisy = dataclasses.replace(_tiny_setup(), consistency_weight=2.0, unlabelled_shift=2)
  _, metrics = _critic_step(noisy, state, batches.batch(0))
  assert float(metrics["consistency_loss"]) > 0.0
  base = metrics["labelled_loss"] + metrics["unlabelled_loss"]
  np.testing.assert_allclose(metrics["critic_loss"], base + 2.0 * metrics["consistency_loss"], rtol=1e-6)


def test_a_real_view_is_the_shift_alone_without_augmentation_and_stays_in_unit_range_with_it():
  images = jnp.asarray(np.random.default_rng(1).uniform(0.0, 1.0, (8, 28, 28, 1)), jnp.float32)
  key = jax.random.key(5)
  np.testing.assert_array_equal(steps.real_view(key, images, 2, 0.0), steps.shift_images(key, images, 2))
  augmented = np.asarray(steps.real_view(key, images, 2, 1.0))
  assert augmented.min() >= 0.0 and augmented.max() <= 1.0
  assert not np.allclose(augmented, np.asarray(steps.shift_images(key, images, 2)), atol=0.05)
  np.testing.assert_array_equal(augmented, steps.real_view(key, images, 2, 1.0))  # the key decides


def test_augmenting_the_real_views_changes_the_critic_step_and_not_its_loss_terms(state, batches):
  _, plain = _critic_step(_tiny_setup(), state, batches.batch(0))
  augmented = dataclasses.replace(_tiny_setup(), labelled_augment=1.0, unlabelled_augment=1.0)
  _, metrics = _critic_step(augmented, state, batches.batch(0))
  assert set(metrics) == set(plain)
  assert float(metrics["labelled_loss"]) != float(plain["labelled_loss"])


def test_a_linear_decay_leaves_the_first_update_whole_and_stops_both_models_at_the_end(state, batches):
  decayed = dataclasses.replace(_tiny_setup(), learning_rate_decay="linear", total_steps=10)
  batch = batches.batch(0)
  train = jax.jit(lambda setup, s: steps.train_step(setup, s, batch, jax.random.key(4)), static_argnums=0)
  assert _equal(train(decayed, state)[0], train(_tiny_setup(), state)[0])  # scale 1 at step 0
  at_end = state.replace(step=jnp.full((), 10, jnp.int32))
  after, _ = train(decayed, at_end)
  assert _equal(after.critic_params, state.critic_params) and _equal(after.generator_params, state.generator_params)
  assert not _equal(after.critic_opt_state, state.critic_opt_state)  # the moments still move; the step is 0


def test_the_unlabelled_batch_carries_the_pseudo_labels_of_its_images(batches):
  pseudo = np.where(np.arange(300) % 3 == 0, -1, (np.arange(300) * 7) % 10).astype(np.int32)
  anchored = dataclasses.replace(batches, pseudo_labels=pseudo)
  assert "pseudo_label" not in batches.batch(0)
  for iteration in range(3):
    batch = anchored.batch(iteration)
    np.testing.assert_array_equal(batch["pseudo_label"], pseudo[_index_of(batch["unlabelled_image"])])
    jax.tree.map(np.testing.assert_array_equal, {k: v for k, v in batch.items() if k != "pseudo_label"},
                 batches.batch(iteration))  # fmt: skip


def test_the_pseudo_label_term_adds_its_weighted_loss_and_fades_to_nothing(state, batches):
  batch = {**batches.batch(0), "pseudo_label": np.where(np.arange(BATCH) % 2 == 0, np.arange(BATCH) % 10, -1)}
  plain = _tiny_setup()
  anchored = dataclasses.replace(plain, pseudo_label_weight=2.0, pseudo_label_fade_steps=10)
  _, plain_metrics = _critic_step(plain, state, batch)
  after, metrics = _critic_step(anchored, state, batch)
  base = metrics["labelled_loss"] + metrics["unlabelled_loss"]
  np.testing.assert_allclose(metrics["critic_loss"], base + 2.0 * metrics["pseudo_label_loss"], rtol=1e-6)
  np.testing.assert_allclose(metrics["unlabelled_loss"], plain_metrics["unlabelled_loss"], rtol=1e-6)
  assert "pseudo_label_loss" not in plain_metrics and float(metrics["pseudo_label_loss"]) > 0
  faded_state = state.replace(step=jnp.asarray(10, jnp.int32))  # the fade is over: the plain update
  faded, faded_metrics = _critic_step(anchored, faded_state, batch)
  unanchored, _ = _critic_step(plain, faded_state, batch)
  np.testing.assert_allclose(faded_metrics["critic_loss"], base, rtol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
               faded.critic_params, unanchored.critic_params)  # fmt: skip
  assert not _equal(after.critic_params, unanchored.critic_params)


def test_the_pseudo_label_weight_falls_linearly_over_its_fade_and_stays_without_one():
  fading = dataclasses.replace(_tiny_setup(), pseudo_label_weight=2.0, pseudo_label_fade_steps=100)
  scales = [float(schedules.pseudo_label_scale(fading, jnp.asarray(s))) for s in (0, 25, 100, 1000)]
  np.testing.assert_allclose(scales, [2.0, 1.5, 0.0, 0.0], rtol=1e-6)
  constant = dataclasses.replace(fading, pseudo_label_fade_steps=0)
  assert float(schedules.pseudo_label_scale(constant, jnp.asarray(10_000))) == 2.0
