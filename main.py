"""Train a GAN or WGAN on MNIST.

  python main.py --config=configs/wgan.py --workdir=runs/wgan [--config.num_epochs=5 ...]

Rerunning with the same --workdir resumes from its newest checkpoint.
"""

import re
import sys

from absl import app, flags
from ml_collections import config_flags

from ganjax import cli, runtime, train
from ganjax.few_labels import naming

_CONFIG = config_flags.DEFINE_config_file("config", None, "Training config file (configs/*.py).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and samples.")
flags.mark_flags_as_required(["config", "workdir"])


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with a one-line error (not a traceback) for a config field that does not exist."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    sys.exit(f"error: {e}\nPass --helpfull to see the flags.")
  except (AttributeError, KeyError) as e:
    message = str(e).replace("\\", "")
    key = re.search(r'Key "([^"]+)"', message) or re.search(r"'([^']+)'", message)
    name = key.group(1) if key else "*"
    override = next((a.split("=")[0] for a in argv[1:] if a.startswith("--config.") and name in a), "--config.*")
    hint = re.search(r'Did you mean "([^"]+)"', message)
    hint = f' (did you mean "{hint.group(1)}"?)' if hint else ""
    sys.exit(f"error: {override} is not a config field{hint}; configs/default.py lists them all")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  # a run that samples digits through a naming (conditioning few_labels) self-trains its namer when it first does
  config = _CONFIG.value
  cpu_flags = runtime.cpu_flags_for(config)
  cli.run(train.train_and_evaluate, config, _WORKDIR.value, prepare_naming=naming.load_or_build, cpu_flags=cpu_flags)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
