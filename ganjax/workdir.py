"""A training workdir: one writer at a time, the fields a resumed run may change, the recorded config.

The lock is an exclusive `fcntl.flock` on `<workdir>/.lock`, held for the whole run: the kernel releases it
when the process ends in any way (kill -9 included), so a dead run leaves no stale lock. The file names the
holder (pid, host, start time) for the message a second writer gets.
"""

import datetime
import fcntl
import json
import os
import socket

import ml_collections

from ganjax import files
from ganjax.errors import ConfigError, WorkdirError

LOCK_FILE = ".lock"
CONFIG_FILE = "config.json"

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


class WorkdirLock:
  """An exclusive lock on a workdir for this process's lifetime (or until release())."""

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, LOCK_FILE)
    self._file = None

  def acquire(self) -> "WorkdirLock":
    """Take the lock, or raise WorkdirError naming its holder."""
    try:
      handle = open(self.path, "a+")
    except OSError as e:
      raise WorkdirError(f"cannot write to workdir {os.path.dirname(self.path)!r}: {e.strerror}") from e
    try:
      fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      handle.seek(0)
      holder = handle.read().strip() or "another process"
      handle.close()
      raise WorkdirError(
        f"workdir {os.path.dirname(self.path)!r} is in use by {holder}; wait for that run to end, or use "
        "another --workdir"
      ) from None
    handle.seek(0)
    handle.truncate()
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    handle.write(f"pid {os.getpid()} on {socket.gethostname()} (started {started})\n")
    handle.flush()
    self._file = handle
    return self

  def release(self) -> None:
    if self._file is not None:
      fcntl.flock(self._file, fcntl.LOCK_UN)
      self._file.close()
      self._file = None

  def __enter__(self) -> "WorkdirLock":
    return self.acquire()

  def __exit__(self, *exc) -> None:
    self.release()


# Optimiser fields a resumed run may change (a warm restart at another rate); the optimiser state still fits.
RESUMABLE_OPTIMIZER_FIELDS = frozenset({"learning_rate"})

# The namer's fields: only a conditioning few_labels run reads them, so any other run resumes whatever they say
# (e.g. after their default changed).
NAMER_FIELDS = frozenset(
  {"self_training_rounds", "self_training_steps", "self_training_labeller", "few_labels_min_confidence"}
)


def _plain(value):
  if isinstance(value, ml_collections.ConfigDict):  # an optimiser: compared without its resumable fields
    return {k: v for k, v in value.to_dict().items() if k not in RESUMABLE_OPTIMIZER_FIELDS}
  return value


def check_resume(saved: ml_collections.ConfigDict, config: ml_collections.ConfigDict, workdir: str) -> None:
  """Raise ConfigError naming the first field that defines the run and differs from the saved run's."""
  for field in sorted(config.keys()):
    if field in RESUMABLE_FIELDS or field not in saved:
      continue
    if field in NAMER_FIELDS and saved.get("conditioning") != "few_labels":
      continue
    old, new = _plain(saved[field]), _plain(config[field])
    if old != new:
      raise ConfigError(
        f"config.{field}={new!r} but the run in {workdir} was started with {old!r}; a resumed run may change "
        f"only its length, outputs, data location, devices, sampling and learning rates: resume with "
        f"{field}={old!r}, or use another --workdir"
      )


def write_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Record the resolved config (atomically: an interrupted write keeps the previous one whole)."""
  files.atomic_write(os.path.join(workdir, CONFIG_FILE), config.to_json_best_effort(indent=2, sort_keys=True))


def read_saved_config(workdir: str) -> ml_collections.ConfigDict | None:
  """The workdir's recorded config in today's schema, or None if it has none."""
  from ganjax import config as config_lib  # noqa: PLC0415  (config imports the model modules)

  if not os.path.exists(os.path.join(workdir, CONFIG_FILE)):
    return None
  try:
    return config_lib.load(workdir)
  except (json.JSONDecodeError, ConfigError) as e:
    raise WorkdirError(f"{workdir}/{CONFIG_FILE} cannot be read ({e}); use another --workdir") from e
