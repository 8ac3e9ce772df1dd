import dataclasses
import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import default, tiny
from ganjax import example_draws, images, losses, schedules, steps


def make(loss: str, num_critic_steps: int, **overrides):
  config = tiny.get_config()
  config.loss = loss
  config.num_critic_steps = num_critic_steps
  config.batch_size = 8
  for key, value in overrides.items():
    config[key] = value
  setup = steps.make_setup(config)
  return setup, steps.create_state(setup, jax.random.key(0))


def random_batch(num_critic_steps: int, batch_size: int = 8, seed: int = 0):
  images = jax.random.randint(jax.random.key(seed), (num_critic_steps, batch_size, 28, 28, 1), 0, 256)
  return {"image": images.astype(jnp.uint8), "label": jnp.zeros((num_critic_steps, batch_size), jnp.int32)}


def assert_trees_equal(a, b):
  jax.tree.map(np.testing.assert_array_equal, a, b)


def adam_count(opt_state) -> int:
  return int(opt_state[0].count)


@pytest.mark.parametrize(
  "loss",  # each jit-compiles a step: the fast loop keeps one
  [loss if loss == "non_saturating" else pytest.param(loss, marks=pytest.mark.slow) for loss in losses.OBJECTIVES],
)
def test_train_step_returns_finite_named_metrics_and_advances_the_step(loss):
  setup, state = make(loss, 2)
  state, metrics = jax.jit(lambda s, b, k: steps.train_step(setup, s, b, k))(state, random_batch(2), jax.random.key(1))
  expected = {"critic_loss", "generator_loss", "real_logit", "fake_logit"}
  if loss in ("wgan", "wgan_gp"):
    expected.add("wasserstein_estimate")
  if loss == "wgan_gp":
    expected.add("gradient_penalty")
  assert set(metrics) == expected
  assert all(np.isfinite(float(v)) and np.shape(v) == () for v in metrics.values())
  assert int(state.step) == 1


@pytest.mark.slow  # n_critic=5 steps op by op; test_every_real_batch_matters runs train_step in the fast loop
def test_train_step_is_n_critic_critic_steps_on_successive_batches_then_one_generator_step():
  setup, state = make("wgan_gp", 5)
  batch, key = random_batch(5), jax.random.key(7)
  result, _ = steps.train_step(setup, state, batch, key)

  *critic_keys, generator_key = jax.random.split(jax.random.fold_in(key, state.step), 6)
  manual = state
  for i in range(5):
    manual, _ = steps.critic_step(setup, manual, images.to_float_images(batch["image"][i]), critic_keys[i])
  manual, _ = steps.generator_step(setup, manual, 8, generator_key)
  assert_trees_equal(result.critic_params, manual.critic_params)
  assert_trees_equal(result.generator_params, manual.generator_params)
  # The critic's optimiser saw 5 updates, the generator's 1.
  assert adam_count(result.critic_opt_state) == 5
  assert adam_count(result.generator_opt_state) == 1


def test_every_real_batch_matters():
  setup, state = make("wgan_gp", 3)
  batch = random_batch(3)
  changed = {**batch, "image": batch["image"].at[2].set(0)}  # only the last critic step's batch differs
  a, _ = steps.train_step(setup, state, batch, jax.random.key(1))
  b, _ = steps.train_step(setup, state, changed, jax.random.key(1))
  assert not np.allclose(a.critic_params["Dense_0"]["kernel"], b.critic_params["Dense_0"]["kernel"])


def test_train_step_rejects_a_batch_with_the_wrong_number_of_real_batches():
  setup, state = make("wgan", 5)
  with pytest.raises(ValueError, match="n_critic=5"):
    steps.train_step(setup, state, random_batch(4), jax.random.key(0))


def test_weight_clipping_holds_after_every_critic_step():
  # A large learning rate pushes parameters far beyond c in one update, so clipping has work to do.
  setup, state = make("wgan", 3, critic_optimizer=dict(name="sgd", learning_rate=10.0))
  batch = random_batch(3)
  for i in range(3):
    state, _ = steps.critic_step(setup, state, images.to_float_images(batch["image"][i]), jax.random.key(i))
    leaves = jax.tree.leaves(state.critic_params)
    assert max(float(jnp.max(jnp.abs(p))) for p in leaves) <= 0.01 + 1e-9
    assert any(float(jnp.max(jnp.abs(p))) == pytest.approx(0.01) for p in leaves)  # the bound was reached


