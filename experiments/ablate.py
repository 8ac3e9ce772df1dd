"""Ablations: train and evaluate every config x override x seed cell of a sweep, into one results table.

  python experiments/ablate.py --configs=configs/cgan.py,configs/cwgan_gp.py --seeds=0,1 \
    --sweep=ema_decay=0,0.999 --sweep=generator_optimizer.learning_rate=1e-4,2e-4 --set=num_epochs=10
  python experiments/ablate.py ... --dry_run      # list the cells and which are done; train nothing

The cells are the product of --configs, every --sweep=field=v1,v2,... (values: Python literals, e.g.
1e-4,2e-4 or (8,8,4),(16,16,8), else comma-separated strings; dotted fields reach into sub-configs) and
--seeds; each --set=field=value applies to every cell. A cell is train.train_and_evaluate(config,
<out_dir>/runs/<cell id>) with eval_at_end=True, its metrics that run's eval.json. Every config file, field
and value is checked before anything trains.

Resumable: rerun the same command. Cells whose eval.json is at the config's last step are skipped; an
interrupted cell resumes from its checkpoint; a workdir trained under other settings is an error, never
reused. A diverged cell is a result (status 'diverged', no metrics), not the end of the sweep. A finished
cell's wall time (training + evaluation) and hardware go to <workdir>/ablate_cell.json, so reruns report the
original numbers. After every finished cell <out_dir>/results.csv (one row per cell) and results.md (the
command, mean ± std over seeds per config x overrides, the cells) are rewritten atomically.
Default --out_dir: experiments/results/ablation/<--name>; default --name: config names + swept fields.
The runner is ganjax.studies.ablation.
"""

import os
import shlex
import sys

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # the config files import `configs.default`

from ganjax import cli
from ganjax.studies import ablation, sweeps

_CONFIGS = flags.DEFINE_list("configs", ["configs/cgan.py"], "Config files (get_config()), comma-separated.")
_SWEEP = flags.DEFINE_multi_string("sweep", [], "field=v1,v2,...: one axis of the sweep (repeatable).")
_SET = flags.DEFINE_multi_string("set", [], "field=value: a fixed override of every cell (repeatable).")
_SEEDS = flags.DEFINE_list("seeds", ["0"], "config.seed values: the cells repeated per seed.")
_OUT_DIR = flags.DEFINE_string("out_dir", "", "Output directory (default experiments/results/ablation/<name>).")
_NAME = flags.DEFINE_string("name", "", "Name of the ablation (default: config names and swept fields).")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Only list the cells and which are done.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  command = "python experiments/ablate.py " + shlex.join(sys.argv[1:])
  name = _NAME.value or sweeps.default_name(_CONFIGS.value, _SWEEP.value)
  out_dir = _OUT_DIR.value or os.path.join(ROOT, "experiments", "results", "ablation", name)
  args = (_CONFIGS.value, _SWEEP.value, _SET.value, _SEEDS.value, out_dir, _DRY_RUN.value)
  cli.run(ablation.ablate, *args, command=command)


if __name__ == "__main__":
  app.run(main)
