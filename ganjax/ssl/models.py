"""The semi-supervised GAN's networks (Improved GAN, Salimans et al. 2016, MNIST): an MLP critic that is a
K-class classifier (optionally after the paper's conv critic's convolutions), and an MLP generator of images in
[0, 1].

Pure Flax linen modules with explicit keys: the critic's Gaussian noise draws from the 'noise' RNG stream.
The critic's variables come in two collections: 'params' (what Adam trains and the EMA averages) and
FROZEN, the hidden layers' (and convolutions') weight-norm scales, which the data-dependent init sets and
nothing updates.
"""

import math
from collections.abc import Sequence

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

FROZEN = "frozen"  # the variable collection of the weight-norm scales that are set once and never trained
NOISE = "noise"  # the RNG stream of the critic's Gaussian noise

glorot_uniform = nn.initializers.xavier_uniform()


def _scale_and_bias(module: nn.Module, y: jax.Array, trainable_scale: bool, data_dependent_init: bool) -> jax.Array:
  """y * g + b per output channel (the last axis): with data_dependent_init, `init` sets g and b so that every
  channel of y has mean 0 and variance 1 over all other axes; otherwise g = 1, b = 0. A scale that is not
  trainable lives in the FROZEN collection."""
  channels = y.shape[-1]
  scale_init, bias_init = jnp.ones((channels,)), jnp.zeros((channels,))
  if data_dependent_init and module.is_initializing():
    if y.shape[0] < 2:
      raise ValueError(f"the data-dependent init needs a batch of images, got {y.shape[0]}")
    axes = tuple(range(y.ndim - 1))
    mean = jnp.mean(y, axis=axes)
    inv_std = jax.lax.rsqrt(jnp.mean(jnp.square(y - mean), axis=axes))
    scale_init, bias_init = inv_std, -mean * inv_std
  if trainable_scale:
    scale = module.param("scale", lambda _: scale_init)
  else:
    scale = module.variable(FROZEN, "scale", lambda: scale_init).value
  return y * scale + module.param("bias", lambda _: bias_init)


class WeightNormDense(nn.Module):
  """y = (x v) * g / ||v|| + b, ||v|| the norm of each output's column of v (Salimans & Kingma 2016).

  With data_dependent_init, `init` sets g and b from the batch it is given so that every output has mean 0
  and variance 1 over that batch (and returns those standardised outputs, so later layers initialise on them);
  otherwise g = 1, b = 0. A scale that is not trainable lives in the FROZEN collection, out of the optimiser's
  and the EMA's reach. The scale multiplies x v rather than v: the same function, fewer operations.
  """

  features: int
  trainable_scale: bool = True
  data_dependent_init: bool = False
  direction_init: nn.initializers.Initializer = nn.initializers.normal(0.1)
  epsilon: float = 0.0  # added to ||v||^2

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    v = self.param("direction", self.direction_init, (x.shape[-1], self.features))
    y = (x @ v) * jax.lax.rsqrt(jnp.sum(jnp.square(v), axis=0) + self.epsilon)
    return _scale_and_bias(self, y, self.trainable_scale, self.data_dependent_init)


