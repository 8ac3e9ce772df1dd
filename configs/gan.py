"""The paper's GAN: the TF DCGAN tutorial recipe, non-saturating loss, Adam 1e-4, batch 256, 60 epochs.

python main.py --config=configs/gan.py --workdir=runs/gan
python main.py --config=configs/gan.py --config.loss=minimax --workdir=runs/minimax   # eq. (1) verbatim
"""

from configs import default


def get_config():
  return default.get_config()
