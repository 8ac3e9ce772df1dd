"""ganjax.few_labels: the labelled subset, self-training, the naming of a label-free GAN, and a few_labels run
(no unlabelled image's label reaches it; its provenance is recorded)."""

import dataclasses
import json
import os

import jax
import numpy as np
import pytest

from ganjax import config as config_lib
from ganjax import config_defaults, saved_run, train
from ganjax.data import mnist
from ganjax.eval import classifiers
from ganjax.errors import ConfigError, DataError, GenerationError, WorkdirError
from ganjax.data import labelled
from ganjax.few_labels import label_spreading, naming, self_training
from ganjax.synth import generation


def digits_dataset(n=600, seed=0):
  labels = np.random.default_rng(seed).permutation(np.arange(n) % 10).astype(np.int32)
  return labels


def test_the_labelled_subset_is_class_balanced_seeded_and_random():
  labels = digits_dataset()
  drawn = labelled.draw_labelled(labels, 7, label_seed=3)
  assert np.array_equal(np.bincount(labels[drawn], minlength=10), np.full(10, 7))
  assert np.array_equal(drawn, labelled.draw_labelled(labels, 7, label_seed=3))  # seeded
  assert not np.array_equal(drawn, labelled.draw_labelled(labels, 7, label_seed=4))
  assert not np.array_equal(drawn, mnist.first_per_class(labels, 7))  # not the first N of each class
  assert len(np.unique(drawn)) == 70 and np.all(np.diff(drawn) > 0)


def test_the_draw_does_not_read_the_labels_of_the_images_not_drawn():
  labels = digits_dataset()
  drawn = labelled.draw_labelled(labels, 5, label_seed=1)
  hidden = np.full_like(labels, -1)
  hidden[drawn] = labels[drawn]
  assert np.array_equal(labelled.draw_labelled(hidden, 5, label_seed=1), drawn)


def test_too_many_labels_per_class_is_one_clear_error():
  with pytest.raises(DataError, match="labels_per_class=61.*at most|labels_per_class=61"):
    labelled.draw_labelled(digits_dataset(), 61, label_seed=0)


def test_split_keeps_the_labelled_few_and_drops_every_other_label():
  labels = digits_dataset()
  images = np.arange(len(labels), dtype=np.uint8).reshape(-1, 1, 1, 1) * np.ones((1, 28, 28, 1), np.uint8)
  few = labelled.split(images, labels, 3, label_seed=2)
  assert len(few.labelled_labels) == 30 and len(few.unlabelled_images) == len(labels) - 30
  assert np.array_equal(few.labelled_labels, labels[few.labelled_indices])
  provenance = few.provenance()
  assert provenance["labels_per_class"] == 3 and provenance["label_seed"] == 2
  assert provenance["labelled_indices"] == [int(i) for i in few.labelled_indices]


def test_most_confident_keeps_each_class_s_most_confident_fraction():
  probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.45, 0.55], [0.7, 0.3], [0.1, 0.9]])
  assert list(self_training.most_confident(probs, 1 / 3)) == [0, 5]  # quota 1 per class
  assert list(self_training.most_confident(probs, 2 / 3)) == [0, 2, 4, 5]


@pytest.mark.slow
@pytest.mark.parametrize("labeller", self_training.LABELLERS)
def test_self_training_rounds_grow_the_pseudo_labelled_set(mnist_data_dir, tiny_config, labeller):
  images, labels = mnist.load_split(tiny_config, "train")
  few = labelled.split(images, labels, 2, label_seed=0)  # tiny_config: the first 128 images
  seen, settings = [], self_training.SelfTraining(rounds=2, classifier_steps=3, labeller=labeller)
  result = self_training.self_train(few, jax.random.key(0), settings, None, lambda r, p: seen.append(r))
  assert seen == [0, 1, 2]
  unlabelled = len(few.unlabelled_images)
  assert result.kept_per_round[0] == 0 and 0 < result.kept_per_round[1] < result.kept_per_round[2] <= unlabelled
  assert result.pseudo_labels.shape == (unlabelled,) and np.all((result.confidences > 0) & (result.confidences <= 1))


