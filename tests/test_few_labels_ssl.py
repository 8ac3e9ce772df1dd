"""The few-labels benchmark's semi-supervised treatments (ganjax/studies/few_labels_ssl.py): each subset's run is
checked before any cell, the critic's labels make the strong CNN's training set as spreading's pseudo-labels do,
the cells are keyed by their run, and the report pairs them with label spreading subset by subset."""

import dataclasses
import json
import os
import types

import jax
import numpy as np
import pytest

from configs import default, ssl_gan
from ganjax import saved_run
from ganjax.data import labelled
from ganjax.errors import ConfigError, GenerationError, WorkdirError
from ganjax.studies import few_labels_benchmark as benchmark
from ganjax.studies import few_labels_report as report
from ganjax.studies import few_labels_ssl as ssl

PATTERN = "ssl_n{labels_per_class}_s{label_seed}"


class FakeCritic:
  """A recognizer reading each image's digit from its first pixel."""

  num_classes = 10

  def predict(self, images):
    return (np.asarray(images)[:, 0, 0, 0] % 10).astype(np.int32)


def tiny_few() -> labelled.FewLabels:
  images = np.zeros((40, 28, 28, 1), np.uint8)
  images[:, 0, 0, 0] = np.arange(40) + 3  # the critic reads digit (i + 3) % 10 in image i
  return labelled.split(images, np.arange(40) % 10, 1, 0)


def fake_run(workdir, step=1200) -> types.SimpleNamespace:
  """What subset_cells reads of a loaded run: its critic, config, checkpoint step and workdir."""
  config = ssl_gan.get_config()
  config.labels_per_class, config.label_seed = 1, 0
  return types.SimpleNamespace(
    naming=types.SimpleNamespace(recognizer=FakeCritic()), step=step, config=config, workdir=str(workdir)
  )


def test_the_critics_labels_make_the_training_sets_of_the_pseudo_label_treatments(monkeypatch, tmp_path):
  few = tiny_few()
  run = fake_run(tmp_path)
  monkeypatch.setattr(ssl, "load_run", lambda settings, few: run)
  synthetic = (np.full((20, 28, 28, 1), 7, np.uint8), np.repeat(np.arange(10, dtype=np.int32), 2))
  monkeypatch.setattr(ssl, "synthetic_set", lambda run, seed, per_class: synthetic)
  test_images = np.zeros((4, 28, 28, 1), np.uint8)
  test_images[:, 0, 0, 0] = [1, 2, 3, 4]
  written, trained = {}, {}
  write = lambda treatment, accuracy, wall_s, extra: written.update({treatment: (accuracy, extra)})
  train = lambda treatment, parts, extra: trained.update({treatment: (parts, extra)})
  settings = benchmark.Settings(ssl_workdirs=PATTERN, strong_steps=5)
  ssl.subset_cells(settings, few, (test_images, np.array([1, 2, 0, 0])), list(ssl.KEYS), write, train, lambda s: {})
  accuracy, extra = written["ssl_critic"]  # two of the four test digits read right: 1 and 2 (3 and 4 read as 0)
  confusion = np.zeros((10, 10), int)
  confusion[[1, 2, 0, 0], [1, 2, 3, 4]] = 1
  assert accuracy == 0.5 and extra == {"ssl_step": 1200, "confusion": confusion.tolist()}
  [(images, labels)], extra = trained["ssl_pseudo_cnn"]  # the labelled few, then every other image, no threshold
  np.testing.assert_array_equal(images, np.concatenate([few.labelled_images, few.unlabelled_images]))
  np.testing.assert_array_equal(labels[:10], few.labelled_labels)
  np.testing.assert_array_equal(labels[10:], few.unlabelled_images[:, 0, 0, 0] % 10)
  assert extra == {"ssl_step": 1200, "pseudo_labelled": 30}
  parts, extra = trained["ssl_pseudo_cnn_gan"]
  assert len(parts) == 2 and parts[1] is synthetic and extra["num_synthetic"] == 20 and extra["ssl_step"] == 1200
  np.testing.assert_array_equal(parts[0][1], labels)

  def no_digits(*args):
    raise GenerationError("the critic named digit 4 in only 3 of the 20 asked for")

  monkeypatch.setattr(ssl, "synthetic_set", no_digits)
  trained.clear()
  ssl.subset_cells(settings, few, (test_images, np.zeros(4, int)), ["ssl_pseudo_cnn_gan"], write, train, None)
  assert not trained and written["ssl_pseudo_cnn_gan"][0] is None
  assert "digit 4" in written["ssl_pseudo_cnn_gan"][1]["failed"]


