"""One writer per workdir; a resumed run may change only what does not define it."""

import os
import subprocess
import sys

import pytest

from configs import default
from ganjax import saved_run
from ganjax import workdir as workdir_lib
from ganjax.errors import ConfigError, WorkdirError


def test_a_second_writer_is_refused_with_the_holder_named_and_the_lock_dies_with_its_holder(tmp_path):
  holder = subprocess.Popen(
    [
      sys.executable,
      "-c",
      "import sys, time; from ganjax import workdir; lock = workdir.WorkdirLock(sys.argv[1]).acquire(); "
      "print('locked', flush=True); time.sleep(60)",
      str(tmp_path),
    ],
    stdout=subprocess.PIPE,
    text=True,
    cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
  )
  try:
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(WorkdirError, match=f"is in use by pid {holder.pid} on "):
      workdir_lib.WorkdirLock(str(tmp_path)).acquire()
  finally:
    holder.kill()  # as kill -9: no clean-up runs
    holder.wait()
  with workdir_lib.WorkdirLock(str(tmp_path)):  # the kernel released the dead holder's lock
    pass


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
