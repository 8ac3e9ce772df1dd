"""The side effects of the training loop as periodic actions, called after every step (as clu's periodic_actions
are in the flax examples): progress lines and metric records, checkpoints, sample grids and evaluations.

Each fires when the step it follows crossed its boundary (`crossed`): a generator step consumes num_critic_steps
real batches, so an epoch boundary can fall inside one step, and the action fires once, after that step.
When each fires is decided by `Schedule` alone, from the config, so it is tested without training.
"""

import contextlib
import dataclasses
import functools
import math
import os
import time
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from ganjax import checkpoints as checkpoints_lib
from ganjax import conditioning, images, metric_writers, plots, steps
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


class SaveCheckpoints:
  """The whole state with the RNG key and data position, when the schedule says; a state that is not finite
  is never saved (the last good checkpoint stays the newest)."""

  def __init__(
    self,
    schedule: Schedule,
    checkpoints: checkpoints_lib.Checkpoints,
    root_key: jax.Array,
    seed: int,
    start: Position,
    unreplicate: Callable,
  ):
    self.schedule, self.checkpoints, self.unreplicate = schedule, checkpoints, unreplicate
    self.rng_key, self.seed = checkpoints_lib.key_to_list(root_key), seed
    self.last_saved = start.step or None  # the newest good checkpoint, named when training diverges

  def __call__(self, before: Position, after: Position, state: steps.TrainState) -> None:
    if self.schedule.checkpoint(before, after):
      self.save(after, state)

  def save(self, after: Position, state: steps.TrainState) -> None:
    """Save now (after checking the state is finite)."""
    if not bool(_all_finite(state)):
      raise TrainingDiverged(f"parameters became NaN/inf by step {after.step}; the last good checkpoint is kept")
    record = {"step": after.step, "batches_consumed": after.batches, "epoch": after.epoch}
    record.update(rng_key=self.rng_key, seed=self.seed)  # what a resumed run needs beside the state
    self.checkpoints.save(after.step, self.unreplicate(state), record)
    self.last_saved = after.step


class ReportProgress:
  """Metric records and progress lines.

  At the schedule's record steps: the mean of every metric since the previous record, checked finite, to
  metrics.jsonl and TensorBoard, with a progress line. Every progress_every_seconds (and after the first step),
  also a progress line of the latest step's losses: console only, so the metric files stay deterministic, and
  the metrics leave the device only when a line is due. The first step's time (compilation included) is left
  out of the throughput, and so is time spent in `not_training()` (evaluations); its metrics are in the means, so
  a resumed run's records are those of an uninterrupted one. A mean that is not finite, or beyond
  config.divergence_bound, stops the run as diverged.
  """

  def __init__(
    self,
    config: ml_collections.ConfigDict,
    schedule: Schedule,
    start: Position,
    writer: metric_writers.MetricWriter | None,
    checkpoints: SaveCheckpoints,
    workdir: str,
    unreplicate: Callable = lambda tree: tree,
    clock: Callable[[], float] = time.perf_counter,
  ):
    self.schedule, self.writer, self.checkpoints = schedule, writer, checkpoints
    self.num_epochs = schedule.total_steps * config.num_critic_steps / start.per_epoch
    self.workdir, self.unreplicate, self.clock = workdir, unreplicate, clock
    self.images_per_step = config.batch_size * config.num_critic_steps
    self.every_seconds = config.progress_every_seconds
    self.divergence_bound = config.divergence_bound
    self.is_main = writer is not None  # only process 0 writes records and progress lines
    self.pending: list[dict] = []
    self.window = (clock(), start.step)  # the throughput is measured from this (time, step)
    self.first = True
    self.last_line = -math.inf

  def __call__(self, before: Position, after: Position, metrics: dict) -> None:
    metrics = self.unreplicate(metrics)
    self.pending.append(metrics)
    if self.first:  # compilation: its time is left out of the throughput
      jax.block_until_ready(metrics)
      logging.info("first step (compilation included) took %.1fs", self.clock() - self.window[0])
      self.window, self.first = (self.clock(), after.step), False
    logged = self.schedule.record(before, after) and self.flush(after)
    if not logged and self.is_main and self.every_seconds and self.clock() - self.last_line >= self.every_seconds:
      scalars = {k: float(v) for k, v in sorted(jax.device_get(metrics).items())}
      self._line(after, scalars, self._steps_per_sec(after.step, self.clock()))

  def flush(self, position: Position) -> bool:
    """Fetch the window's metrics (the only per-window host sync), check, log, write; False if it was empty."""
    if not self.pending:
      return False
    means = jax.device_get(jax.tree.map(lambda *m: jnp.mean(jnp.stack(m)), *self.pending))
    scalars = {k: float(v) for k, v in sorted(means.items())}
    bad = {k: v for k, v in scalars.items() if not (math.isfinite(v) and abs(v) <= self.divergence_bound)}
    if bad:
      last = self.checkpoints.last_saved
      where = f"step {last}" if last else "none written yet"
      raise TrainingDiverged(
        f"training diverged before step {position.step}: {', '.join(f'{k}={v:.4g}' for k, v in bad.items())} "
        f"(config.divergence_bound={self.divergence_bound:g}); the last good checkpoint is kept ({where}) in "
        f"{self.workdir}/checkpoints. Try a lower learning rate."
      )
    now = self.clock()
    steps_per_sec = self._steps_per_sec(position.step, now)
    scalars["epoch"] = round(position.epoch, 4)
    if steps_per_sec is not None:  # none for a record of the first step alone: its time is compilation
      scalars.update(steps_per_sec=steps_per_sec, images_per_sec=steps_per_sec * self.images_per_step)
    if self.is_main:
      self.writer.write(position.step, scalars)
      self._line(position, scalars, steps_per_sec)
    self.pending, self.window = [], (now, position.step)
    return True

  def _steps_per_sec(self, step: int, now: float) -> float | None:
    """Generator steps per second since the window started; None if no step was timed since."""
    start_time, start_step = self.window
    return (step - start_step) / max(now - start_time, 1e-9) if step > start_step else None

  def _line(self, position: Position, scalars: dict, steps_per_sec: float | None) -> None:
    """A progress line; before any step is timed (None), its img/s and ETA are unknown."""
    total, eta = self.schedule.total_steps, math.inf
    if steps_per_sec:
      scalars = {**scalars, "images_per_sec": steps_per_sec * self.images_per_step}
      eta = (total - position.step) / steps_per_sec
    logging.info(metric_writers.progress_line(position.step, total, position.epoch, self.num_epochs, scalars, eta))
    self.last_line = self.clock()

  @contextlib.contextmanager
  def not_training(self) -> Iterator[None]:
    """Time spent inside is left out of the throughput (e.g. evaluating)."""
    start = self.clock()
    yield
    self.window = (self.window[0] + self.clock() - start, self.window[1])

  def write(self, step: int, scalars: dict[str, float]) -> None:
    """A record of other scalars (an evaluation's), from process 0."""
    if self.writer is not None:
      self.writer.write(step, scalars)

  def close(self, title: str) -> None:
    """Close the metric files and plot them: losses.png, and eval.png if the run evaluated."""
    if self.writer is None:
      return
    self.writer.close()
    records = metric_writers.read_metrics(self.workdir)
    if records:
      plots.plot_losses(records, os.path.join(self.workdir, "losses.png"), title)
      plots.plot_evaluations(records, os.path.join(self.workdir, "eval.png"), title)


