"""Shared fixtures: tiny configs, an MNIST data dir (the real one when present, else a synthetic one) and one
finished tiny run that the tests reading a run's outputs share (tiny_run).

Tests run on JAX's default devices (one CPU). A test marked `@pytest.mark.devices(n)` needs n devices: when
this process has fewer, it runs in a child pytest given n fake CPU devices (run_with_devices below).
"""

import contextlib
import dataclasses
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # configs/ is imported as a package, as main.py does

from configs import tiny
from ganjax import runtime
from ganjax.data import mnist, mnist_builder

SHARED_MNIST_IDX = os.path.join(REPO, "..", "shared", "mnist")
DEVICE_REPORT_ENV = "GANJAX_TEST_DEVICE_REPORT"  # set in a child of run_with_devices: where to report outcomes
_DEVICE_RESULTS = pytest.StashKey[dict]()  # {n: {node id: outcome}} of the children run so far
_SEVERITY = {"passed": 0, "skipped": 1, "failed": 2}


def _devices_needed(item) -> int | None:
  marker = item.get_closest_marker("devices")
  return marker.args[0] if marker else None


def run_with_devices(node_ids: list[str], num_devices: int) -> tuple[dict[str, tuple[str, str]], str]:
  """Run the tests `node_ids` in one child pytest with `num_devices` fake CPU devices.

  Returns ({node id: (outcome, message)}, the tail of the child's output). The child reports each test's
  worst phase (setup, call, teardown) through DEVICE_REPORT_ENV (pytest_runtest_logreport below).
  """
  with tempfile.TemporaryDirectory() as tmp:
    report = os.path.join(tmp, "report.jsonl")
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={num_devices}".strip()
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu", DEVICE_REPORT_ENV: report}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *node_ids]
    child = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    outcomes = {}
    if os.path.exists(report):
      with open(report) as f:
        for line in f:
          entry = json.loads(line)
          previous = outcomes.get(entry["nodeid"], ("passed", ""))
          if _SEVERITY[entry["outcome"]] > _SEVERITY[previous[0]]:
            outcomes[entry["nodeid"]] = (entry["outcome"], entry["message"])
          else:
            outcomes.setdefault(entry["nodeid"], previous)
  return outcomes, (child.stdout + child.stderr)[-3000:]


TEST_CACHE_MAX_BYTES = 2 << 30  # past this the test compilation cache is emptied at the start of a session


def pytest_configure(config):
  config.stash[_DEVICE_RESULTS] = {}
  # Compiled programs persist across sessions in a cache of the tests' own (not a run's ~/.cache/ganjax/xla),
  # shared by the tests, the scripts they start (main.py, experiments/*.py) and a child of run_with_devices.
  # Every program is kept, op-by-op ones included: a rerun of the fast loop then compiles only what changed
  # (JAX keys entries by program, XLA flags and versions). GANJAX_COMPILATION_CACHE=<dir> moves it, =0 turns it off.
  if runtime.CACHE_ENV not in os.environ:
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    os.environ[runtime.CACHE_ENV] = os.path.join(cache_home, "ganjax", "tests_xla")
  path = runtime.configure_compilation_cache()
  if path:
    import jax  # noqa: PLC0415  (XLA_FLAGS are final: a child of run_with_devices is started with its own)

    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    _empty_if_over(path, TEST_CACHE_MAX_BYTES)


def _empty_if_over(path: str, max_bytes: int) -> None:
  """Remove every file in `path` when together they hold more than max_bytes."""
  with contextlib.suppress(OSError):  # another session may be emptying it at the same time
    files = [entry for entry in os.scandir(path) if entry.is_file()]
    if sum(entry.stat().st_size for entry in files) > max_bytes:
      for entry in files:
        with contextlib.suppress(OSError):
          os.remove(entry.path)