def test_cluster_given_digit_is_each_digit_s_histogram_over_clusters():
  with pytest.raises(ValueError, match="digit 2"):
    naming.cluster_given_digit(np.array([0, 1]), np.array([0, 1]), 2)
  digits = np.arange(20) % 10
  clusters = np.where(digits < 5, 0, 1)
  clusters[0] = 2  # one 0 in cluster 2
  table = naming.cluster_given_digit(clusters, digits, 3)
  np.testing.assert_allclose(table.sum(axis=1), 1.0)
  np.testing.assert_allclose(table[0], [0.5, 0.0, 0.5])
  np.testing.assert_allclose(table[7], [0.0, 1.0, 0.0])


class FakeNaming:
  """Draws cluster = digit and accepts an image iff its mean pixel is even (about half of them)."""

  def __init__(self, accept_all=False, reject_all=False):
    self.accept_all, self.reject_all = accept_all, reject_all

  def draw_clusters(self, key, digits):
    return np.asarray(digits, np.int32)

  def accepts(self, images, digits):
    if self.reject_all:
      return np.zeros(len(digits), bool)
    return np.ones(len(digits), bool) if self.accept_all else images.reshape(len(images), -1).sum(axis=1) % 2 == 0


def clusters_run(tiny_config, tmp_path):
  config = tiny_config
  config.conditioning, config.num_clusters, config.num_train_steps = "clusters", 10, 1
  train.train_and_evaluate(config, str(tmp_path / "run"))
  return generation.load_run(str(tmp_path / "run"))


@pytest.mark.slow
def test_named_sampling_redraws_until_every_sample_is_accepted(tiny_config, tmp_path):
  run = clusters_run(tiny_config, tmp_path)
  digits = np.arange(40, dtype=np.int32) % 10
  images = generation.generate_named(run.setup, run.state, jax.random.key(1), digits, FakeNaming(), True, 16)
  assert images.shape == (40, 28, 28, 1)
  assert np.all(images.reshape(40, -1).sum(axis=1) % 2 == 0)  # only accepted samples come back
  with pytest.raises(GenerationError, match="rejects 40 samples"):
    generation.generate_named(run.setup, run.state, jax.random.key(1), digits, FakeNaming(reject_all=True), True, 16)


def few_labels_config(tiny_config):
  config = tiny_config
  config.conditioning, config.num_clusters, config.labels_per_class = "few_labels", 10, 3
  config.self_training_rounds, config.self_training_steps = 1, 3
  config.few_labels_min_confidence = 0.0  # a 4-step generator's samples are noise to any classifier
  config.num_train_steps = 4
  return config


@pytest.mark.slow
def test_no_unlabelled_image_s_label_reaches_a_few_labels_run(tiny_config, tmp_path):
  """The same run with every label but the drawn ones hidden (-1) must be the same run, bit for bit."""
  config = few_labels_config(tiny_config)
  images, labels = mnist.load_split(config, "train")
  drawn = labelled.draw_labelled(labels, config.labels_per_class, config.label_seed)
  hidden = np.full_like(labels, -1)
  hidden[drawn] = labels[drawn]
  runs = []
  for name, run_labels in (("all", labels), ("hidden", hidden)):
    train.train_and_evaluate(config, str(tmp_path / name), (images, run_labels), prepare_naming=naming.load_or_build)
    runs.append(generation.load_run(str(tmp_path / name), load_naming=naming.load))
  a, b = runs
  np.testing.assert_array_equal(a.naming.cluster_given_digit, b.naming.cluster_given_digit)
  assert a.naming.provenance == b.naming.provenance
  jax.tree.map(np.testing.assert_array_equal, a.naming.namer_params, b.naming.namer_params)
  jax.tree.map(np.testing.assert_array_equal, a.state.generator_params, b.state.generator_params)
  metrics = [open(tmp_path / name / "metrics.jsonl").read().splitlines() for name in ("all", "hidden")]
  strip = lambda line: {k: v for k, v in json.loads(line).items() if not k.endswith("_per_sec")}
  assert [strip(line) for line in metrics[0]] == [strip(line) for line in metrics[1]]


