"""Data parallelism: the same maths on 1, 2, 4 and 8 (fake CPU) devices, with jit and with pmap.

The tests marked devices(8) run in a child pytest with 8 fake CPU devices (tests/conftest.py) unless this
process already has them (XLA_FLAGS=--xla_force_host_platform_device_count=8).
"""

import os
import socket
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
import pytest
from conftest import REPO

from configs import tiny
from ganjax import config as config_lib
from ganjax import example_draws, losses, parallel, steps, train
from ganjax.data import mnist
from ganjax.errors import ConfigError

NUM_STEPS = 3


def config_for(loss: str, mode: str, num_devices: int, num_clusters: int = 0, **overrides):
  config = tiny.get_config()
  config.update(overrides)
  config.loss, config.parallel, config.num_devices = loss, mode, num_devices
  config.conditioning, config.num_clusters = ("clusters" if num_clusters else "none"), num_clusters
  config.num_critic_steps = 1 if loss in ("minimax", "non_saturating") else 2
  return config


def train_steps(loss: str, mode: str, num_devices: int, num_clusters: int = 0, **overrides):
  """NUM_STEPS updates on a synthetic dataset; returns the state on the host and the last metrics."""
  config = config_for(loss, mode, num_devices, num_clusters, **overrides)
  devices = parallel.DataParallel(config)
  setup = devices.make_setup(config)
  state = steps.create_state(setup, jax.random.key(0))
  rng = np.random.default_rng(0)
  labels = np.zeros(64, np.int32)
  if num_clusters:  # uneven clusters, drawn by uneven shares
    labels = rng.integers(0, num_clusters, 64).astype(np.int32)
    state = state.replace(cluster_shares=np.bincount(labels, minlength=num_clusters).astype(np.float32) / 64)
  state = devices.put_state(state)
  train_step = devices.compile_train_step(setup)
  images, labels = devices.put_dataset(rng.integers(0, 256, (64, 28, 28, 1), np.uint8), labels)
  shuffler = mnist.EpochShuffler(jax.random.key(1), 64, config.batch_size)
  n = config.num_critic_steps
  for step in range(NUM_STEPS):
    state, metrics = train_step(state, devices.batch(images, labels, shuffler.indices(step * n, n)), jax.random.key(2))
  return jax.device_get(devices.unreplicate(state)), jax.device_get(metrics)


_single_device = {}


def single_device_result(loss):
  if loss not in _single_device:
    _single_device[loss] = train_steps(loss, "jit", 1)
  return _single_device[loss]


def assert_trees_close(a, b, rtol=1e-4, atol=1e-5):
  """Equal up to the float rounding of cross-device sums (which Adam and the GP's double backward amplify)."""
  jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol), a, b)


