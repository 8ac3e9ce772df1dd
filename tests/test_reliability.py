"""What a run guarantees when things go wrong: one writer per workdir, a failed start that changes nothing,
resumes that refuse a different run, verified checkpoints, divergence caught early, clean stops on signals."""

import hashlib
import json
import logging
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import jax
import ml_collections
import numpy as np
import pytest
from conftest import REPO

from configs import tiny

from ganjax import periodic, progress, saved_run, train
from ganjax import workdir as workdir_lib
from ganjax.data import mnist
from ganjax.errors import ConfigError, DataError, TrainingDiverged, WorkdirError
from ganjax.synth import generation


def snapshot(directory) -> dict[str, str]:
  """sha256 of every file under `directory`, the lock file included."""
  digests = {}
  for root, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      digests[os.path.relpath(path, directory)] = hashlib.sha256(open(path, "rb").read()).hexdigest()
  return digests


def records(workdir) -> list[dict]:
  timing = ("images_per_sec", "steps_per_sec")
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [{k: v for k, v in json.loads(line).items() if k not in timing} for line in f]


@pytest.fixture(scope="module")
def four_steps(tmp_path_factory, mnist_data_dir) -> str:
  """A finished run of tiny_config with num_train_steps=4, trained once for the tests that refuse to resume it.
  Read-only: they work on a copy (four_step_run)."""
  config = tiny.get_config()
  config.data_dir, config.download, config.num_train_steps = mnist_data_dir, False, 4
  workdir = str(tmp_path_factory.mktemp("four_steps") / "run")
  train.train_and_evaluate(config, workdir)
  return workdir


@pytest.fixture
def four_step_run(four_steps, tmp_path) -> str:
  """A copy of four_steps at tmp_path/run: what `tiny_config.num_train_steps = 4` and a run into it leave."""
  workdir = str(tmp_path / "run")
  shutil.copytree(four_steps, workdir)
  return workdir


def test_a_second_writer_is_refused_and_changes_nothing(four_step_run, tiny_config):
  workdir = four_step_run
  tiny_config.num_train_steps = 4
  before = snapshot(workdir)
  with workdir_lib.WorkdirLock(workdir):  # another run holding the workdir
    tiny_config.num_train_steps, tiny_config.seed = 8, 3
    with pytest.raises(WorkdirError, match=f"workdir '{workdir}' is in use by pid {os.getpid()} on "):
      train.train_and_evaluate(tiny_config, workdir)
  assert snapshot(workdir) == before


@pytest.mark.parametrize(
  "field, value, error, message",
  [
    ("generator_features", (16, 8, 4), ConfigError, r"config.generator_features=\(16, 8, 4\) but the run in"),
    ("loss", "wgan_gp", ConfigError, "config.loss='wgan_gp' but the run in .* was started with 'non_saturating'"),
    ("seed", 5, ConfigError, "config.seed=5 but the run in .* was started with 0"),
    ("num_devices", 64, ConfigError, "config.num_devices=64 but only"),
    ("data_dir", "/nonexistent/tfds", DataError, "MNIST is not prepared in data dir '/nonexistent/tfds'"),
  ],
)
def test_a_failed_start_leaves_the_workdir_byte_identical(four_step_run, tiny_config, field, value, error, message):
  workdir = four_step_run
  tiny_config.num_train_steps = 4
  with open(os.path.join(workdir, workdir_lib.LOCK_FILE), "w") as f:  # what a run killed -9 leaves
    f.write("pid 1 on an earlier host (started 2026-01-01T00:00:00+00:00)\n")
  before = snapshot(workdir)
  tiny_config.num_train_steps, tiny_config.download = 8, False
  tiny_config[field] = value
  with pytest.raises(error, match=message):
    train.train_and_evaluate(tiny_config, workdir)
  assert snapshot(workdir) == before


