"""The tuned GAN: the paper's models, loss (non-saturating) and batch 256, trained to clean digits in 10 epochs.

configs/gan.py with what configs/wgan_gp_tuned.py found: self-conditioning on 100 k-means clusters of the
training images (no labels used), sampled with BatchNorm batch statistics; ProGAN's Adam (1e-3, betas
(0, 0.99)) for both networks; an EMA of G (0.999) for sampling. Found with experiments/ablate.py; the
measurements are in docs/recipes.md.

python main.py --config=configs/gan_tuned.py --config.num_epochs=10 --workdir=runs/gan_tuned
"""

from configs import default


def get_config():
  config = default.get_config()
  config.conditioning = "clusters"
  config.num_clusters = 100
  config.sampling_batch_norm = "batch"
  config.generator_optimizer = default.progan_adam()
  config.critic_optimizer = default.progan_adam()
  config.ema_decay = 0.999
  return config
