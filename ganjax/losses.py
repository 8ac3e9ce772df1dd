"""GAN and WGAN objectives as pure functions of critic logits, the WGAN-GP gradient penalty, the class-head
terms of AC-GAN and TAC-GAN, and the semi-supervised critic's terms with feature matching (Improved GAN).

Every loss is written as a quantity to *minimise*. Logit-space formulas (softplus) keep the GAN losses
finite where a sigmoid would round D(x) to exactly 0 or 1.
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax


@dataclasses.dataclass(frozen=True)
class Objective:
  """One loss family: the critic's and the generator's losses, and how the critic is kept Lipschitz.

  A Wasserstein objective's critic loss is minus its Wasserstein estimate; WGAN clips the critic's parameters
  to [-clip_value, clip_value] after each update; WGAN-GP penalises its input gradients instead.
  """

  name: str
  critic_loss: Callable[[jax.Array, jax.Array], jax.Array]  # (real_logits, fake_logits) -> scalar
  generator_loss: Callable[[jax.Array], jax.Array]  # fake_logits -> scalar
  wasserstein: bool = False
  penalises_gradients: bool = False
  gradient_penalty_weight: float = 0.0
  clip_value: float | None = None  # None: no clipping

  @property
  def clips(self) -> bool:
    return self.clip_value is not None


def gan_critic_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """-(E log D(x) + E log(1 - D(G(z)))), with D = sigmoid(logit): the discriminator side of eq. (1).

  log sigmoid(l) = -softplus(-l) and log(1 - sigmoid(l)) = -softplus(l).
  """
  return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))


def minimax_generator_loss(fake_logits: jax.Array) -> jax.Array:
  """E log(1 - D(G(z))): eq. (1) verbatim. Saturates: its gradient vanishes as D(G(z)) -> 0."""
  return -jnp.mean(jax.nn.softplus(fake_logits))


def non_saturating_generator_loss(fake_logits: jax.Array) -> jax.Array:
  """-E log D(G(z)): the same fixed point as eq. (1) with strong gradients early in training."""
  return jnp.mean(jax.nn.softplus(-fake_logits))


def wasserstein_critic_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """E D(G(z)) - E D(x): the critic maximises the Wasserstein estimate E D(x) - E D(G(z))."""
  return jnp.mean(fake_logits) - jnp.mean(real_logits)


def wasserstein_generator_loss(fake_logits: jax.Array) -> jax.Array:
  """-E D(G(z))."""
  return -jnp.mean(fake_logits)


OBJECTIVES = ("minimax", "non_saturating", "wgan", "wgan_gp")
# conditioning semi_supervised (ganjax/ssl/): the critic's loss is class_loss + unlabelled_loss; G's is this one.
SEMI_SUPERVISED_OBJECTIVES = ("feature_matching",)


def make_objective(name: str, clip_value: float = 0.01, gradient_penalty_weight: float = 10.0) -> Objective:
  """The objective `name` (one of OBJECTIVES); clip_value is used by wgan only, the weight by wgan_gp only."""
  if name not in OBJECTIVES:
    raise ValueError(f"loss={name!r}; expected one of {OBJECTIVES}")
  if name == "minimax":
    return Objective(name, gan_critic_loss, minimax_generator_loss)
  if name == "non_saturating":
    return Objective(name, gan_critic_loss, non_saturating_generator_loss)
  wgan = dict(critic_loss=wasserstein_critic_loss, generator_loss=wasserstein_generator_loss, wasserstein=True)
  if name == "wgan":
    return Objective(name, **wgan, clip_value=clip_value)
  return Objective(name, **wgan, penalises_gradients=True, gradient_penalty_weight=gradient_penalty_weight)


def class_loss(class_logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Mean cross-entropy of the critic's class head (AC-GAN's auxiliary loss)."""
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(class_logits, labels))


def interpolate(real: jax.Array, fake: jax.Array, eps: jax.Array) -> jax.Array:
  """x_hat = eps * x + (1 - eps) * G(z), with one eps ~ U[0, 1] per sample (eps: [B])."""
  eps = eps.reshape((-1,) + (1,) * (real.ndim - 1))
  return eps * real + (1.0 - eps) * fake


