"""The random-number streams of a run, named once: each is `stream(root_key, NAME)`, the run's root key with the
stream's number folded in. The numbers are those every saved run was trained with; changing one changes every
run's results (and a resumed run's continuation).
"""

import jax

INIT = 0  # the initial parameters of a new run
SHUFFLE = 1  # the order of the real images, epoch by epoch (ganjax/data/mnist.py EpochShuffler)
STEP = 2  # the train step folds the step number into it: noise, gradient penalty, augmentation
SAMPLE_GRID = 3  # the fixed noise (and labels) of the sample grids
EVAL = 4  # the noise of every evaluation of a run (periodic, final, time to quality): the same each time
TRAINING_LABELS = 5  # the labels a run trains on (e.g. k-means clusters); of key(config.seed), as for a new run


def stream(root_key: jax.Array, name: int) -> jax.Array:
  """The key of the stream `name` (one of this module's constants)."""
  return jax.random.fold_in(root_key, name)
