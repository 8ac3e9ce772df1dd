"""The 28x28 DCGAN generator and critic of the reference paper (the TF DCGAN tutorial networks).

Pure Flax linen modules: parameters and BatchNorm statistics live outside, in the training state.
Images are NHWC in [-1, 1]; the critic returns one unbounded logit per image.
"""

import math
from collections.abc import Sequence

import flax
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

# How a conditional critic sees the label (config.critic_label_input):
#   projection: logit = psi(phi(x)) + <embed(y), phi(x)> (Miyato & Koyama 2018), phi = the conv features;
#   concat: one-hot label maps concatenated to the image channels (Mirza & Osindero 2014).
CRITIC_LABEL_INPUTS = ("projection", "concat")
CLASS_HEADS = ("none", "ac", "tac")  # losses.py says what each head learns


def _check_conv_impl(conv_impl: str) -> None:
  if conv_impl not in CONV_IMPLS:
    raise ValueError(f"conv_impl={conv_impl!r}; expected one of {CONV_IMPLS}")


def _check_labels(module: nn.Module, labels: jax.Array | None, batch_size: int) -> None:
  if (labels is None) != (module.num_labels == 0):
    raise ValueError(
      f"{type(module).__name__} with num_labels={module.num_labels} "
      f"{'needs' if module.num_labels else 'takes no'} labels"
    )
  if labels is not None and labels.shape != (batch_size,):
    raise ValueError(f"labels must have shape ({batch_size},), got {labels.shape}")


class Generator(nn.Module):
  """z [B, latent_dim] (and labels [B] when num_labels > 0) -> images [B, 28, 28, 1] in [-1, 1].

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
  num_labels: int = 0  # > 0: conditional on a label in [0, num_labels) (ganjax/conditioning.py)

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
      z = jnp.concatenate([z, jax.nn.one_hot(labels, self.num_labels, dtype=z.dtype)], axis=-1)

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


@flax.struct.dataclass
class CriticOutput:
  """What the critic says about a batch: one logit per image, and its class heads' logits when it has them."""

  logits: jax.Array  # [B]
  class_logits: jax.Array | None = None  # [B, digits]: the AC head (class_head ac or tac)
  twin_logits: jax.Array | None = None  # [B, digits]: TAC-GAN's twin head (class_head tac)


class Critic(nn.Module):
  """images [B, 28, 28, 1] (and labels [B] when num_labels > 0) -> CriticOutput.

  Two stride-2 5x5 convolutions with LeakyReLU and dropout, then a linear read-out. No BatchNorm: the
  gradient penalty is defined per sample, and batch statistics would couple the samples. Dropout is on
  when `dropout_keys` (one key per example) is given, i.e. in training. A conditional critic sees the
  label as `label_input` says (CRITIC_LABEL_INPUTS). `class_head` adds class heads on the same features:
  ac, the AC-GAN head (Odena et al. 2017); tac, that head and its TAC-GAN twin (Gong et al. 2019).
  """

  features: Sequence[int] = (64, 128)
  dropout_rate: float = 0.3
  leaky_relu_slope: float = 0.3
  conv_impl: str = "plain"
  num_labels: int = 0  # > 0: conditional on a label in [0, num_labels)
  label_input: str = "projection"
  class_head: str = "none"
  class_head_classes: int = 0  # the heads' classes (the digits, whatever the conditioning labels are)

  @nn.compact
  def __call__(
    self, images: jax.Array, dropout_keys: jax.Array | None = None, labels: jax.Array | None = None
  ) -> CriticOutput:
    _check_conv_impl(self.conv_impl)
    _check_labels(self, labels, images.shape[0])
    if self.label_input not in CRITIC_LABEL_INPUTS:
      raise ValueError(f"label_input={self.label_input!r}; expected one of {CRITIC_LABEL_INPUTS}")
    if self.class_head not in CLASS_HEADS:
      raise ValueError(f"class_head={self.class_head!r}; expected one of {CLASS_HEADS}")
    x = images
    if labels is not None and self.label_input == "concat":
      maps = jax.nn.one_hot(labels, self.num_labels, dtype=x.dtype)[:, None, None, :]
      x = jnp.concatenate([x, jnp.broadcast_to(maps, (*x.shape[:3], self.num_labels))], axis=-1)
    for layer, features in enumerate(self.features):
      x = layers.stride2_conv(features, self.conv_impl, kernel_init=kernel_init, name=f"Conv_{layer}")(x)
      x = nn.leaky_relu(x, self.leaky_relu_slope)
      if dropout_keys is not None and self.dropout_rate > 0:
        layer_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(dropout_keys, layer)
        x = per_example_dropout(x, self.dropout_rate, layer_keys)
    x = x.reshape(x.shape[0], -1)
    logits = nn.Dense(1, kernel_init=kernel_init)(x)[:, 0]
    if labels is not None and self.label_input == "projection":
      embedding = nn.Embed(self.num_labels, x.shape[-1], embedding_init=kernel_init, name="label_projection")
      logits = logits + jnp.sum(embedding(labels) * x, axis=-1)
    head = lambda name: nn.Dense(self.class_head_classes, kernel_init=kernel_init, name=name)(x)  # noqa: E731
    class_logits = head("auxiliary_classifier") if self.class_head != "none" else None
    twin_logits = head("twin_classifier") if self.class_head == "tac" else None
    return CriticOutput(logits, class_logits, twin_logits)
