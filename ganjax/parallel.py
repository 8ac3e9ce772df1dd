"""Data parallelism over every device of every process: `jit` over a device mesh (default) or `pmap`.

Both modes run the same `train_step` maths on the same global batch with the same per-example random
numbers (example_draws.example_keys), so a run does not depend on the device count beyond float rounding.
- jit: the state is replicated and each batch sharded along its example axis (NamedSharding over a 1-D
  `jax.make_mesh` mesh); XLA's SPMD partitioner inserts the gradient all-reduce and the cross-device
  BatchNorm reductions itself, so the step is written for the global batch. The default: it is the path JAX
  develops (pmap is in maintenance mode and runs on jit + shard_map since JAX 0.8), and it spans processes.
- pmap: each device runs the step on its slice; gradients, metrics and BatchNorm statistics are averaged
  with explicit `pmean`s over the named axis. Single-process only.
One device is the size-1 case of either mode.
"""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from ganjax import config as config_lib
from ganjax import steps
from ganjax.errors import ConfigError

DATA_AXIS = "data"
MODES = config_lib.PARALLEL_MODES


def initialize_distributed(config: ml_collections.ConfigDict) -> None:
  """Join a multi-process run when the config asks for it (before any other JAX call).

  With no explicit coordinator, JAX detects the cluster (SLURM, Open MPI, Cloud TPU, ...) itself.
  """
  if not config.distributed:
    return
  kwargs = {}
  if config.coordinator_address:
    kwargs = dict(
      coordinator_address=config.coordinator_address,
      num_processes=config.num_processes,
      process_id=config.process_id,
    )
  jax.distributed.initialize(**kwargs)


class DataParallel:
  """Where the state and each batch live, and the train step compiled for that layout."""

  def __init__(self, config: ml_collections.ConfigDict):
    self.mode = config.parallel
    devices = jax.devices()
    if config.num_devices:
      if config.num_devices > len(devices):
        raise ConfigError(f"config.num_devices={config.num_devices} but only {len(devices)} devices exist")
      devices = devices[: config.num_devices]
    if self.mode == "pmap" and jax.process_count() > 1:
      raise ConfigError("config.parallel='pmap' runs in one process; use config.parallel='jit' across processes")
    self.devices = devices
    if config.batch_size % len(devices):
      raise ConfigError(
        f"config.batch_size={config.batch_size} is not divisible by the {len(devices)} devices; "
        f"use a multiple of {len(devices)} (or set config.num_devices)"
      )
    self.mesh = jax.make_mesh((len(devices),), (DATA_AXIS,), (jax.sharding.AxisType.Auto,), devices=devices)
    self.replicated = NamedSharding(self.mesh, PartitionSpec())
    self.batch_sharding = NamedSharding(self.mesh, PartitionSpec(None, DATA_AXIS))  # jit: [n_critic, B, ...]
    self.stacked = NamedSharding(self.mesh, PartitionSpec(DATA_AXIS))  # pmap: a leading device axis
    layout = self.stacked if self.mode == "pmap" else self.batch_sharding
    self._gather = jax.jit(_gather, out_shardings={"image": layout, "label": layout})

  @property
  def num_devices(self) -> int:
    return len(self.devices)

  def make_setup(self, config: ml_collections.ConfigDict) -> steps.GanSetup:
    if self.mode == "pmap":
      return steps.make_setup(config, axis_name=DATA_AXIS)
    return steps.make_setup(config, example_sharding=NamedSharding(self.mesh, PartitionSpec(DATA_AXIS)))

  def compile_train_step(self, setup: steps.GanSetup):
    step = functools.partial(steps.train_step, setup)
    if self.mode == "pmap":
      return jax.pmap(step, DATA_AXIS, in_axes=(0, 0, None), devices=self.devices, donate_argnums=0)
    return jax.jit(
      step,
      in_shardings=(self.replicated, self.batch_sharding, self.replicated),
      out_shardings=(self.replicated, self.replicated),
      donate_argnums=0,
    )

  def global_array(self, host_array: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global array from the same host array on every process; each process places only its shards."""
    return jax.make_array_from_callback(host_array.shape, sharding, lambda index: host_array[index])

  def put_dataset(self, images: np.ndarray, labels: np.ndarray) -> tuple[jax.Array, jax.Array]:
    """The whole (small) dataset on every device, so each gathers its own examples of every batch."""
    return self.global_array(images, self.replicated), self.global_array(labels, self.replicated)

  def put_state(self, state):
    """The host/unreplicated state -> the layout the compiled step takes."""
    if self.mode == "pmap":
      stack = lambda tree: jax.tree.map(lambda x: jnp.broadcast_to(x, (self.num_devices, *x.shape)), tree)  # noqa: E731
      return jax.jit(stack, out_shardings=self.stacked)(state)
    return jax.device_put(state, self.replicated)

  def unreplicate(self, tree):
    """The layout the compiled step returns -> one copy (state for checkpoints and sampling, metrics).

    Under pmap every device holds the same values; device 0's shard is read directly rather than sliced
    out of the stacked array, which would gather across devices.
    """
    if self.mode == "pmap":
      return jax.tree.map(lambda x: x.addressable_data(0)[0], tree)
    return tree

  def abstract_state(self, state):
    """What a checkpoint is restored into: replicated over this run's mesh, whatever the saving run used."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=self.replicated), state)

  def batch(self, images: jax.Array, labels: jax.Array, indices: np.ndarray) -> dict[str, jax.Array]:
    """The global batch of example `indices` [n_critic, B] in the compiled step's layout."""
    if self.mode == "pmap":  # [n_critic, B] -> [devices, n_critic, B / devices]
      indices = indices.reshape(indices.shape[0], self.num_devices, -1).transpose(1, 0, 2)
      return self._gather(images, labels, self.global_array(np.ascontiguousarray(indices), self.stacked))
    return self._gather(images, labels, self.global_array(indices, self.batch_sharding))


def _gather(images: jax.Array, labels: jax.Array, indices: jax.Array) -> dict[str, jax.Array]:
  """Each device gathers the examples of its own shard of `indices` from its copy of the dataset."""
  return {"image": images[indices], "label": labels[indices]}
