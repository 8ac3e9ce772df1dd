"""Orbax checkpoints of the whole training state, with auto-resume that survives a corrupt latest save.

A checkpoint holds the TrainState pytree and a JSON record of what lies outside it: the root RNG key,
the data position (real batches consumed) and the epoch. Orbax writes each step to a temporary directory
and renames it when complete, so a run killed at any moment leaves only whole checkpoints behind.
"""

import dataclasses
import os
import shutil

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from ganjax.errors import WorkdirError


class Checkpoints:
  """Save every `every_steps` generator steps (and when forced), keep the newest `keep`."""

  def __init__(self, directory: str, every_steps: int, keep: int):
    self.directory = os.path.abspath(directory)
    self.every_steps = every_steps
    self.manager = ocp.CheckpointManager(
      self.directory,
      options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, cleanup_tmp_directories=True),
    )

  def should_save(self, step: int) -> bool:
    return step % self.every_steps == 0  # not orbax's policy, which also saves the first step of a run

  def save(self, step: int, state, record: dict) -> None:
    """Asynchronous: returns once the arrays are copied off the device; wait() before exiting."""
    args = ocp.args.Composite(state=ocp.args.StandardSave(state), record=ocp.args.JsonSave(record))
    self.manager.save(step, args=args, force=True)

  def restore_latest(self, abstract_state):
    """(state, record) of the newest checkpoint that restores, or None if there is none.

    A newest checkpoint that fails to restore (truncated, corrupt) is reported and moved aside to
    `<directory>-unreadable/` (kept, never deleted) once an older one restores. If none restores, nothing
    is moved and WorkdirError says so: most likely the config no longer matches the saved run.
    """
    steps = sorted(self.manager.all_steps(), reverse=True)
    failures = []
    for step in steps:
      try:
        restored = self._restore(step, abstract_state)
      except Exception as e:  # orbax raises many types for unreadable files
        logging.warning("checkpoint at step %d in %s cannot be restored: %s", step, self.directory, e)
        failures.append((step, e))
        continue
      for failed_step, _ in failures:
        self._move_aside(failed_step)
      return restored
    if failures:
      step, error = failures[0]
      raise WorkdirError(
        f"no checkpoint in {self.directory} can be restored with this config (step {step}: "
        f"{str(error).splitlines()[0][:300]}); resume with the config the run was started with, or use a new "
        "--workdir"
      )
    return None

  def steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def restore_step(self, step: int, abstract_state):
    """(state, record) of the checkpoint of `step` (for evaluating or exporting one point of a run)."""
    if step not in self.manager.all_steps():
      raise WorkdirError(f"no checkpoint of step {step} in {self.directory}; there are: {self.steps() or 'none'}")
    return self._restore(step, abstract_state)

  def _restore(self, step: int, abstract_state):
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

  def _move_aside(self, step: int) -> None:
    source = os.path.join(self.directory, str(step))
    target = os.path.join(self.directory + "-unreadable", str(step))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.move(source, target)
    logging.warning("moved the unreadable checkpoint of step %d to %s", step, target)
    self.manager.reload()

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.close()


def _restore_args(abstract_state) -> ocp.args.Composite:
  return ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state), record=ocp.args.JsonRestore())


def key_to_list(key: jax.Array) -> list[int]:
  return np.asarray(jax.random.key_data(key)).tolist()


def key_from_list(data: list[int]) -> jax.Array:
  return jax.random.wrap_key_data(np.asarray(data, np.uint32))
