"""The fast conditional WGAN-GP: cwgan_gp_tuned with more, smaller updates, for a good labelled set sooner on a CPU.

The same models, losses, EMA and sampling as cwgan_gp_tuned, with batches of 32 instead of 256: eight times
the updates per epoch at about the same cost per image on a CPU (the quality follows the number of updates
more than the images seen), at half its learning rate. G's reward for fooling TAC's twin head is capped at
chance level (the uncapped term is where cwgan_gp_tuned's blow-ups start). 6 epochs: 11250 updates. The
measurements, and what did not help, are in docs/performance.md (Time to quality).

python main.py --config=configs/cwgan_gp_fast.py --workdir=runs/cwgan_gp_fast
"""

import math

from configs import cwgan_gp_tuned, default


def get_config():
  config = cwgan_gp_tuned.get_config()
  config.batch_size = 32
  config.num_epochs = 6
  config.generator_optimizer = default.progan_adam(1e-3)
  config.critic_optimizer = default.progan_adam(1e-3)
  config.twin_loss_cap = math.log(10)
  return config
