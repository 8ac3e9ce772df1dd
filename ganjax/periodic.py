"""The side effects of the training loop as periodic actions, called after every step (as clu's periodic_actions
are in the flax examples): checkpoints, sample grids and evaluations here, progress lines and metric records in
ganjax/progress.py.

Each fires when the step it follows crossed its boundary (`crossed`): a generator step consumes num_critic_steps
real batches, so an epoch boundary can fall inside one step, and the action fires once, after that step.
When each fires is decided by `Schedule` alone, from the config, so it is tested without training.
"""

import contextlib
import dataclasses
import functools
import os
import time
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from ganjax import checkpoints as checkpoints_lib
from ganjax import conditioning, images, metric_writers, rng, saved_run, steps
from ganjax.errors import TrainingDiverged
from ganjax.eval import sample_quality


def crossed(before: int, after: int, every: int) -> range:
  """The multiples of `every` in (before, after]: the boundaries passed going from position `before` to `after`
  (in steps, or in completed epochs). Empty (falsy) when every <= 0: the action is off."""
  if every <= 0:
    return range(0)
  return range((before // every + 1) * every, after + 1, every)


@dataclasses.dataclass(frozen=True)
class Position:
  """Where training stands: generator steps done and real batches consumed (num_critic_steps per step)."""

  step: int
  batches: int
  per_epoch: int  # real batches in one epoch

  @property
  def epoch(self) -> float:
    return self.batches / self.per_epoch

  @property
  def epochs_done(self) -> int:
    return self.batches // self.per_epoch

  def advance(self, num_batches: int) -> "Position":
    """The position after one more generator step that consumed `num_batches` real batches."""
    return dataclasses.replace(self, step=self.step + 1, batches=self.batches + num_batches)


@dataclasses.dataclass(frozen=True)
class Schedule:
  """When each action fires after the step that went from position `before` to `after`."""

  total_steps: int
  log_every_steps: int
  checkpoint_every_steps: int
  sample_epochs: tuple[int, ...]
  eval_every_epochs: int
  eval_at_end: bool

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, total_steps: int) -> "Schedule":
    fields = ("log_every_steps", "checkpoint_every_steps", "sample_epochs", "eval_every_epochs", "eval_at_end")
    return cls(total_steps, *(config[field] for field in fields))

  def checkpoint(self, before: Position, after: Position) -> bool:
    """Every checkpoint_every_steps, and at the last step."""
    return bool(crossed(before.step, after.step, self.checkpoint_every_steps)) or after.step == self.total_steps

  def record(self, before: Position, after: Position) -> bool:
    """A metrics record: every log_every_steps, and before each checkpoint (its window is checked finite first)."""
    return bool(crossed(before.step, after.step, self.log_every_steps)) or self.checkpoint(before, after)

  def grid_epochs(self, before: Position, after: Position) -> list[int]:
    """The sample epochs whose end this step reached."""
    return [e for e in self.sample_epochs if e in crossed(before.epochs_done, after.epochs_done, 1)]

  def evaluate(self, before: Position, after: Position) -> bool:
    """Every eval_every_epochs epochs, but not at the last step when the final evaluation follows anyway."""
    if after.step == self.total_steps and self.eval_at_end:
      return False
    return bool(crossed(before.epochs_done, after.epochs_done, self.eval_every_epochs))


@jax.jit
def _all_finite(tree) -> jax.Array:
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


class Action:
  """A periodic action: called after every train step with one signature; `stop` after a stop request (SIGTERM,
  Ctrl-C), `final` after the run's last step (`trained`: this run took a step), `close` at the end in any case.
  An action holds no other: what several share (the metric writer, the checkpoint saver, the training clock) is
  passed to each."""

  def __call__(self, before: Position, after: Position, state: steps.TrainState, metrics: dict) -> None:
    pass

  def stop(self, after: Position, state: steps.TrainState) -> None:
    pass

  def final(self, after: Position, state: steps.TrainState, trained: bool) -> None:
    pass

  def close(self) -> None:
    pass


class TrainingClock:
  """Wall time (`now`) and training time (`training`): wall time less what was spent in `not_training()`
  (evaluations, sample grids), so that throughputs and training times leave those out."""

  def __init__(self, clock: Callable[[], float] = time.perf_counter):
    self.now, self.paused = clock, 0.0

  def training(self) -> float:
    return self.now() - self.paused

  @contextlib.contextmanager
  def not_training(self) -> Iterator[None]:
    start = self.now()
    try:
      yield
    finally:
      self.paused += self.now() - start


class CheckpointSaver:
  """Saves the whole state with what a resume needs beside it (the RNG key, the data position, the run's
  defining fields); a state that is not finite is never saved, so the checkpoint from before a divergence stays
  the newest."""

  def __init__(self, checkpoints: checkpoints_lib.Checkpoints, root_key, run: dict, start: Position, unreplicate):
    self.checkpoints, self.unreplicate = checkpoints, unreplicate
    self.rng_key, self.run = checkpoints_lib.key_to_list(root_key), run
    self.last_saved = start.step or None  # the newest checkpoint (restored or saved), named when training diverges

  def last_kept(self) -> str:
    """The newest checkpoint, as a divergence names it: 'step N', 'unverified' if it restored without a checksum
    over all it holds (never called good), or 'none written yet'."""
    return self.checkpoints.describe(self.last_saved) if self.last_saved else "none written yet"

  def save(self, after: Position, state: steps.TrainState) -> None:
    if not bool(_all_finite(state)):
      raise TrainingDiverged(
        f"parameters became NaN/inf by step {after.step}; not saved: the last checkpoint before it is kept "
        f"({self.last_kept()})"
      )
    record = {"step": after.step, "batches_consumed": after.batches, "epoch": after.epoch, "rng_key": self.rng_key}
    record.update(seed=self.run["seed"], config=self.run)  # the resume check reads them without config.json
    self.checkpoints.save(after.step, self.unreplicate(state), record)
    self.last_saved = after.step


class SaveCheckpoints(Action):
  """A checkpoint every checkpoint_every_steps and at the last step, and one when the run is asked to stop."""

  def __init__(self, schedule: Schedule, saver: CheckpointSaver):
    self.schedule, self.saver = schedule, saver

  def __call__(self, before: Position, after: Position, state: steps.TrainState, metrics: dict) -> None:
    if self.schedule.checkpoint(before, after):
      self.saver.save(after, state)

  def stop(self, after: Position, state: steps.TrainState) -> None:
    if self.saver.last_saved != after.step:
      self.saver.save(after, state)


class SampleGrids(Action):
  """A grid of the same noise (and labels) after each sample epoch and at the end: epochs differ by G alone."""

  def __init__(
    self,
    schedule: Schedule,
    setup: steps.GanSetup,
    config: ml_collections.ConfigDict,
    root_key: jax.Array,
    cluster_shares: np.ndarray | None,
    workdir: str,
    unreplicate: Callable,
    is_main: bool,
    clock: TrainingClock,
  ):
    self.schedule, self.workdir, self.unreplicate, self.is_main = schedule, workdir, unreplicate, is_main
    self.clock = clock  # sampling is not training
    self.sample_fn = jax.jit(functools.partial(steps.sample, setup))
    sample_key = rng.stream(root_key, rng.SAMPLE_GRID)
    self.fixed_z = jax.random.normal(sample_key, (config.num_sample_images, config.latent_dim))
    label_key = jax.random.fold_in(sample_key, 1)
    self.fixed_labels = conditioning.grid_labels(
      setup.conditioning, cluster_shares, config.num_sample_images, label_key
    )

  def __call__(self, before: Position, after: Position, state: steps.TrainState, metrics: dict) -> None:
    for epoch in self.schedule.grid_epochs(before, after):
      self.save(f"epoch_{epoch:03d}.png", state)

  def final(self, after: Position, state: steps.TrainState, trained: bool) -> None:
    """final.png, unless this run trained nothing and it exists already."""
    if trained or not os.path.exists(os.path.join(self.workdir, "samples", "final.png")):
      self.save("final.png", state)

  def samples(self, state: steps.TrainState) -> jax.Array:
    """The grid's images in [-1, 1]: G of the fixed noise and labels (every process samples)."""
    return self.sample_fn(self.unreplicate(state), self.fixed_z, self.fixed_labels)

  def save(self, name: str, state: steps.TrainState) -> None:
    with self.clock.not_training():
      samples = self.samples(state)
      if not self.is_main:
        return
      path = os.path.join(self.workdir, "samples", name)
      images.save_grid(path, np.asarray(samples))
    logging.info("wrote %s", path)


class Evaluate(Action):
  """Sample metrics every eval_every_epochs epochs (into metrics.jsonl) and of the final state (into eval.json);
  the same noise every time, so evaluations differ by the generator alone. Their time is not training time."""

  def __init__(
    self,
    schedule: Schedule,
    setup: steps.GanSetup,
    config: ml_collections.ConfigDict,
    root_key: jax.Array,
    workdir: str,
    writer: metric_writers.MetricWriter | None,
    clock: TrainingClock,
    unreplicate: Callable,
    prepare_naming: Callable[[], conditioning.Naming] | None = None,
  ):
    self.schedule, self.setup, self.config, self.workdir = schedule, setup, config, workdir
    self.writer, self.clock, self.unreplicate = writer, clock, unreplicate
    self.key = rng.stream(root_key, rng.EVAL)
    self.evaluation: sample_quality.Evaluation | None = None  # built at the first evaluation
    self.prepare_naming = prepare_naming  # a run that needs a naming to sample digits: prepared when first needed
    self.naming: conditioning.Naming | None = None

  def __call__(self, before: Position, after: Position, state: steps.TrainState, metrics: dict) -> None:
    if self.schedule.evaluate(before, after):
      self._write(after.step, self.evaluate(state, after, after.step))

  def final(self, after: Position, state: steps.TrainState, trained: bool) -> None:
    """eval.json of the last step, unless this run trained nothing and it exists already. A run that needs a
    naming has it prepared (and kept in the workdir) by now, evaluated or not."""
    self.prepared_naming()
    if not (self.schedule.eval_at_end and (trained or sample_quality.read_json(self.workdir) is None)):
      return
    result = self.evaluate(state, after, self.schedule.total_steps)
    if self.writer is not None:  # process 0
      sample_quality.write_json(os.path.join(self.workdir, saved_run.EVAL_FILE), result)
    if trained:  # a rerun that only restores a missing eval.json has its record already
      self._write(self.schedule.total_steps, result)

  def _write(self, step: int, result: dict) -> None:
    if self.writer is not None:
      self.writer.write(step, {"epoch": result["epoch"], **sample_quality.scalars(result)})

  def evaluate(self, state: steps.TrainState, position: Position, step: int) -> dict:
    with self.clock.not_training():
      start = time.perf_counter()
      if self.evaluation is None:
        self.evaluation = sample_quality.Evaluation.create(self.config)
      state = self.unreplicate(state)
      naming = self.prepared_naming()
      result = self.evaluation.evaluate_state(self.setup, state, self.config, self.key, naming=naming)
      seconds = round(time.perf_counter() - start, 1)
      result.update(step=step, epoch=round(position.epoch, 4), eval_seconds=seconds)
      logging.info("eval at step %d (epoch %.2f): %s", step, position.epoch, sample_quality.summary_line(result))
    return result

  def prepared_naming(self) -> conditioning.Naming | None:
    """The run's naming, prepared at the first call (minutes: it may train a namer); None if it needs none."""
    if self.naming is None and self.prepare_naming is not None:
      self.naming = self.prepare_naming()
    return self.naming
