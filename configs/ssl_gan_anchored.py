"""The semi-supervised GAN, anchored: configs/ssl_gan_fast.py (2-pixel shifts, 64 epochs) whose critic also
learns label spreading's confident labels of the unlabelled images (a 10-NN graph of their deskewed pixels, the
most confident 80 % of each digit) with a weight of 1 that falls linearly to 0 at epoch 32.

The anchor keeps a whole style of one digit from being learnt as another while the clusters form; what it
gave and cost per label subset (subset 1: its GAN collapsed) is in docs/few_labels.md.

python main.py --config=configs/ssl_gan_anchored.py --workdir=runs/ssl_gan_anchored   # ~30 min on 2 CPU cores
python main.py --config=configs/ssl_gan_anchored.py --config.label_seed=3 --workdir=runs/ssl_gan_anchored_s3
python recognize.py --workdir=runs/ssl_gan_anchored
"""

from configs import ssl_gan_fast


def get_config():
  config = ssl_gan_fast.get_config()
  config.pseudo_label_weight = 1.0
  config.pseudo_label_graph = "deskewed"
  config.pseudo_label_fraction = 0.8
  config.pseudo_label_epochs = 32
  return config
