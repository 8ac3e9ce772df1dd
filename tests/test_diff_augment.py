"""DiffAugment of the critic's inputs: the two operations, their draws, and that the steps apply them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import tiny
from ganjax import diff_augment, steps

BACKGROUND = diff_augment.BACKGROUND


def digit_like(batch: int = 1, seed: int = 0) -> jax.Array:
  """float [B, 28, 28, 1]: background with a random 'digit' inside the central 20x20 box, as MNIST's."""
  images = np.full((batch, 28, 28, 1), BACKGROUND, np.float32)
  images[:, 4:24, 4:24] = np.random.default_rng(seed).uniform(-1, 1, (batch, 20, 20, 1))
  return jnp.asarray(images)


def test_parse_reads_a_comma_separated_policy_and_names_a_bad_entry():
  assert diff_augment.parse("") == ()
  assert diff_augment.parse("translation, cutout") == ("translation", "cutout")
  with pytest.raises(ValueError, match="'flip' is not a critic augmentation; allowed: translation, cutout"):
    diff_augment.parse("translation,flip")
  with pytest.raises(ValueError, match="twice"):
    diff_augment.parse("cutout,cutout")


def find_shift(original: np.ndarray, moved: np.ndarray) -> tuple[int, int]:
  """The (rows, cols) offset that maps original onto moved, with background shifted in (asserts one exists)."""
  for dy in range(-6, 7):
    for dx in range(-6, 7):
      padded = np.pad(original, 6, constant_values=BACKGROUND)
      if np.array_equal(padded[6 - dy : 34 - dy, 6 - dx : 34 - dx], moved):
        return dy, dx
  raise AssertionError("the output is not a shifted copy of the input")


def test_translation_moves_the_whole_image_by_up_to_an_eighth_of_its_side_and_fills_with_background():
  image = digit_like()[0]
  shifts = set()
  for seed in range(200):
    moved = np.asarray(diff_augment.translate(jax.random.key(seed), image))[..., 0]
    shifts.add(find_shift(np.asarray(image)[..., 0], moved))
  # int(28 / 8 + 0.5) = 4: every offset in [-4, 4]^2 occurs, none beyond (81 possible).
  assert {dy for dy, _ in shifts} == set(range(-4, 5)) == {dx for _, dx in shifts}
  assert len(shifts) > 60


def test_cutout_blanks_one_half_side_square_anywhere_and_leaves_the_rest():
  image = jnp.zeros((28, 28, 1))  # every pixel not background, so the blanked square is visible
  areas, centres = [], set()
  for seed in range(300):
    cut = np.asarray(diff_augment.cutout(jax.random.key(seed), image))[..., 0]
    blank = cut == BACKGROUND
    np.testing.assert_array_equal(cut[~blank], 0.0)
    rows, cols = np.flatnonzero(blank.any(axis=1)), np.flatnonzero(blank.any(axis=0))
    assert blank.sum() == len(rows) * len(cols)  # one axis-aligned rectangle: the 14x14 square, clipped
    assert len(rows) <= 14 and len(cols) <= 14
    areas.append(blank.sum())
    centres.add((rows.mean().round(), cols.mean().round()))
  assert max(areas) == 14 * 14 and min(areas) < 100  # whole inside, or hanging over an edge
  assert len(centres) > 100