def test_a_cnn_kept_by_recognize_from_the_same_checkpoint_and_recipe_is_read_not_trained_again(monkeypatch, tmp_path):
  from ganjax.eval import classifiers
  from ganjax.ssl import cnn_recognizer

  few = tiny_few()
  recipe = cnn_recognizer.recipe(5)
  one_step = dataclasses.replace(recipe, num_steps=1)
  params = classifiers.train_classifier(one_step, few.labelled_images, few.labelled_labels, jax.random.key(0))
  record = cnn_recognizer.provenance(fake_run(tmp_path).config, 1200, recipe) | {"train_s": 40.0}
  cnn_recognizer.keep(str(tmp_path), params, record)
  test_images, test_labels = few.unlabelled_images[:8], np.arange(8) % 10
  expected = np.mean(cnn_recognizer.CnnRecognizer(recipe, params).predict(test_images) == test_labels)
  written, trained = {}, {}
  write = lambda treatment, accuracy, wall_s, extra: written.update({treatment: (accuracy, wall_s, extra)})
  train = lambda treatment, parts, extra: trained.update({treatment: parts})
  for strong_steps, step, reads_it in ((6, 1200, False), (5, 1300, False), (5, 1200, True)):
    monkeypatch.setattr(ssl, "load_run", lambda settings, few, step=step: fake_run(tmp_path, step))
    written.clear(), trained.clear()
    settings = benchmark.Settings(ssl_workdirs=PATTERN, strong_steps=strong_steps)
    ssl.subset_cells(settings, few, (test_images, test_labels), ["ssl_pseudo_cnn"], write, train, None)
    assert ("ssl_pseudo_cnn" in written, "ssl_pseudo_cnn" in trained) == (reads_it, not reads_it)
  accuracy, wall_s, extra = written["ssl_pseudo_cnn"]  # the last: same checkpoint, same recipe
  assert accuracy == expected and wall_s >= 40.0 and extra["cnn_kept"] == cnn_recognizer.KEPT_FILE
  assert extra["ssl_step"] == 1200 and np.sum(extra["confusion"]) == 8


def _write_run(path, conditioning="semi_supervised", per_class=10, label_seed=0, train_subset=0):
  config = ssl_gan.get_config()
  config.conditioning, config.labels_per_class, config.label_seed = conditioning, per_class, label_seed
  config.train_subset = train_subset
  os.makedirs(path)
  saved_run.write_config(path, config)


EXPECTED = "conditioning='semi_supervised', labels_per_class=10, label_seed=0, train_subset=0, examples_per_class=0"


@pytest.mark.parametrize(
  "run, error, message",
  [
    (None, WorkdirError, f"holds no run; expected a run with {EXPECTED} (train it: python main.py"),
    ({"label_seed": 1}, ConfigError, f"label_seed=1, train_subset=0, examples_per_class=0; expected {EXPECTED}"),
    ({"per_class": 100}, ConfigError, "holds a run with conditioning='semi_supervised', labels_per_class=100,"),
    ({"conditioning": "none"}, ConfigError, "holds a run with conditioning='none'"),
    ({"train_subset": 400}, ConfigError, "train_subset=400"),
    ({}, WorkdirError, "has no checkpoint yet; expected a trained run"),
  ],
)
def test_a_missing_or_mismatched_run_is_refused_in_one_line_before_any_cell(tmp_path, run, error, message):
  path = tmp_path / "ssl_n10_s0"
  if run is not None:
    _write_run(str(path), **run)
  with pytest.raises(error) as raised:
    ssl.check_run(str(path), 10, 0, default.get_config())
  assert f"--ssl_workdirs: {path} " in str(raised.value) and message in str(raised.value)
  assert "\n" not in str(raised.value)
  settings = benchmark.Settings(subsets=((10, 1),), ssl_workdirs=str(tmp_path / PATTERN), out_dir=str(tmp_path / "o"))
  with pytest.raises(error, match="--ssl_workdirs: "):
    benchmark.run_benchmark(settings, default.get_config(), "test")
  assert not os.path.exists(settings.out_dir)  # refused before anything was written


def test_a_pattern_with_an_unknown_placeholder_is_one_clear_error():
  with pytest.raises(ConfigError, match=r"--ssl_workdirs=runs/\{n\} cannot be filled.*\{labels_per_class\}"):
    ssl.workdir("runs/{n}", 10, 0)
  assert ssl.workdir("runs/ssl_n{labels_per_class}_s{label_seed}", 10, 3) == os.path.abspath("runs/ssl_n10_s3")


