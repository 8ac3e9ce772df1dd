"""Setting up a run: `build(config, workdir)` checks the workdir, loads the data, builds the models and restores
the newest checkpoint that verifies, into an `Experiment` that the training loop (ganjax/train.py) and the
benchmarks drive; `release` hands the workdir back.
"""

import dataclasses
import functools
import os
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from ganjax import checkpoints as checkpoints_lib
from ganjax import conditioning, metric_writers, parallel, periodic, rng, saved_run, steps
from ganjax import config as config_lib
from ganjax import workdir as workdir_lib
from ganjax.data import clusters, mnist
from ganjax.errors import WorkdirError
from ganjax.ssl import experiment as ssl_experiment
from ganjax.ssl import steps as ssl_steps


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

  `state` is in the layout `train_step` takes, which donates it: the first step consumes it. A semi_supervised
  run (ganjax/ssl/) has its own setup and state; the loop and the actions that only save and report are shared.
  """

  config: ml_collections.ConfigDict
  workdir: str
  is_main: bool  # process 0: the one that writes logs, metrics, grids and plots
  devices: parallel.DataParallel
  setup: steps.GanSetup | ssl_steps.SslSetup
  state: steps.TrainState | ssl_steps.SslState
  start: periodic.Position  # where the restored checkpoint left off (step 0 for a new run)
  total_steps: int
  root_key: jax.Array  # the run's root key (the checkpoint's, when resumed)
  step_key: jax.Array  # the train step folds the step into it
  cluster_shares: np.ndarray | None  # each cluster's share of the training images (cluster conditioning)
  checkpoints: checkpoints_lib.Checkpoints
  lock: workdir_lib.WorkdirLock | None  # process 0's, held until the run ends
  writer: metric_writers.MetricWriter | None  # process 0's metrics.jsonl and TensorBoard, from the restored step
  batches: Callable[[periodic.Position], dict]  # the real batches of the step taken from a position
  train_step: Callable  # (state, batch, step_key) -> (state, metrics), compiled for the devices
  prepare_naming: Callable[[], conditioning.Naming] | None  # a run that needs a naming: prepares it (minutes)

  @property
  def num_epochs(self) -> float:
    return self.total_steps * self.config.num_critic_steps / self.start.per_epoch

  @property
  def schedule(self) -> periodic.Schedule:
    return periodic.Schedule.from_config(self.config, self.total_steps)

  @property
  def recognizes(self) -> bool:
    """A semi_supervised run: its critic is a digit classifier (ganjax/ssl/)."""
    return isinstance(self.setup, ssl_steps.SslSetup)

  def batch(self, position: periodic.Position) -> dict[str, jax.Array]:
    """The real batches of the generator step taken from `position`, in the layout `train_step` takes."""
    return self.batches(position)


def build(
  config: ml_collections.ConfigDict,
  workdir: str,
  dataset: tuple[np.ndarray, np.ndarray] | None = None,
  prepare_naming: conditioning.PrepareNaming | None = None,
) -> Experiment:
  """Validate `config` and set up its run in `workdir`, resumed from the newest checkpoint there if any.

  The workdir is checked first (its lock, and that the run may resume the saved one), so a refusal takes
  seconds; nothing in it is rewritten until the run is known to start. `dataset` (uint8 images [N, 28, 28, 1],
  int labels [N]) replaces MNIST's training split (the benchmark's synthetic digits). A run whose conditioning
  needs a naming to sample digits gets it from `prepare_naming` (e.g. ganjax.few_labels.naming.load_or_build)
  when it first samples digits; its training does not use it.
  """
  config_lib.validate(config)
  parallel.initialize_distributed(config)
  is_main = jax.process_index() == 0
  if not is_main:
    logging.set_verbosity(logging.WARNING)  # one progress log per run, from process 0
  devices = parallel.DataParallel(config)  # what can fail without a workdir fails before it is touched
  workdir, lock = open_workdir(workdir, is_main)
  checkpoints = writer = None
  try:
    saved_run.check_workdir(workdir, config)  # before any heavy work: a refusal takes seconds
    started = _start(config, workdir, devices, dataset, is_main)
    checkpoints = started.checkpoints
    if is_main:  # rewritten only once the run is known to start (a damaged record refuses it first)
      lock.name_holder()
      writer = metric_writers.MetricWriter(workdir, int(started.state.step))
      saved_run.write_config(workdir, config)
  except BaseException:
    _close(checkpoints, writer, lock)
    raise
  naming = None
  if started.naming_data is not None and started.setup.conditioning.needs_naming and prepare_naming is not None:
    naming = functools.partial(prepare_naming, workdir, config, *started.naming_data, write=is_main)
  experiment = _experiment(config, workdir, is_main, devices, started, checkpoints, lock, writer, naming)
  _log_start(experiment)
  return experiment


@dataclasses.dataclass(frozen=True)
class _Started:
  """What build sets up between the workdir check and the first write: the models, the data and the state."""

  setup: steps.GanSetup | ssl_experiment.SslRecipe  # a semi_supervised run's recipe holds its setup and data
  state: steps.TrainState | ssl_steps.SslState  # restored, or new
  root_key: jax.Array
  batches_consumed: int
  train_images: np.ndarray
  train_labels: np.ndarray | None  # what the run trains on: digits, or clusters (semi_supervised: the recipe's)
  naming_data: tuple | None  # (images, digits, training labels) for prepare_naming
  checkpoints: checkpoints_lib.Checkpoints  # open: build closes it if the start fails after this
  total_steps: int


def _start(config, workdir, devices, dataset, is_main) -> _Started:
  """Build the models, load the data, restore the newest checkpoint (or start afresh) and label the training
  images (clusters are computed once and kept in the workdir; a semi_supervised run keeps only its labelled
  few, in its recipe)."""
  train_images, digits = dataset if dataset is not None else mnist.load_split(config, "train")
  total_steps = config_lib.total_train_steps(config, len(train_images))
  if conditioning.Conditioning(config.conditioning).recognizes:
    setup = ssl_experiment.recipe(config, train_images, digits, workdir, write=is_main)
    new_state = setup.new_state
  else:  # the learning-rate decays run over the whole run
    setup = dataclasses.replace(devices.make_setup(config), total_steps=total_steps)
    new_state = functools.partial(steps.create_state, setup)
  checkpoints = _open_checkpoints(config, workdir)
  try:
    state, root_key, batches_consumed = _restore_or_start(config, workdir, new_state, devices, checkpoints, is_main)
    train_labels = naming_data = None
    if isinstance(setup, steps.GanSetup):
      state, train_labels = _label_training_images(config, workdir, setup, state, train_images, digits, is_main)
      naming_data = (train_images, digits, train_labels)
  except BaseException:
    checkpoints.close()
    raise
  return _Started(
    setup, state, root_key, batches_consumed, train_images, train_labels, naming_data, checkpoints, total_steps
  )


def _label_training_images(config, workdir, setup, state, train_images, digits, is_main):
  """(state, what the run trains on: digits, or clusters); a new clustered run's state gets the shares."""
  labels_key = rng.stream(jax.random.key(config.seed), rng.TRAINING_LABELS)
  train_labels, shares = clusters.training_labels(  # few_labels reads only its labelled few's digits
    setup.conditioning, workdir, train_images, digits, labels_key, write=is_main
  )
  if shares is not None and not int(state.step):  # a resumed run keeps the shares of its checkpoint
    state = state.replace(cluster_shares=jnp.asarray(shares))
  return state, train_labels


