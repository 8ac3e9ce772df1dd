"""The anchored semi-supervised GAN (configs/ssl_gan_anchored.py) for one label per digit, 10 labels in all: its
anchor keeps label spreading's most confident 35 % of each digit instead of 80 %, and of those only the images
spread with probability >= 0.7.

Spread from a single image per digit, the labels beyond the most confident third hold whole wrong styles (a 1
read as an 8, a 7 as a 9) that the critic then learns: the 35 % kept are ~99.7 % right on two subsets of three.
On the third, a labelled 3 that looks like a 9 draws most 9s at middling probability; the 0.7 floor drops them
(its kept labels: 85.6 % right without it, 99.0 % with it; the others within 0.03 points). The run warns when
spreading gives a digit an uneven share (ganjax/ssl/pseudo_labels.py). What each rule gave per subset is in
docs/few_labels.md.

python main.py --config=configs/ssl_gan_one_label.py --workdir=runs/ssl_one_label   # ~45 min on 2 CPU cores
python main.py --config=configs/ssl_gan_one_label.py --config.label_seed=1 --workdir=runs/ssl_one_label_s1
python recognize.py --workdir=runs/ssl_one_label
"""

from configs import ssl_gan_anchored


def get_config():
  config = ssl_gan_anchored.get_config()
  config.labels_per_class = 1
  config.pseudo_label_fraction = 0.35
  config.pseudo_label_min_probability = 0.7
  return config
