"""Differentiable augmentation of the critic's inputs (DiffAugment: Zhao et al. 2020, "Differentiable
Augmentation for Data-Efficient GAN Training").

On a few hundred images a critic memorises the real set and G learns to copy it. DiffAugment shows the critic
only randomly transformed images, real and fake alike and with the same operations, and lets G's gradient
flow back through the transform. So the critic cannot tell real from fake by the augmentation, and G is not
pushed to produce augmented-looking digits. Here `config.critic_augment` is a comma-separated policy from
POLICIES (e.g. "translation,cutout", the paper's choice for its few-shot runs without colour).

Both operations follow the paper's reference code (DiffAugment_pytorch.py), with one change for MNIST: what
is shifted in or cut out reads as background (-1, an empty pixel), not as 0 (grey in [-1, 1] images).
Each example gets its own draw from its own key (example_draws.example_keys), so a batch split across devices is
augmented exactly as on one device. Both maps are linear in the image, so the gradient penalty and G's
gradient pass through them.
"""

import jax
import jax.numpy as jnp

BACKGROUND = -1.0
TRANSLATION_RATIO = 0.125  # shifts of up to 1/8 of the side per axis: +-4 px on 28x28 (the paper's rounding)
CUTOUT_RATIO = 0.5  # a square of half the side: 14x14 on 28x28, centred anywhere on the image
POLICIES = ("translation", "cutout")


def parse(policy: str) -> tuple[str, ...]:
  """'translation,cutout' -> ('translation', 'cutout'); '' -> () (off). ValueError names a bad entry."""
  names = tuple(name.strip() for name in policy.split(",") if name.strip())
  for name in names:
    if name not in POLICIES:
      raise ValueError(f"{name!r} is not a critic augmentation; allowed: {', '.join(POLICIES)}")
  if len(set(names)) != len(names):
    raise ValueError(f"{policy!r} names an augmentation twice")
  return names


def _side_fraction(side: int, ratio: float) -> int:
  return int(side * ratio + 0.5)


def translate(key: jax.Array, image: jax.Array) -> jax.Array:
  """One image [H, W, C] moved by an integer offset uniform in [-s, s]^2 (s = TRANSLATION_RATIO of the side).

  The offset selects one of 2s + 1 static slices per axis: a masked sum instead of a gather, exact and cheap
  at this size.
  """
  height, width, _ = image.shape
  shift_h, shift_w = _side_fraction(height, TRANSLATION_RATIO), _side_fraction(width, TRANSLATION_RATIO)
  padded = jnp.pad(image, ((shift_h, shift_h), (shift_w, shift_w), (0, 0)), constant_values=BACKGROUND)
  offset_h = jax.random.randint(jax.random.fold_in(key, 0), (), 0, 2 * shift_h + 1)
  offset_w = jax.random.randint(jax.random.fold_in(key, 1), (), 0, 2 * shift_w + 1)
  rows = sum(jnp.where(offset_h == o, padded[o : o + height], 0.0) for o in range(2 * shift_h + 1))
  return sum(jnp.where(offset_w == o, rows[:, o : o + width], 0.0) for o in range(2 * shift_w + 1))


def cutout(key: jax.Array, image: jax.Array) -> jax.Array:
  """One image [H, W, C] with a square of CUTOUT_RATIO of the side set to background, centred uniformly
  (it may hang over the edge, as in the paper's code)."""
  height, width, _ = image.shape
  size_h, size_w = _side_fraction(height, CUTOUT_RATIO), _side_fraction(width, CUTOUT_RATIO)
  centre_h = jax.random.randint(jax.random.fold_in(key, 0), (), 0, height + (1 - size_h % 2))
  centre_w = jax.random.randint(jax.random.fold_in(key, 1), (), 0, width + (1 - size_w % 2))
  rows = jnp.arange(height) - (centre_h - size_h // 2)
  cols = jnp.arange(width) - (centre_w - size_w // 2)
  inside = ((rows >= 0) & (rows < size_h))[:, None] & ((cols >= 0) & (cols < size_w))[None, :]
  return jnp.where(inside[:, :, None], BACKGROUND, image)


OPERATIONS = {"translation": translate, "cutout": cutout}


def augment(policy: tuple[str, ...], keys: jax.Array, images: jax.Array) -> jax.Array:
  """images [B, H, W, C] with the policy's operations applied in order, example b drawn from keys[b]."""
  for index, name in enumerate(policy):
    operation_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, index)
    images = jax.vmap(OPERATIONS[name])(operation_keys, images)
  return images
