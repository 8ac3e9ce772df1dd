"""The tuned GAN: the paper's models, loss (non-saturating) and batch 256 with DCGAN's optimiser and a G EMA.

Measured against configs/gan.py with experiments/ablate.py (README, "Better recipes"): Adam (2e-4, beta1
0.5) for both networks, and an EMA of G (0.999) for sampling.

python main.py --config=configs/gan_tuned.py --config.num_epochs=10 --workdir=runs/gan_tuned
"""

from configs import default


def get_config():
  config = default.get_config()
  config.generator_optimizer = default.adam(2e-4, b1=0.5)
  config.critic_optimizer = default.adam(2e-4, b1=0.5)
  config.ema_decay = 0.999
  return config
