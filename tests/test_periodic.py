"""The periodic actions of the training loop: when each fires, and the progress lines and metric records."""

import json
import logging
import os
import types

import jax
import jax.numpy as jnp
import ml_collections
import pytest

from ganjax import metric_writers, periodic, progress, train
from ganjax.eval import sample_quality


def brute_force_crossed(before, after, every):
  return [m for m in range(before + 1, after + 1) if every > 0 and m % every == 0]


def test_crossed_lists_the_boundaries_passed_between_two_positions():
  assert list(periodic.crossed(3, 4, 2)) == [4]
  assert not periodic.crossed(4, 5, 2)
  assert list(periodic.crossed(5, 11, 3)) == [6, 9]
  assert not periodic.crossed(0, 100, 0)  # every 0: off
  for every in range(0, 5):
    for before in range(0, 12):
      for after in range(before, before + 7):
        assert list(periodic.crossed(before, after, every)) == brute_force_crossed(before, after, every)


def fire(schedule: periodic.Schedule, per_epoch: int, num_critic_steps: int, start_step: int = 0) -> dict:
  """{action: [steps it fires after]} (grids: [(step, epoch)]) of a run simulated through the schedule."""
  fired = {"record": [], "checkpoint": [], "grids": [], "evaluate": []}
  position = periodic.Position(start_step, start_step * num_critic_steps, per_epoch)
  while position.step < schedule.total_steps:
    before, position = position, position.advance(num_critic_steps)
    for name in ("record", "checkpoint", "evaluate"):
      if getattr(schedule, name)(before, position):
        fired[name].append(position.step)
    fired["grids"] += [(position.step, epoch) for epoch in schedule.grid_epochs(before, position)]
  return fired


@pytest.mark.parametrize(
  "schedule, per_epoch, num_critic_steps, start_step, expected",
  [
    (  # configs/tiny.py with wgan_gp and 2 critic steps (tests/test_train.py's first run)
      periodic.Schedule(8, 2, 4, (1,), 0, False),
      8,
      2,
      0,
      {"record": [2, 4, 6, 8], "checkpoint": [4, 8], "grids": [(4, 1)], "evaluate": []},
    ),
    (  # 3 critic steps, 3 epochs of 8 batches: epochs end inside steps 3, 6 and at the last step 8
      periodic.Schedule(8, 2, 3, (1, 2, 3), 1, True),
      8,
      3,
      0,
      {
        "record": [2, 3, 4, 6, 8],
        "checkpoint": [3, 6, 8],
        "grids": [(3, 1), (6, 2), (8, 3)],
        "evaluate": [3, 6],  # not 8: the final evaluation follows
      },
    ),
    (  # the same, resumed at step 5, without a final evaluation
      periodic.Schedule(8, 2, 3, (1, 2, 3), 1, False),
      8,
      3,
      5,
      {"record": [6, 8], "checkpoint": [6, 8], "grids": [(6, 2), (8, 3)], "evaluate": [6, 8]},
    ),
    (  # an epoch of 2 batches, 5 critic steps: one step ends several epochs, and each grid is written once
      periodic.Schedule(2, 2, 500, (1, 2, 3, 4, 5, 6), 3, True),
      2,
      5,
      0,
      {"record": [2], "checkpoint": [2], "grids": [(1, 1), (1, 2), (2, 3), (2, 4), (2, 5)], "evaluate": []},
    ),
    (  # an evaluation every 2 epochs of 8 batches with 5 critic steps: after batches 20 and 40 (steps 4 and 7)
      periodic.Schedule(8, 3, 10, (), 2, True),
      8,
      5,
      0,
      {"record": [3, 6, 8], "checkpoint": [8], "grids": [], "evaluate": [4, 7]},
    ),
  ],
)
def test_the_schedule_fires_each_action_after_the_step_that_crossed_its_boundary(
  schedule, per_epoch, num_critic_steps, start_step, expected
):
  assert fire(schedule, per_epoch, num_critic_steps, start_step) == expected


class FakeWriter:
  def __init__(self):
    self.records = []

  def write(self, step, scalars):
    self.records.append({"step": step, **scalars})


class FakeClock:
  def __init__(self):
    self.now = 0.0

  def __call__(self):
    return self.now


def progress_lines(caplog) -> list[str]:
  return [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]


