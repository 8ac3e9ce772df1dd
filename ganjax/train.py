"""train_and_evaluate(config, workdir): the training loop of a run, set up by `build` (which the benchmark
shares), with its side effects as the periodic actions of ganjax/periodic.py.

Writes to the workdir: config.json, checkpoints/ (orbax), metrics.jsonl, tensorboard/, samples/*.png and
losses.png. Rerunning with the same workdir resumes from the newest checkpoint that restores.
"""

import dataclasses
import functools
import os
import signal
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from ganjax import checkpoints as checkpoints_lib
from ganjax import conditioning, metric_writers, parallel, periodic, steps, stopping
from ganjax import config as config_lib
from ganjax import saved_run
from ganjax import workdir as workdir_lib
from ganjax.data import clusters, mnist
from ganjax.errors import WorkdirError


def open_workdir(workdir: str, is_main: bool) -> tuple[str, workdir_lib.WorkdirLock | None]:
  """The workdir's absolute path, created, and its lock (process 0 holds it for the run; WorkdirError if
  another run holds it or the directory cannot be written)."""
  workdir = os.path.abspath(workdir)
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise WorkdirError(f"cannot write to workdir {workdir!r}: {e.strerror}; choose a writable --workdir") from e
  return workdir, (workdir_lib.WorkdirLock(workdir).acquire() if is_main else None)


@dataclasses.dataclass(frozen=True)
class Experiment:
  """A run set up and ready to train: devices, data, the (restored) state and the compiled step.

  `state` is in the layout `train_step` takes, which donates it: the first step consumes it.
  """

  config: ml_collections.ConfigDict
  workdir: str
  devices: parallel.DataParallel
  setup: steps.GanSetup
  state: steps.TrainState
  start: periodic.Position  # where the restored checkpoint left off (step 0 for a new run)
  total_steps: int
  root_key: jax.Array  # the run's root key (the checkpoint's, when resumed)
  step_key: jax.Array  # the train step folds the step into it
  cluster_shares: np.ndarray | None  # each cluster's share of the training images (cluster conditioning)
  checkpoints: checkpoints_lib.Checkpoints
  lock: workdir_lib.WorkdirLock | None  # process 0's, held until the run ends
  shuffler: mnist.EpochShuffler
  dataset: tuple[jax.Array, jax.Array]  # every training image and label, on every device
  train_step: Callable  # (state, batch, step_key) -> (state, metrics), compiled for the devices
  prepare_naming: Callable[[], conditioning.Naming] | None  # a run that needs a naming: prepares it (minutes)

  @property
  def is_main(self) -> bool:
    return jax.process_index() == 0  # only process 0 writes logs, metrics, grids and plots

  @property
  def num_epochs(self) -> float:
    return self.total_steps * self.config.num_critic_steps / self.start.per_epoch

  def batch(self, position: periodic.Position) -> dict[str, jax.Array]:
    """The real batches of the generator step taken from `position`, in the layout `train_step` takes."""
    indices = self.shuffler.indices(position.batches, self.config.num_critic_steps)
    return self.devices.batch(*self.dataset, indices)