@pytest.mark.slow
def test_a_few_labels_run_records_its_labelled_images_in_eval_json_and_exports(tiny_config, tmp_path):
  from ganjax.synth import export

  config = few_labels_config(tiny_config)
  config.eval_at_end = True
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(config, workdir, prepare_naming=naming.load_or_build)
  images, labels = mnist.load_split(config, "train")
  drawn = [int(i) for i in labelled.draw_labelled(labels, 3, 0)]
  with open(os.path.join(workdir, "eval.json")) as f:
    recorded = json.load(f)["few_labels"]
  assert recorded["labels_per_class"] == 3 and recorded["label_seed"] == 0 and recorded["labelled_indices"] == drawn
  out = str(tmp_path / "synthetic.npz")
  export.export_dataset(workdir, out, export.ExportOptions(num_per_class=4))
  exported_images, exported_labels, provenance = export.load_dataset(out)
  assert np.array_equal(np.bincount(exported_labels, minlength=10), np.full(10, 4))
  assert provenance["few_labels"]["labelled_indices"] == drawn
  with pytest.raises(ConfigError, match="few_labels"):
    export.export_dataset(workdir, out, export.ExportOptions(num_per_class=4, filter="evaluator"))


@pytest.mark.parametrize(
  "overrides, field",
  [
    ({"conditioning": "digit", "labels_per_class": 10}, "labels_per_class"),
    ({"conditioning": "few_labels", "num_clusters": 100, "labels_per_class": 0}, "labels_per_class"),
    ({"conditioning": "few_labels", "num_clusters": 5, "labels_per_class": 10}, "num_clusters"),
    ({"conditioning": "few_labels", "num_clusters": 100, "labels_per_class": 10, "class_head": "ac"}, "class_head"),
    (
      {"conditioning": "few_labels", "num_clusters": 100, "labels_per_class": 10, "few_labels_min_confidence": 1.0},
      "few_labels_min_confidence",
    ),
    (
      {"conditioning": "few_labels", "num_clusters": 100, "labels_per_class": 10, "self_training_labeller": "knn"},
      "self_training_labeller",
    ),
  ],
)
def test_bad_few_labels_settings_are_one_clear_error(tiny_config, overrides, field):
  tiny_config.update(overrides)
  with pytest.raises(ConfigError, match=field):
    config_lib.validate(tiny_config)


@pytest.mark.slow
def test_a_few_labels_run_trains_exactly_as_the_same_clusters_run(tiny_config, tmp_path):
  """Its GAN never sees a digit: the metrics and parameters equal those of conditioning clusters."""
  results = []
  for kind in ("clusters", "few_labels"):
    config = few_labels_config(tiny_config.copy_and_resolve_references())
    if kind == "clusters":
      config.labels_per_class = 0
    config.conditioning = kind
    train.train_and_evaluate(config, str(tmp_path / kind))
    with open(tmp_path / kind / "metrics.jsonl") as f:
      records = [{k: v for k, v in json.loads(line).items() if not k.endswith("_per_sec")} for line in f]
    results.append((records, generation.load_run(str(tmp_path / kind)).state.generator_params))
  assert results[0][0] == results[1][0]
  jax.tree.map(np.testing.assert_array_equal, results[0][1], results[1][1])


@pytest.mark.slow
def test_setting_up_a_few_labels_run_trains_no_namer_until_it_samples_digits(tiny_config, tmp_path, monkeypatch):
  """build() binds the namer and leaves it untrained; the run prepares it after its last step (no evaluation)."""
  config = few_labels_config(tiny_config)
  calls = []
  prepare = lambda *args, **kwargs: calls.append(args) or naming.load_or_build(*args, **kwargs)
  experiment = train.build(config, str(tmp_path / "run"), prepare_naming=prepare)
  train.release(experiment)
  assert not calls and not os.path.exists(tmp_path / "run" / saved_run.NAMING_FILE)
  train.train_and_evaluate(config, str(tmp_path / "run"), prepare_naming=prepare)
  assert len(calls) == 1 and os.path.exists(tmp_path / "run" / saved_run.NAMING_FILE)
  with pytest.raises(ValueError, match="naming"):  # digits of a run that needs a naming, without one
    run = generation.load_run(str(tmp_path / "run"))
    generation.generate(run.setup, run.state, jax.random.key(0), 10)