def per_sample_gradient_norms(critic_fn: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
  """||grad_x D(x_i)||_2 for each sample i, the norm over all of the sample's pixels.

  The critic treats samples independently (no BatchNorm), so the gradient of the sum of the logits with
  respect to the batch holds every sample's own gradient. The 1e-12 keeps the norm's gradient finite at 0.
  """
  grads = jax.grad(lambda x: jnp.sum(critic_fn(x)))(x)
  return jnp.sqrt(jnp.sum(jnp.square(grads), axis=tuple(range(1, x.ndim))) + 1e-12)


def gradient_penalty(critic_fn: Callable[[jax.Array], jax.Array], x_hat: jax.Array) -> jax.Array:
  """E (||grad D(x_hat)||_2 - 1)^2 (Gulrajani et al. 2017); weighted by lambda in the critic loss."""
  return jnp.mean(jnp.square(per_sample_gradient_norms(critic_fn, x_hat) - 1.0))


def clip_params(params, clip_value: float):
  """Clip every critic parameter to [-c, c]: WGAN's crude enforcement of the Lipschitz constraint."""
  return jax.tree.map(lambda p: jnp.clip(p, -clip_value, clip_value), params)


# The class heads on the critic (config.class_head): what each adds to the critic's and G's losses, before weighting.
#   ac: the head learns the digits of real images; G makes digits the head calls by their labels (AC-GAN,
#       Odena et al. 2017).
#   tac: and a twin head learns the digits G was asked for, from fakes only; G's term becomes the AC head's
#       cross-entropy minus the twin's, which removes AC-GAN's pull towards digits far from the class boundaries
#       (TAC-GAN, Gong et al. 2019).
CLASS_HEADS = ("none", "ac", "tac")


def critic_class_head_terms(head: str, real_class_logits, fake_twin_logits, digits: jax.Array) -> dict[str, jax.Array]:
  """The critic's unweighted class-head losses by metric name (empty without a head), in the order they are added."""
  terms = {}
  if head in ("ac", "tac"):
    terms["critic_class_loss"] = class_loss(real_class_logits, digits)
  if head == "tac":
    terms["critic_twin_loss"] = class_loss(fake_twin_logits, digits)
  return terms


def generator_class_head_terms(
  head: str, fake_class_logits, fake_twin_logits, digits: jax.Array, twin_loss_cap: float = 0.0
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """G's unweighted class-head loss (0 without a head) and its parts as metrics.

  tac with twin_loss_cap > 0: G's reward for fooling the twin head stops at the cap, per fake (log 10 is the
  twin at chance); the metric stays the plain cross-entropy.
  """
  if head == "none":
    return jnp.zeros(()), {}
  metrics = {"generator_class_loss": class_loss(fake_class_logits, digits)}
  loss = metrics["generator_class_loss"]
  if head == "tac":
    twin = optax.softmax_cross_entropy_with_integer_labels(fake_twin_logits, digits)
    metrics["generator_twin_loss"] = jnp.mean(twin)
    loss = loss - (jnp.mean(jnp.minimum(twin, twin_loss_cap)) if twin_loss_cap > 0 else metrics["generator_twin_loss"])
  return loss, metrics


# The semi-supervised critic (Improved GAN, Salimans et al. 2016): a K-class classifier whose "fake" class is an
# implicit (K+1)-th logit fixed at 0. With Z(x) = sum_k exp(l_k(x)), the critic's D(x) = Z / (Z + 1), so
# log D = lse - softplus(lse) and log(1 - D) = -softplus(lse), lse = logsumexp of the K logits.
# The labelled term is `class_loss`: the (K+1)-class cross-entropy given the image is real is the K-class one.


def unlabelled_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """-1/2 E log D(x) - 1/2 E log(1 - D(G(z))) with D = Z / (Z + 1): the real-vs-fake term on [B, K] logits.

  = -1/2 mean(lse(real)) + 1/2 mean(softplus(lse(real))) + 1/2 mean(softplus(lse(fake))).
  """
  real_lse = jax.nn.logsumexp(real_logits, axis=-1)
  fake_lse = jax.nn.logsumexp(fake_logits, axis=-1)
  return 0.5 * (-jnp.mean(real_lse) + jnp.mean(jax.nn.softplus(real_lse)) + jnp.mean(jax.nn.softplus(fake_lse)))


def feature_matching_loss(real_features: jax.Array, fake_features: jax.Array) -> jax.Array:
  """mean_j (E f_j(x) - E f_j(G(z)))^2: G matches the batch means of a critic feature layer ([B, F] each)."""
  return jnp.mean(jnp.square(jnp.mean(real_features, axis=0) - jnp.mean(fake_features, axis=0)))


# Two optional terms on the unlabelled batch (levers of the faster recipe, off in the reference).


def class_entropy(logits: jax.Array) -> jax.Array:
  """E_x H(softmax(l(x))) over [B, K] logits: minimised, it pushes the unlabelled digits away from the class
  boundaries (entropy minimisation, Grandvalet & Bengio 2005; Bad GAN's conditional-entropy term)."""
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  return -jnp.mean(jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1))


def consistency_loss(logits_a: jax.Array, logits_b: jax.Array) -> jax.Array:
  """E_x ||softmax(l_a(x)) - softmax(l_b(x))||^2: two random views (shift, noise) of the same images should get
  the same digit probabilities (the Pi-model, Laine & Aila 2017); gradients flow through both views."""
  difference = jax.nn.softmax(logits_a, axis=-1) - jax.nn.softmax(logits_b, axis=-1)
  return jnp.mean(jnp.sum(jnp.square(difference), axis=-1))


def pseudo_label_loss(logits: jax.Array, pseudo_labels: jax.Array) -> jax.Array:
  """Mean over the batch of each image's cross-entropy to its pseudo-label (int [B]), 0 for an image without one
  (label < 0): a teacher's confident labels anchor the unlabelled digits (pseudo-labelling, Lee 2013)."""
  has_label = pseudo_labels >= 0
  cross_entropy = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.where(has_label, pseudo_labels, 0))
  return jnp.mean(jnp.where(has_label, cross_entropy, 0.0))


def class_balance_loss(logits: jax.Array, running_mean_probs: jax.Array | None = None) -> jax.Array:
  """KL(uniform || m) of the average digit probabilities m over [B, K] logits: zero when m is uniform.

  Minimised on the unlabelled batch, it resists a whole mode of one digit being read as another, MNIST's digits
  being ~1/K each (CatGAN's marginal term, Springenberg 2016). m is the batch's mean softmax or, given
  running_mean_probs (a moving average over batches that already includes this one), that average with this
  batch's gradient: the push then follows the population's imbalance, not one batch's draw (as ReMixMatch's
  distribution alignment).
  """
  mean_probs = jnp.mean(jax.nn.softmax(logits, axis=-1), axis=0)
  if running_mean_probs is not None:
    mean_probs = running_mean_probs + mean_probs - jax.lax.stop_gradient(mean_probs)
  return -jnp.log(logits.shape[-1]) - jnp.mean(jnp.log(mean_probs))
