"""Evaluation during training (metrics.jsonl, eval.json, eval.png), `python evaluate.py`, and whether a briefly
trained conditional generator draws the digits it is asked for."""

import json
import math
import os
import shutil
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from conftest import REPO, tiny_run_config

from configs import cgan, default
from ganjax import conditioning, metric_writers, saved_run, train
from ganjax.eval import evaluator as evaluator_lib
from ganjax.eval import classifiers, metrics, sample_quality
from ganjax.synth import export, generation

SCALAR_KEYS = ("fid", "classifier_score", "precision", "recall", "min_class_share", "label_agreement")


def evaluated_config(data_dir: str):
  """A tiny conditional run (2 epochs of 8 steps) evaluated on 100 samples after epoch 1 and at the end."""
  return tiny_run_config(data_dir)


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory, tiny_run) -> str:
  """This module's copy of the session's tiny run: its tests rerun it and evaluate into it."""
  workdir = str(tmp_path_factory.mktemp("evaluation") / "run")
  shutil.copytree(tiny_run.workdir, workdir)
  return workdir


def eval_records(workdir: str) -> list[dict]:
  return [r for r in metric_writers.read_metrics(workdir) if any(k.startswith("eval_") for k in r)]


def test_training_writes_eval_records_after_each_epoch_and_at_the_end(evaluated_run):
  records = eval_records(evaluated_run)
  assert [(r["step"], r["epoch"]) for r in records] == [(8, 1.0), (16, 2.0)]
  for record in records:
    for key in SCALAR_KEYS + ("num_samples", "eval_seconds"):
      assert math.isfinite(record[f"eval_{key}"]), key
    assert record["eval_num_samples"] == 100
    assert "eval_class_shares" not in record and "eval_ema" not in record  # a list and a bool: not scalars
  # The loss records are still there, between and beside the evaluations.
  assert [r["step"] for r in metric_writers.read_metrics(evaluated_run) if "critic_loss" in r] == [
    2,
    4,
    6,
    8,
    10,
    12,
    14,
    16,
  ]


def test_training_writes_the_final_evaluation_to_eval_json_and_plots_them_all(evaluated_run):
  result = sample_quality.read_json(evaluated_run)
  assert result["evaluator_sha256"] == evaluator_lib.load().sha256
  assert result["step"] == 16 and result["epoch"] == 2.0 and result["num_samples"] == 100
  assert result["ema"] is True  # sampled from the run's EMA generator
  for key in SCALAR_KEYS:
    assert math.isfinite(result[key]), key
  assert 0 <= result["label_agreement"] <= 1 and len(result["class_shares"]) == 10
  final_record = eval_records(evaluated_run)[-1]
  assert {k: final_record[f"eval_{k}"] for k in SCALAR_KEYS} == {k: result[k] for k in SCALAR_KEYS}
  assert os.path.getsize(os.path.join(evaluated_run, "eval.png")) > 0


def test_rerunning_a_finished_run_does_not_evaluate_again(evaluated_run, mnist_data_dir):
  path = os.path.join(evaluated_run, saved_run.EVAL_FILE)
  modified, records = os.stat(path).st_mtime_ns, eval_records(evaluated_run)
  time.sleep(0.01)  # so that a rewrite would show in the mtime
  train.train_and_evaluate(evaluated_config(mnist_data_dir), evaluated_run)
  assert os.stat(path).st_mtime_ns == modified
  assert eval_records(evaluated_run) == records


def test_scalars_keeps_the_numbers_of_an_evaluation_only():
  result = {
    "fid": 12.5,
    "num_samples": 100,
    "ema": True,
    "class_shares": [0.5, 0.5],
    "evaluator_sha256": "abc",
    "label_agreement": 0.25,
  }
  assert sample_quality.scalars(result) == {"eval_fid": 12.5, "eval_num_samples": 100.0, "eval_label_agreement": 0.25}
  assert sample_quality.scalars({"fid": 1}, prefix="") == {"fid": 1.0}


def test_summary_line_names_the_headline_metrics_in_a_fixed_order():
  line = sample_quality.summary_line({"recall": 0.5, "fid": 12.345, "ema": True, "precision": 0.25})
  assert line == "fid 12.35 precision 0.25 recall 0.5"


def test_write_json_replaces_the_file_whole(tmp_path):
  path = str(tmp_path / "eval.json")
  sample_quality.write_json(path, {"fid": 1.0})
  sample_quality.write_json(path, {"fid": 2.0, "recall": 0.5})
  assert sample_quality.read_json(str(tmp_path)) == {"fid": 2.0, "recall": 0.5}
  assert os.listdir(tmp_path) == ["eval.json"]
  assert sample_quality.read_json(str(tmp_path / "nothing")) is None