def test_progress_lines_come_every_few_seconds_and_metric_records_only_at_log_steps(caplog, monkeypatch):
  caplog.set_level(logging.INFO, logger="absl")
  config = ml_collections.ConfigDict(
    dict(batch_size=10, num_critic_steps=2, progress_every_seconds=10.0, divergence_bound=1e6)
  )
  schedule = periodic.Schedule(12, 6, 100, (), 0, False)
  writer, clock = FakeWriter(), FakeClock()
  start = periodic.Position(0, 0, 4)
  saver = types.SimpleNamespace(last_saved=None)
  training_clock = periodic.TrainingClock(clock)
  report = progress.ReportProgress(config, schedule, start, writer, saver, "/nowhere", clock=training_clock)
  fetches = []
  device_get = jax.device_get
  monkeypatch.setattr(jax, "device_get", lambda tree: fetches.append(1) or device_get(tree))
  position = start
  for step in range(1, 13):
    clock.now += 4.0  # each step takes 4 s
    before, position = position, position.advance(2)
    if step == 8:
      with training_clock.not_training():  # an evaluation: 100 s that are not training time
        clock.now += 100.0
    report(before, position, None, {"critic_loss": jnp.float32(step), "generator_loss": jnp.float32(-step)})
  lines = progress_lines(caplog)
  # After step 1 (its time left out), at log steps 6 and 12, and 10 s after the last line (and after
  # the evaluation); the time-based lines show the latest step's losses.
  assert [line.split()[1] for line in lines] == ["1/12", "4/12", "6/12", "8/12", "11/12", "12/12"]
  assert lines[0].endswith("critic_loss 1.0000 generator_loss -1.0000 | ? img/s | eta ?")
  assert "critic_loss 4.0000 generator_loss -4.0000 | 5 img/s | eta 0m32s" in lines[1]  # 3 steps in 12 s, x 20
  assert len(fetches) == len(lines)  # metrics leave the device only when a line is due
  assert [r["step"] for r in writer.records] == [6, 12]
  # The mean of steps 1..6: the first step's metrics count (a resumed run's records are an uninterrupted run's).
  assert writer.records[0]["critic_loss"] == pytest.approx(3.5)
  assert writer.records[0]["images_per_sec"] == pytest.approx(5 / 20 * 20)  # 5 steps in 20 s
  assert writer.records[1]["images_per_sec"] == pytest.approx(6 / 24 * 20)  # the 100 s evaluation is left out
  assert writer.records[1]["epoch"] == 6.0


def test_no_time_based_lines_when_progress_every_seconds_is_zero(caplog):
  caplog.set_level(logging.INFO, logger="absl")
  config = ml_collections.ConfigDict(
    dict(batch_size=10, num_critic_steps=1, progress_every_seconds=0.0, divergence_bound=1e6)
  )
  schedule = periodic.Schedule(6, 3, 100, (), 0, False)
  clock = FakeClock()
  start = periodic.Position(0, 0, 4)
  saver = types.SimpleNamespace(last_saved=None)
  report = progress.ReportProgress(
    config, schedule, start, FakeWriter(), saver, "/nowhere", clock=periodic.TrainingClock(clock)
  )
  position = start
  for step in range(1, 7):
    clock.now += 60.0
    before, position = position, position.advance(1)
    report(before, position, None, {"critic_loss": jnp.float32(step)})
  assert [line.split()[1] for line in progress_lines(caplog)] == ["3/6", "6/6"]


@pytest.mark.slow
def test_a_run_writes_grids_evaluations_checkpoints_and_records_after_the_steps_the_schedule_names(
  tmp_path, tiny_config, monkeypatch, caplog
):
  """3 critic steps over 3 epochs of 8 batches (epochs end inside steps), with time-based progress lines."""
  caplog.set_level(logging.INFO, logger="absl")
  fired = []

  class FakeEvaluation:  # the evaluator is not the point: which states are evaluated is
    @classmethod
    def create(cls, config):
      return cls()

    def evaluate_state(self, setup, state, config, key, naming=None):
      fired.append(("evaluate", int(state.step)))
      return {"fid": float(state.step)}

  save = periodic.SampleGrids.save
  monkeypatch.setattr(sample_quality, "Evaluation", FakeEvaluation)
  monkeypatch.setattr(
    periodic.SampleGrids,
    "save",
    lambda self, name, state: fired.append((name, int(state.step))) or save(self, name, state),
  )
  tiny_config.update(
    num_critic_steps=3,
    num_epochs=3,
    sample_epochs=(1, 2, 3),
    eval_every_epochs=1,
    eval_at_end=True,
    checkpoint_every_steps=3,
    keep_checkpoints=5,
    log_every_steps=4,
    progress_every_seconds=1e-9,
  )
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(tiny_config, workdir)
  assert fired == [
    ("epoch_001.png", 3),
    ("evaluate", 3),
    ("epoch_002.png", 6),
    ("evaluate", 6),
    ("epoch_003.png", 8),
    ("final.png", 8),
    ("evaluate", 8),  # the final evaluation, into eval.json
  ]
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints")), key=int) == ["3", "6", "8"]
  records = metric_writers.read_metrics(workdir)
  assert [(r["step"], "eval_fid" in r) for r in records] == [
    (3, False),  # before the checkpoint of step 3
    (3, True),
    (4, False),
    (6, False),
    (6, True),
    (8, False),
    (8, True),
  ]
  assert json.loads((tmp_path / "run" / "eval.json").read_text())["fid"] == 8.0
  # A progress line after every step, the time-based ones between the log steps; one line per step.
  assert [line.split()[1] for line in progress_lines(caplog)] == [f"{step}/8" for step in range(1, 9)]