class WeightNormConv(nn.Module):
  """WeightNormDense's convolution: 'SAME' padding, ||v|| per output channel over its kernel, and the
  data-dependent init standardising each channel over the batch and every position."""

  features: int
  kernel_size: int = 5
  stride: int = 2
  trainable_scale: bool = True
  data_dependent_init: bool = False
  direction_init: nn.initializers.Initializer = nn.initializers.normal(0.05)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    shape = (self.kernel_size, self.kernel_size, x.shape[-1], self.features)
    v = self.param("direction", self.direction_init, shape)
    strides = (self.stride, self.stride)
    y = jax.lax.conv_general_dilated(x, v, strides, "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    y = y * jax.lax.rsqrt(jnp.sum(jnp.square(v), axis=(0, 1, 2)))
    return _scale_and_bias(self, y, self.trainable_scale, self.data_dependent_init)


class GaussianNoise(nn.Module):
  """x + N(0, stddev^2) per element in training (from the NOISE stream); x itself otherwise."""

  stddev: float

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if not train or self.stddev == 0:
      return x
    return x + self.stddev * jax.random.normal(self.make_rng(NOISE), x.shape, x.dtype)


@flax.struct.dataclass
class SslCriticOutput:
  """The critic's K class logits (the fake class is an implicit logit at 0) and its last hidden features."""

  logits: jax.Array  # [B, K]
  features: jax.Array  # [B, F]: the last hidden layer after its ReLU, before its noise (feature matching)


class SslCritic(nn.Module):
  """images [B, 28, 28, 1] in [0, 1] -> SslCriticOutput.

  Noise on the input; then, with conv_features, the paper's conv critic's body (5x5 stride-2 convolutions with
  LeakyReLU and dropout, weight-normalised here); weight-normalised dense layers with ReLU, each followed by
  noise; K logits. Every layer has the data-dependent init; with freeze_hidden_scales only the logits' scale
  trains, as the reference. The features G matches are the last hidden layer's (the flattened convolutions'
  when there is no dense layer). No batch statistics: a batch's samples are independent, so several batches
  may go through as one.
  """

  hidden_features: Sequence[int] = (1000, 500, 250, 250, 250)
  num_classes: int = 10
  input_noise: float = 0.3
  hidden_noise: float = 0.5
  freeze_hidden_scales: bool = True
  conv_features: Sequence[int] = ()  # e.g. (64, 128): the paper's critic's convolutions before the dense layers
  conv_dropout: float = 0.3  # after each convolution's LeakyReLU, in training (from the NOISE stream)
  leaky_relu_slope: float = 0.3  # the paper's critic's (Keras' default)

  @nn.compact
  def __call__(self, images: jax.Array, train: bool) -> SslCriticOutput:
    trainable = not self.freeze_hidden_scales
    x = features = GaussianNoise(self.input_noise)(images.reshape(images.shape[0], -1), train)
    if self.conv_features:
      x = x.reshape(images.shape)
      for i, channels in enumerate(self.conv_features):
        convolved = WeightNormConv(channels, 5, 2, trainable, data_dependent_init=True, name=f"conv_{i}")(x)
        features = nn.leaky_relu(convolved, self.leaky_relu_slope)
        x = nn.Dropout(self.conv_dropout, rng_collection=NOISE)(features, deterministic=not train)
      x, features = x.reshape(images.shape[0], -1), features.reshape(images.shape[0], -1)
    for i, width in enumerate(self.hidden_features):
      features = nn.relu(WeightNormDense(width, trainable, data_dependent_init=True, name=f"hidden_{i}")(x))
      x = GaussianNoise(self.hidden_noise)(features, train)
    logits = WeightNormDense(self.num_classes, data_dependent_init=True, name="logits")(x)
    return SslCriticOutput(logits, features)


class BatchStatNorm(nn.Module):
  """x standardised with this batch's mean and variance, plus a learnt shift: batch norm without a scale.

  No moving statistics: the reference generator only ever runs on batch statistics, so G should be sampled in
  batches (of about 100, as it trains), never one image at a time.
  """

  epsilon: float = 1e-6

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    mean = jnp.mean(x, axis=0)
    variance = jnp.mean(jnp.square(x - mean), axis=0)
    bias = self.param("bias", nn.initializers.zeros_init(), (x.shape[-1],))
    return (x - mean) * jax.lax.rsqrt(variance + self.epsilon) + bias


class SslGenerator(nn.Module):
  """z [B, latent_dim] (z ~ U[0, 1]) -> images [B, 28, 28, 1] in [0, 1].

  Dense (no bias) -> batch norm without scale -> softplus per hidden layer; then a weight-normalised dense
  layer with a trainable scale and a sigmoid. Glorot-uniform kernels, as Lasagne's DenseLayer.
  """

  hidden_features: Sequence[int] = (500, 500)
  image_shape: tuple[int, int, int] = (28, 28, 1)
  epsilon: float = 1e-6  # in the batch norm's variance and the weight norm's ||v||^2

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    x = z
    for i, width in enumerate(self.hidden_features):
      x = nn.Dense(width, use_bias=False, kernel_init=glorot_uniform, name=f"hidden_{i}")(x)
      x = nn.softplus(BatchStatNorm(self.epsilon, name=f"norm_{i}")(x))
    output = WeightNormDense(
      math.prod(self.image_shape), direction_init=glorot_uniform, epsilon=self.epsilon, name="output"
    )
    x = output(x)
    return jax.nn.sigmoid(x).reshape(z.shape[0], *self.image_shape)


def init_critic(critic: SslCritic, key: jax.Array, images: jax.Array) -> tuple[dict, dict]:
  """(params, frozen) of the critic after its data-dependent init on `images` ([B, 28, 28, 1] in [0, 1]).

  The init pass runs with the noise on, as training does, so that the standardised pre-activations are
  those the trained layers will see.
  """
  params_key, noise_key = jax.random.split(key)
  variables = critic.init({"params": params_key, NOISE: noise_key}, images, train=True)
  return variables["params"], variables.get(FROZEN, {})
