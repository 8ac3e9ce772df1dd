"""Train the shipped MNIST evaluator (ganjax/assets/evaluator.msgpack + evaluator.json) on the train split.

  TFDS_DATA_DIR=/path/to/tensorflow_datasets python build_evaluator.py [--out_dir=ganjax/assets] [--seed=0]

Takes 7-11 minutes on two CPU cores; fails (writing nothing) below 99.3 % test accuracy.
"""

import sys

from absl import app, flags, logging

from configs import default
from ganjax import runtime
from ganjax.errors import GanjaxError
from ganjax.eval import evaluator

_OUT_DIR = flags.DEFINE_string("out_dir", evaluator.ASSET_DIR, "Directory for evaluator.msgpack and evaluator.json.")
_SEED = flags.DEFINE_integer("seed", 0, "Root of all randomness of the build (init, data order, shifts, dropout).")
_DATA_DIR = flags.DEFINE_string("data_dir", "", "tensorflow-datasets dir with prepared MNIST; '' -> $TFDS_DATA_DIR.")


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing with a one-line error instead of a usage dump."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    sys.exit(f"error: {e}\nPass --helpfull to see the flags.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  runtime.configure_xla()  # before JAX's first computation: ~2x faster convolutions on XLA:CPU
  config = default.get_config()
  config.data_dir = _DATA_DIR.value
  try:
    info = evaluator.train_and_save(config, _OUT_DIR.value, seed=_SEED.value)
  except GanjaxError as e:
    logging.flush()
    sys.exit(f"error: {e}")
  print(f"test accuracy {info['test_accuracy']:.4%}  sha256 {info['sha256']}  ({info['build_seconds']:.0f} s)")


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
