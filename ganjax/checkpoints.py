"""Orbax checkpoints of the whole training state, with auto-resume that survives a corrupt latest save.

A checkpoint holds the TrainState pytree and a JSON record of what lies outside it: the root RNG key,
the data position (real batches consumed), the epoch and a sha256 of the saved arrays and of the record's other
fields, so every value a restore returns is checked. Orbax writes each step to a temporary directory and renames
it when complete; a restore checks the checksum and finiteness, and a checkpoint that fails (or was left
half-deleted by a kill during rotation) is skipped. One saved before the checksum covered it is restored as
unverified, with a warning, and `describe` never calls it good.
"""

import dataclasses
import hashlib
import json
import os
import shutil

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from ganjax.errors import WorkdirError


class Checkpoints:
  """Save every `every_steps` generator steps (and when forced), keep the newest `keep`."""

  def __init__(self, directory: str, every_steps: int, keep: int, writer: bool = True):
    """`writer`: the training run that owns the directory; readers (evaluate, export) never move a checkpoint."""
    self.directory = os.path.abspath(directory)
    self.every_steps = every_steps
    self.writer = writer
    self.unverified: set[int] = set()  # steps restored without a checksum over all they hold
    self.manager = ocp.CheckpointManager(
      self.directory,
      options=ocp.CheckpointManagerOptions(  # a reader's options are those orbax forces on read_only (no warnings)
        max_to_keep=keep if writer else None,
        save_interval_steps=1 if writer else 0,
        create=writer,
        cleanup_tmp_directories=writer,
        read_only=not writer,
      ),
    )

  def should_save(self, step: int) -> bool:
    return step % self.every_steps == 0  # not orbax's policy, which also saves the first step of a run

  def save(self, step: int, state, record: dict) -> None:
    """Asynchronous: returns once the arrays are copied off the device; wait() before exiting."""
    record = {**record, CHECKSUM: checksum(state, record)}
    args = ocp.args.Composite(state=ocp.args.StandardSave(state), record=ocp.args.JsonSave(record))
    self.manager.save(step, args=args, force=True)

  def restore_latest(self, abstract_state):
    """(state, record) of the newest checkpoint that restores, or None if there is none.

    A newest checkpoint that fails to restore (truncated, corrupt) is reported and moved aside to
    `<directory>-unreadable/` (kept, never deleted) once an older one restores. If none restores, nothing
    is moved and WorkdirError names each one's reason.
    """
    steps = sorted(self.steps(), reverse=True)
    failures = []
    for step in steps:
      try:
        restored = self._restore(step, abstract_state)
      except Exception as e:  # orbax raises many types for unreadable files
        logging.warning("checkpoint at step %d in %s cannot be restored: %s", step, self.directory, _reason(e))
        failures.append((step, e))
        continue
      for failed_step, _ in failures if self.writer else ():
        self._move_aside(failed_step)
      return restored
    if failures:
      reasons = "; ".join(f"step {step}: {_reason(error, 150)}" for step, error in failures)
      corrupt = all(isinstance(error, CorruptCheckpoint) for _, error in failures)
      what = "is corrupt" if corrupt else "can be read (damaged files, or saved by another model)"
      raise WorkdirError(
        f"no checkpoint in {self.directory} {what}: {reasons}. Nothing was moved; restore the checkpoints from a "
        f"copy, move {self.directory} aside to start this run afresh, or use a new --workdir"
      )
    return None

  def describe(self, step: int) -> str:
    """'step N', with 'unverified' when that checkpoint was restored without a checksum over all it holds."""
    return f"step {step}, unverified: saved before checksums" if step in self.unverified else f"step {step}"

  def steps(self) -> list[int]:
    """The steps of the complete checkpoints, oldest first (a kill during rotation can leave a partial one)."""
    return sorted(step for step in self.manager.all_steps() if is_complete(os.path.join(self.directory, str(step))))

  def move_aside_incomplete(self) -> None:
    """Move partial checkpoint directories to `<directory>-unreadable/` (the run's writer only)."""
    for step in set(self.manager.all_steps()) - set(self.steps()):
      self._move_aside(step, "incomplete")

  def restore_step(self, step: int, abstract_state):
    """(state, record) of the checkpoint of `step` (for evaluating or exporting one point of a run)."""
    if step not in self.steps():
      raise WorkdirError(f"no checkpoint of step {step} in {self.directory}; there are: {self.steps() or 'none'}")
    return self._restore(step, abstract_state)

  def _restore(self, step: int, abstract_state):
    """(state, record), verified (see verify); one saved before its checksum is reported as unverified."""
    state, record = self._restore_unverified(step, abstract_state)
    if not verify(state, record):
      self.unverified.add(step)
      unchecked = "its record (RNG key, data position) is" if STATE_SHA256 in record else "its arrays and record are"
      logging.warning(
        "checkpoint at step %d in %s is unverified: saved before checkpoints carried a checksum over all they "
        "hold, %s not checked (only that the arrays are finite)", step, self.directory, unchecked
      )
    return state, record

  def _restore_unverified(self, step: int, abstract_state):
    """(state, record); a checkpoint written before a state field that is None here (e.g. the generator EMA,
    off) existed is restored into the state without that field, and the field set to None."""
    try:
      restored = self.manager.restore(step, args=_restore_args(abstract_state))
      return restored["state"], restored["record"]
    except ValueError:
      fields = {field.name: getattr(abstract_state, field.name) for field in dataclasses.fields(abstract_state)}
      if not any(value is None for value in fields.values()):
        raise
      present = {name: value for name, value in fields.items() if value is not None}
      restored = self.manager.restore(step, args=_restore_args(present))
      return abstract_state.replace(**restored["state"]), restored["record"]

  def _move_aside(self, step: int, why: str = "unreadable") -> None:
    source = os.path.join(self.directory, str(step))
    target = os.path.join(self.directory + "-unreadable", str(step))
    if os.path.exists(target):  # an earlier one of the same step
      target += f".{len(os.listdir(os.path.dirname(target)))}"
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.move(source, target)
    logging.warning("moved the %s checkpoint of step %d to %s", why, step, target)
    self.manager.reload()

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.close()


