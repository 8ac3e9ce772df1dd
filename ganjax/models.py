"""The 28x28 DCGAN generator and critic of the reference paper (the TF DCGAN tutorial networks).

Pure Flax linen modules: parameters and BatchNorm statistics live outside, in the training state.
Images are NHWC in [-1, 1]; the critic returns one unbounded logit per image.
"""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganjax import layers

# Glorot-uniform kernels and zero biases, as Keras (the paper's framework) initialises these layers.
kernel_init = nn.initializers.xavier_uniform()

# How stride-2 layers are computed; both hold the same parameters and compute the same function.
#   plain: nn.Conv / nn.ConvTranspose (the reference implementation);
#   phase: stride-1 3x3 convolutions around space-to-depth / depth-to-space (ganjax.layers; fast on XLA:CPU);
#   hybrid: per pass (forward, input gradient, weight gradient) whichever of the two XLA:CPU runs faster.
CONV_IMPLS = ("plain", "phase", "hybrid")

# How a conditional critic sees the label (README "Conditional models" has the measurements):
#   projection: logit = psi(phi(x)) + <embed(y), phi(x)> (Miyato & Koyama 2018), phi = the conv features;
#   concat: one-hot label maps concatenated to the image channels (Mirza & Osindero 2014).
CRITIC_CONDITIONINGS = ("projection", "concat")


def _check_conv_impl(conv_impl: str) -> None:
  if conv_impl not in CONV_IMPLS:
    raise ValueError(f"conv_impl={conv_impl!r}; expected one of {CONV_IMPLS}")


def _check_labels(module: nn.Module, labels: jax.Array | None, batch_size: int) -> None:
  if (labels is None) != (module.num_classes == 0):
    raise ValueError(
      f"{type(module).__name__} with num_classes={module.num_classes} "
      f"{'needs' if module.num_classes else 'takes no'} labels"
    )
  if labels is not None and labels.shape != (batch_size,):
    raise ValueError(f"labels must have shape ({batch_size},), got {labels.shape}")


class Generator(nn.Module):
  """z [B, latent_dim] (and class labels [B] when num_classes > 0) -> images [B, 28, 28, 1] in [-1, 1].

  Dense -> 7x7xF0, then a stride-1 and two stride-2 transposed 5x5 convolutions; BatchNorm + LeakyReLU
  after every layer but the last, tanh at the end. No biases: BatchNorm's shift makes them redundant.
  A conditional generator concatenates the one-hot label to z: through the first Dense that is exactly a
  learnt per-class embedding added to the projection of z, so a separate embedding layer would add nothing.
  """

  features: Sequence[int] = (256, 128, 64)
  leaky_relu_slope: float = 0.3
  batch_norm_momentum: float = 0.99
  batch_norm_epsilon: float = 1e-3
  axis_name: str | None = None  # under pmap: batch statistics are averaged over this device axis
  conv_impl: str = "plain"
  num_classes: int = 0  # > 0: conditional on a class label

  @nn.compact
  def __call__(self, z: jax.Array, train: bool, labels: jax.Array | None = None) -> jax.Array:
    norm = lambda: nn.BatchNorm(
      use_running_average=not train,
      momentum=self.batch_norm_momentum,
      epsilon=self.batch_norm_epsilon,
      axis_name=self.axis_name,
    )
    act = lambda x: nn.leaky_relu(x, self.leaky_relu_slope)
    _check_conv_impl(self.conv_impl)
    _check_labels(self, labels, z.shape[0])
    if labels is not None:
      z = jnp.concatenate([z, jax.nn.one_hot(labels, self.num_classes, dtype=z.dtype)], axis=-1)

    def conv_transpose(features: int, stride: int, index: int) -> nn.Module:
      kwargs = {"use_bias": False, "kernel_init": kernel_init, "name": f"ConvTranspose_{index}"}  # names as plain
      if stride == 2:
        return layers.stride2_conv_transpose(features, self.conv_impl, **kwargs)
      return nn.ConvTranspose(features, (5, 5), (stride, stride), "SAME", **kwargs)

    first, *rest = self.features
    x = nn.Dense(7 * 7 * first, use_bias=False, kernel_init=kernel_init)(z)
    x = act(norm()(x)).reshape(z.shape[0], 7, 7, first)
    for i, features in enumerate(rest):
      x = conv_transpose(features, 1 if i == 0 else 2, i)(x)
      x = act(norm()(x))
    x = conv_transpose(1, 2, len(rest))(x)
    return jnp.tanh(x)


MASK_BITS = 16  # dropout masks compare 16-bit uniforms, two per 32-bit random word