def test_the_shipped_few_labels_config_is_wgan_gp_tuned_with_few_labels():
  from configs import few_labels, wgan_gp_tuned

  config, base = few_labels.get_config(), wgan_gp_tuned.get_config()
  config_lib.validate(config)
  changed = {k for k in config if config[k] != base[k]}
  assert changed == {"conditioning", "labels_per_class"}
  assert config.num_clusters == 100 and config.labels_per_class == 10


@pytest.mark.slow
def test_the_few_labels_benchmark_runs_end_to_end_and_resumes(tiny_config, tmp_path):
  import subprocess
  import sys

  from conftest import REPO

  config = tiny_config
  config.conditioning, config.num_clusters, config.train_subset, config.num_train_steps = "clusters", 10, 0, 2
  train.train_and_evaluate(config, str(tmp_path / "gan"))  # a label-free GAN on the whole training split
  out = tmp_path / "few"
  command = [sys.executable, "experiments/few_labels.py", "--quick_test", f"--out_dir={out}"]
  command.append(f"--gan_workdir={tmp_path / 'gan'}")
  env = {**os.environ, "TFDS_DATA_DIR": config.data_dir}
  for attempt in range(2):
    output = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert output.returncode == 0, output.stderr[-3000:]
    with open(out / "few_labels.jsonl") as f:
      rows = [json.loads(line) for line in f]
    assert len(rows) == 7  # the rerun finds every cell done
  treatments = few_labels_study().TREATMENTS + few_labels_study().STRONG_TREATMENTS
  assert sorted(r["treatment"] for r in rows) == sorted(t for t, _ in treatments)
  assert all(0 <= r["accuracy"] <= 1 and r["n_per_class"] == 5 and r["label_seed"] == 0 for r in rows)
  trained = [r for r in rows if r["treatment"] not in ("classic", "pseudo")]  # the namer's rounds are not cells
  for row in trained:  # each trained cell's confusion matrix: every test image once, its diagonal the accuracy
    confusion = np.array(row["confusion"])
    assert confusion.shape == (10, 10) and np.trace(confusion) / confusion.sum() == row["accuracy"]
  gan_rows = [r for r in rows if "gan" in r["treatment"]]
  assert all(r["num_synthetic"] == 200 and 0 <= r["label_agreement"] <= 1 and "cas" in r for r in gan_rows)
  assert (out / "few_labels.png").stat().st_size > 0
  text = (out / "few_labels.md").read_text()
  assert (
    "pseudo-labels + classic + GAN" in text and "pseudo-labels + GAN, strong CNN" in text and "errors per 10k" in text
  )


@pytest.mark.parametrize("subsets", ["10", *(pytest.param(s, marks=pytest.mark.slow) for s in ("10:0", "ten:5"))])
def test_the_benchmark_script_names_a_bad_subsets_flag_before_any_cell_runs(tmp_path, subsets):
  import subprocess
  import sys

  from conftest import REPO

  command = [sys.executable, "experiments/few_labels.py", f"--subsets={subsets}", f"--out_dir={tmp_path}"]
  output = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert output.returncode != 0 and f"--subsets={subsets}; expected N:count" in output.stderr
  assert not os.listdir(tmp_path)


def few_labels_study():
  from ganjax.studies import few_labels_benchmark

  return few_labels_benchmark


