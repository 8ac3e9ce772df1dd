"""The semi-supervised GAN (Improved GAN, Salimans et al. 2016, MNIST with feature matching): a GAN whose critic
is a digit classifier, trained on 10 labelled images per digit and all 60k images without their labels.

The reference recipe (openai/improved-gan train_mnist_feature_matching.py): an MLP critic with weight norm (its
data-dependent init, hidden scales frozen) and Gaussian noise, 10 logits and an implicit fake logit; an MLP
generator of images in [0, 1] trained by feature matching; Adam 3e-3, beta1 0.5; batches of 100 labelled, 100
unlabelled and 100 generated images, 600 iterations per epoch, 300 epochs; the test accuracy is read from a
0.9999 moving average of the critic. docs/ssl_gan.md has the measurements.

python main.py --config=configs/ssl_gan.py --workdir=runs/ssl_gan
python main.py --config=configs/ssl_gan.py --config.num_epochs=64 --config.label_seed=1 --workdir=runs/ssl_gan_s1
python recognize.py --workdir=runs/ssl_gan                                 # accuracy, errors per 10k, confusion
"""

import ml_collections

from configs import default


def _reference_adam() -> ml_collections.ConfigDict:
  # The reference's Adam: beta1 0.5 and its epsilon inside the root, m / sqrt(v + 1e-8).
  return ml_collections.ConfigDict(dict(name="adam", learning_rate=3e-3, b1=0.5, b2=0.999, eps=0.0, eps_root=1e-8))


def get_config():
  config = default.get_config()
  config.conditioning = "semi_supervised"
  config.loss = "feature_matching"
  config.labels_per_class = 10
  config.label_seed = 0
  config.batch_size = 100  # unlabelled and generated images per iteration (600 iterations per epoch)
  config.labelled_batch_size = 100
  config.num_epochs = 300
  config.num_devices = 1
  config.generator_optimizer = _reference_adam()
  config.critic_optimizer = _reference_adam()
  config.log_every_steps = 100
  config.checkpoint_every_steps = 600  # every epoch
  config.eval_every_epochs = 1  # the critic's test accuracy (seconds): the curve in recognition.png
  config.sample_epochs = (1, 10, 64, 300)
  config.num_sample_images = 100
  return config
