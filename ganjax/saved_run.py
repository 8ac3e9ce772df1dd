"""A saved run, owned here: the workdir's file names, the roles of the config's fields (what defines a run, what
a resumed run may change, what only the namer reads), and the one reader of a saved config (load + upgrade).
"""

import json
import os

import ml_collections

from ganjax import conditioning, config_defaults, files
from ganjax.checkpoints import is_complete
from ganjax.errors import ConfigError, WorkdirError

# The files of a workdir.
CONFIG_FILE = "config.json"  # the resolved config (write_config)
METRICS_FILE = "metrics.jsonl"  # one record per log step and evaluation (ganjax/metric_writers.py)
CHECKPOINTS_DIR = "checkpoints"  # orbax, with the RNG key and data position (ganjax/checkpoints.py)
CLUSTERS_FILE = "clusters.npz"  # the k-means cluster of every training image (ganjax/data/clusters.py)
PSEUDO_LABELS_FILE = "pseudo_labels.npz"  # an anchored semi_supervised run's (ganjax/ssl/pseudo_labels.py)
NAMING_FILE = "few_labels.npz"  # a run's naming (ganjax/few_labels/naming.py)
SAMPLES_DIR = "samples"  # sample grids: epoch_NNN.png, final.png
EVAL_FILE = "eval.json"  # the final evaluation
LOCK_FILE = ".lock"  # held by the run writing the workdir (ganjax/workdir.py)
RECORD_FILE = ("record", "metadata")  # in a checkpoint's directory: its JSON record

# What a resumed run may change: its length, what it writes and how often, where data and devices come from,
# and how G is sampled. Every other field defines the run (its maths, its data, its random numbers).
RESUMABLE_FIELDS = frozenset(
  {
    "num_epochs",
    "num_train_steps",
    "data_dir",
    "mnist_idx_dir",
    "download",
    "mnist_url",
    "conv_impl",
    "sampling_batch_norm",
    "sampling_latent_scale",
    "parallel",
    "num_devices",
    "distributed",
    "coordinator_address",
    "num_processes",
    "process_id",
    "log_every_steps",
    "progress_every_seconds",
    "divergence_bound",
    "checkpoint_every_steps",
    "keep_checkpoints",
    "sample_epochs",
    "num_sample_images",
    "eval_every_epochs",
    "eval_at_end",
    "eval_num_samples",
    "eval_cas",
  }
)

# Optimiser fields a resumed run may change (a warm restart at another rate); the optimiser state still fits.
RESUMABLE_OPTIMIZER_FIELDS = frozenset({"learning_rate"})

# The namer's fields: only a run that needs a naming reads them (its namer is trained from them, and retrained
# when one differs: ganjax/few_labels/naming.py), so any other run resumes whatever they say (e.g. after their
# default changed).
NAMER_FIELDS = (
  "labels_per_class",
  "label_seed",
  "self_training_rounds",
  "self_training_steps",
  "self_training_labeller",
  "few_labels_min_confidence",
)


def needs_naming(config) -> bool:
  """Whether the run samples digits through a naming (a config or a saved config's dict)."""
  kind, num_clusters = config.get("conditioning", "none"), config.get("num_clusters", 0)
  return conditioning.Conditioning(kind, num_clusters).needs_naming


def _plain(value):
  if isinstance(value, ml_collections.ConfigDict):  # an optimiser: compared without its resumable fields
    return {k: v for k, v in value.to_dict().items() if k not in RESUMABLE_OPTIMIZER_FIELDS}
  return value


def check_resume(saved: ml_collections.ConfigDict, config: ml_collections.ConfigDict, workdir: str) -> None:
  """Raise ConfigError naming the first field that defines the run and differs from the saved run's."""
  for field in sorted(config.keys()):
    if field in RESUMABLE_FIELDS or field not in saved:
      continue
    if field in NAMER_FIELDS and not needs_naming(saved):
      continue
    old, new = _plain(saved[field]), _plain(config[field])
    if old != new:
      raise ConfigError(
        f"config.{field}={new!r} but the run in {workdir} was started with {old!r}; a resumed run may change "
        f"only its length, outputs, data location, devices, sampling and learning rates: resume with "
        f"{field}={old!r}, or use another --workdir"
      )


def defining_fields(config: ml_collections.ConfigDict) -> dict:
  """The fields that define the run (not resumable), as JSON values: what a checkpoint's record keeps, so that
  a resume can be checked without config.json."""
  fields = json.loads(config.to_json_best_effort())
  for name, value in fields.items():
    if isinstance(value, dict):  # an optimiser
      fields[name] = {k: v for k, v in value.items() if k not in RESUMABLE_OPTIMIZER_FIELDS}
  return {name: value for name, value in fields.items() if name not in RESUMABLE_FIELDS}


def check_record(record: dict, config: ml_collections.ConfigDict, workdir: str) -> None:
  """Raise ConfigError naming the first field that defines the run and differs from what a checkpoint's
  record knows of it: its defining fields (checkpoints saved since they carry them), else its seed."""
  if "config" in record:
    check_resume(upgrade(record["config"]), config, workdir)
  elif "seed" in record and record["seed"] != config.seed:
    check_resume(ml_collections.ConfigDict({"seed": record["seed"]}), config, workdir)


