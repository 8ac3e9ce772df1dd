"""Exported synthetic datasets: the .npz round trip, provenance, determinism, filters, labelling, CLI errors."""

import dataclasses
import math
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import REPO

from configs import tiny
from ganjax import conditioning, train
from ganjax.errors import ConfigError, DataError
from ganjax.eval import evaluator as evaluator_lib
from ganjax.synth import export, generation


def train_tiny(workdir: str, data_dir: str, conditioning: str) -> str:
  config = tiny.get_config()
  config.data_dir, config.download = data_dir, False
  config.conditioning, config.ema_decay = conditioning, 0.9
  train.train_and_evaluate(config, workdir)
  return workdir


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory, tiny_run) -> str:
  """This module's copy of the session's tiny conditional run with an EMA generator (16 steps)."""
  workdir = str(tmp_path_factory.mktemp("export") / "conditional")
  shutil.copytree(tiny_run.workdir, workdir)
  return workdir


@pytest.fixture(scope="module")
def unconditional_run(tmp_path_factory, mnist_data_dir) -> str:
  return train_tiny(str(tmp_path_factory.mktemp("export") / "unconditional"), mnist_data_dir, conditioning="none")


@pytest.fixture(scope="module")
def shipped_evaluator():
  return evaluator_lib.load()


@dataclasses.dataclass(frozen=True)
class HashEvaluator:
  """Stands in for the evaluator on an untrained generator (whose samples the real one puts in one class): its
  probabilities are a fixed pseudo-random function of the image's pixel sum, so every class turns up, scores
  rarely tie, and the labels can be checked."""

  sha256: str = "f" * 64
  only_class: int | None = None  # predict this class for every image instead

  def probabilities(self, images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    assert images.dtype == np.uint8 and images.shape[1:] == (28, 28, 1)
    sums = images.reshape(len(images), -1).sum(axis=1, dtype=np.float64)
    logits = 4.0 * np.sin(0.37 * sums[:, None] * np.arange(1, 11))
    if self.only_class is not None:
      logits = np.broadcast_to(np.where(np.arange(10) == self.only_class, 100.0, 0.0), logits.shape)
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (probabilities / probabilities.sum(axis=1, keepdims=True)).astype(np.float32)


def export_to(tmp_path, workdir, name="data.npz", evaluator=None, **options):
  path = str(tmp_path / name)
  export.export_dataset(workdir, path, export.ExportOptions(**options), evaluator=evaluator)
  return export.load_dataset(path)


def test_an_exported_dataset_loads_back_with_its_labels_and_provenance(conditional_run, tmp_path):
  images, labels, provenance = export_to(tmp_path, conditional_run, num_per_class=5, seed=3)
  assert images.dtype == np.uint8 and images.shape == (50, 28, 28, 1)
  assert labels.dtype == np.int32
  np.testing.assert_array_equal(np.bincount(labels, minlength=10), [5] * 10)
  assert provenance["workdir"] == conditional_run
  assert provenance["checkpoint_step"] == 16 and provenance["seed"] == 3 and provenance["num_per_class"] == 5
  assert provenance["use_ema"] is True and provenance["filter"] == "none"
  assert provenance["label_source"] == "conditioning" and provenance["evaluator_sha256"] is None
  assert provenance["num_images"] == 50 and provenance["config"]["conditioning"] == "digit"
  assert provenance["config"]["ema_decay"] == 0.9
  for c in range(10):
    assert os.path.getsize(tmp_path / f"data_digit{c}.png") > 0


def test_the_exported_images_are_the_generators_samples_for_their_labels(conditional_run, tmp_path):
  images, labels, _ = export_to(tmp_path, conditional_run, num_per_class=2, seed=4)
  run = generation.load_run(conditional_run)
  candidates = generation.generate(run.setup, run.state, jax.random.key(4), 20, conditioning.balanced_labels(20, 10))
  # No filter: each class keeps its first candidates, classes in order (0, 0, 1, 1, ...).
  np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 2))
  np.testing.assert_array_equal(images, candidates[np.argsort(conditioning.balanced_labels(20, 10), kind="stable")])


