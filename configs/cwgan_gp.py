"""Conditional WGAN-GP: configs/wgan_gp.py (lambda 10, Adam 1e-4 (0.5, 0.9), n_critic 5) told the digit.

python main.py --config=configs/cwgan_gp.py --workdir=runs/cwgan_gp
"""

from configs import wgan_gp


def get_config():
  config = wgan_gp.get_config()
  config.conditioning = "digit"
  config.num_sample_images = 100  # a 10x10 grid: row i holds digit i
  return config
