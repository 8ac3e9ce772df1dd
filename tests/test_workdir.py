"""One writer per workdir; a resumed run may change only what does not define it."""

import errno
import fcntl
import os
import socket
import stat
import subprocess
import sys

import pytest

from configs import default
from ganjax import saved_run
from ganjax import workdir as workdir_lib
from ganjax.errors import ConfigError, WorkdirError


def hold_lock(workdir) -> subprocess.Popen:
  """Another process holding the workdir's lock (until killed)."""
  holder = subprocess.Popen(
    [
      sys.executable,
      "-c",
      "import sys, time; from ganjax import workdir; lock = workdir.WorkdirLock(sys.argv[1]).acquire(); "
      "lock.name_holder(); "
      "print('locked', flush=True); time.sleep(60)",
      str(workdir),
    ],
    stdout=subprocess.PIPE,
    text=True,
    cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
  )
  assert holder.stdout.readline().strip() == "locked"
  return holder


def test_a_second_writer_is_refused_with_the_holder_named_and_the_lock_dies_with_its_holder(tmp_path):
  holder = hold_lock(tmp_path)
  try:
    with pytest.raises(WorkdirError, match=f"is in use by pid {holder.pid} on "):
      workdir_lib.WorkdirLock(str(tmp_path)).acquire()
  finally:
    holder.kill()  # as kill -9: no clean-up runs
    holder.wait()
  with workdir_lib.WorkdirLock(str(tmp_path)):  # the kernel released the dead holder's lock
    pass


def test_deleting_the_lock_file_does_not_let_a_second_writer_in(tmp_path):
  holder = hold_lock(tmp_path)
  try:
    os.remove(tmp_path / workdir_lib.LOCK_FILE)
    with pytest.raises(WorkdirError, match="is in use by another process"):
      workdir_lib.WorkdirLock(str(tmp_path)).acquire()
  finally:
    holder.kill()
    holder.wait()


def test_taking_and_releasing_the_lock_leaves_the_lock_file_as_it_was(tmp_path):
  lock_file = tmp_path / workdir_lib.LOCK_FILE
  with workdir_lib.WorkdirLock(str(tmp_path)):
    assert lock_file.read_text().startswith(f"pid {os.getpid()} on ")
  assert not lock_file.exists()
  lock_file.write_text("pid 1 on an earlier host (started 2026-01-01T00:00:00+00:00)\n")  # a run killed -9
  with workdir_lib.WorkdirLock(str(tmp_path)):
    assert lock_file.read_text().startswith(f"pid {os.getpid()} on ")
  assert lock_file.read_text() == "pid 1 on an earlier host (started 2026-01-01T00:00:00+00:00)\n"


def test_taking_the_lock_writes_nothing_until_the_holder_names_itself(tmp_path):
  """A run killed -9 while starting up (between acquire and name_holder) leaves .lock as it was."""
  lock_file = tmp_path / workdir_lib.LOCK_FILE
  lock = workdir_lib.WorkdirLock(str(tmp_path)).acquire()
  try:
    assert not lock_file.exists()
  finally:
    lock.release()
  lock_file.write_text("pid 1 on an earlier host (started 2026-01-01T00:00:00+00:00)\n")
  lock = workdir_lib.WorkdirLock(str(tmp_path)).acquire()
  try:
    assert lock_file.read_text() == "pid 1 on an earlier host (started 2026-01-01T00:00:00+00:00)\n"
    lock.name_holder()
    assert lock_file.read_text().startswith(f"pid {os.getpid()} on ")
  finally:
    lock.release()
  assert lock_file.read_text() == "pid 1 on an earlier host (started 2026-01-01T00:00:00+00:00)\n"


def test_a_second_writer_while_the_holder_starts_up_is_refused_without_naming_a_dead_run(tmp_path):
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
  stale = f"pid {dead.stdout.strip()} on {socket.gethostname()} (started 2026-01-01T00:00:00+00:00)\n"
  (tmp_path / workdir_lib.LOCK_FILE).write_text(stale)  # left by a run killed -9
  starting = workdir_lib.WorkdirLock(str(tmp_path)).acquire()  # a run starting up: holds the lock, not yet named
  try:
    with pytest.raises(WorkdirError, match="is in use by another process, a run starting up"):
      workdir_lib.WorkdirLock(str(tmp_path)).acquire()
  finally:
    starting.release()
  assert (tmp_path / workdir_lib.LOCK_FILE).read_text() == stale


def test_where_a_directory_cannot_be_locked_the_lock_file_is(tmp_path, monkeypatch):
  flock = fcntl.flock

  def no_directory_locks(fd, operation):  # as NFS: flock of a read-only descriptor fails
    if stat.S_ISDIR(os.fstat(fd).st_mode):
      raise OSError(errno.EBADF, "Bad file descriptor")
    return flock(fd, operation)

  monkeypatch.setattr(fcntl, "flock", no_directory_locks)
  with workdir_lib.WorkdirLock(str(tmp_path)):
    with pytest.raises(WorkdirError, match=f"is in use by pid {os.getpid()} on "):
      workdir_lib.WorkdirLock(str(tmp_path)).acquire()
  assert not (tmp_path / workdir_lib.LOCK_FILE).exists()


def test_resume_refuses_a_field_that_defines_the_run_and_allows_length_and_outputs(tmp_path):
  saved = default.get_config()
  config = default.get_config()
  config.num_epochs, config.eval_every_epochs, config.log_every_steps = 3, 1, 7
  saved_run.check_resume(saved, config, str(tmp_path))
  for field, value in (("seed", 5), ("loss", "wgan_gp"), ("conditioning", "digit"), ("batch_size", 64)):
    changed = default.get_config()
    changed[field] = value
    with pytest.raises(ConfigError, match=f"^config.{field}={value!r} but the run in .* was started with"):
      saved_run.check_resume(saved, changed, str(tmp_path))
  changed = default.get_config()
  changed.critic_optimizer.learning_rate = 2e-4  # a warm restart at another rate is the same run
  saved_run.check_resume(saved, changed, str(tmp_path))
  changed.critic_optimizer.b1 = 0.0  # another optimiser is not
  with pytest.raises(ConfigError, match="^config.critic_optimizer="):
    saved_run.check_resume(saved, changed, str(tmp_path))


def test_the_namer_s_fields_define_only_a_few_labels_run():
  """A run that has no namer resumes whatever its namer fields say (their default may change); a few_labels run
  whose namer would change is refused."""
  saved, config = default.get_config(), default.get_config()
  saved.self_training_labeller, saved.self_training_rounds = "classifier", 3
  saved_run.check_resume(saved, config, "/a/run")
  for run in (saved, config):
    run.conditioning, run.num_clusters, run.labels_per_class = "few_labels", 100, 10
  with pytest.raises(ConfigError, match="^config.self_training_labeller='spreading' but .* 'classifier'"):
    saved_run.check_resume(saved, config, "/a/run")
