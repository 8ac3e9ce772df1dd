"""WGAN-GP (Gulrajani et al. 2017): lambda = 10, Adam 1e-4 betas (0.5, 0.9), 5 critic steps per G step.

python main.py --config=configs/wgan_gp.py --workdir=runs/wgan_gp
"""

from configs import default


def get_config():
  config = default.get_config()
  config.loss = "wgan_gp"
  config.num_critic_steps = 5
  config.gradient_penalty_weight = 10.0
  config.generator_optimizer = default.adam(1e-4, b1=0.5, b2=0.9)
  config.critic_optimizer = default.adam(1e-4, b1=0.5, b2=0.9)
  return config
