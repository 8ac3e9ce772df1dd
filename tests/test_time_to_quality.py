"""ganjax.studies.time_to_quality: which targets hold, CAS only once the others do, training time that leaves
evaluation out, the records, the stop where every target holds, and resuming."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import jax
import ml_collections
import pytest
from conftest import REPO

from ganjax import stopping
from ganjax.errors import ConfigError, WorkdirError
from ganjax.eval import sample_quality
from ganjax.studies import time_to_quality as ttq
from ganjax.synth import generation

TARGETS = ttq.Targets()
UNCONDITIONAL = ("fid", "classifier_score", "recall", "min_class_share")
EVAL_SECONDS = 1000.0  # what a fake evaluation moves the fake clock by: far more than the tiny run trains


def at_targets(targets: ttq.Targets, conditional: bool, **changes) -> dict:
  """A fake evaluation result with every metric exactly at its target (which counts as met), then `changes`."""
  names = UNCONDITIONAL + (("label_agreement",) if conditional else ())
  return {name: getattr(targets, name) for name in names} | {"num_samples": 100.0} | changes


def test_targets_hold_at_their_bounds_and_cas_stays_unchecked_until_computed():
  assert TARGETS.fid == pytest.approx(8 * 1.90)  # docs/recipes.md: 8x the real-data floor at 10k samples
  result = at_targets(TARGETS, conditional=True)
  assert TARGETS.check(result) == {name: True for name in UNCONDITIONAL + ("label_agreement",)} | {"cas": None}
  assert TARGETS.others_hold(result) and not TARGETS.all_met(result)
  assert TARGETS.all_met(result | {"cas": TARGETS.cas}) and not TARGETS.all_met(result | {"cas": TARGETS.cas - 1e-3})
  for name, worse in [("fid", TARGETS.fid + 1e-3), ("recall", TARGETS.recall - 1e-3), ("fid", math.nan)]:
    checks = TARGETS.check(result | {name: worse})
    assert checks[name] is False and not TARGETS.others_hold(result | {name: worse})
    assert [n for n, met in checks.items() if met is False] == [name]
  assert TARGETS.short_by("fid", TARGETS.fid + 2) == pytest.approx(2)
  assert TARGETS.short_by("label_agreement", 0.9) == pytest.approx(TARGETS.label_agreement - 0.9)
  unconditional = at_targets(TARGETS, conditional=False)
  assert list(TARGETS.check(unconditional)) == list(UNCONDITIONAL) and TARGETS.all_met(unconditional)


def test_cadence_is_due_by_steps_by_training_seconds_or_at_the_time_limit():
  by_steps, by_time = ttq.Cadence(every_seconds=0, every_steps=4), ttq.Cadence(every_seconds=30, max_train_seconds=100)
  assert [by_steps.due(n, 1e6, 1e6) for n in (3, 4, 5)] == [False, True, True]
  assert [by_time.due(1000, s, s) for s in (29.9, 30.0)] == [False, True]
  assert by_time.due(1, 1.0, 100.0) and not by_time.due(1, 1.0, 99.9)


class FakeEvaluation:
  """evaluate_state returns the result the test sets (with CAS when the config asks for it, or when a labelled
  result meets cas_if) and records how it was asked: (samples, CAS, naming)."""

  def __init__(self):
    self.result, self.calls = {}, []

  def evaluate_state(self, setup, state, config, key, naming=None, cas_if=None):
    self.calls.append((config.eval_num_samples, config.eval_cas, naming))
    cas = config.eval_cas or ("label_agreement" in self.result and cas_if is not None and cas_if(self.result))
    return dict(self.result) | ({"cas": 0.5} if cas else {})


def test_quality_is_the_runs_own_evaluation_and_cas_only_when_every_other_target_holds():
  evaluation, key = FakeEvaluation(), jax.random.key(0)
  config = ml_collections.ConfigDict(dict(eval_num_samples=7, eval_cas=True))
  prepared = []
  prepare = lambda: prepared.append(1) or "the naming"  # noqa: E731
  quality = ttq.GeneratorQuality(evaluation, None, config, TARGETS, 20, key, prepare)
  evaluation.result = at_targets(TARGETS, conditional=True, recall=TARGETS.recall - 0.1)
  assert "cas" not in quality(state=None) and evaluation.calls == [(20, False, "the naming")]
  evaluation.result = at_targets(TARGETS, conditional=True)
  assert quality(state=None)["cas"] == 0.5  # CAS of the same samples, in the one evaluation
  assert evaluation.calls[1:] == [(20, False, "the naming")] and prepared == [1]
  assert (config.eval_num_samples, config.eval_cas) == (7, True)  # the run's config is left as it was
  evaluation.calls, evaluation.result = [], at_targets(TARGETS, conditional=False)
  assert "cas" not in ttq.GeneratorQuality(evaluation, None, config, TARGETS, 20, key)(state=None)
  assert evaluation.calls == [(20, False, None)]


class FakeClock:
  """perf_counter plus the seconds the fake evaluations 'took'."""

  def __init__(self):
    self.offset = 0.0

  def __call__(self) -> float:
    return time.perf_counter() + self.offset


def fake_quality(clock: FakeClock, steps: list[int], met_at: int | None = None, interrupt_at: int | None = None):
  """Each evaluation takes EVAL_SECONDS on `clock`; every target holds from the `met_at`-th one on."""

  def quality(state) -> dict:
    steps.append(int(state.step))
    if len(steps) == interrupt_at:
      raise KeyboardInterrupt
    clock.offset += EVAL_SECONDS
    met = met_at is not None and len(steps) >= met_at
    return at_targets(TARGETS, conditional=False, fid=TARGETS.fid * (1 if met else 2))

  return quality


def read_records(out_dir) -> list[dict]:
  with open(os.path.join(out_dir, ttq.RECORDS_FILE)) as f:
    return [json.loads(line) for line in f]


@pytest.mark.slow
def test_training_time_leaves_evaluation_out_and_the_run_stops_where_every_target_holds(tiny_config, tmp_path, capsys):
  clock, steps = FakeClock(), []
  workdir, out_dir = str(tmp_path / "run"), str(tmp_path / "out")
  cadence = ttq.Cadence(every_seconds=0, every_steps=4)
  quality = fake_quality(clock, steps, met_at=3)
  summary = ttq.time_to_quality(tiny_config, workdir, out_dir, cadence, 100, name="tiny", quality=quality, clock=clock)
  assert steps == [4, 8, 12]  # stopped at the third evaluation, before the config's 16 steps
  records = read_records(out_dir)
  assert [(r["step"], r["epoch"], r["all_met"]) for r in records] == [(4, 0.5, False), (8, 1.0, False), (12, 1.5, True)]
  for record in records:
    assert {"step", "epoch", "train_seconds", "eval_seconds", "first_step_seconds", "targets", "all_met"} <= set(record)
    assert record["eval_seconds"] >= EVAL_SECONDS and record["fid"] in (TARGETS.fid, 2 * TARGETS.fid)
  train_seconds = [r["train_seconds"] for r in records]
  assert 0 < records[0]["first_step_seconds"] <= train_seconds[0] < train_seconds[1] < train_seconds[2] < EVAL_SECONDS
  assert records[0]["targets"] == {"fid": False, "classifier_score": True, "recall": True, "min_class_share": True}
  assert summary["reached"] and summary["step"] == 12 and summary["train_seconds"] == train_seconds[2]
  assert summary["evaluations"] == 3 and summary["eval_seconds"] >= 3 * EVAL_SECONDS
  assert summary["best"]["fid"]["short_by"] <= 0 and summary["hardware"]["cpu_count"] == os.cpu_count()
  assert generation.checkpoint_steps(workdir)[-1] == 12  # each evaluation's checkpoint: where a rerun resumes
  markdown = (tmp_path / "out" / ttq.SUMMARY_FILE).read_text()
  assert "every target met after" in markdown and jax.devices()[0].device_kind in markdown
  assert capsys.readouterr().out.count("s of training (+") == 3


@pytest.mark.slow
def test_an_interrupted_measurement_resumes_from_its_last_evaluation(tiny_config, tmp_path):
  workdir, out_dir, cadence = str(tmp_path / "run"), str(tmp_path / "out"), ttq.Cadence(every_seconds=0, every_steps=4)
  first_steps = []
  with pytest.raises(KeyboardInterrupt):
    ttq.time_to_quality(
      tiny_config, workdir, out_dir, cadence, 100, quality=fake_quality(FakeClock(), first_steps, 99, 2)
    )
  (first,) = read_records(out_dir)
  assert first_steps == [4, 8] and first["step"] == 4
  steps = []
  summary = ttq.time_to_quality(tiny_config, workdir, out_dir, cadence, 100, quality=fake_quality(FakeClock(), steps))
  records = read_records(out_dir)
  assert steps == [8, 12, 16] and [r["step"] for r in records] == [4, 8, 12, 16] and records[0] == first
  assert all(a["train_seconds"] < b["train_seconds"] for a, b in zip(records, records[1:]))
  assert records[1]["first_step_seconds"] > first["first_step_seconds"]  # compiled again on resuming
  assert not summary["reached"] and summary["stopped"] == "end of the config's training" and summary["step"] == 16
  with pytest.raises(ConfigError, match="--num_samples=50, but .* was measured with 100"):
    ttq.time_to_quality(tiny_config, workdir, out_dir, cadence, 50, quality=fake_quality(FakeClock(), []))
  with pytest.raises(WorkdirError, match="holds a measurement whose workdir is not this one"):
    ttq.time_to_quality(
      tiny_config, str(tmp_path / "other"), out_dir, cadence, 100, quality=fake_quality(FakeClock(), [])
    )
  assert not os.path.exists(tmp_path / "other")  # refused before the workdir is touched


@pytest.mark.slow
def test_the_measurement_is_the_runs_own_loop_with_grids_and_a_clean_stop_on_sigterm(tiny_config, tmp_path):
  workdir, out_dir, cadence = str(tmp_path / "run"), str(tmp_path / "out"), ttq.Cadence(every_seconds=0, every_steps=4)
  steps = []
  quality = fake_quality(FakeClock(), steps)

  def terminated_at_the_second(state):
    if len(steps) == 1:
      os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler's preemption would, during the second evaluation
    return quality(state)

  with pytest.raises(stopping.RunStopped, match="stopped at step 8 \\(SIGTERM\\)"):
    ttq.time_to_quality(tiny_config, workdir, out_dir, cadence, 100, quality=terminated_at_the_second)
  assert [r["step"] for r in read_records(out_dir)] == [4, 8] and generation.checkpoint_steps(workdir)[-1] == 8
  assert os.listdir(os.path.join(workdir, "samples")) == ["epoch_001.png"]  # 1 epoch = 8 steps; no final yet
  ttq.time_to_quality(tiny_config, workdir, out_dir, cadence, 100, quality=fake_quality(FakeClock(), steps))
  assert steps == [4, 8, 12, 16] and [r["step"] for r in read_records(out_dir)] == [4, 8, 12, 16]
  assert sorted(os.listdir(os.path.join(workdir, "samples"))) == ["epoch_001.png", "final.png"]


@pytest.mark.slow
def test_a_few_labels_run_is_measured_as_it_trains(tiny_config, tmp_path):
  tiny_config.conditioning, tiny_config.num_clusters, tiny_config.labels_per_class = "few_labels", 10, 3
  tiny_config.num_train_steps, cadence, steps = 4, ttq.Cadence(every_seconds=0, every_steps=4), []
  out_dir = str(tmp_path / "out")
  quality = fake_quality(FakeClock(), steps)
  ttq.time_to_quality(tiny_config, str(tmp_path / "run"), out_dir, cadence, 100, quality=quality)
  assert steps == [4] and [r["step"] for r in read_records(out_dir)] == [4]


@pytest.mark.slow
def test_real_evaluations_match_the_runs_own_and_report_how_far_from_the_targets(tiny_config, tmp_path):
  workdir, out_dir = str(tmp_path / "run"), str(tmp_path / "out")
  evaluation = sample_quality.Evaluation.create(tiny_config)
  cadence = ttq.Cadence(every_seconds=0, every_steps=8)
  summary = ttq.time_to_quality(tiny_config, workdir, out_dir, cadence, 100, evaluation=evaluation)
  records = read_records(out_dir)
  assert [r["step"] for r in records] == [8, 16] and not summary["reached"]
  for record in records:
    assert all(math.isfinite(record[name]) for name in UNCONDITIONAL) and record["num_samples"] == 100
    assert list(record["targets"]) == list(UNCONDITIONAL) and record["all_met"] is False
  fid_target = 8 * ttq.real_data_fid_floor(evaluation, tiny_config, 100)  # the floor at this sample size
  best = min(records, key=lambda r: r["fid"])
  assert summary["best"]["fid"]["value"] == best["fid"] and summary["best"]["fid"]["step"] == best["step"]
  assert summary["best"]["fid"]["target"] == pytest.approx(fid_target)
  assert summary["best"]["fid"]["short_by"] == pytest.approx(best["fid"] - fid_target)
  # The same numbers as the run's own evaluation of its last state (same noise, sampling, metrics).
  run = generation.load_run(workdir)
  config = run.config.copy_and_resolve_references()
  config.eval_num_samples, config.eval_cas = 100, False
  key = jax.random.fold_in(jax.random.key(config.seed), 4)
  own = evaluation.evaluate_state(run.setup, run.state, config, key)
  assert own["fid"] == pytest.approx(records[-1]["fid"], rel=1e-4)
  assert own["recall"] == pytest.approx(records[-1]["recall"], abs=1e-6)


@pytest.mark.slow
def test_the_script_writes_both_files_and_a_bad_cadence_is_one_line(tiny_config, tmp_path):
  script = [sys.executable, os.path.join(REPO, "experiments", "time_to_quality.py"), "--config=configs/tiny.py"]
  args = [f"--config.data_dir={tiny_config.data_dir}", "--config.download=False", f"--workdir={tmp_path / 'run'}"]
  args += [f"--out_dir={tmp_path / 'out'}", "--num_samples=100"]
  done = subprocess.run(script + args + ["--eval_every_steps=8"], cwd=REPO, capture_output=True, text=True)
  assert done.returncode == 0, done.stderr[-2000:]
  assert len(read_records(tmp_path / "out")) == 2 and "tiny: not reached" in done.stdout
  bad = subprocess.run(script + args + ["--eval_every_seconds=0"], cwd=REPO, capture_output=True, text=True)
  assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1].startswith("error: give --eval_every_seconds")