def newest_checkpoint_record(workdir: str) -> dict | None:
  """The record of the newest complete checkpoint in the workdir (unverified: read before any restore, to
  refuse a run in seconds), or None if it has none or the record cannot be read."""
  directory = os.path.join(workdir, CHECKPOINTS_DIR)
  names = os.listdir(directory) if os.path.isdir(directory) else []
  complete = [int(name) for name in names if name.isdigit() and is_complete(os.path.join(directory, name))]
  if not complete:
    return None
  try:
    with open(os.path.join(directory, str(max(complete)), *RECORD_FILE)) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None  # the restore reports it, and falls back to an older checkpoint


def check_workdir(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Refuse a run that may not resume the one in `workdir`, before any heavy work: compared with its config.json,
  or without one, with what its newest checkpoint's record knows. A workdir without checkpoints starts afresh."""
  record = newest_checkpoint_record(workdir)
  if record is None:
    return
  saved = read_saved_config(workdir)
  if saved is not None:
    check_resume(saved, config, workdir)
  else:
    check_record(record, config, workdir)


def write_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Record the resolved config (atomically: an interrupted write keeps the previous one whole)."""
  files.atomic_write(os.path.join(workdir, CONFIG_FILE), config.to_json_best_effort(indent=2, sort_keys=True))


def read_saved_config(workdir: str) -> ml_collections.ConfigDict | None:
  """The workdir's recorded config in today's schema, or None if it has none."""
  if not os.path.exists(os.path.join(workdir, CONFIG_FILE)):
    return None
  try:
    return load(workdir)
  except (json.JSONDecodeError, ConfigError) as e:
    raise WorkdirError(f"{workdir}/{CONFIG_FILE} cannot be read ({e}); use another --workdir") from e


# Fields renamed or replaced by config.conditioning / config.class_head; configs saved before hold them.
_OLD_CONDITIONING_FIELDS = (
  "num_classes",
  "clusters_per_class",
  "auxiliary_classifier_weight",
  "twin_auxiliary_classifier",
  "critic_conditioning",
)
# Fields added after the first saved runs, with the value that reproduces those runs.
_ADDED_FIELDS = dict(
  conv_impl="auto",
  num_clusters=0,
  ema_decay=0.0,
  sampling_batch_norm="moving",
  sampling_latent_scale=1.0,
  examples_per_class=0,
  eval_cas=False,
  labels_per_class=0,
  critic_augment="",
  twin_loss_cap=0.0,
  learning_rate_decay="none",
  learning_rate_decay_start=0.0,
)
# Namer fields added after the first runs that need a naming: such a saved run lacking one takes the value that
# reproduces it; any other run takes today's default (the field plays no part in it, so it resumes unchanged).
ADDED_NAMER_FIELDS = dict(self_training_labeller="classifier")


def upgrade(saved: dict) -> ml_collections.ConfigDict:
  """A config saved by any earlier ganjax (a workdir's config.json) in today's schema, the same run.

  Fields a saved config lacks take the value that reproduces it (added fields) or today's default (output
  fields such as progress_every_seconds); the old conditioning knobs become conditioning / class_head.
  """
  saved = {**_ADDED_FIELDS, **saved}
  if any(field in saved for field in _OLD_CONDITIONING_FIELDS):
    saved = _upgrade_conditioning(saved)
  if needs_naming(saved):
    saved = {**ADDED_NAMER_FIELDS, **saved}
  config = config_defaults.get_config()
  unknown = sorted(set(saved) - set(config))
  if unknown:
    raise ConfigError(f"saved config has unknown field {unknown[0]!r}; was it written by a newer ganjax?")
  for field, value in saved.items():  # a dict (an optimiser) replaces the default's whole, not merged into it
    if isinstance(value, dict):
      config[field] = ml_collections.ConfigDict(value)
  config.update({field: value for field, value in saved.items() if not isinstance(value, dict)})
  return config


def _upgrade_conditioning(saved: dict) -> dict:
  saved = dict(saved)
  num_digits = saved.pop("num_classes", 0)
  per_digit = saved.pop("clusters_per_class", 0)
  weight = saved.pop("auxiliary_classifier_weight", 0.0)
  twin = saved.pop("twin_auxiliary_classifier", False)
  saved["critic_label_input"] = saved.pop("critic_conditioning", "projection")
  if num_digits and per_digit:
    saved.update(conditioning="digit_clusters", num_clusters=per_digit)
  elif num_digits:
    saved.update(conditioning="digit")
  elif saved.get("num_clusters"):
    saved.update(conditioning="clusters")
  else:
    saved.update(conditioning="none")
  saved["class_head"] = ("tac" if twin else "ac") if weight > 0 else "none"
  saved["class_head_weight"] = weight if weight > 0 else 1.0
  return saved


def load(workdir: str) -> ml_collections.ConfigDict:
  """The config of the run in `workdir` (its config.json, upgraded to today's schema)."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise WorkdirError(f"{workdir!r} is not a ganjax run directory (no config.json); pass a training --workdir")
  with open(path) as f:
    return upgrade(json.load(f))
