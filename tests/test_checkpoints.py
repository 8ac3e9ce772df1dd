"""Checkpoints: older ones still restore; corrupt or partial ones are skipped for the previous good one."""

import dataclasses
import json
import logging
import os
import shutil

import jax
import numpy as np
import pytest

from configs import tiny
from ganjax import checkpoints, steps
from ganjax.errors import WorkdirError


def test_a_checkpoint_written_before_the_ema_field_existed_restores_with_the_ema_off(tmp_path):
  setup = steps.make_setup(tiny.get_config())
  state = steps.create_state(setup, jax.random.key(0))
  assert state.generator_ema_params is None
  # What an older ganjax wrote: the same state without the fields added since (the EMA, the cluster shares).
  legacy = {f.name: getattr(state, f.name) for f in dataclasses.fields(state) if getattr(state, f.name) is not None}
  assert set(legacy) == {f.name for f in dataclasses.fields(state)} - {"generator_ema_params", "cluster_shares"}
  manager = checkpoints.Checkpoints(str(tmp_path / "checkpoints"), every_steps=1, keep=2)
  manager.save(7, legacy, {"step": 7})
  manager.wait()
  abstract = jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), steps.create_state(setup, jax.random.key(1))
  )
  restored, record = manager.restore_latest(abstract)
  manager.close()
  assert record["step"] == 7 and restored.generator_ema_params is None
  jax.tree.map(np.testing.assert_array_equal, restored.generator_params, state.generator_params)
  jax.tree.map(np.testing.assert_array_equal, restored.critic_opt_state, state.critic_opt_state)


def saved_steps(tmp_path, num_steps=(4, 8)):
  """A checkpoints directory with one tiny-config checkpoint per step in num_steps, and the states saved."""
  setup = steps.make_setup(tiny.get_config())
  manager = checkpoints.Checkpoints(str(tmp_path / "checkpoints"), every_steps=1, keep=5)
  states = {}
  for step in num_steps:
    states[step] = steps.create_state(setup, jax.random.key(step))
    manager.save(step, states[step], {"step": step})
  manager.wait()
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), states[num_steps[0]])
  return manager, states, abstract


def largest_file(directory: str) -> str:
  paths = [os.path.join(root, name) for root, _, names in os.walk(directory) for name in names]
  return max(paths, key=os.path.getsize)