def test_only_wgan_clips():
  setup, state = make("wgan_gp", 1, critic_optimizer=dict(name="sgd", learning_rate=10.0))
  state, _ = steps.critic_step(setup, state, images.to_float_images(random_batch(1)["image"][0]), jax.random.key(0))
  assert max(float(jnp.max(jnp.abs(p))) for p in jax.tree.leaves(state.critic_params)) > 0.01


def test_critic_step_leaves_generator_weights_and_generator_step_leaves_critic_weights():
  setup, state = make("non_saturating", 1)
  after_critic, _ = steps.critic_step(
    setup, state, images.to_float_images(random_batch(1)["image"][0]), jax.random.key(0)
  )
  assert_trees_equal(after_critic.generator_params, state.generator_params)
  assert_trees_equal(after_critic.generator_opt_state, state.generator_opt_state)
  after_generator, _ = steps.generator_step(setup, state, 8, jax.random.key(0))
  assert_trees_equal(after_generator.critic_params, state.critic_params)
  assert not np.allclose(
    after_generator.generator_params["Dense_0"]["kernel"], state.generator_params["Dense_0"]["kernel"]
  )


def test_same_state_batch_and_key_give_the_same_step_and_another_key_another():
  setup, state = make("wgan_gp", 2)
  batch = random_batch(2)
  a, _ = steps.train_step(setup, state, batch, jax.random.key(3))
  b, _ = steps.train_step(setup, state, batch, jax.random.key(3))
  c, _ = steps.train_step(setup, state, batch, jax.random.key(4))
  assert_trees_equal(a.generator_params, b.generator_params)
  assert not np.allclose(a.generator_params["Dense_0"]["kernel"], c.generator_params["Dense_0"]["kernel"])


def test_gp_epsilon_is_drawn_per_sample_in_the_unit_interval():
  setup, _ = make("wgan_gp", 1)
  keys = example_draws.example_keys(setup, jax.random.key(0), 256)
  eps = jax.vmap(jax.random.uniform)(keys)  # as critic_step draws it
  assert eps.shape == (256,)
  assert float(eps.min()) >= 0 and float(eps.max()) <= 1 and float(eps.std()) > 0.2
  assert len(np.unique(np.asarray(eps))) == 256


def test_sampling_uses_moving_statistics_and_is_deterministic():
  setup, state = make("non_saturating", 1)
  z = jax.random.normal(jax.random.key(0), (4, 100))
  np.testing.assert_array_equal(steps.sample(setup, state, z), steps.sample(setup, state, z))
  # In inference mode a sample does not depend on the rest of the batch (no batch statistics).
  np.testing.assert_allclose(steps.sample(setup, state, z)[:1], steps.sample(setup, state, z[:1]), rtol=1e-5, atol=1e-6)


def test_sampling_scales_the_noise_by_the_sampling_latent_scale():
  setup, state = make("non_saturating", 1)
  z = jax.random.normal(jax.random.key(0), (4, 100))
  wide = dataclasses.replace(setup, sampling_latent_scale=1.5)
  np.testing.assert_allclose(steps.sample(wide, state, z), steps.sample(setup, state, 1.5 * z), rtol=1e-5, atol=1e-6)
  assert float(jnp.max(jnp.abs(steps.sample(wide, state, z) - steps.sample(setup, state, z)))) > 1e-3


