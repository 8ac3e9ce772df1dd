"""The tuned conditional WGAN-GP: configs/cwgan_gp.py trained with configs/wgan_gp_tuned.py's recipe.

The digit takes the place of wgan_gp_tuned's k-means cluster (the same conditional models), so the training
recipe carries over: one critic step per generator step with ProGAN's Adam (2e-3, betas (0, 0.99)) for both
networks and an EMA of G (0.999) for sampling; plus an AC-GAN class head on the critic (weight 1), as in
configs/cgan_tuned.py, for label agreement, and its TAC-GAN twin (AC-GAN alone draws digits far from the
class boundaries, which a classifier trained on the samples (CAS) then misses on real data). Sampled with
batch statistics and a slightly wider noise (1.15), the measured best for CAS at label agreement >= 0.98.
The measurements are in docs/recipes.md.

python main.py --config=configs/cwgan_gp_tuned.py --config.num_epochs=10 --workdir=runs/cwgan_gp_tuned
"""

from configs import cwgan_gp, default


def get_config():
  config = cwgan_gp.get_config()
  config.num_critic_steps = 1
  config.generator_optimizer = default.progan_adam(2e-3)
  config.critic_optimizer = default.progan_adam(2e-3)
  config.ema_decay = 0.999
  config.class_head = "tac"
  config.sampling_batch_norm = "batch"
  config.sampling_latent_scale = 1.15
  return config
