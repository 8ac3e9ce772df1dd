"""The tuned WGAN-GP: the paper's models, loss (lambda = 10) and batch 256, trained fast enough for 10 epochs.

Measured against configs/wgan_gp.py with experiments/ablate.py (README, "Better recipes"): one critic step
per generator step (10 epochs are then 2340 generator steps, not 468) with ProGAN's Adam (betas (0, 0.99))
at 2e-3 for both networks, and an EMA of G (0.999) for sampling. At 2e-4, betas (0.5, 0.9), n_critic 1
or 2 stays at FID ~400 after 2 epochs; at 1e-3 this recipe is at ~200, at 2e-3 at ~170 (FID 74 at 10).

python main.py --config=configs/wgan_gp_tuned.py --config.num_epochs=10 --workdir=runs/wgan_gp_tuned
"""

from configs import default, wgan_gp


def get_config():
  config = wgan_gp.get_config()
  config.num_critic_steps = 1
  config.generator_optimizer = default.progan_adam(2e-3)
  config.critic_optimizer = default.progan_adam(2e-3)
  config.ema_decay = 0.999
  return config