def test_semi_supervised_cells_are_keyed_by_their_run_and_resume(monkeypatch, tmp_path):
  monkeypatch.setattr(ssl, "run_id", lambda path: f"{path}@1200")
  settings = benchmark.Settings(ssl_workdirs=PATTERN, strong_steps=3750)
  assert [t for t, _ in settings.treatments][-3:] == list(ssl.KEYS)
  assert benchmark.Settings(ssl_workdirs=PATTERN).treatments[-1][0] == "ssl_critic"  # no strong CNN: critic only
  assert not any(t in ssl.KEYS for t, _ in benchmark.Settings(strong_steps=5).treatments)
  run = os.path.abspath("ssl_n10_s3") + "@1200"
  critic = benchmark.cell_key(settings, 10, 3, "ssl_critic")
  assert critic == (10, 3, "ssl_critic", 0, 0, "semi_supervised_critic", run, 0)
  assert benchmark.cell_key(settings, 10, 3, "ssl_pseudo_cnn")[-2:] == (run, 3750)
  assert benchmark.cell_key(settings, 10, 3, "ssl_pseudo_cnn_gan")[-2:] == (f"{run} x1000 conf0.9", 3750)
  other = benchmark.Settings(ssl_workdirs=PATTERN, strong_steps=3750, classifier_steps=7, gan_workdir="gan")
  assert benchmark.cell_key(other, 10, 3, "ssl_critic") == critic  # the small CNN and the label-free GAN: not its
  runner = benchmark.cells.CellRunner(str(tmp_path / "cells.jsonl"), benchmark.KEY_FIELDS)
  runner.record(critic, {"accuracy": 0.99, "ssl_step": 1200}, 1.0)
  reread = benchmark.cells.CellRunner(str(tmp_path / "cells.jsonl"), benchmark.KEY_FIELDS)
  assert critic in reread.done and benchmark.row_key(json.loads((tmp_path / "cells.jsonl").read_text())) == critic


def _row(treatment, n, seed, accuracy, **extra):
  return {"treatment": treatment, "n_per_class": n, "label_seed": seed, "accuracy": accuracy, "wall_s": 1.0} | extra


def test_the_report_pairs_gs_digits_with_the_same_cnn_without_them_subset_by_subset():
  rows = [_row("ssl_pseudo_cnn", 10, s, a) for s, a in enumerate((0.9902, 0.9938))]
  rows += [_row("ssl_pseudo_cnn_gan", 10, s, a, label_agreement=0.91, cas=0.97) for s, a in enumerate((0.9897, 0.9927))]
  treatments = benchmark.Settings(ssl_workdirs=PATTERN, strong_steps=5).treatments
  table = report.ssl_table(report.summarize(rows, treatments), treatments, [10], rows)
  assert table[0].endswith("| Δ errors vs critic's labels, strong CNN |")
  assert table[2] == "| critic's labels, strong CNN | 10 | 80 ± 25 | – | – | – |"
  assert table[3] == "| critic's labels + its GAN, strong CNN | 10 | 88 ± 21 | – | – | +8 ± 4 (s0 +5, s1 +11) |"
  only_gan = tuple(t for t in treatments if t[0] != "ssl_pseudo_cnn")  # without the CNN alone: no such column
  assert (
    "critic's labels, strong CNN |" not in report.ssl_table(report.summarize(rows, only_gan), only_gan, [10], rows)[0]
  )


def test_the_report_pairs_each_semi_supervised_treatment_with_label_spreading_subset_by_subset():
  rows = [_row("pseudo", 10, s, a) for s, a in enumerate((0.9750, 0.9700, 0.9800))]
  rows += [_row("pseudo:strong", 10, 0, 0.9765)]
  rows += [_row("ssl_critic", 10, s, a) for s, a in enumerate((0.9890, 0.9750, 0.9800))]
  rows += [_row("ssl_pseudo_cnn_gan", 10, 0, 0.9900, label_agreement=0.97, cas=0.95)]
  rows += [_row("ssl_pseudo_cnn_gan", 10, 1, None, failed="the critic named digit 4 in only 3")]
  assert report.paired_differences(rows, "ssl_critic", "pseudo", 10) == pytest.approx({0: -140, 1: -50, 2: 0})
  treatments = benchmark.Settings(ssl_workdirs=PATTERN, strong_steps=5).treatments
  summary = report.summarize(rows, treatments)
  table = report.ssl_table(summary, treatments, [10], rows)
  references = "Δ errors vs pseudo-labels + classic | Δ errors vs pseudo-labels, strong CNN"
  references += " | Δ errors vs critic's labels, strong CNN"  # both CNN treatments asked for: G's digits paired too
  assert table[0] == f"| treatment | N / class | errors per 10k | {references} |"
  assert (
    table[2] == "| semi-supervised critic | 10 | 187 ± 71 | -63 ± 71 (s0 -140, s1 -50, s2 +0) | -125 (s0 -125) | – |"
  )
  assert table[3] == "| critic's labels + its GAN, strong CNN | 10 | 100 | -150 (s0 -150) | -135 (s0 -135) | – |"
  assert len(table) == 4  # no ssl_pseudo_cnn row: it ran on no subset
  section = "\n".join(report.tables(summary, treatments, [10], rows))
  assert "## Semi-supervised GAN" in section and "| 10 | 97.00 | 95.00 | 1 |" in section
  assert "N = 10, subset 1: no synthetic set (the critic named digit 4 in only 3)" in section
  assert "Semi-supervised" not in "\n".join(report.tables(summary, benchmark.Settings().treatments, [10], rows))
  critic_only = benchmark.Settings(ssl_workdirs=PATTERN).treatments  # no strong CNN: no synthetic-set table
  critic_section = "\n".join(report.tables(report.summarize(rows, critic_only), critic_only, [10], rows))
  assert "## Semi-supervised GAN" in critic_section and "named by its critic" not in critic_section
  assert "The synthetic sets" not in critic_section  # no label-free GAN cell either
  with_gan = rows + [_row("classic+gan", 10, 0, 0.96, label_agreement=0.98, cas=0.96)]
  gan_section = "\n".join(report.tables(report.summarize(with_gan, critic_only), critic_only, [10], with_gan))
  assert "## The synthetic sets" in gan_section and "| 10 | 98.00 | 96.00 | 1 |" in gan_section