def test_a_checkpoint_whose_bytes_were_corrupted_is_skipped_for_the_previous_one(tmp_path):
  manager, states, abstract = saved_steps(tmp_path)
  path = largest_file(str(tmp_path / "checkpoints" / "8" / "state"))
  size = os.path.getsize(path)
  with open(path, "r+b") as f:  # random bytes in the middle, the size unchanged
    f.seek(size // 2)
    f.write(np.random.default_rng(0).integers(0, 256, min(4096, size // 4), dtype=np.uint8).tobytes())
  restored, record = manager.restore_latest(abstract)
  manager.close()
  assert record["step"] == 4
  jax.tree.map(np.testing.assert_array_equal, restored.generator_params, states[4].generator_params)
  assert os.path.isdir(str(tmp_path / "checkpoints-unreadable" / "8"))


def test_verify_rejects_changed_or_non_finite_arrays_and_accepts_the_saved_ones(tmp_path):
  setup = steps.make_setup(tiny.get_config())
  state = steps.create_state(setup, jax.random.key(0))
  record = {checkpoints.STATE_SHA256: checkpoints.state_sha256(state)}
  checkpoints.verify(state, record)
  checkpoints.verify(state, {})  # checkpoints from before the checksum: finiteness only
  changed = state.replace(critic_params=jax.tree.map(lambda p: p + 1e-6, state.critic_params))
  with pytest.raises(checkpoints.CorruptCheckpoint, match="checksum"):
    checkpoints.verify(changed, record)
  bad = state.replace(generator_params=jax.tree.map(lambda p: p.at[(0,) * p.ndim].set(np.inf), state.generator_params))
  with pytest.raises(checkpoints.CorruptCheckpoint, match="non-finite values in .*generator_params"):
    checkpoints.verify(bad, {})


def test_a_checkpoint_left_half_deleted_is_not_listed_and_is_moved_aside_by_the_writer(tmp_path):
  manager, states, abstract = saved_steps(tmp_path)
  os.remove(str(tmp_path / "checkpoints" / "8" / "_CHECKPOINT_METADATA"))  # what a kill mid-rotation leaves
  shutil.rmtree(str(tmp_path / "checkpoints" / "8" / "record"))
  assert manager.steps() == [4]
  restored, record = manager.restore_latest(abstract)
  assert record["step"] == 4
  manager.move_aside_incomplete()
  manager.close()
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["4"]
  assert os.path.isdir(str(tmp_path / "checkpoints-unreadable" / "8"))


def edit_record(directory: str, step: int, **changes) -> None:
  """Change fields of a saved record in place (it stays valid JSON), or drop those given as None."""
  path = os.path.join(directory, str(step), "record", "metadata")
  with open(path) as f:
    record = json.load(f)
  record.update(changes)
  with open(path, "w") as f:
    json.dump({k: v for k, v in record.items() if v is not None}, f)


def test_a_record_edited_after_saving_fails_the_checksum_and_the_previous_checkpoint_is_restored(tmp_path):
  manager, states, abstract = saved_steps(tmp_path)
  edit_record(str(tmp_path / "checkpoints"), 8, rng_key=[0, 1])
  restored, record = manager.restore_latest(abstract)
  manager.close()
  assert record["step"] == 4
  assert os.path.isdir(str(tmp_path / "checkpoints-unreadable" / "8"))


def test_a_checkpoint_saved_before_the_checksum_restores_as_unverified_and_is_never_called_verified(tmp_path, caplog):
  manager, states, abstract = saved_steps(tmp_path)
  edit_record(str(tmp_path / "checkpoints"), 8, **{checkpoints.CHECKSUM: None})
  with caplog.at_level(logging.WARNING):
    restored, record = manager.restore_latest(abstract)
  manager.close()
  assert record["step"] == 8
  jax.tree.map(np.testing.assert_array_equal, restored.generator_params, states[8].generator_params)
  warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
  assert len(warnings) == 1 and "checkpoint at step 8 in" in warnings[0] and "is unverified" in warnings[0]
  assert manager.describe(8) == "step 8, unverified: saved before checksums" and manager.describe(4) == "step 4"


def test_when_every_checkpoint_is_corrupt_the_error_says_so_and_does_not_blame_the_config(tmp_path):
  manager, _, abstract = saved_steps(tmp_path)
  for step in (4, 8):
    edit_record(str(tmp_path / "checkpoints"), step, epoch=99.0)
  with pytest.raises(WorkdirError) as error:
    manager.restore_latest(abstract)
  manager.close()
  message = str(error.value)
  assert "is corrupt: step 8: the arrays or the record do not match the checksum" in message, message
  assert "step 4: " in message and "config" not in message and "\n" not in message
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["4", "8"]  # nothing moved


def test_a_reader_restores_without_orbaxs_read_only_warnings_and_keeps_every_checkpoint(tmp_path, caplog):
  writer, states, abstract = saved_steps(tmp_path)
  writer.close()
  with caplog.at_level(logging.WARNING):
    reader = checkpoints.Checkpoints(str(tmp_path / "checkpoints"), every_steps=1, keep=1, writer=False)
    restored, record = reader.restore_latest(abstract)
    reader.close()
  assert record["step"] == 8
  jax.tree.map(np.testing.assert_array_equal, restored.generator_params, states[8].generator_params)
  assert not [r for r in caplog.records if "read_only=True" in r.getMessage()]
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["4", "8"]  # keep=1 does not make a reader delete