def test_the_same_seed_exports_the_same_dataset_and_another_seed_another(conditional_run, tmp_path):
  first = export_to(tmp_path, conditional_run, "a.npz", num_per_class=3, seed=0)
  again = export_to(tmp_path, conditional_run, "b.npz", num_per_class=3, seed=0)
  other = export_to(tmp_path, conditional_run, "c.npz", num_per_class=3, seed=1)
  for x, y in zip(first[:2], again[:2]):
    np.testing.assert_array_equal(x, y)
  np.testing.assert_array_equal(first[1], other[1])  # the labels are asked for, not drawn
  assert not np.array_equal(first[0], other[0])


def test_the_live_generator_is_used_and_recorded_when_ema_is_turned_off(conditional_run, tmp_path):
  ema_images, _, ema_provenance = export_to(tmp_path, conditional_run, "ema.npz", num_per_class=2)
  live_images, _, live_provenance = export_to(tmp_path, conditional_run, "live.npz", num_per_class=2, use_ema=False)
  assert ema_provenance["use_ema"] is True and live_provenance["use_ema"] is False
  assert not np.array_equal(ema_images, live_images)


def test_a_latent_scale_samples_with_that_noise_and_is_recorded(conditional_run, tmp_path):
  images, _, provenance = export_to(tmp_path, conditional_run, "wide.npz", num_per_class=2, latent_scale=1.5)
  run = generation.load_run(conditional_run).with_sampling(latent_scale=1.5)
  candidates = generation.generate(run.setup, run.state, jax.random.key(0), 20, conditioning.balanced_labels(20, 10))
  np.testing.assert_array_equal(images, candidates[np.argsort(conditioning.balanced_labels(20, 10), kind="stable")])
  assert provenance["latent_scale"] == 1.5 and provenance["config"]["sampling_latent_scale"] == 1.5
  default_images, _, default_provenance = export_to(tmp_path, conditional_run, "default.npz", num_per_class=2)
  assert default_provenance["config"]["sampling_latent_scale"] == 1.0 and not np.array_equal(images, default_images)


def test_select_keeps_the_highest_scoring_candidates_of_each_class_in_class_order():
  rng = np.random.default_rng(0)
  labels = rng.permutation(np.repeat(np.arange(10), 6))
  scores = rng.normal(size=60)
  keep = export.select(scores, labels, 4)
  assert keep.shape == (40,)
  np.testing.assert_array_equal(labels[keep], np.repeat(np.arange(10), 4))
  for c in range(10):
    dropped = np.setdiff1d(np.flatnonzero(labels == c), keep)
    assert scores[keep[labels[keep] == c]].min() > scores[dropped].max()


def test_select_without_scores_keeps_the_first_candidates_of_each_class():
  labels = np.tile(np.arange(10), 3)
  np.testing.assert_array_equal(
    export.select(np.zeros(30), labels, 2), np.stack([np.arange(10), np.arange(10) + 10], 1).ravel()
  )


def styles(num_styles: int, copies: int, digit: int) -> np.ndarray:
  """uint8 [num_styles * copies, 28, 28, 1]: each style a bar on its own row, its copies one pixel apart."""
  images = np.zeros((num_styles, copies, 28, 28, 1), np.uint8)
  for style in range(num_styles):
    images[style, :, 3 * style, :, 0] = 255
  images[:, :, 27, 27, 0] = np.arange(copies) + 10 * digit
  return images.reshape(-1, 28, 28, 1)