@pytest.mark.slow
def test_the_benchmark_runs_the_semi_supervised_cells_of_a_tiny_run_and_resumes(
  real_mnist_data_dir, tmp_path, monkeypatch
):
  """A tiny run's G draws one or two digits: its synthetic set fails in one line, and is then given real digits to
  see that cell train; the classifier labeller keeps the test minutes shorter than spreading would."""
  from test_ssl_train import tiny_ssl_config

  from ganjax import files, train
  from ganjax.ssl import recognizer

  config = tiny_ssl_config(real_mnist_data_dir)
  config.train_subset, config.num_train_steps = 0, 4  # the benchmark's training split: the labelled few it draws
  workdir = str(tmp_path / "ssl_n1_s0")
  train.train_and_evaluate(config, workdir)
  data_config = default.get_config()
  data_config.data_dir, data_config.download = real_mnist_data_dir, False
  settings = dataclasses.replace(
    benchmark.QUICK_TEST, subsets=((1, 1),), labeller="classifier", ssl_workdirs=str(tmp_path / PATTERN)
  )
  settings = dataclasses.replace(settings, out_dir=str(tmp_path / "few"))
  jsonl = os.path.join(settings.out_dir, "few_labels.jsonl")
  for attempt in range(2):  # the rerun finds every cell done
    benchmark.run_benchmark(settings, data_config, "test")
    rows = files.read_json_lines(jsonl)
    assert sorted(r["treatment"] for r in rows) == sorted(t for t, _ in settings.treatments if "+gan" not in t)
  ssl_rows = {r["treatment"]: r for r in rows if r["treatment"] in ssl.KEYS}
  assert all(r["ssl_step"] == 4 and r["gan"].startswith(f"{workdir}@4") for r in ssl_rows.values())
  _, critic, _ = recognizer.load(workdir)
  test_set = benchmark.mnist.load_split(data_config, "test")
  assert ssl_rows["ssl_critic"]["accuracy"] == recognizer.report(critic, *test_set)["accuracy"]
  assert ssl_rows["ssl_pseudo_cnn"]["strong_steps"] == 5 and 0 <= ssl_rows["ssl_pseudo_cnn"]["accuracy"] <= 1
  assert (
    ssl_rows["ssl_pseudo_cnn_gan"]["accuracy"] is None
    and "the critic named digit" in (ssl_rows["ssl_pseudo_cnn_gan"]["failed"])
  )
  with open(os.path.join(settings.out_dir, "few_labels.md")) as f:
    text = f.read()
  assert "## Semi-supervised GAN" in text and "| critic's labels, strong CNN | 1 |" in text
  assert "N = 1, subset 0: no synthetic set (after 30 rounds" in text

  images, labels = benchmark.mnist.load_split(data_config, "train")
  real_digits = (test_set[0][:200], test_set[1][:200])
  monkeypatch.setattr(ssl, "synthetic_set", lambda run, label_seed, per_class: real_digits)
  written = []
  done = {benchmark.cell_key(settings, 1, 0, t) for t, _ in settings.treatments if t != "ssl_pseudo_cnn_gan"}
  few = labelled.split(images, labels, 1, 0)
  benchmark.subset_cells(settings, few, test_set, done, lambda *row: written.append(row))
  ((key, accuracy, _, extra),) = written
  assert key == benchmark.cell_key(settings, 1, 0, "ssl_pseudo_cnn_gan") and 0 <= accuracy <= 1
  assert extra["num_synthetic"] == 200 and extra["label_agreement"] > 0.9 and 0 <= extra["cas"] <= 1