@pytest.mark.parametrize(
  "field, value, message",
  [
    ("seed", 5, "config.seed=5 but the run in .* was started with 0"),
    ("loss", "wgan_gp", "config.loss='wgan_gp' but the run in .* was started with 'non_saturating'"),
  ],
)
def test_without_config_json_a_resume_is_checked_against_the_checkpoints_record(
  four_step_run, tiny_config, field, value, message
):
  workdir = four_step_run
  tiny_config.num_train_steps = 4
  os.remove(os.path.join(workdir, "config.json"))
  before = snapshot(workdir)
  tiny_config.num_train_steps = 8
  tiny_config[field] = value
  with pytest.raises(ConfigError, match=message):
    train.train_and_evaluate(tiny_config, workdir)
  assert snapshot(workdir) == before


def test_a_record_from_before_checkpoints_held_the_config_is_checked_by_its_seed(tiny_config):
  saved_run.check_record({"step": 4, "seed": 0}, tiny_config, "run")
  tiny_config.seed = 5
  with pytest.raises(ConfigError, match="config.seed=5 but the run in run was started with 0"):
    saved_run.check_record({"step": 4, "seed": 0}, tiny_config, "run")


def test_a_refused_resume_and_a_held_lock_are_reported_before_the_data_is_loaded(
  four_step_run, tiny_config, monkeypatch
):
  workdir = four_step_run
  tiny_config.num_train_steps = 4

  def load_split(*args):
    raise AssertionError("MNIST was loaded before the workdir was checked")

  monkeypatch.setattr(mnist, "load_split", load_split)
  tiny_config.seed = 5
  with pytest.raises(ConfigError, match="config.seed=5 but the run in"):
    train.train_and_evaluate(tiny_config, workdir)
  with workdir_lib.WorkdirLock(workdir), pytest.raises(WorkdirError, match="is in use by"):
    train.train_and_evaluate(tiny_config, workdir)


def test_a_run_names_itself_in_the_lock_file_only_once_it_is_known_to_start(tmp_path, tiny_config, monkeypatch):
  """A kill -9 while the data loads and the models build (the slow part of a start) leaves .lock as it was."""
  lock_file = tmp_path / saved_run.LOCK_FILE
  stale = "pid 1 on an earlier host (started 2026-01-01T00:00:00+00:00)\n"  # left by a run killed -9
  lock_file.write_text(stale)
  seen = []
  load_split = mnist.load_split
  monkeypatch.setattr(mnist, "load_split", lambda *args: seen.append(lock_file.read_text()) or load_split(*args))
  experiment = train.build(tiny_config, str(tmp_path))
  try:
    assert seen == [stale] and lock_file.read_text().startswith(f"pid {os.getpid()} on ")
  finally:
    train.release(experiment)
  assert lock_file.read_text() == stale


def test_a_damaged_metrics_record_refuses_the_resume_before_anything_is_rewritten(four_step_run, tiny_config):
  workdir = pathlib.Path(four_step_run)
  tiny_config.num_train_steps = 4
  path = workdir / "metrics.jsonl"
  lines = path.read_bytes().split(b"\n")
  path.write_bytes(b"\n".join([lines[0][:-5], *lines[1:]]))  # the first of two records cut short
  before = snapshot(workdir)
  tiny_config.num_train_steps = 8  # a resume that would rewrite config.json
  with pytest.raises(WorkdirError, match="metrics.jsonl line 1 is not a JSON record"):
    train.train_and_evaluate(tiny_config, str(workdir))
  assert snapshot(workdir) == before