def test_select_diverse_keeps_one_image_of_each_style_of_each_class_in_class_order():
  # Each class: 3 styles, 5 near-copies each, style by style; keeping 3 of 15 must keep one of each style (the
  # first 3 would be copies of one style).
  candidates = np.concatenate([styles(3, 5, digit) for digit in range(10)])
  labels = np.repeat(np.arange(10), 15)
  keep = export.select_diverse(candidates, labels, 3, jax.random.key(0))
  np.testing.assert_array_equal(labels[keep], np.repeat(np.arange(10), 3))
  style_of = (candidates[keep, :9:3, :, 0].max(axis=2) == 255).argmax(axis=1)
  np.testing.assert_array_equal(style_of, np.tile([0, 1, 2], 10))
  np.testing.assert_array_equal(keep, np.sort(keep))  # draw order kept within each class
  np.testing.assert_array_equal(keep, export.select_diverse(candidates, labels, 3, jax.random.key(0)))


def test_select_diverse_never_keeps_a_candidate_twice_and_of_all_keeps_all():
  copies = styles(1, 40, 0)
  copies[:, 27, 27, 0] = 0  # 40 identical images, 4 of each class
  labels = np.repeat(np.arange(10), 4)
  keep = export.select_diverse(copies, labels, 3, jax.random.key(1))
  assert all(len(set(keep[labels[keep] == c])) == 3 for c in range(10))
  np.testing.assert_array_equal(export.select_diverse(copies, labels, 4, jax.random.key(1)), np.arange(40))


def test_the_diverse_filter_keeps_select_diverses_cover_of_the_drawn_candidates(conditional_run, tmp_path):
  images, labels, provenance = export_to(
    tmp_path, conditional_run, num_per_class=3, seed=2, filter="diverse", keep_fraction=0.5
  )
  assert provenance["filter"] == "diverse" and provenance["evaluator_sha256"] is None
  candidates, candidate_labels, _ = candidate_scores(generation.load_run(conditional_run), "critic", 2, 60, None)
  keep = export.select_diverse(candidates, candidate_labels, 3, export.cover_key(2))
  np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 3))
  np.testing.assert_array_equal(images, candidates[keep])


def candidate_scores(run, filter_name, seed, num_candidates, evaluator):
  """What the filter ranks by, for every candidate a conditional export of this seed draws."""
  labels = conditioning.balanced_labels(num_candidates, 10)
  candidates = generation.generate(run.setup, run.state, jax.random.key(seed), num_candidates, labels)
  if filter_name == "critic":
    return candidates, labels, export._critic_scores(run, candidates, labels)
  return candidates, labels, evaluator.probabilities(candidates)[np.arange(num_candidates), labels]


@pytest.mark.parametrize("filter_name", ["critic", "evaluator"])
def test_a_filter_keeps_the_requested_count_of_its_best_candidates(conditional_run, tmp_path, filter_name):
  evaluator = HashEvaluator() if filter_name == "evaluator" else None
  images, labels, provenance = export_to(
    tmp_path, conditional_run, num_per_class=3, seed=2, filter=filter_name, keep_fraction=0.5, evaluator=evaluator
  )
  assert provenance["filter"] == filter_name and provenance["keep_fraction"] == 0.5
  assert provenance["evaluator_sha256"] == ("f" * 64 if filter_name == "evaluator" else None)
  np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 3))
  # 6 candidates per class were drawn; the 3 kept of each class are those the filter scores highest.
  candidates, candidate_labels, scores = candidate_scores(
    generation.load_run(conditional_run), filter_name, 2, 60, evaluator
  )
  keep = export.select(scores, candidate_labels, 3)
  np.testing.assert_array_equal(images, candidates[keep])
  for c in range(10):
    members = np.flatnonzero(candidate_labels == c)
    assert scores[keep[labels == c]].min() >= scores[np.setdiff1d(members, keep)].max()


def test_the_evaluator_filter_loads_the_shipped_evaluator_and_records_its_hash(
  conditional_run, tmp_path, shipped_evaluator
):
  _, labels, provenance = export_to(tmp_path, conditional_run, num_per_class=1, filter="evaluator", keep_fraction=0.5)
  assert provenance["evaluator_sha256"] == shipped_evaluator.sha256
  assert provenance["label_source"] == "conditioning" and len(labels) == 10


