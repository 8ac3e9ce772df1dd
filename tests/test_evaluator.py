"""The shipped evaluator: its weights load, match their recorded hash and are accurate; build and load errors."""

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import REPO

from ganjax.data import mnist
from ganjax.eval import classifiers, evaluator
from ganjax.eval.evaluator import EvaluatorError

TINY_RECIPE = dataclasses.replace(classifiers.EVALUATOR_RECIPE, num_steps=3, batch_size=8)


@pytest.fixture
def asset_copy(tmp_path):
  """A private copy of the shipped assets to damage."""
  for name in (evaluator.WEIGHTS_FILE, evaluator.INFO_FILE):
    shutil.copy(os.path.join(evaluator.ASSET_DIR, name), tmp_path / name)
  return tmp_path


def test_shipped_weights_match_their_recorded_hash():
  with open(os.path.join(evaluator.ASSET_DIR, evaluator.INFO_FILE)) as f:
    info = json.load(f)
  with open(evaluator.DEFAULT_PATH, "rb") as f:
    assert hashlib.sha256(f.read()).hexdigest() == info["sha256"]
  loaded = evaluator.load()
  assert loaded.sha256 == info["sha256"]
  assert info["test_accuracy"] >= evaluator.MIN_TEST_ACCURACY
  assert info["recipe"] == classifiers.EVALUATOR_RECIPE.to_dict()  # the shipped weights are the recipe's
  assert info["num_train_examples"] == 60_000


def test_shipped_evaluator_classifies_the_mnist_test_split(real_mnist_data_dir, tiny_config):
  images, labels = mnist.load_split(tiny_config, "test")
  loaded = evaluator.load()
  logits = loaded.logits(images)
  assert logits.shape == (10_000, 10)
  assert np.mean(logits.argmax(-1) == labels) >= evaluator.MIN_TEST_ACCURACY
  probabilities = loaded.probabilities(images[:50])
  np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
  np.testing.assert_array_equal(probabilities.argmax(-1), logits[:50].argmax(-1))
  assert loaded.features(images[:50]).shape == (50, 128)


def test_corrupt_weights_fail_with_both_hashes(asset_copy):
  path = asset_copy / evaluator.WEIGHTS_FILE
  blob = bytearray(path.read_bytes())
  blob[len(blob) // 2] ^= 0xFF
  path.write_bytes(bytes(blob))
  expected = json.loads((asset_copy / evaluator.INFO_FILE).read_text())["sha256"]
  with pytest.raises(EvaluatorError) as error:
    evaluator.load(str(path))
  message = str(error.value)
  assert str(path) in message and expected in message and hashlib.sha256(blob).hexdigest() in message


@pytest.mark.parametrize("missing", [evaluator.WEIGHTS_FILE, evaluator.INFO_FILE])
def test_missing_asset_says_how_to_rebuild(asset_copy, missing):
  os.remove(asset_copy / missing)
  with pytest.raises(EvaluatorError, match=rf"{missing} is missing; rebuild .* python build_evaluator.py"):
    evaluator.load(str(asset_copy / evaluator.WEIGHTS_FILE))


@pytest.mark.slow
def test_train_and_save_writes_weights_that_load_back(tmp_path, tiny_config):
  out_dir = tmp_path / "assets"
  info = evaluator.train_and_save(tiny_config, str(out_dir), seed=3, recipe=TINY_RECIPE, min_accuracy=0.0)
  assert sorted(os.listdir(out_dir)) == [evaluator.INFO_FILE, evaluator.WEIGHTS_FILE]  # no temp files left
  assert json.loads((out_dir / evaluator.INFO_FILE).read_text()) == info
  assert info["seed"] == 3 and info["recipe"]["num_steps"] == 3 and info["num_train_examples"] == 128
  loaded = evaluator.load(str(out_dir / evaluator.WEIGHTS_FILE))
  assert loaded.sha256 == info["sha256"]
  images, labels = mnist.load_split(tiny_config, "test")
  expected = classifiers.train_classifier(TINY_RECIPE, *mnist.load_split(tiny_config, "train"), jax.random.key(3))
  assert classifiers.accuracy(loaded.model, expected, images, labels) == info["test_accuracy"]


def test_train_and_save_below_the_accuracy_bar_writes_nothing(tmp_path, tiny_config):
  with pytest.raises(EvaluatorError, match="below the required"):
    evaluator.train_and_save(tiny_config, str(tmp_path), recipe=TINY_RECIPE, min_accuracy=1.01)
  assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_build_script_rejects_an_unusable_out_dir_at_once(tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("")
  command = [sys.executable, "build_evaluator.py", f"--out_dir={blocker}/assets"]
  result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode != 0
  assert result.stderr.strip().splitlines()[-1].startswith(f"error: cannot create output directory {blocker}/assets")
  result = subprocess.run(
    [*command[:2], "--seed=abc"], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
  )
  assert result.returncode != 0 and "error: flag --seed=abc" in result.stderr
