"""The semi-supervised GAN with the paper's conv critic: configs/ssl_gan_anchored.py whose critic is the DCGAN
critic's body (Conv 64 5x5 s2 -> LeakyReLU -> Dropout 0.3 -> Conv 128 5x5 s2 -> LeakyReLU -> Dropout 0.3),
weight-normalised with the data-dependent init, under the same head (10 logits and the implicit fake logit);
G matches the flattened convolutions' features. Everything else is the anchored recipe's.

A lever for a GPU, best beside a conv G: on 2 CPU cores a run is ~8x slower than the MLP's (~6 h for 96 epochs),
and at 32-64 channels it fell behind the MLP critic by epoch 6 as the MLP G's digits became too easy to tell
from real ones (docs/ssl_gan.md).

python main.py --config=configs/ssl_gan_conv.py --workdir=runs/ssl_gan_conv
python recognize.py --workdir=runs/ssl_gan_conv
"""

from configs import ssl_gan_anchored


def get_config():
  config = ssl_gan_anchored.get_config()
  config.ssl_critic_conv_features = (64, 128)
  config.ssl_critic_features = ()
  config.critic_conv_dropout = 0.3
  return config