def run_evaluate(*args):
  command = [sys.executable, "evaluate.py", *args]
  return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
def test_evaluate_cli_on_a_run_prints_and_writes_the_evaluation_of_its_newest_checkpoint(evaluated_run):
  result = run_evaluate(f"--workdir={evaluated_run}", "--num_samples=100")
  assert result.returncode == 0, result.stderr[-3000:]
  printed = json.loads(result.stdout.splitlines()[0])
  assert printed["step"] == 16 and printed["epoch"] == 2.0 and printed["num_samples"] == 100
  assert printed["workdir"] == evaluated_run and 0 <= printed["label_agreement"] <= 1
  assert printed["sampling_batch_norm"] == "moving" and printed["sampling_latent_scale"] == 1.0
  with open(os.path.join(evaluated_run, "eval_step16.json")) as f:
    assert json.load(f) == printed
  assert printed["evaluator_sha256"] == sample_quality.read_json(evaluated_run)["evaluator_sha256"]


@pytest.mark.slow
def test_evaluate_cli_on_an_exported_dataset_scores_its_images_and_labels(evaluated_run, tmp_path):
  npz = str(tmp_path / "synthetic.npz")
  export.export_dataset(evaluated_run, npz, export.ExportOptions(num_per_class=10))
  result = run_evaluate(f"--npz={npz}")
  assert result.returncode == 0, result.stderr[-3000:]
  printed = json.loads(result.stdout.strip().splitlines()[-1])
  assert printed["npz"] == npz and printed["checkpoint_step"] == 16 and printed["num_samples"] == 100
  assert 0 <= printed["label_agreement"] <= 1 and math.isfinite(printed["fid"])
  with open(str(tmp_path / "synthetic.eval.json")) as f:
    assert json.load(f) == printed


@pytest.mark.slow
@pytest.mark.parametrize(
  "args, message",
  [
    ((), "error: pass exactly one of --workdir (a training run) and --npz (an exported dataset)"),
    (("--workdir=runs/a", "--npz=a.npz"), "error: pass exactly one of --workdir"),
    (("--workdir=runs/a", "--num_samples=5"), "error: --num_samples=5; it must be >= 10"),
  ],
)
def test_evaluate_cli_with_bad_arguments_fails_in_one_line(args, message):
  result = run_evaluate(*args)
  assert result.returncode != 0
  assert result.stderr.strip().splitlines()[-1].startswith(message), result.stderr[-2000:]
  assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_evaluate_cli_samples_with_the_noise_scale_asked_for_and_rejects_a_bad_one(evaluated_run, tmp_path):
  result = run_evaluate(f"--workdir={evaluated_run}", "--num_samples=100", "--latent_scale=1.5")
  assert result.returncode == 0, result.stderr[-3000:]
  with open(os.path.join(evaluated_run, "eval_step16_z1.5.json")) as f:  # beside, not over, eval_step16.json
    assert json.load(f)["sampling_latent_scale"] == 1.5
  out = str(tmp_path / "bad.json")
  result = run_evaluate(f"--workdir={evaluated_run}", "--latent_scale=0", f"--out={out}")
  assert result.returncode != 0 and "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1].startswith("error: config.sampling_latent_scale=0.0 is not allowed")


@pytest.mark.slow
@pytest.mark.parametrize(
  "out, message",
  [
    ("runs", "error: --out={tmp}/runs is a directory; give a file path"),
    ("some_file.txt/x.json", "error: --out={tmp}/some_file.txt/x.json is under {tmp}/some_file.txt, which is a file"),
  ],
)
def test_evaluate_cli_with_an_out_it_cannot_write_fails_in_one_line_before_evaluating(tmp_path, out, message):
  (tmp_path / "runs").mkdir()
  (tmp_path / "some_file.txt").write_text("a file")
  # The workdir is no run either: the --out error coming first shows the check runs before any loading.
  result = run_evaluate(f"--workdir={tmp_path}", f"--out={tmp_path}/{out}")
  assert result.returncode == 1 and "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1].startswith(message.format(tmp=tmp_path)), result.stderr[-2000:]
  assert sorted(os.listdir(tmp_path)) == ["runs", "some_file.txt"] and not os.listdir(tmp_path / "runs")


# Runs evaluate.py with os.access answering "not writable" for one directory: a read-only workdir as a user sees
# it, also as root (who may write anywhere, so chmod cannot make one).
_READ_ONLY_EVALUATE = """
import os, runpy, sys
access, read_only = os.access, os.path.abspath(sys.argv.pop(1))
def user_access(path, mode, **kwargs):
  return False if os.path.abspath(path) == read_only and mode & os.W_OK else access(path, mode, **kwargs)
os.access, sys.argv[0] = user_access, "evaluate.py"
runpy.run_path("evaluate.py", run_name="__main__")
"""