@pytest.mark.slow
def test_an_unconditional_export_is_labelled_by_the_evaluator(unconditional_run, tmp_path):
  evaluator = HashEvaluator()
  images, labels, provenance = export_to(tmp_path, unconditional_run, num_per_class=4, evaluator=evaluator)
  assert provenance["label_source"] == "evaluator" and provenance["evaluator_sha256"] == evaluator.sha256
  assert provenance["config"]["conditioning"] == "none"
  np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 4))
  np.testing.assert_array_equal(evaluator.probabilities(images).argmax(-1), labels)


@pytest.mark.slow
def test_an_unconditional_export_without_ema_samples_the_live_generator(unconditional_run, tmp_path):
  evaluator = HashEvaluator()
  ema_images, _, _ = export_to(tmp_path, unconditional_run, "ema.npz", num_per_class=2, evaluator=evaluator)
  live_images, _, provenance = export_to(
    tmp_path, unconditional_run, "live.npz", num_per_class=2, use_ema=False, evaluator=evaluator
  )
  assert provenance["use_ema"] is False
  assert not np.array_equal(ema_images, live_images)


@pytest.mark.slow
def test_an_unconditional_generator_that_never_draws_a_digit_is_a_clear_error(unconditional_run, tmp_path):
  with pytest.raises(ConfigError, match=r"the generator rarely draws digit 0 \(0 of \d+ samples\).*num_per_class=2"):
    export_to(tmp_path, unconditional_run, num_per_class=2, evaluator=HashEvaluator(only_class=3))
  assert not os.path.exists(tmp_path / "data.npz")


@pytest.mark.parametrize(
  "options, message",
  [
    ({"num_per_class": 0}, "num_per_class=0; it must be >= 1"),
    ({"filter": "sharpest"}, "filter='sharpest'; allowed: none, evaluator, critic, diverse$"),
    ({"keep_fraction": 0.0}, r"keep_fraction=0.0; it must be in \(0, 1\]"),
    ({"keep_fraction": 1.5}, r"keep_fraction=1.5; it must be in \(0, 1\]"),
    ({"latent_scale": 0.0}, r"latent_scale=0.0; it must be > 0"),
  ],
)
def test_bad_export_options_are_one_line_errors(options, message):
  with pytest.raises(ConfigError, match=message):
    export.ExportOptions(**options).validate()


def test_keep_fraction_sets_how_many_candidates_a_filter_draws(conditional_run, tmp_path):
  run = generation.load_run(conditional_run)
  options = export.ExportOptions(num_per_class=3, filter="critic", keep_fraction=0.4)
  candidates, labels, _ = export._candidates(run, options, None)
  assert len(candidates) == len(labels) == 10 * math.ceil(3 / 0.4)


def run_export(*args):
  command = [sys.executable, "export.py", *args]
  return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


def assert_one_line_error(result, message):
  assert result.returncode != 0
  lines = result.stderr.strip().splitlines()
  assert lines[-1].startswith("error: ") and message in lines[-1], result.stderr[-2000:]
  assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_an_export_that_is_torn_or_not_an_export_is_one_line_naming_the_file(tmp_path):
  good = tmp_path / "good.npz"
  np.savez(good, images=np.zeros((2, 28, 28), np.uint8), labels=np.zeros(2, np.int32), provenance=np.array("{}"))
  assert export.load_dataset(str(good))[0].shape == (2, 28, 28, 1)
  torn, unlabelled = tmp_path / "torn.npz", tmp_path / "unlabelled.npz"
  torn.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
  np.savez(unlabelled, images=np.zeros((2, 28, 28), np.uint8))
  for path in (torn, unlabelled, tmp_path / "missing.npz"):
    with pytest.raises(DataError, match=f"^{path} does not read as an export of export.py .*; export it again$"):
      export.load_dataset(str(path))


def test_the_cli_with_a_workdir_that_is_not_a_run_fails_in_one_line(tmp_path):
  result = run_export(f"--workdir={tmp_path}", f"--out={tmp_path}/out.npz")
  assert_one_line_error(result, "is not a ganjax run directory")
  assert not os.path.exists(tmp_path / "out.npz")