def build(
  config: ml_collections.ConfigDict,
  workdir: str,
  dataset: tuple[np.ndarray, np.ndarray] | None = None,
  prepare_naming: conditioning.PrepareNaming | None = None,
) -> Experiment:
  """Validate `config` and set up its run in `workdir`, resumed from the newest checkpoint there if any.

  `dataset` (uint8 images [N, 28, 28, 1], int labels [N]) replaces MNIST's training split (the benchmark's
  synthetic digits). A run whose conditioning needs a naming to sample digits gets it from `prepare_naming`
  (e.g. ganjax.few_labels.naming.load_or_build) when it first samples digits; its training does not use it.
  """
  config_lib.validate(config)
  parallel.initialize_distributed(config)
  is_main = jax.process_index() == 0
  if not is_main:
    logging.set_verbosity(logging.WARNING)  # one progress log per run, from process 0
  devices = parallel.DataParallel(config)  # what can fail without a workdir fails before it is touched
  setup = devices.make_setup(config)
  train_images, train_labels = dataset if dataset is not None else mnist.load_split(config, "train")
  total_steps = config_lib.total_train_steps(config, len(train_images))
  setup = dataclasses.replace(setup, total_steps=total_steps)  # the learning-rate decays run over the whole run
  workdir, lock = open_workdir(workdir, is_main)
  checkpoints = None
  try:
    checkpoints = checkpoints_lib.Checkpoints(
      os.path.join(workdir, saved_run.CHECKPOINTS_DIR), config.checkpoint_every_steps, config.keep_checkpoints
    )
    state, root_key, batches_consumed = _restore_or_start(config, workdir, setup, devices, checkpoints, is_main)
    labels_key = jax.random.fold_in(jax.random.key(config.seed), 5)
    digits = train_labels  # few_labels reads only its labelled few's
    train_labels, shares = clusters.training_labels(
      setup.conditioning, workdir, train_images, digits, labels_key, write=is_main
    )
    if shares is not None and not int(state.step):  # a resumed run keeps the shares of its checkpoint
      state = state.replace(cluster_shares=jnp.asarray(shares))
    if is_main:  # recorded only once the run is known to start
      saved_run.write_config(workdir, config)
  except BaseException:
    if checkpoints is not None:
      checkpoints.close()
    if lock is not None:
      lock.release()
    raise
  num_examples = len(train_images)
  experiment = Experiment(
    config=config,
    workdir=workdir,
    devices=devices,
    setup=setup,
    state=devices.put_state(state),
    start=periodic.Position(int(state.step), batches_consumed, config_lib.batches_per_epoch(config, num_examples)),
    total_steps=total_steps,
    root_key=root_key,
    step_key=jax.random.fold_in(root_key, 2),
    cluster_shares=None if state.cluster_shares is None else np.asarray(state.cluster_shares),
    checkpoints=checkpoints,
    lock=lock,
    shuffler=mnist.EpochShuffler(jax.random.fold_in(root_key, 1), num_examples, config.batch_size),
    dataset=devices.put_dataset(train_images, train_labels),
    train_step=devices.compile_train_step(setup),
    prepare_naming=(
      functools.partial(prepare_naming, workdir, config, train_images, digits, train_labels, write=is_main)
      if setup.conditioning.needs_naming and prepare_naming is not None
      else None
    ),
  )
  _log_start(experiment)
  return experiment


def _restore_or_start(config, workdir, setup, devices, checkpoints, is_main):
  """(state, root key, real batches consumed): the newest checkpoint that restores and verifies, else a new
  state. A resumed run must agree with the saved config on every field that defines the run."""
  root_key = jax.random.key(config.seed)
  state = steps.create_state(setup, jax.random.fold_in(root_key, 0))
  if not checkpoints.steps():
    return state, root_key, 0
  saved = saved_run.read_saved_config(workdir)
  if saved is not None:
    saved_run.check_resume(saved, config, workdir)
  if is_main:
    checkpoints.move_aside_incomplete()
  restored = checkpoints.restore_latest(devices.abstract_state(state))
  if restored is None:
    return state, root_key, 0
  state, record = restored
  logging.info("resumed from step %d (epoch %.2f) in %s", record["step"], record["epoch"], workdir)
  return state, checkpoints_lib.key_from_list(record["rng_key"]), record["batches_consumed"]


def _log_start(experiment: Experiment) -> None:
  config, devices = experiment.config, experiment.devices
  logging.info(
    "training %s for %d generator steps (%.2f epochs of %d batches of %d) from step %d on %d x %s (%s, %d process(es))",
    experiment.setup.objective.name,
    experiment.total_steps,
    experiment.num_epochs,
    experiment.start.per_epoch,
    config.batch_size,
    experiment.start.step,
    devices.num_devices,
    devices.devices[0].device_kind,
    devices.mode,
    jax.process_count(),
  )


def _stop_if_requested(stop, schedule, before, position, state, report, checkpoint) -> None:
  """After a SIGTERM / Ctrl-C: record the metrics, save a checkpoint (unless this step saved one) and stop."""
  signal_number = stop.requested(at_sync_point=schedule.record(before, position))
  if signal_number is None:
    return
  report.flush(position)
  if checkpoint.last_saved != position.step:
    checkpoint.save(position, state)
  raise stopping.RunStopped(
    f"stopped at step {position.step} ({signal.Signals(signal_number).name}); rerun the same command to resume",
    signal_number,
  )


