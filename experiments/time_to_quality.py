"""Time to quality: the training wall time at which a config's generator first meets the quality targets.

  python experiments/time_to_quality.py --config=configs/cwgan_gp_tuned.py --workdir=runs/ttq_cwgan_gp_tuned
  python experiments/time_to_quality.py --config=configs/tiny.py --workdir=/tmp/ttq --eval_every_steps=4 \
    --num_samples=100 --out_dir=/tmp/ttq_out                                    # a seconds-long smoke run

Trains the config (--config.* overrides work as in main.py) and evaluates it every --eval_every_seconds of
training wall time or every --eval_every_steps generator steps, on the same noise, with --num_samples samples
and the project's metrics, until every target of docs/recipes.md holds (FID <= 8x the real-data floor at that
sample size, score, recall, smallest class, and for digit-conditional runs label agreement, then CAS once the
others hold), --max_train_seconds of training have passed, or the config's length is trained. Evaluation time
is excluded from the training time and reported apart. Writes <out_dir>/time_to_quality.jsonl (one line per
evaluation) and time_to_quality.md (the summary, with the hardware and date). Resumable: rerun the same
command. Default --out_dir: experiments/results/time_to_quality/<config name>_<date>.
The library is ganjax.studies.time_to_quality.
"""

import datetime
import math
import os
import shlex
import sys

from absl import app, flags
from ml_collections import config_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # the config files import `configs.default`

from ganjax import cli
from ganjax.few_labels import naming
from ganjax.studies import time_to_quality

_CONFIG = config_flags.DEFINE_config_file("config", None, "Training config file (configs/*.py).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "The run's directory (checkpoints, metrics); reused to resume.")
_OUT_DIR = flags.DEFINE_string("out_dir", "", "Output directory (default experiments/results/time_to_quality/...).")
_EVERY_SECONDS = flags.DEFINE_float(
  "eval_every_seconds", 60.0, "Evaluate every this many seconds of training (0: off)."
)
_EVERY_STEPS = flags.DEFINE_integer("eval_every_steps", 0, "Evaluate every this many generator steps (0: off).")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 10_000, "Generated images per evaluation.")
_MAX_SECONDS = flags.DEFINE_float("max_train_seconds", math.inf, "Give up after this much training wall time.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  name = os.path.splitext(os.path.basename(config_flags.get_config_filename(flags.FLAGS["config"])))[0]
  out_dir = _OUT_DIR.value or os.path.join(
    ROOT, "experiments", "results", "time_to_quality", f"{name}_{datetime.date.today().isoformat()}"
  )
  command = "python experiments/time_to_quality.py " + shlex.join(sys.argv[1:])
  cadence = time_to_quality.Cadence(_EVERY_SECONDS.value, _EVERY_STEPS.value, _MAX_SECONDS.value)
  args = (_CONFIG.value, _WORKDIR.value, out_dir, cadence, _NUM_SAMPLES.value)
  # a run that samples digits through a naming (conditioning few_labels) self-trains its namer when it first does
  prepare = naming.load_or_build
  cli.run(time_to_quality.time_to_quality, *args, name=name, command=command, prepare_naming=prepare)


if __name__ == "__main__":
  app.run(main)