def pytest_runtest_logreport(report):
  """In a child of run_with_devices: record each phase's outcome for the parent."""
  path = os.environ.get(DEVICE_REPORT_ENV)
  if path:
    message = report.longreprtext[-3000:] if report.failed else str(report.longrepr[-1]) if report.skipped else ""
    with open(path, "a") as f:
      f.write(json.dumps({"nodeid": report.nodeid, "outcome": report.outcome, "message": message}) + "\n")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
  """A test that needs more devices than this process has takes its outcome from a child with enough: one
  child per device count, started by the first such test, runs every selected test of that count."""
  needed = _devices_needed(pyfuncitem)
  if needed is None or os.environ.get(DEVICE_REPORT_ENV):
    return None
  import jax  # noqa: PLC0415  (after XLA_FLAGS are final)

  if jax.device_count() >= needed:
    return None
  results = pyfuncitem.config.stash[_DEVICE_RESULTS]
  if needed not in results:
    node_ids = [item.nodeid for item in pyfuncitem.session.items if _devices_needed(item) == needed]
    results[needed] = run_with_devices(node_ids, needed)
  outcomes, tail = results[needed]
  outcome, message = outcomes.get(pyfuncitem.nodeid, ("failed", f"the {needed}-device child did not run it:\n{tail}"))
  if outcome == "skipped":
    pytest.skip(message)
  if outcome == "failed":
    pytest.fail(f"in a child with {needed} fake CPU devices:\n{message}", pytrace=False)
  return True


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


@pytest.fixture(scope="session")
def real_mnist_data_dir(mnist_data_dir) -> str:
  """mnist_data_dir where it is the real MNIST; a test that needs real digits (a critic or CNN that reads them,
  a few thousand test images) is skipped elsewhere."""
  if mnist_data_dir != os.environ.get("TFDS_DATA_DIR"):
    pytest.skip("real MNIST is not prepared in $TFDS_DATA_DIR")
  return mnist_data_dir


@pytest.fixture
def tiny_config(mnist_data_dir):
  config = tiny.get_config()
  config.data_dir = mnist_data_dir
  config.download = False
  return config


def tiny_run_config(data_dir: str):
  """configs/tiny.py conditioned on the digit, with an EMA generator, evaluated on 100 samples after epoch 1 and
  at the end: 2 epochs of 8 steps, checkpoints 12 and 16 kept."""
  config = tiny.get_config()
  config.data_dir, config.download = data_dir, False
  config.conditioning, config.ema_decay = "digit", 0.9
  config.eval_every_epochs, config.eval_at_end, config.eval_num_samples = 1, True, 100
  return config


@dataclasses.dataclass(frozen=True)
class TinyRun:
  workdir: str
  state: object  # the TrainState train_and_evaluate returned
  config: object  # tiny_run_config(...), to rerun or resume a copy of the workdir


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, mnist_data_dir) -> TinyRun:
  """One finished tiny run (tiny_run_config), trained once per session for the tests that only read a run.

  Read-only: a test that reruns, resumes, evaluates into or corrupts it works on a shutil.copytree copy.
  """
  from ganjax import train  # noqa: PLC0415  (JAX only once XLA_FLAGS are final)

  config = tiny_run_config(mnist_data_dir)
  workdir = str(tmp_path_factory.mktemp("tiny_run") / "run")
  state = train.train_and_evaluate(config.copy_and_resolve_references(), workdir)
  return TinyRun(workdir, state, config)


def tiny_ssl_config(data_dir: str):
  """configs/ssl_gan.py shrunk to seconds: 200 training images, 2 labels per digit, a (16, 8) critic and an (8,)
  generator, batches of 20: 1 epoch of 10 steps, checkpoints every 5."""
  from configs import ssl_gan  # noqa: PLC0415

  config = ssl_gan.get_config()
  config.data_dir, config.download, config.train_subset, config.num_epochs = data_dir, False, 200, 1
  config.ssl_critic_features, config.ssl_generator_features, config.labels_per_class = (16, 8), (8,), 2
  config.batch_size, config.labelled_batch_size, config.checkpoint_every_steps = 20, 20, 5
  config.sample_epochs, config.eval_every_epochs = (), 0
  return config


@pytest.fixture(scope="session")
def tiny_ssl_run(tmp_path_factory, mnist_data_dir) -> TinyRun:
  """One finished tiny semi_supervised run (tiny_ssl_config), trained once per session; read-only, as tiny_run."""
  from ganjax import train  # noqa: PLC0415  (JAX only once XLA_FLAGS are final)

  config = tiny_ssl_config(mnist_data_dir)
  workdir = str(tmp_path_factory.mktemp("tiny_ssl_run") / "run")
  state = train.train_and_evaluate(config.copy_and_resolve_references(), workdir)
  return TinyRun(workdir, state, config)