@pytest.mark.slow
def test_evaluate_cli_without_out_on_a_read_only_workdir_fails_in_one_line_before_evaluating(evaluated_run):
  before = sorted(os.listdir(evaluated_run))
  command = [sys.executable, "-c", _READ_ONLY_EVALUATE, evaluated_run, f"--workdir={evaluated_run}"]
  result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
  out = os.path.join(evaluated_run, "eval_step16.json")
  message = f"error: the default --out={out}: directory {evaluated_run} is not writable; give a file path"
  assert result.stderr.strip().splitlines()[-1].startswith(message), result.stderr[-2000:]
  assert not result.stdout.strip() and sorted(os.listdir(evaluated_run)) == before  # nothing evaluated or written


@pytest.mark.slow
def test_evaluate_cli_creates_the_missing_directories_of_its_out(evaluated_run, tmp_path):
  out = tmp_path / "new" / "dir" / "eval.json"
  result = run_evaluate(f"--workdir={evaluated_run}", "--num_samples=100", f"--out={out}")
  assert result.returncode == 0, result.stderr[-3000:]
  with open(out) as f:
    assert json.load(f) == json.loads(result.stdout.splitlines()[0])
  assert os.listdir(out.parent) == ["eval.json"]  # and no temporary file beside it


@pytest.mark.slow  # 500 training steps in-process
def test_a_briefly_trained_conditional_generator_draws_the_digits_it_is_asked_for(tmp_path, real_mnist_data_dir):
  """500 steps of a narrow cGAN (configs/cgan.py with DCGAN's Adam 2e-4, b1 0.5) on real MNIST: the shipped
  evaluator reads most samples as their intended digit. Measured on a 2-core CPU (~25 s of training): label
  agreement 0.52-0.62 over seeds 0-4 (0.556 for seed 0); 0.1 (chance) with cgan.py's own Adam 1e-4."""
  config = cgan.get_config()
  config.data_dir, config.download = real_mnist_data_dir, False
  config.generator_features, config.critic_features, config.batch_size = (32, 32, 16), (16, 32), 64
  config.generator_optimizer, config.critic_optimizer = default.adam(2e-4, b1=0.5), default.adam(2e-4, b1=0.5)
  config.num_devices = 1  # a few hundred tiny steps: sharding them over fake CPU devices only costs time
  config.num_train_steps, config.checkpoint_every_steps, config.log_every_steps = 500, 500, 100
  config.sample_epochs, config.eval_at_end = (), False
  state = train.train_and_evaluate(config, str(tmp_path / "cgan"))
  setup = generation.load_run(str(tmp_path / "cgan")).setup
  labels = conditioning.balanced_labels(500, 10)
  images = generation.generate(setup, state, jax.random.key(1), 500, labels)
  predicted = evaluator_lib.load().probabilities(images).argmax(-1)
  assert metrics.label_agreement(predicted, labels) > 0.3
  assert metrics.label_agreement(predicted, (labels + 1) % 10) < 0.2  # the labels matter, not only realism
  assert np.bincount(predicted, minlength=10).min() > 0  # every digit is drawn


def test_cas_if_adds_the_cas_of_the_same_samples_without_evaluating_them_again(tiny_run, monkeypatch):
  """evaluate_state's cas_if (time to quality: CAS only once the other targets hold) gives what eval_cas gives,
  from one evaluation of the samples; the classifier CAS trains is faked (minutes on a CPU)."""
  run = generation.load_run(tiny_run.workdir)
  config = run.config.copy_and_resolve_references()
  config.eval_num_samples = 100
  evaluation = sample_quality.Evaluation.create(config)
  trained, evaluated = [], []
  monkeypatch.setattr(classifiers, "classification_accuracy_score", lambda *args: trained.append(args) or 0.5)
  evaluate_samples = metrics.evaluate_samples
  monkeypatch.setattr(metrics, "evaluate_samples", lambda *a, **k: evaluated.append(1) or evaluate_samples(*a, **k))
  evaluate = lambda **kw: evaluation.evaluate_state(run.setup, run.state, config, jax.random.key(3), **kw)  # noqa: E731
  config.eval_cas = True
  with_cas = evaluate()
  config.eval_cas = False
  assert "cas" not in evaluate(cas_if=lambda result: False) and len(trained) == 1
  seen = []
  assert evaluate(cas_if=lambda result: seen.append(dict(result)) or True) == with_cas
  assert len(evaluated) == 3 and "cas" not in seen[0] and seen[0]["fid"] == with_cas["fid"]
  as_arrays = lambda args: [*map(np.asarray, args[:4]), jax.random.key_data(args[4])]  # noqa: E731
  for once, again in zip(*map(as_arrays, trained), strict=True):  # the same samples, labels, test set and key
    np.testing.assert_array_equal(once, again)
