"""Shared fixtures: tiny configs and an MNIST data dir (the real one when present, else a synthetic one).

Tests run on JAX's default devices (one CPU). A test marked `@pytest.mark.devices(n)` needs n devices: when
this process has fewer, it runs in a child pytest given n fake CPU devices (run_with_devices below).
"""

import gzip
import os
import struct
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # configs/ is imported as a package, as main.py does

from configs import tiny
from ganjax.data import mnist, mnist_builder

SHARED_MNIST_IDX = os.path.join(REPO, "..", "shared", "mnist")
DEVICE_REPORT_ENV = "GANJAX_TEST_DEVICE_REPORT"  # set in a child of run_with_devices: where to report outcomes
_DEVICE_RESULTS = pytest.StashKey[dict]()  # {n: {node id: outcome}} of the children run so far
_SEVERITY = {"passed": 0, "skipped": 1, "failed": 2}


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