@pytest.mark.slow
@pytest.mark.devices(8)
@pytest.mark.parametrize("num_devices", [2, 4, 8])
@pytest.mark.parametrize("mode", parallel.MODES)
@pytest.mark.parametrize("loss", list(losses.OBJECTIVES))
def test_training_does_not_depend_on_the_device_count(loss, mode, num_devices):
  expected_state, expected_metrics = single_device_result(loss)
  state, metrics = train_steps(loss, mode, num_devices)
  assert int(state.step) == NUM_STEPS
  # Same parameters, BatchNorm statistics (synchronised across devices) and optimiser states, up to the
  # float rounding of cross-device sums.
  assert_trees_close(state, expected_state)
  assert_trees_close(state.generator_batch_stats, expected_state.generator_batch_stats, rtol=1e-5, atol=1e-6)
  for name, value in expected_metrics.items():
    np.testing.assert_allclose(np.mean(metrics[name]), value, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
@pytest.mark.devices(8)
@pytest.mark.parametrize("mode", parallel.MODES)
def test_self_conditioned_training_does_not_depend_on_the_device_count(mode):
  # What must be equal is exactly equal: the cluster shares here, the labels drawn from them in the test below.
  # The rest differs by the order of float32 sums only, which the GP's double backward and the critic's kinks
  # can amplify to ~1e-4 of a gradient on another CPU; Adam would turn that into a whole step for a parameter
  # whose gradient is near zero, SGD moves each parameter by lr x its gradient: by <= lr * NUM_STEPS * 1e-4 *
  # |g| (|g| <= 1 here), plus a few float32 ulps (rtol). A label drawn differently moves it by ~lr * |g|.
  sgd = ml_collections.ConfigDict({"name": "sgd", "learning_rate": 0.01})
  overrides = {"generator_optimizer": sgd, "critic_optimizer": sgd, "num_clusters": 5}
  expected_state, expected_metrics = train_steps("wgan_gp", "jit", 1, **overrides)
  state, metrics = train_steps("wgan_gp", mode, 8, **overrides)
  assert_trees_close(state, expected_state, rtol=1e-6, atol=sgd.learning_rate * NUM_STEPS * 1e-4)
  np.testing.assert_array_equal(state.cluster_shares, expected_state.cluster_shares)
  for name, value in expected_metrics.items():
    np.testing.assert_allclose(np.mean(metrics[name]), value, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
@pytest.mark.devices(8)
@pytest.mark.parametrize("mode", parallel.MODES)
def test_critic_augmentation_does_not_depend_on_the_device_count(mode):
  # With SGD: the augmentation leaves some of G's gradients near zero, where Adam's normalisation would blow
  # the cross-device rounding up to ~1e-4; SGD keeps it at rounding, so a draw that moved would show.
  sgd = ml_collections.ConfigDict({"name": "sgd", "learning_rate": 0.01})
  overrides = {"critic_augment": "translation,cutout", "generator_optimizer": sgd, "critic_optimizer": sgd}
  expected_state, expected_metrics = train_steps("wgan_gp", "jit", 1, **overrides)
  state, metrics = train_steps("wgan_gp", mode, 8, **overrides)
  assert_trees_close(state, expected_state, rtol=1e-5, atol=1e-7)
  for name, value in expected_metrics.items():
    np.testing.assert_allclose(np.mean(metrics[name]), value, rtol=1e-5, atol=1e-7)
  plain_state, _ = train_steps("wgan_gp", "jit", 1, generator_optimizer=sgd, critic_optimizer=sgd)
  assert not np.allclose(plain_state.critic_params["Conv_0"]["kernel"], state.critic_params["Conv_0"]["kernel"])


@pytest.mark.devices(8)
def test_per_example_noise_is_the_same_on_any_number_of_devices():
  expected = example_draws.draw_noise(
    parallel.DataParallel(config_for("wgan", "jit", 1)).make_setup(tiny.get_config()), jax.random.key(5), 16
  )
  for mode in parallel.MODES:
    devices = parallel.DataParallel(config_for("wgan", mode, 8))
    setup = devices.make_setup(tiny.get_config())
    if mode == "pmap":
      draw = lambda _, setup=setup: example_draws.draw_noise(setup, jax.random.key(5), 2)  # noqa: E731
      noise = jax.pmap(draw, parallel.DATA_AXIS)(np.arange(8))
      noise = noise.reshape(16, -1)
    else:
      noise = jax.jit(lambda setup=setup: example_draws.draw_noise(setup, jax.random.key(5), 16))()
    np.testing.assert_array_equal(noise, expected)


@pytest.mark.devices(8)
def test_self_conditioned_labels_are_the_same_on_any_number_of_devices():
  shares = jax.numpy.asarray([0.1, 0.05, 0.5, 0.25, 0.1])
  draw = example_draws.draw_labels

  def setup_for(mode, num_devices):
    return parallel.DataParallel(config_for("wgan", mode, num_devices, 5)).make_setup(config_for("wgan", mode, 1, 5))

  expected = jax.jit(lambda: draw(setup_for("jit", 1), jax.random.key(5), 16, shares))()
  for mode in parallel.MODES:
    setup = setup_for(mode, 8)
    if mode == "pmap":
      labels = jax.pmap(lambda _, setup=setup: draw(setup, jax.random.key(5), 2, shares), parallel.DATA_AXIS)(
        np.arange(8)
      )
    else:
      labels = jax.jit(lambda setup=setup: draw(setup, jax.random.key(5), 16, shares))()
    np.testing.assert_array_equal(np.asarray(labels).reshape(16), expected)
  assert len(set(np.asarray(expected).tolist())) > 2  # the shares were drawn from


@pytest.mark.devices(8)
def test_a_batch_not_divisible_by_the_device_count_is_refused():
  config = config_for("wgan", "jit", 3)
  with pytest.raises(ConfigError, match="config.batch_size=16 is not divisible by the 3 devices; use a multiple of 3"):
    parallel.DataParallel(config)


@pytest.mark.devices(8)
def test_unknown_mode_and_too_many_devices_are_refused():
  with pytest.raises(ConfigError, match="config.parallel='shard' is not allowed; allowed: jit, pmap"):
    config_lib.validate(config_for("wgan", "shard", 1))
  with pytest.raises(ConfigError, match="config.num_devices=16 but only 8 devices exist"):
    parallel.DataParallel(config_for("wgan", "jit", 16))


@pytest.mark.slow
@pytest.mark.devices(8)
@pytest.mark.parametrize("first, second", [((8, "jit"), (1, "jit")), ((1, "jit"), (8, "pmap"))])
def test_a_run_saved_on_some_devices_resumes_on_others(tmp_path, tiny_config, first, second):
  tiny_config.loss, tiny_config.num_critic_steps = "wgan_gp", 2
  tiny_config.num_devices, tiny_config.parallel = 1, "jit"
  straight = train.train_and_evaluate(tiny_config, str(tmp_path / "straight"))
  tiny_config.num_train_steps = 4
  tiny_config.num_devices, tiny_config.parallel = first
  train.train_and_evaluate(tiny_config, str(tmp_path / "moved"))
  tiny_config.num_train_steps = -1
  tiny_config.num_devices, tiny_config.parallel = second
  resumed = train.train_and_evaluate(tiny_config, str(tmp_path / "moved"))
  assert int(resumed.step) == 8
  # Parameters and BatchNorm statistics (Adam's moments of the critic's biases, sums of many terms of both
  # signs, keep only ~1e-3 relative agreement across reduction orders; they are not compared).
  resumed, straight = jax.device_get(resumed), jax.device_get(straight)
  for field in ("generator_params", "generator_batch_stats", "critic_params"):
    assert_trees_close(getattr(resumed, field), getattr(straight, field))


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def restore_state(workdir, step, config):
  """A checkpoint's state on this process's first device, whatever topology saved it."""
  state = steps.create_state(steps.make_setup(config), jax.random.key(0))
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), state)
  with ocp.CheckpointManager(os.path.join(workdir, "checkpoints")) as manager:
    return manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))["state"]