def test_a_subset_whose_synthetic_set_cannot_be_drawn_is_recorded_as_failed(monkeypatch):
  from ganjax.studies import few_labels_benchmark as benchmark

  settings = benchmark.Settings(gan_workdir="some_gan", subsets=((1, 1),), cas=False)
  monkeypatch.setattr(benchmark, "gan_id", lambda settings: "some_gan@1")
  result = self_training.Result(None, None, np.zeros(3, np.int32), np.ones(3), (0,))
  monkeypatch.setattr(benchmark.namers, "ensure_namer", lambda *args: benchmark.namers.Namer(result, [0.5, 0.6], 1.0))

  def no_digits(*args):
    raise GenerationError("the generator rarely draws digit 7")

  monkeypatch.setattr(benchmark, "synthetic_set", no_digits)
  monkeypatch.setattr(benchmark, "train_cell", lambda *args: (0.25, [[1]]))
  few = labelled.split(np.zeros((20, 28, 28, 1), np.uint8), np.arange(20) % 10, 1, 0)
  written = []
  benchmark.subset_cells(settings, few, None, set(), lambda key, *rest: written.append((key, *rest)))
  by_treatment = {key[2]: (accuracy, extra) for key, accuracy, _, extra in written}
  assert by_treatment["real"][0] == 0.25 and by_treatment["pseudo"][0] == 0.6
  assert by_treatment["classic+gan"] == (None, {"failed": "the generator rarely draws digit 7"})
  assert by_treatment["pseudo+gan"][0] is None
  rows = [{"treatment": k, "n_per_class": 1, "accuracy": a, "wall_s": 1.0} for k, (a, _) in by_treatment.items()]
  summary = benchmark.report.summarize(rows, benchmark.TREATMENTS)
  assert ("classic+gan", 1) not in summary and summary["real", 1]["mean"] == 0.25


@pytest.mark.parametrize(
  ("only", "ran", "namer_used"),
  [(("real",), ["real"], False), (("pseudo", "pseudo:strong"), ["pseudo", "pseudo:strong"], True)],
)
def test_only_runs_the_named_treatments_cells(monkeypatch, only, ran, namer_used):
  from ganjax.studies import few_labels_benchmark as benchmark

  settings = benchmark.Settings(subsets=((1, 1),), strong_steps=5, only=only)
  result = self_training.Result(None, None, np.zeros(10, np.int32), np.ones(10), (0,))
  namer_calls = []
  namer = benchmark.namers.Namer(result, [0.5, 0.6], 1.0)
  monkeypatch.setattr(benchmark.namers, "ensure_namer", lambda *args: namer_calls.append(1) or namer)
  monkeypatch.setattr(benchmark, "train_cell", lambda *args: (0.25, [[1]]))
  few = labelled.split(np.zeros((20, 28, 28, 1), np.uint8), np.arange(20) % 10, 1, 0)
  written = []
  benchmark.subset_cells(settings, few, None, set(), lambda key, *rest: written.append(key[2]))
  assert written == ran and bool(namer_calls) == namer_used
  everything = dataclasses.replace(settings, only=())
  assert everything.to_run == tuple(t for t, _ in settings.treatments)  # the report's treatments: all of them


def test_only_refuses_the_gan_treatments_without_a_gan_run_but_not_the_critics():
  from ganjax.studies import few_labels_benchmark as benchmark

  with pytest.raises(ConfigError, match=r"--only=classic\+gan,real: classic\+gan need --gan_workdir"):
    benchmark.check_only(benchmark.Settings(only=("classic+gan", "real")))
  benchmark.check_only(benchmark.Settings(only=("classic+gan",), gan_workdir="runs/gan"))
  benchmark.check_only(benchmark.Settings(only=("ssl_pseudo_cnn_gan",), ssl_workdirs="r{label_seed}", strong_steps=5))