def train_and_evaluate(
  config: ml_collections.ConfigDict,
  workdir: str,
  dataset=None,
  prepare_naming: conditioning.PrepareNaming | None = None,
) -> steps.TrainState:
  """Train (or resume) the run `config` describes in `workdir`; returns the final training state.

  A SIGTERM or Ctrl-C from here on stops the run after the step it is in, with a checkpoint (RunStopped).
  `dataset` (images, labels) replaces MNIST's training split and `prepare_naming` prepares the naming of a run
  that needs one, as in build(): at its first evaluation, else after its last step.
  """
  with stopping.StopRequests() as stop:
    return _train(build(config, workdir, dataset, prepare_naming), stop)


def periodic_actions(
  experiment: Experiment,
) -> tuple[periodic.Schedule, periodic.SaveCheckpoints, periodic.ReportProgress]:
  """What every training loop does around its steps: the schedule, checkpoints and the progress report
  (metrics.jsonl and TensorBoard from process 0)."""
  config, unreplicate = experiment.config, experiment.devices.unreplicate
  schedule = periodic.Schedule.from_config(config, experiment.total_steps)
  checkpoint = periodic.SaveCheckpoints(
    schedule, experiment.checkpoints, experiment.root_key, config.seed, experiment.start, unreplicate
  )
  writer = metric_writers.MetricWriter(experiment.workdir, experiment.start.step) if experiment.is_main else None
  report = periodic.ReportProgress(
    config, schedule, experiment.start, writer, checkpoint, experiment.workdir, unreplicate
  )
  return schedule, checkpoint, report


def train_steps(
  experiment: Experiment,
) -> Iterator[tuple[periodic.Position, periodic.Position, steps.TrainState, dict]]:
  """Each train step from the restored position to the run's last: (position before, after, state, metrics).

  At most two steps are in flight: the host does not queue up steps ahead of the device, so progress lines,
  clocks and stop requests refer to steps that are actually running.
  """
  state, position, in_flight = experiment.state, experiment.start, None
  for _ in range(experiment.start.step, experiment.total_steps):
    before, position = position, position.advance(experiment.config.num_critic_steps)
    state, metrics = experiment.train_step(state, experiment.batch(before), experiment.step_key)
    if in_flight is not None:
      jax.block_until_ready(in_flight)
    in_flight = metrics
    yield before, position, state, metrics


def release(experiment: Experiment) -> None:
  """Let the last checkpoint finish writing, close the checkpoint manager and release the workdir."""
  experiment.checkpoints.wait()
  experiment.checkpoints.close()
  if experiment.lock is not None:
    experiment.lock.release()


def _train(experiment: Experiment, stop: stopping.StopRequests) -> steps.TrainState:
  """The loop: one train step, then the periodic actions, until the run's last step."""
  config, unreplicate = experiment.config, experiment.devices.unreplicate
  schedule, checkpoint, report = periodic_actions(experiment)
  grids = periodic.SampleGrids(
    schedule, experiment.setup, config, experiment.root_key, experiment.cluster_shares, experiment.workdir, unreplicate
  )
  evaluate = periodic.Evaluate(
    schedule,
    experiment.setup,
    config,
    experiment.root_key,
    experiment.workdir,
    report,
    unreplicate,
    experiment.prepare_naming,
  )
  state, position = experiment.state, experiment.start
  try:
    for before, position, state, metrics in train_steps(experiment):
      report(before, position, metrics)  # before the checkpoint: the metrics it follows are checked finite
      checkpoint(before, position, state)
      grids(before, position, state)
      evaluate(before, position, state)
      _stop_if_requested(stop, schedule, before, position, state, report, checkpoint)
    trained = experiment.total_steps > experiment.start.step
    grids.final(state, trained)
    evaluate.final(position, state, trained)
  finally:
    report.close(f"{config.loss} ({experiment.workdir})")
    release(experiment)
  return unreplicate(state)
