"""Do the shipped configs still train the same maths? Their first steps' metrics, recorded and compared.

Each config in configs/ (but default) trains for --steps generator steps, logging every step, through the
public entry point (train.train_and_evaluate), on a small data subset and batch so that every code path
(losses, class heads, clusters, EMA, sampling grids) runs in seconds. `--write` records the per-step metrics
as the reference (of the --configs named; the others' entries are kept); without it the script compares
against the reference and exits non-zero on a difference beyond --rtol.

  python experiments/step_equivalence.py --write   # on the code whose behaviour is the reference
  python experiments/step_equivalence.py           # after a change that must not change the maths
"""

import importlib
import json
import math
import os
import sys
import tempfile

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ganjax import cli, metric_writers, train  # noqa: E402

_WRITE = flags.DEFINE_bool("write", False, "Record the reference instead of comparing against it.")
_STEPS = flags.DEFINE_integer("steps", 20, "Generator steps per config.")
_RTOL = flags.DEFINE_float("rtol", 1e-4, "Relative tolerance of a metric (with an absolute floor of 1e-5).")
_CONFIGS = flags.DEFINE_list("configs", [], "Config names (default: every shipped config).")
_REFERENCE = flags.DEFINE_string(
  "reference", "experiments/results/step_equivalence_reference.json", "The reference file."
)

SHIPPED = (
  "gan",
  "wgan",
  "wgan_gp",
  "cgan",
  "cwgan_gp",
  "cgan_tuned",
  "gan_tuned",
  "wgan_gp_tuned",
  "cwgan_gp_tuned",
  "wgan_tuned",
  "cwgan_gp_fast",
)
# Code paths no shipped config takes: (config, overrides).
VARIANTS = {
  "cwgan_gp_tuned_digit_clusters": ("cwgan_gp_tuned", {"conditioning": "digit_clusters", "num_clusters": 10}),
  "cgan_concat_minimax": ("cgan", {"critic_label_input": "concat", "loss": "minimax"}),
  "cwgan_gp_tuned_linear_decay": (
    "cwgan_gp_tuned",
    {"learning_rate_decay": "linear", "learning_rate_decay_start": 0.5},
  ),
}
TIMING_METRICS = ("images_per_sec", "steps_per_sec")


def short_config(name: str, steps: int):
  """The shipped config (or variant) `name`, shortened to `steps` logged steps on 2,048 images in batches of 64."""
  base, overrides = VARIANTS.get(name, (name, {}))
  config = importlib.import_module(f"configs.{base}").get_config()
  config.update(overrides)
  config.num_train_steps = steps
  config.batch_size = 64
  config.train_subset = 2048
  config.log_every_steps = 1
  config.checkpoint_every_steps = 10 * steps
  config.sample_epochs = ()
  config.eval_at_end = False
  config.eval_every_epochs = 0
  return config


def record_metrics(name: str, steps: int) -> list[dict]:
  with tempfile.TemporaryDirectory() as workdir:
    train.train_and_evaluate(short_config(name, steps), workdir)
    records = metric_writers.read_metrics(workdir)
  return [{k: v for k, v in r.items() if k not in TIMING_METRICS} for r in records]


def differences(reference: list[dict], measured: list[dict], rtol: float) -> list[str]:
  """Where the measured records differ from the reference's, step by step (a measured record of a step the
  reference lacks is not compared: the reference was written when the first step went unrecorded)."""
  by_step = {record["step"]: record for record in measured}
  found = []
  for ref in reference:
    new = by_step.get(ref["step"])
    if new is None:
      found.append(f"step {ref['step']}: no record")
    elif set(ref) != set(new):
      found.append(f"step {ref['step']}: metrics {sorted(set(ref) ^ set(new))} differ in presence")
    else:
      found += [
        f"step {ref['step']}: {key} {new[key]!r}, reference {value!r}"
        for key, value in ref.items()
        if not math.isclose(value, new[key], rel_tol=rtol, abs_tol=1e-5)
      ]
  return found


def main(argv):
  del argv
  names = _CONFIGS.value or (*SHIPPED, *VARIANTS)
  measured = {name: record_metrics(name, _STEPS.value) for name in names}
  if _WRITE.value:  # the named configs' entries are replaced, the others' kept
    reference = {}
    if os.path.exists(_REFERENCE.value):
      with open(_REFERENCE.value) as f:
        reference = json.load(f)
    with open(_REFERENCE.value, "w") as f:
      json.dump(reference | measured, f, indent=1, sort_keys=True)
    print(f"wrote {_REFERENCE.value} ({len(names)} configs x {_STEPS.value} steps)")
    return
  with open(_REFERENCE.value) as f:
    reference = json.load(f)
  failed = False
  for name in names:
    found = differences(reference[name], measured[name], _RTOL.value)
    print(f"{name}: {'same' if not found else f'{len(found)} differences, first: {found[0]}'}")
    failed |= bool(found)
  sys.exit(1 if failed else 0)


if __name__ == "__main__":
  app.run(lambda argv: cli.run(main, argv))
