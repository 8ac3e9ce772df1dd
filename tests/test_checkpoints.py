"""Checkpoints from before a state field existed still restore (runs started on an older ganjax resume)."""

import dataclasses

import jax
import numpy as np

from configs import tiny
from ganjax import checkpoints, steps


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