def per_example_dropout(x: jax.Array, rate: float, example_keys: jax.Array) -> jax.Array:
  """Inverted dropout whose mask for each example comes from that example's own key.

  The masks then depend on an example's position in the global batch, not on how the batch is split
  across devices, so data-parallel runs draw the same masks on any number of devices.

  Each mask element compares a 16-bit uniform (two per threefry word) with round(keep * 2^16): measured
  5x cheaper on XLA:CPU than jax.random.bernoulli's float path, where the masks cost up to a quarter of a
  training step. The keep probability is then that threshold / 2^16 (within 7.7e-6 of 1 - rate), and kept
  units are scaled by its exact inverse, so the expected output is still x.
  """
  threshold = round((1.0 - rate) * 2**MASK_BITS)
  keep = threshold / 2**MASK_BITS
  size = math.prod(x.shape[1:])

  def mask(key: jax.Array) -> jax.Array:
    words = jax.random.bits(key, ((size + 1) // 2,), jnp.uint32)
    halves = jnp.stack([words & 0xFFFF, words >> 16], axis=-1).reshape(-1)[:size]
    return (halves < threshold).reshape(x.shape[1:])

  return jnp.where(jax.vmap(mask)(example_keys), x / keep, 0.0)


class Critic(nn.Module):
  """images [B, 28, 28, 1] (and class labels [B] when num_classes > 0) -> logits [B].

  Two stride-2 5x5 convolutions with LeakyReLU and dropout, then a linear read-out. No BatchNorm: the
  gradient penalty is defined per sample, and batch statistics would couple the samples. Dropout is on
  when `dropout_keys` (one key per example) is given, i.e. in training. A conditional critic sees the
  label as `conditioning` says (CRITIC_CONDITIONINGS). With `auxiliary_classifier` it also predicts the
  class from the same features (AC-GAN, Odena et al. 2017), returned when `return_class_logits`; with
  `twin_classifier` too, a second class head that learns the classes of fakes (TAC-GAN, Gong et al. 2019),
  returned after it: (logits, class_logits, twin_logits).
  """

  features: Sequence[int] = (64, 128)
  dropout_rate: float = 0.3
  leaky_relu_slope: float = 0.3
  conv_impl: str = "plain"
  num_classes: int = 0  # > 0: conditional on a class label
  conditioning: str = "projection"
  auxiliary_classifier: bool = False  # AC-GAN: a class head on the same features
  auxiliary_num_classes: int = 0  # the head's classes; 0: num_classes (else e.g. the digits of digit x cluster)
  twin_classifier: bool = False  # TAC-GAN: a second class head, trained on fakes (needs auxiliary_classifier)

  @nn.compact
  def __call__(
    self,
    images: jax.Array,
    dropout_keys: jax.Array | None = None,
    labels: jax.Array | None = None,
    return_class_logits: bool = False,
  ) -> jax.Array | tuple[jax.Array, jax.Array]:
    _check_conv_impl(self.conv_impl)
    _check_labels(self, labels, images.shape[0])
    if self.conditioning not in CRITIC_CONDITIONINGS:
      raise ValueError(f"conditioning={self.conditioning!r}; expected one of {CRITIC_CONDITIONINGS}")
    x = images
    if labels is not None and self.conditioning == "concat":
      maps = jax.nn.one_hot(labels, self.num_classes, dtype=x.dtype)[:, None, None, :]
      x = jnp.concatenate([x, jnp.broadcast_to(maps, (*x.shape[:3], self.num_classes))], axis=-1)
    for layer, features in enumerate(self.features):
      x = layers.stride2_conv(features, self.conv_impl, kernel_init=kernel_init, name=f"Conv_{layer}")(x)
      x = nn.leaky_relu(x, self.leaky_relu_slope)
      if dropout_keys is not None and self.dropout_rate > 0:
        layer_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(dropout_keys, layer)
        x = per_example_dropout(x, self.dropout_rate, layer_keys)
    x = x.reshape(x.shape[0], -1)
    logits = nn.Dense(1, kernel_init=kernel_init)(x)[:, 0]
    if labels is not None and self.conditioning == "projection":
      embedding = nn.Embed(self.num_classes, x.shape[-1], embedding_init=kernel_init, name="label_projection")
      logits = logits + jnp.sum(embedding(labels) * x, axis=-1)
    if self.twin_classifier and not self.auxiliary_classifier:
      raise ValueError("twin_classifier=True needs auxiliary_classifier=True")
    if self.auxiliary_classifier:  # created at init, so that the parameters exist whatever is returned
      head_classes = self.auxiliary_num_classes or self.num_classes
      names = ("auxiliary_classifier", "twin_classifier") if self.twin_classifier else ("auxiliary_classifier",)
      heads = [nn.Dense(head_classes, kernel_init=kernel_init, name=name)(x) for name in names]
      if return_class_logits:
        return (logits, *heads)
    elif return_class_logits:
      raise ValueError("return_class_logits=True needs a critic with auxiliary_classifier=True")
    return logits
