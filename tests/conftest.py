"""Shared fixtures: tiny configs and an MNIST data dir (the real one when present, else a synthetic one)."""

import functools
import gzip
import importlib.util
import os
import struct
import sys

# Eight fake CPU devices for the data-parallel tests (set before JAX starts; subprocesses inherit it).
# The other tests use them too: the default config trains on every device.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # configs/ is imported as a package, as main.py does

from configs import tiny  # noqa: E402
from ganjax.data import mnist, mnist_builder

SHARED_MNIST_IDX = os.path.join(REPO, "..", "shared", "mnist")


@functools.cache
def load_experiment(name: str):
  """experiments/<name>.py as a module (experiments/ is a folder of scripts, not a package).

  The scripts define absl flags at import, several with the same names (--out_dir, --seed); the flags a
  script adds are unregistered again so that the next one can be loaded. Tests call the scripts' functions
  with explicit arguments, or run them in a subprocess.
  """
  from absl import flags

  before = set(flags.FLAGS)
  spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "experiments", f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  for flag in set(flags.FLAGS) - before:
    delattr(flags.FLAGS, flag)
  return module


def write_idx(path: str, array: np.ndarray) -> None:
  header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
  with gzip.open(path, "wb") as f:
    f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="session")
def mnist_data_dir(tmp_path_factory) -> str:
  """$TFDS_DATA_DIR if it holds prepared MNIST (as in CI), else a small synthetic MNIST prepared here."""
  real = os.environ.get("TFDS_DATA_DIR")
  if real and mnist.is_prepared(real):
    return real
  root = tmp_path_factory.mktemp("synthetic_mnist")
  rng = np.random.default_rng(0)
  for split, n in (("train", 1024), ("t10k", 128)):
    write_idx(str(root / f"{split}-images-idx3-ubyte.gz"), rng.integers(0, 256, (n, 28, 28)))
    write_idx(str(root / f"{split}-labels-idx1-ubyte.gz"), rng.integers(0, 10, (n,)))
  data_dir = str(root / "tfds")
  mnist_builder.Mnist(idx_dir=str(root), data_dir=data_dir).download_and_prepare(file_format="array_record")
  return data_dir


@pytest.fixture
def tiny_config(mnist_data_dir):
  config = tiny.get_config()
  config.data_dir = mnist_data_dir
  config.download = False
  return config
