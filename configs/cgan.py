"""Conditional GAN: the paper's GAN (non-saturating loss, Adam 1e-4) with G and the critic told the digit.

python main.py --config=configs/cgan.py --workdir=runs/cgan
"""

from configs import default


def get_config():
  config = default.get_config()
  config.conditioning = "digit"
  config.num_sample_images = 100  # a 10x10 grid: row i holds digit i
  return config