@pytest.mark.slow
def test_the_cli_with_no_images_to_export_fails_in_one_line(conditional_run, tmp_path):
  result = run_export(f"--workdir={conditional_run}", f"--out={tmp_path}/out.npz", "--num_per_class=0")
  assert_one_line_error(result, "num_per_class=0; it must be >= 1")
  assert not os.path.exists(tmp_path / "out.npz")


@pytest.mark.slow
def test_the_cli_writes_the_dataset_it_reports(conditional_run, tmp_path):
  result = run_export(f"--workdir={conditional_run}", f"--out={tmp_path}/out.npz", "--num_per_class=2", "--seed=7")
  assert result.returncode == 0, result.stderr[-2000:]
  assert "wrote 20 images (2 per class, labels from conditioning, step 16, ema=True, filter=none)" in result.stdout
  images, _, provenance = export.load_dataset(str(tmp_path / "out.npz"))
  expected, _, _ = export_to(tmp_path, conditional_run, "in_process.npz", num_per_class=2, seed=7)
  # The CLI adds ganjax's XLA:CPU flags (ganjax/runtime.py), which may round a pixel the other way.
  np.testing.assert_allclose(images.astype(int), expected.astype(int), atol=1)
  assert provenance["seed"] == 7 and provenance["num_images"] == 20
  assert sorted(os.listdir(tmp_path))[:2] == ["in_process.npz", "in_process_digit0.png"]
  assert not os.path.exists(tmp_path / "out.npz.tmp.npz")  # written atomically


def leftover_temporaries(directory) -> list[str]:
  return [os.path.join(root, name) for root, _, names in os.walk(directory) for name in names if ".tmp" in name]


@pytest.mark.slow
@pytest.mark.parametrize(
  "out, message",
  [
    ("runs", "--out={tmp}/runs is a directory; give a file path ending in .npz"),
    ("runs.npz", "--out={tmp}/runs.npz is a directory; give a file path ending in .npz"),
    ("some_file.txt/x.npz", "is under {tmp}/some_file.txt, which is a file, not a directory"),
    ("data.json", "--out={tmp}/data.json does not end in .npz"),
  ],
)
def test_the_cli_with_an_out_it_cannot_write_fails_in_one_line_before_sampling(conditional_run, tmp_path, out, message):
  (tmp_path / "runs").mkdir()
  (tmp_path / "runs.npz").mkdir()
  (tmp_path / "some_file.txt").write_text("a file")
  result = run_export(f"--workdir={conditional_run}", f"--out={tmp_path}/{out}", "--num_per_class=2")
  assert_one_line_error(result, message.format(tmp=tmp_path))
  assert result.returncode == 1
  assert sorted(os.listdir(tmp_path)) == ["runs", "runs.npz", "some_file.txt"]
  assert not os.listdir(tmp_path / "runs") and not os.listdir(tmp_path / "runs.npz")
  assert not leftover_temporaries(tmp_path)


@pytest.mark.slow
def test_the_cli_checks_its_out_before_it_loads_the_run(tmp_path):
  (tmp_path / "runs").mkdir()
  # The workdir is no run either: the --out error coming first shows the check runs before the restore.
  result = run_export(f"--workdir={tmp_path}", f"--out={tmp_path}/runs")
  assert_one_line_error(result, f"--out={tmp_path}/runs is a directory")


@pytest.mark.slow
def test_the_cli_creates_the_missing_directories_of_its_out(conditional_run, tmp_path):
  out = tmp_path / "new" / "dir" / "data.npz"
  result = run_export(f"--workdir={conditional_run}", f"--out={out}", "--num_per_class=1")
  assert result.returncode == 0, result.stderr[-2000:]
  assert export.load_dataset(str(out))[0].shape == (10, 28, 28, 1)
  assert not leftover_temporaries(tmp_path)
