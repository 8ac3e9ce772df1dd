"""The progress of the training loop as a periodic action (ganjax/periodic.py): metric records to metrics.jsonl and
TensorBoard, progress lines to the console, and the divergence check of every record."""

import math
import os
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
from absl import logging

from ganjax import metric_writers, plots, steps
from ganjax.errors import TrainingDiverged
from ganjax.periodic import Action, CheckpointSaver, Position, Schedule, TrainingClock


class ReportProgress(Action):
  """Metric records and progress lines.

  At the schedule's record steps (and on a stop request): the mean of every metric since the previous record,
  checked finite, to metrics.jsonl and TensorBoard, with a progress line. Every progress_every_seconds (and after
  the first step), also a progress line of the latest step's losses: console only, so the metric files stay
  deterministic, and the metrics leave the device only when a line is due. The first step's time (compilation
  included) is left out of the throughput, and so is time not training (`clock`); its metrics are in the means,
  so a resumed run's records are those of an uninterrupted one. A mean that is not finite, or beyond
  config.divergence_bound, stops the run as diverged.
  """

  def __init__(
    self,
    config: ml_collections.ConfigDict,
    schedule: Schedule,
    start: Position,
    writer: metric_writers.MetricWriter | None,
    saver: CheckpointSaver,
    workdir: str,
    unreplicate: Callable = lambda tree: tree,
    clock: TrainingClock | None = None,
  ):
    self.schedule, self.writer, self.saver = schedule, writer, saver
    self.num_epochs = schedule.total_steps * config.num_critic_steps / start.per_epoch
    self.workdir, self.unreplicate, self.clock = workdir, unreplicate, clock or TrainingClock()
    self.images_per_step = config.batch_size * config.num_critic_steps
    self.every_seconds, self.divergence_bound = config.progress_every_seconds, config.divergence_bound
    self.title = f"{config.get('loss')} ({workdir})"  # of the plots
    self.is_main = writer is not None  # only process 0 writes records and progress lines
    self.pending: list[dict] = []
    self.window = (self.clock.training(), start.step)  # the throughput is measured from this (time, step)
    self.first = True
    self.last_line, self.last_line_step = -math.inf, None  # when the latest progress line came, and of which step

  def __call__(self, before: Position, after: Position, state: steps.TrainState, metrics: dict) -> None:
    metrics = self.unreplicate(metrics)
    self.pending.append(metrics)
    if self.first:  # compilation: its time is left out of the throughput
      jax.block_until_ready(metrics)
      logging.info("first step (compilation included) took %.1fs", self.clock.training() - self.window[0])
      self.window, self.first = (self.clock.training(), after.step), False
    logged = self.schedule.record(before, after) and self.flush(after)
    if not logged and self.is_main and self.every_seconds and self.clock.now() - self.last_line >= self.every_seconds:
      scalars = {k: float(v) for k, v in sorted(jax.device_get(metrics).items())}
      self._line(after, scalars, self._steps_per_sec(after.step, self.clock.training()))

  def stop(self, after: Position, state: steps.TrainState) -> None:
    self.flush(after)

  def flush(self, position: Position) -> bool:
    """Fetch the window's metrics (the only per-window host sync), check, log, write; False if it was empty."""
    if not self.pending:
      return False
    means = jax.device_get(jax.tree.map(lambda *m: jnp.mean(jnp.stack(m)), *self.pending))
    scalars = {k: float(v) for k, v in sorted(means.items())}
    bad = {k: v for k, v in scalars.items() if not (math.isfinite(v) and abs(v) <= self.divergence_bound)}
    if bad:
      raise TrainingDiverged(
        f"training diverged before step {position.step}: {', '.join(f'{k}={v:.4g}' for k, v in bad.items())} "
        f"(config.divergence_bound={self.divergence_bound:g}); the last checkpoint before it is kept "
        f"({self.saver.last_kept()}) in "
        f"{self.workdir}/checkpoints. Try a lower learning rate."
      )
    now = self.clock.training()
    steps_per_sec = self._steps_per_sec(position.step, now)
    scalars["epoch"] = round(position.epoch, 4)
    if steps_per_sec is not None:  # none for a record of the first step alone: its time is compilation
      scalars.update(steps_per_sec=steps_per_sec, images_per_sec=steps_per_sec * self.images_per_step)
    if self.is_main:
      self.writer.write(position.step, scalars)
      if position.step != self.last_line_step:  # a stop right after a time-based line: the record, no second line
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
    self.last_line, self.last_line_step = self.clock.now(), position.step

  def close(self) -> None:
    """Plot the metric records: losses.png, and eval.png if the run evaluated (the writer flushed each)."""
    if not self.is_main:
      return
    records = metric_writers.read_metrics(self.workdir)
    if records:
      plots.plot_losses(records, os.path.join(self.workdir, "losses.png"), self.title)
      plots.plot_evaluations(records, os.path.join(self.workdir, "eval.png"), self.title)
