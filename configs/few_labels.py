"""Labelled synthetic digits from a few labels per digit and many unlabelled images.

configs/wgan_gp_tuned.py (a WGAN-GP self-conditioned on 100 k-means clusters of all 60k training images; no
label reaches G or the critic) with conditioning few_labels: labels_per_class labelled images per digit, drawn
at random with label_seed, teach a self-trained classifier (label spreading over all images and a CNN with
classic augmentation, twice) that names the clusters and checks every sample; export and evaluation then
draw digits. The namer trains when the run first samples digits (its first evaluation, else after its last
step). The GAN's training does not depend on the labels, so its checkpoints serve any labelled subset
(python experiments/few_labels.py --gan_workdir=runs/few_labels). docs/few_labels.md has the measurements.

python main.py --config=configs/few_labels.py --config.num_epochs=10 --workdir=runs/few_labels
python export.py --workdir=runs/few_labels --num_per_class=1000 --out=synthetic/few_labels.npz
"""

from configs import wgan_gp_tuned


def get_config():
  config = wgan_gp_tuned.get_config()
  config.conditioning = "few_labels"  # num_clusters 100 from wgan_gp_tuned
  config.labels_per_class = 10
  config.label_seed = 0
  return config
