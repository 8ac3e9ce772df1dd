import functools
import http.server
import os
import re
import shutil
import threading

import jax
import numpy as np
import pytest
from conftest import SHARED_MNIST_IDX, write_idx

from configs import tiny
from ganjax.data import mnist, mnist_builder
from ganjax.errors import DataError


def test_an_epoch_is_a_full_permutation_and_batches_never_repeat_an_image():
  shuffler = mnist.EpochShuffler(jax.random.key(0), 60_000, 256)
  assert shuffler.batches_per_epoch == 234
  for epoch in (0, 1):
    np.testing.assert_array_equal(np.sort(shuffler.permutation(epoch)), np.arange(60_000))
    batches = shuffler.indices(epoch * 234, 234)
    assert batches.shape == (234, 256)
    assert len(np.unique(batches)) == 234 * 256  # no repeats; the 96 left over are dropped
  assert not np.array_equal(shuffler.permutation(0), shuffler.permutation(1))  # fresh order each epoch


def test_batches_straddling_an_epoch_boundary_come_from_both_epochs():
  shuffler = mnist.EpochShuffler(jax.random.key(0), 1000, 100)
  both = shuffler.indices(9, 2)
  np.testing.assert_array_equal(both[0], shuffler.permutation(0)[900:1000])
  np.testing.assert_array_equal(both[1], shuffler.permutation(1)[:100])


def test_the_order_depends_only_on_key_and_batch_number():
  a = mnist.EpochShuffler(jax.random.key(3), 500, 50).indices(17, 5)
  fresh = mnist.EpochShuffler(jax.random.key(3), 500, 50)
  np.testing.assert_array_equal(a, fresh.indices(17, 5))  # no hidden state: a resumed run sees the same
  assert not np.array_equal(a, mnist.EpochShuffler(jax.random.key(4), 500, 50).indices(17, 5))


def test_a_batch_larger_than_the_data_is_an_error():
  with pytest.raises(DataError, match="batch_size=300 is larger than the 200 training examples"):
    mnist.EpochShuffler(jax.random.key(0), 200, 300)


def test_load_split_gives_uint8_images_and_all_labels(tiny_config):
  tiny_config.train_subset = 0
  images, labels = mnist.load_split(tiny_config, "train")
  assert images.dtype == np.uint8 and images.shape[1:] == (28, 28, 1) and len(images) == len(labels)
  assert set(np.unique(labels)) == set(range(10))
  if len(images) == 60_000:  # the real MNIST
    shuffler = mnist.EpochShuffler(jax.random.key(0), len(images), 256)
    epoch = shuffler.indices(0, shuffler.batches_per_epoch).ravel()
    assert len(np.unique(epoch)) == len(epoch) == 59_904
    assert images.mean() == pytest.approx(33.3, abs=0.1)  # MNIST's well-known mean pixel value


def test_train_subset_takes_the_first_images(tiny_config):
  tiny_config.train_subset = 0
  all_images, _ = mnist.load_split(tiny_config, "train")
  tiny_config.train_subset = 100
  images, labels = mnist.load_split(tiny_config, "train")
  assert len(images) == len(labels) == 100
  np.testing.assert_array_equal(images, all_images[:100])


def test_no_data_and_no_downloads_fails_fast_naming_the_data_dir_and_the_fix(tmp_path):
  config = tiny.get_config()
  config.data_dir, config.download = str(tmp_path / "empty"), False
  with pytest.raises(DataError, match=r"MNIST is not prepared in data dir '.*empty'.*Fix: run once with internet"):
    mnist.load_split(config)


def test_no_network_fails_fast_with_the_same_message(tmp_path):
  config = tiny.get_config()
  config.data_dir, config.mnist_url = str(tmp_path / "empty"), "http://127.0.0.1:9/"  # nothing listens there
  with pytest.raises(DataError, match=r"download from http://127.0.0.1:9/ failed.*Fix:"):
    mnist.load_split(config)


