"""A seconds-long run for tests and smoke checks: narrow models, small batches, a few steps.

python main.py --config=configs/tiny.py --workdir=/tmp/tiny
python main.py --config=configs/tiny.py --config.loss=wgan_gp --config.num_critic_steps=2 ...
"""

from configs import default


def get_config():
  config = default.get_config()
  config.batch_size = 16
  config.train_subset = 128  # 8 batches per epoch
  config.num_epochs = 2
  config.generator_features = (8, 8, 4)
  config.critic_features = (4, 8)
  config.log_every_steps = 2
  config.checkpoint_every_steps = 4
  config.keep_checkpoints = 2
  config.sample_epochs = (1,)
  config.num_sample_images = 16
  config.eval_at_end = False  # tests that evaluate turn it on with a small eval_num_samples
  config.eval_num_samples = 200
  return config
