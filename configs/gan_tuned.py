"""The tuned GAN: the paper's models, loss (non-saturating) and batch 256 with DCGAN's optimiser and a G EMA.

What configs/cgan_tuned.py measured for the conditional model, without labels (README, "Better recipes"):
Adam (2e-4, beta1 0.5) for both networks, and an EMA of G (0.999) for sampling.

python main.py --config=configs/gan_tuned.py --config.num_epochs=10 --workdir=runs/gan_tuned
"""

from configs import default


def tune(config):
  """The recipe's training changes, applied to a paper config (this one's and configs/cgan_tuned.py's)."""
  config.generator_optimizer = default.adam(2e-4, b1=0.5)
  config.critic_optimizer = default.adam(2e-4, b1=0.5)
  config.ema_decay = 0.999
  return config


def get_config():
  return tune(default.get_config())