def test_data_dir_comes_from_config_then_environment(monkeypatch):
  config = tiny.get_config()
  monkeypatch.setenv("TFDS_DATA_DIR", "/from/env")
  assert mnist.resolve_data_dir(config) == "/from/env"
  config.data_dir = "/from/config"
  assert mnist.resolve_data_dir(config) == "/from/config"


@pytest.fixture
def served_directory():
  """Serve a directory over HTTP on loopback, as a stand-in for the MNIST mirror."""
  servers = []

  def serve(directory):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    servers.append(server)
    return f"http://127.0.0.1:{server.server_address[1]}/"

  yield serve
  for server in servers:
    server.shutdown()


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(SHARED_MNIST_IDX), reason="needs the MNIST IDX files in ../shared/mnist")
def test_download_and_tensorflow_free_preparation_give_tfds_mnist(tmp_path, served_directory, mnist_data_dir):
  config = tiny.get_config()
  config.data_dir, config.mnist_url = str(tmp_path / "tfds"), served_directory(SHARED_MNIST_IDX)
  config.train_subset = 0
  images, labels = mnist.load_split(config, "test")
  assert images.shape == (10_000, 28, 28, 1)
  assert mnist.is_prepared(config.data_dir)
  config.data_dir = mnist_data_dir
  if len(mnist.load_split(config, "train")[0]) == 60_000:  # the official prepared copy is there: compare
    official_images, official_labels = mnist.load_split(config, "test")
    np.testing.assert_array_equal(images, official_images)  # same examples in the same order
    np.testing.assert_array_equal(labels, official_labels)


def test_a_corrupt_download_is_rejected_and_removed(tmp_path, served_directory):
  mirror = tmp_path / "mirror"
  mirror.mkdir()
  for name in mnist_builder.FILES.values():
    write_idx(str(mirror / name), np.zeros((3, 28, 28) if "images" in name else (3,), np.uint8))
  config = tiny.get_config()
  config.data_dir, config.mnist_url = str(tmp_path / "tfds"), served_directory(mirror)
  with pytest.raises(DataError, match="is not the genuine MNIST file"):
    mnist.load_split(config)
  assert not os.listdir(tmp_path / "tfds" / "downloads" / "mnist_idx")  # nothing broken left behind
  shutil.rmtree(mirror)


def test_a_truncated_prepared_file_is_one_line_naming_it_and_the_fix(tmp_path, mnist_data_dir):
  source = os.path.join(mnist_data_dir, "mnist", mnist.DATASET_VERSION)
  prepared = tmp_path / "tfds" / "mnist" / mnist.DATASET_VERSION
  prepared.mkdir(parents=True)
  for name in os.listdir(source):
    shutil.copyfile(os.path.join(source, name), prepared / name)  # copyfile: writable, whatever the source's mode
  (train_file,) = prepared.glob("mnist-train.array_record*")
  with open(train_file, "r+b") as f:
    f.truncate(os.path.getsize(train_file) // 2)  # a copy cut short
  config = tiny.get_config()
  config.data_dir, config.download = str(tmp_path / "tfds"), False
  message = (
    rf"the prepared MNIST file {re.escape(str(train_file))} cannot be read \(.+\): it is damaged.*Fix: delete "
    rf"{re.escape(str(prepared))} "
    r"and run again.*or point TFDS_DATA_DIR / --config.data_dir at a good copy"
  )
  with pytest.raises(DataError, match=message) as error:
    mnist.load_split(config)
  assert "\n" not in str(error.value)


def test_first_per_class_takes_the_first_examples_of_every_class_in_order():
  labels = np.array([3, 1, 3, 0, 1, 2, 0, 3, 2, 1])
  np.testing.assert_array_equal(mnist.first_per_class(labels, 2), [0, 1, 2, 3, 4, 5, 6, 8])
  with pytest.raises(DataError, match="examples_per_class=4, but class 0 has only 2"):
    mnist.first_per_class(labels, 4)
