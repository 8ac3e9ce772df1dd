"""The tuned conditional GAN: the paper's models and batch 256, trained to clean labelled digits in 10 epochs.

configs/cgan.py with ProGAN's Adam (1e-3, betas (0, 0.99)) for both networks, an EMA of G (0.999) for
sampling, and an AC-GAN class head on the projection critic (weight 1) for label agreement. Found with
experiments/ablate.py; the measurements are in docs/recipes.md.

python main.py --config=configs/cgan_tuned.py --config.num_epochs=10 --workdir=runs/cgan_tuned
"""

from configs import cgan, default


def get_config():
  config = cgan.get_config()
  config.generator_optimizer = default.progan_adam()
  config.critic_optimizer = default.progan_adam()
  config.ema_decay = 0.999
  config.class_head = "ac"
  return config