@pytest.mark.slow
def test_two_processes_reach_the_parameters_of_one(tmp_path, mnist_data_dir):
  """Two CPU processes on localhost (gloo collectives), one device each, vs one process with two devices."""
  common = [
    "main.py",
    "--config=configs/tiny.py",
    f"--config.data_dir={mnist_data_dir}",
    "--config.loss=wgan_gp",
    "--config.num_critic_steps=2",
  ]
  one_device_env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
  address = f"127.0.0.1:{free_port()}"
  workers = [
    subprocess.Popen(
      [
        sys.executable,
        *common,
        f"--workdir={tmp_path / 'two'}",
        "--config.distributed=True",
        f"--config.coordinator_address={address}",
        "--config.num_processes=2",
        f"--config.process_id={i}",
      ],
      cwd=REPO,
      env=one_device_env,
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
    )
    for i in range(2)
  ]
  outputs = [w.communicate(timeout=300)[0] for w in workers]
  assert [w.returncode for w in workers] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
  assert "2 process(es)" in outputs[0]
  assert "step 8/8" in outputs[0] and "step 8/8" not in outputs[1]  # only process 0 logs
  two_devices_env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
  single = subprocess.run(
    [sys.executable, *common, f"--workdir={tmp_path / 'one'}"],
    cwd=REPO,
    env=two_devices_env,
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )
  assert single.returncode == 0, single.stderr[-2000:]
  two, one = (
    restore_state(tmp_path / "two", 8, tiny.get_config()),
    restore_state(tmp_path / "one", 8, tiny.get_config()),
  )
  for field in ("generator_params", "generator_batch_stats", "critic_params"):
    assert_trees_close(getattr(two, field), getattr(one, field))
