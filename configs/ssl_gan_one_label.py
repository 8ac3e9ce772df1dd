"""The anchored semi-supervised GAN (configs/ssl_gan_anchored.py) for one label per digit, 10 labels in all: its
anchor keeps label spreading's most confident 35 % of each digit instead of 80 %.

Spread from a single image per digit, the labels beyond the most confident third hold whole wrong styles (a 1
read as an 8, a 7 as a 9) that the critic then learns: the 35 % kept are ~99.7 % right on two subsets of three.
Where a labelled image looks like another digit no fraction is right (one subset: ~85 %); the run warns of it
in its log (ganjax/ssl/pseudo_labels.py uneven_digits). What each setting gave per subset is in
docs/ssl_gan.md.

python main.py --config=configs/ssl_gan_one_label.py --workdir=runs/ssl_one_label   # ~45 min on 2 CPU cores
python main.py --config=configs/ssl_gan_one_label.py --config.label_seed=1 --workdir=runs/ssl_one_label_s1
python recognize.py --workdir=runs/ssl_one_label
"""

from configs import ssl_gan_anchored


def get_config():
  config = ssl_gan_anchored.get_config()
  config.labels_per_class = 1
  config.pseudo_label_fraction = 0.35
  return config