def _open_checkpoints(config, workdir) -> checkpoints_lib.Checkpoints:
  directory = os.path.join(workdir, saved_run.CHECKPOINTS_DIR)
  return checkpoints_lib.Checkpoints(directory, config.checkpoint_every_steps, config.keep_checkpoints)


def _experiment(config, workdir, is_main, devices, started, checkpoints, lock, writer, prepare_naming) -> Experiment:
  """The Experiment of a started run: its state and data on the devices and its train step compiled."""
  state, num_examples, root_key = started.state, len(started.train_images), started.root_key
  per_epoch = config_lib.batches_per_epoch(config, num_examples)
  setup, batches, train_step = _batches_and_step(config, devices, started)
  return Experiment(
    config=config,
    workdir=workdir,
    is_main=is_main,
    devices=devices,
    setup=setup,
    state=devices.put_state(state),
    start=periodic.Position(int(state.step), started.batches_consumed, per_epoch),
    total_steps=started.total_steps,
    root_key=root_key,
    step_key=rng.stream(root_key, rng.STEP),
    cluster_shares=None if getattr(state, "cluster_shares", None) is None else np.asarray(state.cluster_shares),
    checkpoints=checkpoints,
    lock=lock,
    writer=writer,
    batches=batches,
    train_step=train_step,
    prepare_naming=prepare_naming,
  )