@pytest.mark.parametrize(
  ("flags", "message"),
  [
    (["--only=ssl_critic"], "--only=ssl_critic: ssl_critic is not a treatment of these settings; allowed: real,"),
    pytest.param(["--only=real,pseudo:strong"], "pseudo:strong is not a treatment", marks=pytest.mark.slow),
    pytest.param(["--only=real,critic"], "critic is not a treatment", marks=pytest.mark.slow),
    pytest.param(["--only=real,pseudo+gan"], "pseudo+gan need --gan_workdir", marks=pytest.mark.slow),
  ],
)
def test_the_benchmark_script_names_a_bad_only_flag_before_any_cell_runs(tmp_path, flags, message):
  import subprocess
  import sys

  from conftest import REPO

  command = [sys.executable, "experiments/few_labels.py", *flags, f"--out_dir={tmp_path / 'out'}"]
  output = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert output.returncode != 0 and message in output.stderr, output.stderr[-2000:]
  assert len([line for line in output.stderr.splitlines() if "--only=" in line]) == 1
  assert not os.path.exists(tmp_path / "out")


def test_spreading_labels_the_unlabelled_images_from_the_labelled_few_alone():
  """Ten digits drawn as ten separated groups of images: spreading from one labelled image of each labels every
  other image right; round 0 spreads on the pixels, so no classifier is needed."""
  truth = np.repeat(np.arange(10), 6)
  images = np.random.default_rng(0).integers(0, 40, (60, 28, 28, 1)).astype(np.uint8)
  for digit in range(10):
    images[truth == digit, 2 * digit + 4 : 2 * digit + 7] = 255  # digit d: its own band of lit rows
  few = labelled.split(images, truth, 1, label_seed=0)
  settings = self_training.SelfTraining(labeller="spreading", spreading=label_spreading.Spreading(neighbours=4))
  probs = self_training.label_unlabelled(few, settings, params=None, round_index=0)
  hidden_truth = truth[np.setdiff1d(np.arange(60), few.labelled_indices)]
  assert probs.shape == (50, 10) and np.array_equal(probs.argmax(1), hidden_truth)


def test_rows_written_before_the_labeller_existed_count_as_the_classifier_s():
  from ganjax.studies import few_labels_benchmark as benchmark

  old = {"n_per_class": 10, "label_seed": 0, "treatment": "pseudo", "classifier_steps": 2000, "rounds": 2, "gan": ""}
  assert benchmark.row_key(old) == benchmark.cell_key(benchmark.Settings(labeller="classifier"), 10, 0, "pseudo")
  assert benchmark.row_key(old) != benchmark.cell_key(benchmark.Settings(), 10, 0, "pseudo")
  with pytest.raises(ValueError, match="labeller='knn'"):
    self_training.SelfTraining(labeller="knn")


def test_naming_refuses_clusters_of_another_training_split():
  few = labelled.split(np.zeros((20, 28, 28, 1), np.uint8), np.arange(20) % 10, 1, 0)
  result = self_training.Result(self_training.SelfTraining().recipe, None, np.zeros(10, np.int32), np.ones(10), (0,))
  with pytest.raises(ValueError, match="cover 12 images.*20"):
    naming.name(np.zeros(12, np.int32), 10, few, result, 0.9, {})
  table = naming.name(np.arange(20) % 10, 10, few, result, 0.9, {}).cluster_given_digit
  assert table.shape == (10, 10)


def test_a_kept_naming_is_reused_only_for_the_namer_fields_and_clusters_it_was_made_for():
  config = few_labels_config(config_defaults.get_config())
  provenance = {field: config[field] for field in saved_run.NAMER_FIELDS if field != "few_labels_min_confidence"}
  provenance["clusters_sha256"] = "a"
  kept = naming.Naming(np.ones((10, 10)), 5, None, config.few_labels_min_confidence, provenance)
  assert naming.made_for(kept, config, "a") and not naming.made_for(kept, config, "b")
  for field in saved_run.NAMER_FIELDS:  # each namer field, and only those, decides
    changed = config.copy_and_resolve_references()
    changed[field] = {str: "classifier", float: 0.5}.get(type(config[field]), 7)
    assert not naming.made_for(kept, changed, "a"), field
  changed = config.copy_and_resolve_references()
  changed.seed, changed.num_epochs = 9, 1
  assert naming.made_for(kept, changed, "a")
  # A naming made before self_training_labeller existed was made by the classifier labeller.
  old = naming.Naming(kept.cluster_given_digit, 5, None, kept.min_confidence, kept.provenance.copy())
  del old.provenance["self_training_labeller"]
  assert config.self_training_labeller == "spreading" and not naming.made_for(old, config, "a")
  changed = config.copy_and_resolve_references()
  changed.self_training_labeller = "classifier"
  assert naming.made_for(old, changed, "a")


