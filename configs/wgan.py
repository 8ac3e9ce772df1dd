"""WGAN with weight clipping (Arjovsky et al. 2017): c = 0.01, RMSprop 5e-5, 5 critic steps per G step.

python main.py --config=configs/wgan.py --workdir=runs/wgan
"""

from configs import default


def get_config():
  config = default.get_config()
  config.loss = "wgan"
  config.num_critic_steps = 5
  config.clip_value = 0.01
  config.generator_optimizer = default.rmsprop(5e-5)
  config.critic_optimizer = default.rmsprop(5e-5)
  return config