def _batches_and_step(config, devices, started: _Started) -> tuple:
  """(setup, position -> batch, compiled train step): the whole dataset on every device and each batch gathered
  there; a semi_supervised run's three batch streams on its one device."""
  if isinstance(started.setup, ssl_experiment.SslRecipe):
    recipe = started.setup
    batches = recipe.batches(config, started.root_key)
    return recipe.setup, ssl_experiment.step_batches(batches), ssl_steps.make_train_step(recipe.setup)
  dataset = devices.put_dataset(started.train_images, started.train_labels)
  shuffler = mnist.EpochShuffler(rng.stream(started.root_key, rng.SHUFFLE), len(started.train_images), config.batch_size)

  def batches(position: periodic.Position) -> dict[str, jax.Array]:
    return devices.batch(*dataset, shuffler.indices(position.batches, config.num_critic_steps))

  return started.setup, batches, devices.compile_train_step(started.setup)


def _restore_or_start(config, workdir, new_state, devices, checkpoints, is_main):
  """(state, root key, real batches consumed): the newest checkpoint that restores and verifies, else
  new_state(key). Its record must agree with `config` where config.json cannot say (saved_run.check_workdir)."""
  root_key = jax.random.key(config.seed)
  state = new_state(rng.stream(root_key, rng.INIT))
  if not checkpoints.steps():
    return state, root_key, 0
  if is_main:
    checkpoints.move_aside_incomplete()
  restored = checkpoints.restore_latest(devices.abstract_state(state))
  if restored is None:
    return state, root_key, 0
  state, record = restored
  if saved_run.read_saved_config(workdir) is None:  # the record that restored, verified, is what the run was
    saved_run.check_record(record, config, workdir)
  logging.info("resumed from step %d (epoch %.2f) in %s", record["step"], record["epoch"], workdir)
  return state, checkpoints_lib.key_from_list(record["rng_key"]), record["batches_consumed"]


def _close(checkpoints, writer, lock) -> None:
  """Close what build opened (after a failed start, or at the end of the run)."""
  try:
    if checkpoints is not None:
      checkpoints.close()
    if writer is not None:
      writer.close()
  finally:
    if lock is not None:
      lock.release()


def _log_start(experiment: Experiment) -> None:
  config, devices = experiment.config, experiment.devices
  objective = "semi-supervised GAN" if experiment.recognizes else experiment.setup.objective.name
  logging.info(
    "training %s for %d generator steps (%.2f epochs of %d batches of %d) from step %d on %d x %s (%s, %d process(es))",
    objective,
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


def release(experiment: Experiment) -> None:
  """Let the last checkpoint finish writing, close the checkpoint manager and the metric files, and release
  the workdir."""
  experiment.checkpoints.wait()
  _close(experiment.checkpoints, experiment.writer, experiment.lock)