def _tear(path: str) -> None:
  with open(path, "rb") as f:
    data = f.read()
  with open(path, "wb") as f:
    f.write(data[: len(data) // 2])


def test_a_torn_naming_is_one_line_for_export_and_made_afresh_by_its_run(tmp_path, monkeypatch):
  config = few_labels_config(config_defaults.get_config())
  params = classifiers.SMALL_CNN_RECIPE.model.init(jax.random.key(0), np.zeros((1, 28, 28, 1)))["params"]
  made = naming.Naming(np.full((10, 10), 0.1, np.float32), 5, params, 0.0, {"clusters_sha256": "x"})
  naming.save(str(tmp_path), made)
  np.testing.assert_array_equal(naming.load(str(tmp_path)).cluster_given_digit, made.cluster_given_digit)
  _tear(str(tmp_path / saved_run.NAMING_FILE))
  with pytest.raises(WorkdirError, match=r"few_labels.npz does not read \(.*torn or damaged\); rerun its training"):
    naming.load(str(tmp_path))
  assert naming.read_kept(str(tmp_path)) is None
  built = []
  monkeypatch.setattr(naming, "train_and_name", lambda *args, **kwargs: built.append(1) or (made, None))
  images, labels = np.zeros((30, 28, 28, 1), np.uint8), np.arange(30) % 10
  rebuilt = naming.load_or_build(str(tmp_path), config, images, labels, np.zeros(30, np.int32), write=True)
  assert built == [1] and naming.load(str(tmp_path)).provenance == rebuilt.provenance


def test_a_torn_benchmark_namer_is_trained_afresh(tmp_path, monkeypatch):
  from ganjax.studies import few_labels_namers as namers

  st = self_training.SelfTraining(rounds=0, classifier_steps=3)
  params = st.recipe.model.init(jax.random.key(0), np.zeros((1, 28, 28, 1)))["params"]
  result = self_training.Result(st.recipe, params, np.zeros(20, np.int32), np.ones(20, np.float32), (0,))
  trained = []
  monkeypatch.setattr(namers.naming, "train_namer", lambda *args: trained.append(1) or result)
  few = labelled.split(np.zeros((30, 28, 28, 1), np.uint8), np.arange(30) % 10, 1, 0)
  namers.ensure_namer(st, str(tmp_path), few, None)
  path = namers.namer_path(st, str(tmp_path), few)
  _tear(path)
  namer = namers.ensure_namer(st, str(tmp_path), few, None)
  assert trained == [1, 1] and namers.ensure_namer(st, str(tmp_path), few, None).wall_s == namer.wall_s
  assert trained == [1, 1]  # the rewritten file is read back


def test_the_report_says_when_a_treatment_has_fewer_subsets_than_its_row():
  """A GAN cell that ran on 1 of 3 subsets must not read as a 3-subset mean with no spread."""
  from ganjax.studies import few_labels_benchmark as benchmark

  rows = [{"treatment": "pseudo", "n_per_class": 1, "accuracy": a, "wall_s": 1.0} for a in (0.7, 0.9, 0.8)]
  rows.append({"treatment": "classic+gan", "n_per_class": 1, "accuracy": 0.96, "wall_s": 1.0, "label_agreement": 0.98})
  summary = benchmark.report.summarize(rows, benchmark.TREATMENTS)
  line = benchmark.report.table(summary, benchmark.TREATMENTS, [1], errors=False)[-1]
  assert line == "| 1 | – | – | 80.00 ± 10.00 | 96.00 (1 of 3) | – | 3 |"
  errors_line = benchmark.report.table(summary, benchmark.TREATMENTS, [1], errors=True)[-1]
  assert "| 400 (1 of 3) |" in errors_line
  assert benchmark.report.gan_table(summary, [1])[-1] == "| 1 | 98.00 | – | 1 |"