@pytest.mark.slow  # trains and resumes in-process; the fast loop keeps the refused resumes
def test_a_byte_flipped_checkpoint_falls_back_to_the_previous_one_and_the_run_ends_the_same(tmp_path, tiny_config):
  tiny_config.num_train_steps = 8
  expected = train.train_and_evaluate(tiny_config, str(tmp_path / "straight"))
  workdir = tmp_path / "run"
  train.train_and_evaluate(tiny_config, str(workdir))
  data = [os.path.join(root, n) for root, _, names in os.walk(workdir / "checkpoints" / "8" / "state") for n in names]
  largest = max(data, key=os.path.getsize)
  size = os.path.getsize(largest)
  with open(largest, "r+b") as f:
    f.seek(size // 2)
    f.write(np.random.default_rng(0).integers(0, 256, min(4096, size // 4), dtype=np.uint8).tobytes())
  tiny_config.num_train_steps = 12
  tiny_config_straight = tiny_config.copy_and_resolve_references()
  state = train.train_and_evaluate(tiny_config, str(workdir))  # step 8 is corrupt: resumes from 4
  expected = train.train_and_evaluate(tiny_config_straight, str(tmp_path / "straight"))
  jax.tree.map(np.testing.assert_array_equal, state, expected)
  assert os.path.isdir(str(workdir / "checkpoints") + "-unreadable/8")


@pytest.mark.slow  # trains and resumes in-process; the fast loop keeps the refused resumes
def test_metric_records_after_a_resume_are_those_of_an_uninterrupted_run(tmp_path, tiny_config):
  tiny_config.num_train_steps, tiny_config.log_every_steps, tiny_config.checkpoint_every_steps = 12, 3, 6
  train.train_and_evaluate(tiny_config, str(tmp_path / "straight"))
  tiny_config.num_train_steps = 6
  train.train_and_evaluate(tiny_config, str(tmp_path / "resumed"))
  tiny_config.num_train_steps = 12
  train.train_and_evaluate(tiny_config, str(tmp_path / "resumed"))
  straight, resumed = records(tmp_path / "straight"), records(tmp_path / "resumed")
  assert [r["step"] for r in straight] == [3, 6, 9, 12]
  assert resumed == straight


@pytest.mark.slow  # trains and resumes in-process; the fast loop keeps the refused resumes
def test_a_resume_drops_a_torn_last_metrics_record_with_one_warning(tmp_path, tiny_config, caplog):
  workdir = tmp_path / "run"
  tiny_config.num_train_steps = 8
  train.train_and_evaluate(tiny_config, str(workdir))
  path = workdir / "metrics.jsonl"
  with open(path, "r+b") as f:  # what a power cut mid-append leaves: the last record cut short
    f.truncate(os.path.getsize(path) - 60)
  tiny_config.num_train_steps = 12
  with caplog.at_level(logging.WARNING):
    train.train_and_evaluate(tiny_config, str(workdir))
  assert [r["step"] for r in records(workdir)] == [2, 4, 6, 10, 12]  # step 8's record is lost, the rest kept
  dropped = [r.getMessage() for r in caplog.records if "metrics.jsonl" in r.getMessage()]
  assert dropped == [f"dropped the last record of {path}: it was cut short (a write interrupted by a crash)"]


def test_a_loss_beyond_the_divergence_bound_stops_the_run_before_a_checkpoint(tmp_path, tiny_config):
  workdir = tmp_path / "run"
  tiny_config.num_train_steps, tiny_config.divergence_bound = 8, 1e-3  # any real loss is beyond it
  with pytest.raises(TrainingDiverged, match=r"diverged before step 2: .*\(config.divergence_bound=0.001\); the last"):
    train.train_and_evaluate(tiny_config, str(workdir))
  assert not os.listdir(workdir / "checkpoints")


@pytest.mark.slow  # trains and resumes in-process; the fast loop keeps the refused resumes
def test_divergence_after_resuming_an_unverified_checkpoint_names_it_unverified_not_good(tmp_path, tiny_config):
  workdir = tmp_path / "run"
  tiny_config.num_train_steps = 8
  train.train_and_evaluate(tiny_config, str(workdir))
  path = workdir / "checkpoints" / "8" / os.path.join(*saved_run.RECORD_FILE)
  record = json.loads(path.read_text())
  path.write_text(json.dumps({k: v for k, v in record.items() if not k.endswith("sha256")}))  # saved before checksums
  tiny_config.num_train_steps, tiny_config.divergence_bound = 12, 1e-3  # the first record after 8 diverges
  with pytest.raises(TrainingDiverged, match=r"diverged before step 10: ") as diverged:
    train.train_and_evaluate(tiny_config, str(workdir))
  assert "(step 8, unverified: saved before checksums)" in str(diverged.value), diverged.value
  assert "good" not in str(diverged.value)


def test_the_progress_line_of_the_step_a_signal_stops_at_is_printed_once(caplog):
  caplog.set_level(logging.INFO, logger="absl")
  config = ml_collections.ConfigDict(
    dict(batch_size=10, num_critic_steps=1, progress_every_seconds=30.0, divergence_bound=1e6)
  )
  schedule = periodic.Schedule(100, 50, 100, (), 0, False)

  class Writer:
    def write(self, step, scalars):
      written.append(step)

  written = []
  start = periodic.Position(0, 0, 4)
  report = progress.ReportProgress(config, schedule, start, Writer(), None, "/nowhere")
  before, after = start, start.advance(1)
  report(before, after, None, {"critic_loss": jax.numpy.float32(1.0)})  # the first step: a progress line
  report.stop(after, None)  # SIGTERM after it: its record, not a second line of the same step
  lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
  assert written == [1] and [line.split()[1] for line in lines] == ["1/100"], lines


def run_until_signalled(workdir, data_dir, signal_number, *overrides) -> subprocess.CompletedProcess:
  """main.py on the tiny config, sent `signal_number` once it has written a metrics record (mid-training)."""
  command = [sys.executable, "main.py", "--config=configs/tiny.py", f"--workdir={workdir}"]
  command += [f"--config.data_dir={data_dir}", "--config.progress_every_seconds=0", *overrides]
  process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 240
  metrics = os.path.join(workdir, "metrics.jsonl")
  while time.time() < deadline and not (os.path.exists(metrics) and os.path.getsize(metrics) > 0):
    time.sleep(0.1)
  process.send_signal(signal_number)
  stdout, stderr = process.communicate(timeout=240)
  return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@pytest.mark.slow
@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_after_the_step_with_a_checkpoint_and_the_rerun_ends_bit_identical(
  tmp_path, mnist_data_dir, signal_number
):
  overrides = ("--config.num_train_steps=400", "--config.checkpoint_every_steps=1000", "--config.log_every_steps=2")
  stopped = run_until_signalled(str(tmp_path / "run"), mnist_data_dir, signal_number, *overrides)
  assert stopped.returncode == 128 + signal_number, stopped.stderr[-2000:]
  last = stopped.stderr.strip().splitlines()[-1]
  assert last.startswith("stopped at step ") and last.endswith("; rerun the same command to resume"), last
  step = int(last.split()[3])
  assert 0 < step < 400 and os.listdir(tmp_path / "run" / "checkpoints") == [str(step)]

  def main(workdir):
    command = [sys.executable, "main.py", "--config=configs/tiny.py", f"--workdir={workdir}"]
    return subprocess.run(
      [*command, f"--config.data_dir={mnist_data_dir}", *overrides], cwd=REPO, capture_output=True, text=True
    )

  resumed = main(tmp_path / "run")
  assert resumed.returncode == 0 and f"resumed from step {step} " in resumed.stderr, resumed.stderr[-2000:]
  assert main(tmp_path / "straight").returncode == 0  # uninterrupted, with the same XLA flags as main.py's
  run, straight = generation.load_run(str(tmp_path / "run")), generation.load_run(str(tmp_path / "straight"))
  assert run.step == straight.step == 400
  jax.tree.map(np.testing.assert_array_equal, run.state, straight.state)
  final = [open(tmp_path / d / "samples" / "final.png", "rb").read() for d in ("run", "straight")]
  assert final[0] == final[1]


def corrupt_newest(workdir, step: int) -> None:
  data = [os.path.join(root, n) for root, _, names in os.walk(workdir / "checkpoints" / str(step)) for n in names]
  for path in data:
    if path.endswith("_METADATA") or os.path.basename(os.path.dirname(path)) == "d":
      with open(path, "r+b") as f:
        f.truncate(0)


@pytest.mark.slow  # trains and resumes in-process; the fast loop keeps the refused resumes
def test_readers_skip_a_corrupt_checkpoint_without_moving_it_and_config_json_is_world_readable(tmp_path, tiny_config):
  workdir = tmp_path / "run"
  tiny_config.num_train_steps = 8
  old_umask = os.umask(0o022)
  try:
    train.train_and_evaluate(tiny_config, str(workdir))
  finally:
    os.umask(old_umask)
  assert os.stat(workdir / "config.json").st_mode & 0o777 == 0o644  # evaluate.py run by another user reads it
  corrupt_newest(workdir, 8)
  run = generation.load_run(str(workdir))  # what evaluate.py and export.py do
  assert run.step == 4
  assert sorted(os.listdir(workdir / "checkpoints")) == ["4", "8"] and not os.path.exists(
    str(workdir / "checkpoints") + "-unreadable"
  )


@pytest.mark.slow  # trains and resumes in-process; the fast loop keeps the refused resumes
def test_the_same_step_moved_aside_twice_is_kept_twice_side_by_side(tmp_path, tiny_config):
  workdir = tmp_path / "run"
  tiny_config.num_train_steps = 8
  train.train_and_evaluate(tiny_config, str(workdir))
  for _ in range(2):  # corrupt step 8, let a run redo it from 4, corrupt it again
    corrupt_newest(workdir, 8)
    train.train_and_evaluate(tiny_config, str(workdir))
  assert sorted(os.listdir(str(workdir / "checkpoints") + "-unreadable")) == ["8", "8.1"]


def test_a_record_and_a_checkpoint_at_the_first_step_are_written_without_a_rate(tmp_path, tiny_config):
  workdir = tmp_path / "run"
  tiny_config.num_train_steps, tiny_config.log_every_steps, tiny_config.checkpoint_every_steps = 3, 1, 1
  train.train_and_evaluate(tiny_config, str(workdir))
  with open(workdir / "metrics.jsonl") as f:
    written = [json.loads(line) for line in f]
  assert [r["step"] for r in written] == [1, 2, 3]
  assert "images_per_sec" not in written[0] and written[1]["images_per_sec"] > 0  # step 1's time is compilation


ORBAX_DISK_FULL = (
  'RESOURCE_EXHAUSTED: Error writing "critic_params.Conv_0.kernel/0.0.0" in OCDBT database at local file "{d}/": '
  'Failed writing: "{d}/d/267f0a5b": Failed to write 248014 bytes to file 19: No space left on device '
  "[os_error_code='28']"
)


@pytest.mark.parametrize(
  "raised, path, size",
  [
    ("OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), WORKDIR + '/metrics.jsonl')", "metrics.jsonl", ""),
    ("ValueError(" + repr(ORBAX_DISK_FULL) + ".format(d=WORKDIR + '/checkpoints/8'))", "checkpoints/8/d/267f0a5b",
     r"248,014 bytes could not be written; "),
  ],
)
def test_a_full_disk_is_one_line_naming_the_path_without_a_traceback(tmp_path, raised, path, size):
  """What a run on a full disk ends with: an orbax background save (or a metrics append) failing with ENOSPC;
  the library's own error log of it and the exception it raises in the main thread become one line."""
  script = f"""
import errno, logging, os
from absl import logging as absl_logging
from ganjax import cli
absl_logging.use_absl_handler()  # as app.run does in main.py
WORKDIR = {str(tmp_path)!r}

def fill_the_disk():
  error = {raised}
  logging.getLogger("orbax.checkpoint").error("save failed", exc_info=error)  # a background thread's report
  try:
    raise error
  finally:
    raise RuntimeError("the clean-up failed too")  # e.g. waiting for the failed save

cli.run(fill_the_disk)
"""
  done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
  assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
  lines = done.stderr.strip().splitlines()
  assert len(lines) == 1, done.stderr
  assert re.fullmatch(
    rf"error: the disk is full writing {re.escape(str(tmp_path / path))} \({size}[\d,]+ bytes free there\); free "
    r"some space \(or use a --workdir on a disk with room\) and rerun the same command: the checkpoints already "
    r"written are kept",
    lines[0],
  ), lines[0]
