"""The tuned weight-clipping WGAN: the paper's models, WGAN loss and clipping (c = 0.01), batch 256.

configs/wgan.py trained as configs/wgan_gp_tuned.py is: self-conditioning on 100 k-means clusters of the
training images (no labels used), sampled with BatchNorm batch statistics; ProGAN's Adam (betas (0, 0.99)) at
1e-3 for G and 2e-4 for the critic instead of RMSprop 5e-5; one critic step per generator step instead of
five; an EMA of G (0.999) for sampling. The critic's rate and the clip value were screened at 2 epochs with
experiments/ablate.py; the measurements are in docs/recipes.md.

python main.py --config=configs/wgan_tuned.py --config.num_epochs=10 --workdir=runs/wgan_tuned
"""

from configs import default, wgan


def get_config():
  config = wgan.get_config()
  config.conditioning = "clusters"
  config.num_clusters = 100
  config.sampling_batch_norm = "batch"
  config.num_critic_steps = 1
  config.generator_optimizer = default.progan_adam(1e-3)
  config.critic_optimizer = default.progan_adam(2e-4)
  config.ema_decay = 0.999
  return config
