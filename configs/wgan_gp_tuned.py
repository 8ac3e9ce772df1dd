"""The tuned WGAN-GP: the paper's models, loss (lambda = 10) and batch 256, trained to clean digits in 10 epochs.

configs/wgan_gp.py with:
- Self-conditioning on 100 k-means clusters of the training images (no labels used): G and the critic are
  conditioned on a cluster as configs/cwgan_gp.py's are on the digit, and samples draw clusters by their
  share of the data; without them the recipe mode-collapses towards a few digit styles.
- One critic step per generator step with ProGAN's Adam (betas (0, 0.99)) at 2e-3 for both networks.
- An EMA of G (0.999) for sampling, with BatchNorm normalising by the sampled batch's statistics: the moving
  statistics belong to the live weights, not the EMA's.
Found with experiments/ablate.py; the measurements are in docs/recipes.md.

python main.py --config=configs/wgan_gp_tuned.py --config.num_epochs=10 --workdir=runs/wgan_gp_tuned
"""

from configs import default, wgan_gp


def get_config():
  config = wgan_gp.get_config()
  config.conditioning = "clusters"
  config.num_clusters = 100
  config.sampling_batch_norm = "batch"
  config.num_critic_steps = 1
  config.generator_optimizer = default.progan_adam(2e-3)
  config.critic_optimizer = default.progan_adam(2e-3)
  config.ema_decay = 0.999
  return config
