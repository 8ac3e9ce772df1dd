"""train_and_evaluate(config, workdir): the training loop of a run set up by ganjax/experiment.py, with its side
effects as periodic actions (ganjax/periodic.py, ganjax/progress.py); time to quality runs the same loop.

Writes to the workdir: config.json, checkpoints/ (orbax), metrics.jsonl, tensorboard/, samples/*.png and
losses.png. Rerunning with the same workdir resumes from the newest checkpoint that restores.
"""

import signal
from collections.abc import Callable, Iterator

import jax
import ml_collections

from ganjax import conditioning, periodic, progress, saved_run, steps, stopping
from ganjax.experiment import Experiment, build, release  # noqa: F401 (train.build and train.release, as before)
from ganjax.ssl import actions as ssl_actions


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
    experiment = build(config, workdir, dataset, prepare_naming)
    return run(experiment, periodic_actions(experiment, periodic.TrainingClock()), stop)


def checkpoint_saver(experiment: Experiment) -> periodic.CheckpointSaver:
  """What saves the experiment's checkpoints, shared by the actions that save them."""
  run_fields = saved_run.defining_fields(experiment.config)
  return periodic.CheckpointSaver(
    experiment.checkpoints, experiment.root_key, run_fields, experiment.start, experiment.devices.unreplicate
  )


def periodic_actions(
  experiment: Experiment,
  clock: periodic.TrainingClock,
  saver: periodic.CheckpointSaver | None = None,
  scheduled: tuple[str, ...] = ("report", "checkpoints", "grids", "evaluate"),
) -> list[periodic.Action]:
  """The actions of the training loop, in the order they act after a step (the metrics are checked finite
  before the checkpoint that follows them), built from the experiment: the `scheduled` ones of progress records,
  checkpoints, sample grids and evaluations. `saver` and `clock` are shared with any other action. A
  semi_supervised run evaluates its critic's test accuracy, and checks for its collapse before each checkpoint."""
  e, config, unreplicate, schedule = experiment, experiment.config, experiment.devices.unreplicate, experiment.schedule
  saver = saver or checkpoint_saver(experiment)
  build_action = {
    "report": lambda: progress.ReportProgress(
      config, schedule, e.start, e.writer, saver, e.workdir, unreplicate, clock
    ),
    "checkpoints": lambda: periodic.SaveCheckpoints(schedule, saver),
    "grids": lambda: periodic.SampleGrids(
      schedule, e.setup, config, e.root_key, e.cluster_shares, e.workdir, unreplicate, e.is_main, clock
    ),
    "evaluate": lambda: periodic.Evaluate(
      schedule, e.setup, config, e.root_key, e.workdir, e.writer, clock, unreplicate, e.prepare_naming
    ),
  }
  if experiment.recognizes:
    build_action.update(
      collapse=lambda: ssl_actions.CheckCollapse(schedule, config, saver),
      grids=lambda: ssl_actions.SampleGrids(schedule, e.setup, config, e.root_key, e.workdir, clock, e.is_main),
      evaluate=lambda: ssl_actions.EvaluateRecognition(schedule, e.setup, config, e.workdir, e.writer, clock),
    )
    if "report" in scheduled:
      scheduled = ("report", "collapse", *(name for name in scheduled if name != "report"))
  return [build_action[name]() for name in scheduled]


def train_steps(
  experiment: Experiment, should_stop: Callable[[], bool] = lambda: False
) -> Iterator[tuple[periodic.Position, periodic.Position, steps.TrainState, dict]]:
  """Each train step from the restored position to the run's last, while not `should_stop()` (asked before
  each step): (position before, after, state, metrics).

  At most two steps are in flight: the host does not queue up steps ahead of the device, so progress lines,
  clocks and stop requests refer to steps that are actually running.
  """
  state, position, in_flight = experiment.state, experiment.start, None
  for _ in range(experiment.start.step, experiment.total_steps):
    if should_stop():
      return
    before, position = position, position.advance(experiment.config.num_critic_steps)
    state, metrics = experiment.train_step(state, experiment.batch(before), experiment.step_key)
    if in_flight is not None:
      jax.block_until_ready(in_flight)
    in_flight = metrics
    yield before, position, state, metrics


def run(
  experiment: Experiment,
  actions: list[periodic.Action],
  stop: stopping.StopRequests,
  should_stop: Callable[[], bool] = lambda: False,
) -> steps.TrainState:
  """The loop: one train step, then each action, until the run's last step or `should_stop()`; then each
  action's `final`. On a stop request (SIGTERM, Ctrl-C) each action's `stop`, then RunStopped. Releases the
  experiment in any case; returns the last state."""
  state, position = experiment.state, experiment.start
  try:
    for before, position, state, metrics in train_steps(experiment, should_stop):
      for action in actions:
        action(before, position, state, metrics)
      signal_number = stop.requested(at_sync_point=experiment.schedule.record(before, position))
      if signal_number is not None:
        for action in actions:
          action.stop(position, state)
        raise stopping.RunStopped(
          f"stopped at step {position.step} ({signal.Signals(signal_number).name}); rerun the same command to "
          "resume",
          signal_number,
        )
    for action in actions:
      action.final(position, state, position.step > experiment.start.step)
  finally:
    try:
      for action in actions:
        action.close()
    finally:
      release(experiment)
  return experiment.devices.unreplicate(state)