@pytest.mark.slow  # jit-compiles a step
def test_batch_statistics_sampling_normalises_with_the_batch_and_leaves_the_moving_statistics_alone():
  setup, state = make("non_saturating", 1)
  state, _ = jax.jit(functools.partial(steps.train_step, setup))(state, random_batch(1), jax.random.key(1))
  batch_setup = dataclasses.replace(setup, sampling_batch_norm="batch")
  z = jax.random.normal(jax.random.key(0), (16, 100))
  moving, batch = steps.sample(setup, state, z), steps.sample(batch_setup, state, z)
  assert batch.shape == moving.shape and bool(jnp.all(jnp.abs(batch) <= 1))
  assert float(jnp.max(jnp.abs(moving - batch))) > 1e-3  # the two modes really differ
  # Batch statistics: a sample depends on the rest of its batch, and sampling changes no state.
  first_of_two_batches = (
    steps.sample(batch_setup, state, z[:8])[:1],
    steps.sample(batch_setup, state, z[8:].at[0].set(z[0]))[:1],
  )
  assert not np.allclose(*first_of_two_batches)
  np.testing.assert_array_equal(steps.sample(batch_setup, state, z), batch)
  # The same as a training-mode forward pass of G on that batch.
  expected, _ = setup.generator.apply(
    {"params": state.generator_params, "batch_stats": state.generator_batch_stats},
    z,
    train=True,
    mutable=["batch_stats"],
  )
  np.testing.assert_allclose(steps.sample(batch_setup, state, z, use_ema=False), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # 6 jitted steps; test_layers/test_models check the layers fast
@pytest.mark.parametrize("loss", ["non_saturating", "wgan_gp"])
def test_phase_convolutions_give_the_same_update_step_as_plain_layers(loss):
  # The throughput lever must not change the maths: same state after two full steps (GP's double backward
  # included), up to float rounding.
  batch, key = random_batch(2), jax.random.key(3)
  results = []
  for conv_impl in ("plain", "phase", "hybrid"):
    setup, state = make(loss, 2, conv_impl=conv_impl)
    train_step = jax.jit(functools.partial(steps.train_step, setup))
    for _ in range(2):
      state, metrics = train_step(state, batch, key)
    results.append((state, metrics))
  (plain, plain_metrics), *others = results
  close = functools.partial(np.testing.assert_allclose, rtol=2e-4, atol=2e-5)
  for state, metrics in others:
    jax.tree.map(close, state.generator_params, plain.generator_params)
    jax.tree.map(close, state.critic_params, plain.critic_params)
    jax.tree.map(close, state.generator_batch_stats, plain.generator_batch_stats)
    jax.tree.map(close, metrics, plain_metrics)


def test_ema_decay_warms_up_then_holds():
  decays = [float(schedules.ema_decay_at(0.999, jnp.asarray(t))) for t in (0, 10, 10_000)]
  np.testing.assert_allclose(decays, [0.1, 11 / 20, 0.999], rtol=1e-6)


@pytest.mark.slow  # jit-compiles a step
def test_the_ema_follows_the_generator_with_the_documented_update():
  setup, state = make("non_saturating", 1, ema_decay=0.9)
  assert state.generator_ema_params is not None
  jax.tree.map(np.testing.assert_array_equal, state.generator_ema_params, state.generator_params)
  step = jax.jit(functools.partial(steps.train_step, setup))
  expected = state.generator_ema_params
  for i in range(3):
    state, _ = step(state, random_batch(1, seed=i), jax.random.key(1))
    d = min(0.9, (1 + i) / (10 + i))
    expected = jax.tree.map(lambda e, p: d * e + (1 - d) * p, expected, state.generator_params)
  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), state.generator_ema_params, expected
  )
  assert not np.allclose(state.generator_ema_params["Dense_0"]["kernel"], state.generator_params["Dense_0"]["kernel"])
  z = jax.random.normal(jax.random.key(2), (4, setup.latent_dim))
  # Sampling uses the EMA unless asked not to.
  assert not np.allclose(steps.sample(setup, state, z), steps.sample(setup, state, z, use_ema=False))


def test_without_ema_the_state_holds_none_and_sampling_uses_the_live_generator():
  setup, state = make("non_saturating", 1)
  assert state.generator_ema_params is None
  z = jax.random.normal(jax.random.key(2), (4, setup.latent_dim))
  np.testing.assert_array_equal(steps.sample(setup, state, z), steps.sample(setup, state, z, use_ema=False))


@pytest.mark.parametrize("loss", ["non_saturating", "wgan_gp"])
def test_a_conditional_critic_trains_on_the_batch_labels(loss):
  setup, state = make(loss, 1, conditioning="digit")
  batch = random_batch(1)
  relabelled = {**batch, "label": batch["label"] + 3}
  a, metrics = steps.train_step(setup, state, batch, jax.random.key(1))
  b, _ = steps.train_step(setup, state, relabelled, jax.random.key(1))
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert not np.allclose(
    a.critic_params["label_projection"]["embedding"], b.critic_params["label_projection"]["embedding"]
  )


@pytest.mark.slow  # 31 jitted steps; the AC head is in the fast loop's digit_clusters test
@pytest.mark.parametrize("loss", ["non_saturating", "wgan_gp"])
def test_the_auxiliary_classifier_learns_the_real_labels_and_steers_the_generator(loss):
  fast_critic = default.adam(3e-3)  # to memorise 8 labels in a few steps
  setup, state = make(loss, 1, conditioning="digit", class_head="ac", critic_optimizer=fast_critic)
  assert "auxiliary_classifier" in state.critic_params
  batch = random_batch(1)
  batch["label"] = jnp.arange(8, dtype=jnp.int32)[None] % 10
  step = jax.jit(functools.partial(steps.train_step, setup))
  first, metrics = step(state, batch, jax.random.key(1))
  assert {"critic_class_loss", "generator_class_loss"} <= set(metrics)
  assert abs(float(metrics["critic_class_loss"]) - np.log(10)) < 0.5  # a fresh head guesses
  state = first
  for i in range(30):  # the same 8 real digits: the head memorises their labels
    state, last = step(state, batch, jax.random.key(i))
  assert float(last["critic_class_loss"]) < 0.5 * float(metrics["critic_class_loss"])
  # G's update depends on the class loss: without the head's terms the same step moves G differently.
  plain_setup = dataclasses.replace(setup, class_head="none")
  plain, _ = steps.train_step(plain_setup, state, batch, jax.random.key(99))
  with_class, _ = steps.train_step(setup, state, batch, jax.random.key(99))
  assert not np.allclose(plain.generator_params["Dense_0"]["kernel"], with_class.generator_params["Dense_0"]["kernel"])