class SampleGrids:
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
  ):
    self.schedule, self.workdir, self.unreplicate = schedule, workdir, unreplicate
    self.is_main = jax.process_index() == 0
    self.sample_fn = jax.jit(functools.partial(steps.sample, setup))
    sample_key = jax.random.fold_in(root_key, 3)
    self.fixed_z = jax.random.normal(sample_key, (config.num_sample_images, config.latent_dim))
    label_key = jax.random.fold_in(sample_key, 1)
    self.fixed_labels = conditioning.grid_labels(
      setup.conditioning, cluster_shares, config.num_sample_images, label_key
    )

  def __call__(self, before: Position, after: Position, state: steps.TrainState) -> None:
    for epoch in self.schedule.grid_epochs(before, after):
      self.save(f"epoch_{epoch:03d}.png", state)

  def final(self, state: steps.TrainState, trained: bool) -> None:
    """final.png, unless this run trained nothing and it exists already."""
    if trained or not os.path.exists(os.path.join(self.workdir, "samples", "final.png")):
      self.save("final.png", state)

  def save(self, name: str, state: steps.TrainState) -> None:
    samples = self.sample_fn(self.unreplicate(state), self.fixed_z, self.fixed_labels)  # every process samples
    if not self.is_main:
      return
    path = os.path.join(self.workdir, "samples", name)
    images.save_grid(path, np.asarray(samples))
    logging.info("wrote %s", path)


class Evaluate:
  """Sample metrics every eval_every_epochs epochs (into metrics.jsonl) and of the final state (into eval.json);
  the same noise every time, so evaluations differ by the generator alone."""

  def __init__(
    self,
    schedule: Schedule,
    setup: steps.GanSetup,
    config: ml_collections.ConfigDict,
    root_key: jax.Array,
    workdir: str,
    report: ReportProgress,
    unreplicate: Callable,
    prepare_naming: Callable[[], conditioning.Naming] | None = None,
  ):
    self.schedule, self.setup, self.config, self.workdir = schedule, setup, config, workdir
    self.report, self.unreplicate = report, unreplicate
    self.is_main = jax.process_index() == 0
    self.key = jax.random.fold_in(root_key, 4)
    self.evaluation: sample_quality.Evaluation | None = None  # built at the first evaluation
    self.prepare_naming = prepare_naming  # a run that needs a naming to sample digits: prepared when first needed
    self.naming: conditioning.Naming | None = None

  def __call__(self, before: Position, after: Position, state: steps.TrainState) -> None:
    if self.schedule.evaluate(before, after):
      result = self.evaluate(state, after, after.step)
      self.report.write(after.step, {"epoch": result["epoch"], **sample_quality.scalars(result)})

  def final(self, position: Position, state: steps.TrainState, trained: bool) -> None:
    """eval.json of the last step, unless this run trained nothing and it exists already. A run that needs a
    naming has it prepared (and kept in the workdir) by now, evaluated or not."""
    self.prepared_naming()
    if not (self.schedule.eval_at_end and (trained or sample_quality.read_json(self.workdir) is None)):
      return
    result = self.evaluate(state, position, self.schedule.total_steps)
    if self.is_main:
      sample_quality.write_json(os.path.join(self.workdir, sample_quality.EVAL_FILE), result)
    if trained:  # a rerun that only restores a missing eval.json has its record already
      self.report.write(self.schedule.total_steps, {"epoch": result["epoch"], **sample_quality.scalars(result)})

  def evaluate(self, state: steps.TrainState, position: Position, step: int) -> dict:
    with self.report.not_training():
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