CHECKSUM = "sha256"  # of the arrays and the record's other fields: every value a restore returns
STATE_SHA256 = "state_sha256"  # of the arrays alone: what checkpoints carried before the record was covered
# What a complete checkpoint directory holds (orbax writes them last); rotation deletes them with the rest.
COMPLETE_MARKERS = ("_CHECKPOINT_METADATA", os.path.join("record", "metadata"), os.path.join("state", "_METADATA"))


class CorruptCheckpoint(ValueError):
  """The restored arrays are not the ones saved (checksum) or not finite."""


def restore_for_reading(directory: str, template, step: int | None = None):
  """(state, record) of checkpoint `step` (None: the newest that restores) in `directory`, on the default
  device, in `template`'s structure (arrays or shapes), for a reader (evaluate, export, recognize): nothing
  is created or moved. WorkdirError in one line if the directory holds no checkpoint."""
  if os.path.isdir(directory):
    checkpoints = Checkpoints(directory, 1, 1_000_000, writer=False)
    try:
      if checkpoints.steps():
        device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), template)
        return checkpoints.restore_latest(abstract) if step is None else checkpoints.restore_step(step, abstract)
    finally:
      checkpoints.close()
  raise WorkdirError(f"no checkpoint in {directory} yet; train first (python main.py ...)")


def is_complete(step_directory: str) -> bool:
  return all(os.path.exists(os.path.join(step_directory, marker)) for marker in COMPLETE_MARKERS)


def _key_name(key) -> str:
  for attribute in ("key", "name", "idx"):  # DictKey, GetAttrKey, SequenceKey / FlattenedIndexKey
    if hasattr(key, attribute):
      return str(getattr(key, attribute))
  return str(key)


def _host_leaves(state) -> list[tuple[str, np.ndarray]]:
  """(path, host copy) of every array of the state, sorted by path; of a replicated global array, this
  process's copy. Paths are container-neutral ("critic_params/Conv_0/kernel"), so a state saved as a dict
  and restored as a TrainState hash alike."""
  leaves = jax.tree_util.tree_flatten_with_path(state)[0]
  host = lambda x: np.asarray(x.addressable_data(0) if isinstance(x, jax.Array) else x)  # noqa: E731
  return sorted(("/".join(_key_name(k) for k in path), host(leaf)) for path, leaf in leaves)


def _arrays_digest(state):
  """sha256 (open) over every array's path, dtype, shape and bytes."""
  digest = hashlib.sha256()
  for path, value in _host_leaves(state):
    digest.update(f"{path}:{value.dtype}:{value.shape};".encode())
    digest.update(np.ascontiguousarray(value).tobytes())
  return digest


def state_sha256(state) -> str:
  """sha256 over every array's path, dtype, shape and bytes (the older checksum, arrays only)."""
  return _arrays_digest(state).hexdigest()


def checksum(state, record: dict) -> str:
  """sha256 over the arrays (as state_sha256) and the record's other fields as canonical JSON."""
  digest = _arrays_digest(state)
  fields = {k: v for k, v in record.items() if k not in (CHECKSUM, STATE_SHA256)}
  digest.update(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode())
  return digest.hexdigest()


def verify(state, record: dict) -> bool:
  """Raise CorruptCheckpoint unless every array is finite and the checksum saved with them matches. True if
  the checksum covered everything; False for a checkpoint saved before it did (unverified, or arrays only)."""
  for path, value in _host_leaves(state):
    if np.issubdtype(value.dtype, np.inexact) and not np.all(np.isfinite(value)):
      raise CorruptCheckpoint(f"non-finite values in {path}")
  if CHECKSUM in record:
    if checksum(state, record) != record[CHECKSUM]:
      raise CorruptCheckpoint("the arrays or the record do not match the checksum saved with them")
    return True
  if STATE_SHA256 in record and state_sha256(state) != record[STATE_SHA256]:
    raise CorruptCheckpoint("the arrays do not match the checksum saved with them")
  return False


def _reason(error: Exception, length: int = 300) -> str:
  """The first line of an error, shortened (not TensorStore's whole dump)."""
  return (str(error).strip().splitlines() or [type(error).__name__])[0][:length]


def _restore_args(abstract_state) -> ocp.args.Composite:
  return ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state), record=ocp.args.JsonRestore())


def key_to_list(key: jax.Array) -> list[int]:
  return np.asarray(jax.random.key_data(key)).tolist()


def key_from_list(data: list[int]) -> jax.Array:
  return jax.random.wrap_key_data(np.asarray(data, np.uint32))