@pytest.mark.slow  # jit-compiles a step; the twin head is in the fast loop's Wasserstein-estimate test
def test_the_twin_head_learns_the_fakes_digits_and_pushes_the_generator_the_other_way():
  fast_critic = default.adam(3e-3)
  setup, state = make("wgan_gp", 1, conditioning="digit", class_head="tac", critic_optimizer=fast_critic)
  assert state.critic_params["twin_classifier"]["kernel"].shape[-1] == 10
  batch = random_batch(1)
  step = jax.jit(functools.partial(steps.train_step, setup))
  _, metrics = step(state, batch, jax.random.key(1))
  assert {"critic_twin_loss", "generator_twin_loss", "critic_class_loss", "generator_class_loss"} <= set(metrics)
  assert abs(float(metrics["critic_twin_loss"]) - np.log(10)) < 0.5  # a fresh twin guesses

  # G's class term is the AC head's cross-entropy minus the twin's: G ascends the twin's loss. Checked on the
  # gradient alone: with the twin's read-out zeroed its loss is log 10 whatever G draws, so G's update is
  # AC-GAN's; scaling that read-out up makes the twin's term (and so G's update) differ.
  def generator_update(twin_scale):
    params = dict(state.critic_params)
    params["twin_classifier"] = jax.tree.map(lambda p: p * twin_scale, params["twin_classifier"])
    new, _ = steps.generator_step(setup, state.replace(critic_params=params), 8, jax.random.key(5))
    return new.generator_params["Dense_0"]["kernel"] - state.generator_params["Dense_0"]["kernel"]

  ac_setup = dataclasses.replace(setup, class_head="ac")
  ac_new, _ = steps.generator_step(ac_setup, state, 8, jax.random.key(5))
  ac_update = ac_new.generator_params["Dense_0"]["kernel"] - state.generator_params["Dense_0"]["kernel"]
  np.testing.assert_allclose(generator_update(0.0), ac_update, rtol=1e-4, atol=1e-7)
  assert not np.allclose(generator_update(50.0), ac_update, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("class_head", ["none", "tac"])
def test_the_wasserstein_estimate_is_the_mean_real_minus_fake_logit_class_heads_or_not(class_head):
  setup, state = make("wgan_gp", 1, conditioning="digit", class_head=class_head)
  _, metrics = steps.train_step(setup, state, random_batch(1), jax.random.key(1))
  gap = metrics["real_logit"] - metrics["fake_logit"]
  np.testing.assert_allclose(metrics["wasserstein_estimate"], gap, rtol=1e-5, atol=1e-6)
  if class_head != "none":  # the critic loss also holds the heads' terms, which the estimate leaves out
    penalty = setup.objective.gradient_penalty_weight * metrics["gradient_penalty"]
    assert abs(float(metrics["critic_loss"] - penalty + gap)) > 1e-3


def test_the_class_heads_terms_are_in_the_losses_only_when_the_setup_has_a_head():
  setup, state = make("non_saturating", 1, conditioning="digit")
  assert "auxiliary_classifier" not in state.critic_params
  _, metrics = steps.train_step(setup, state, random_batch(1), jax.random.key(1))
  assert not {"critic_class_loss", "generator_class_loss", "critic_twin_loss", "generator_twin_loss"} & set(metrics)


def test_a_self_conditioned_setup_conditions_both_networks_on_clusters_drawn_by_their_shares():
  setup, state = make("wgan_gp", 1, conditioning="clusters", num_clusters=5)
  assert setup.num_labels == setup.conditioning.num_clusters == 5 and not setup.conditioning.num_digits
  assert setup.generator.num_labels == setup.critic.num_labels == 5
  np.testing.assert_allclose(state.cluster_shares, [0.2] * 5)  # uniform until training sets the real shares
  shares = jnp.array([0.0, 0.0, 1.0, 0.0, 0.0])
  np.testing.assert_array_equal(example_draws.draw_labels(setup, jax.random.key(0), 8, shares), [2] * 8)
  draws = example_draws.draw_labels(setup, jax.random.key(1), 4000, jnp.array([0.1, 0.0, 0.2, 0.0, 0.7]))
  np.testing.assert_allclose(np.bincount(draws, minlength=5) / 4000, [0.1, 0, 0.2, 0, 0.7], atol=0.03)
  # The critic trains on the batch's labels, which are clusters here: other clusters, another step.
  batch = random_batch(1)
  a, _ = steps.train_step(setup, state, batch, jax.random.key(1))
  b, _ = steps.train_step(setup, state, {**batch, "label": batch["label"] + 3}, jax.random.key(1))
  assert not np.allclose(
    a.critic_params["label_projection"]["embedding"], b.critic_params["label_projection"]["embedding"]
  )


def test_clusters_within_digits_condition_on_pairs_and_the_auxiliary_head_learns_the_digit():
  setup, state = make("wgan_gp", 1, conditioning="digit_clusters", num_clusters=3, class_head="ac")
  assert setup.num_labels == 30 and setup.conditioning.num_digits == 10
  assert setup.generator.num_labels == setup.critic.num_labels == 30
  assert state.critic_params["auxiliary_classifier"]["kernel"].shape[-1] == 10
  np.testing.assert_array_equal(setup.conditioning.digits_of(jnp.array([0, 2, 3, 29])), [0, 0, 1, 9])
  np.testing.assert_allclose(state.cluster_shares, [1 / 30] * 30, rtol=1e-6)
  shares = jnp.zeros(30).at[7].set(1.0)  # G's steps draw (digit, cluster) pairs by their shares
  np.testing.assert_array_equal(example_draws.draw_labels(setup, jax.random.key(0), 8, shares), [7] * 8)
  # Pairs (digit 0, cluster 1) and (digit 0, cluster 2) are one digit to the AC head: the same class loss.
  batch = random_batch(1)
  _, first = steps.train_step(setup, state, {**batch, "label": batch["label"] + 1}, jax.random.key(1))
  _, second = steps.train_step(setup, state, {**batch, "label": batch["label"] + 2}, jax.random.key(1))
  _, other_digit = steps.train_step(setup, state, {**batch, "label": batch["label"] + 4}, jax.random.key(1))
  np.testing.assert_allclose(first["critic_class_loss"], second["critic_class_loss"], rtol=1e-6)
  assert not np.allclose(first["critic_class_loss"], other_digit["critic_class_loss"])


@pytest.mark.parametrize("decay", ["linear", "cosine"])
def test_learning_rate_decay_scales_every_update_by_the_schedule_at_that_step(decay):
  # SGD makes an update proportional to the learning rate: the decayed step's parameter change must be the
  # constant-rate change times the schedule's factor at that step, for G and the critic alike.
  sgd = ml_collections.ConfigDict(dict(name="sgd", learning_rate=0.1))
  setup, state = make("wgan_gp", 1, generator_optimizer=sgd, critic_optimizer=sgd)
  decayed = dataclasses.replace(setup, learning_rate_decay=decay, learning_rate_decay_start=0.5, total_steps=8)
  state = state.replace(step=jnp.asarray(6, jnp.int32))  # 2 of the 4 decaying steps done
  factor = 0.5  # both schedules are halfway down at the decay's midpoint
  assert float(schedules.learning_rate_scale(decayed, jnp.asarray(6))) == pytest.approx(factor)
  assert float(schedules.learning_rate_scale(decayed, jnp.asarray(3))) == 1.0  # before the decay starts
  assert float(schedules.learning_rate_scale(decayed, jnp.asarray(7))) == pytest.approx(
    {"linear": 0.25, "cosine": 0.5 * (1 + np.cos(np.pi * 0.75))}[decay]
  )
  real, key = images.to_float_images(random_batch(1)["image"][0]), jax.random.key(3)
  for name, step in [
    ("critic_params", lambda s: steps.critic_step(s, state, real, key)[0]),
    ("generator_params", lambda s: steps.generator_step(s, state, 8, key)[0]),
  ]:
    before, full, part = getattr(state, name), getattr(step(setup), name), getattr(step(decayed), name)
    jax.tree.map(
      lambda b, f, p: np.testing.assert_allclose(p - b, factor * (f - b), rtol=1e-3, atol=2e-7), before, full, part
    )
  with pytest.raises(ValueError, match="needs the run's total_steps"):
    schedules.learning_rate_scale(dataclasses.replace(decayed, total_steps=0), jnp.asarray(0))