def test_augment_draws_each_example_from_its_own_key_and_is_linear_in_the_image():
  policy = diff_augment.parse("translation,cutout")
  images = digit_like(batch=4)
  images = jnp.concatenate([images, images])  # examples 0 and 4 are the same image
  keys = jax.random.split(jax.random.key(0), 8)
  out = diff_augment.augment(policy, keys, images)
  np.testing.assert_array_equal(out, diff_augment.augment(policy, keys, images))
  assert not np.array_equal(out[0], out[4])  # same image, another key
  single = diff_augment.augment(policy, keys[4:5], images[4:5])
  np.testing.assert_array_equal(out[4:5], single)  # an example's draw does not depend on the batch
  # out = A x + fill, A a 0/1 selection: the gradient of a weighted sum is A^T w, so <grad, x> = <w, A x>,
  # the sum over the pixels that are not fill (with no background in x, exactly those that are not -1).
  dense = jax.random.uniform(jax.random.key(2), images.shape)
  out = diff_augment.augment(policy, keys, dense)
  weights = jax.random.normal(jax.random.key(1), out.shape)
  grad = jax.grad(lambda x: jnp.sum(diff_augment.augment(policy, keys, x) * weights))(dense)
  assert set(np.unique(np.asarray(grad != 0).sum(axis=(1, 2, 3)))) != {28 * 28}  # some pixels are cut or shifted out
  expected = jnp.sum(jnp.where(out == BACKGROUND, 0, out) * weights)
  np.testing.assert_allclose(float(jnp.sum(grad * dense)), float(expected), rtol=1e-5)


def make(policy: str, loss: str = "wgan_gp", dropout_rate: float = 0.3):
  config = tiny.get_config()
  config.loss, config.num_critic_steps, config.batch_size = loss, 1, 8
  config.critic_augment, config.dropout_rate = policy, dropout_rate
  setup = steps.make_setup(config)
  return setup, steps.create_state(setup, jax.random.key(0))


def train_step(setup, state):
  return jax.jit(lambda s, b, k: steps.train_step(setup, s, b, k))(state, real_batch(), jax.random.key(1))


def real_batch():
  images = jax.random.randint(jax.random.key(5), (1, 8, 28, 28, 1), 0, 256).astype(jnp.uint8)
  return {"image": images, "label": jnp.zeros((1, 8), jnp.int32)}


def test_the_critic_sees_only_augmented_images_real_and_fake_and_g_learns_through_the_augmentation(monkeypatch):
  # An "augmentation" that blanks every image: real and fake then look the same to the critic, and G's
  # gradient, which flows only through the augmentation, is zero.
  monkeypatch.setitem(diff_augment.OPERATIONS, "cutout", lambda key, image: jnp.zeros_like(image) * image)
  setup, state = make("cutout", dropout_rate=0.0)
  new_state, metrics = train_step(setup, state)
  assert float(metrics["real_logit"]) == float(metrics["fake_logit"])
  assert float(metrics["gradient_penalty"]) == pytest.approx(
    1.0, abs=1e-4
  )  # |grad| = 0 at every interpolate: (0 - 1)^2
  jax.tree.map(np.testing.assert_array_equal, new_state.generator_params, state.generator_params)


@pytest.mark.slow
def test_every_critic_input_passes_through_the_augmentation_once(monkeypatch):
  seen = []

  def recording_cutout(key, image):
    seen.append(image.shape)
    return diff_augment.cutout(key, image)

  monkeypatch.setitem(diff_augment.OPERATIONS, "cutout", recording_cutout)
  setup, state = make("cutout")
  train_step(setup, state)
  assert len(seen) == 4  # the critic step's fakes, reals and GP interpolates; the generator step's fakes


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["non_saturating", "wgan_gp"])
def test_with_augmentation_both_networks_still_learn_and_the_step_changes(loss):
  plain_setup, state = make("", loss)
  setup, _ = make("translation,cutout", loss)
  augmented, metrics = train_step(setup, state)
  plain, _ = train_step(plain_setup, state)
  assert all(np.isfinite(float(v)) for v in metrics.values())
  for name in ("generator_params", "critic_params"):
    changed = jax.tree.map(lambda a, b: not np.allclose(a, b), getattr(augmented, name), getattr(state, name))
    kernels = [v for path, v in jax.tree_util.tree_leaves_with_path(changed) if "kernel" in jax.tree_util.keystr(path)]
    assert len(kernels) >= 3 and all(kernels), name  # (a Wasserstein critic's output bias has no gradient)
    differs = jax.tree.map(lambda a, b: not np.allclose(a, b), getattr(augmented, name), getattr(plain, name))
    assert any(jax.tree.leaves(differs)), name
