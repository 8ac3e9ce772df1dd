"""The semi-supervised GAN's periodic actions (ganjax/periodic.py's `Action`): the critic's test accuracy every
eval_every_epochs epochs and at the end, with its curve in the workdir; G's sample grids; and the collapse check.
"""

import functools
import os
import time

import jax
import ml_collections
import numpy as np
from absl import logging

from ganjax import metric_writers, periodic, plots, rng, saved_run
from ganjax.data import mnist
from ganjax.errors import TrainingDiverged
from ganjax.eval import sample_quality
from ganjax.periodic import Action, CheckpointSaver, Position, Schedule, TrainingClock
from ganjax.ssl import steps

CURVE_FILE = "recognition.png"  # the critic's test accuracy over training, beside the published port's
# The averaged critic's test accuracy of a faithful port of the reference recipe (one seed, 10 labels per digit;
# hiroharu-kato/improved_gan_chainer's log, quoted in issue 35): what configs/ssl_gan.py should follow.
REFERENCE_CURVE = {1: 0.69, 13: 0.90, 31: 0.972, 43: 0.980, 64: 0.985, 115: 0.990, 300: 0.9918}


class EvaluateRecognition(Action):
  """The test accuracy of the averaged critic (what recognition reads), the live one and the debiased average,
  every eval_every_epochs epochs (into metrics.jsonl, and the curve) and at the end (into eval.json)."""

  def __init__(self, schedule: Schedule, setup: steps.SslSetup, config, workdir: str, writer, clock: TrainingClock):
    self.schedule, self.setup, self.config, self.workdir = schedule, setup, config, workdir
    self.writer, self.clock = writer, clock
    self.test_set: tuple[np.ndarray, np.ndarray] | None = None  # loaded at the first evaluation

  def __call__(self, before: Position, after: Position, state: steps.SslState, metrics: dict) -> None:
    if self.schedule.evaluate(before, after):
      self._write(after.step, self.evaluate(state, after, after.step))

  def final(self, after: Position, state: steps.SslState, trained: bool) -> None:
    """eval.json of the last step, unless this run trained nothing and it exists already."""
    if not (self.schedule.eval_at_end and (trained or sample_quality.read_json(self.workdir) is None)):
      return
    result = self.evaluate(state, after, self.schedule.total_steps)
    if self.writer is not None:
      sample_quality.write_json(os.path.join(self.workdir, saved_run.EVAL_FILE), result)
    if trained:
      self._write(self.schedule.total_steps, result)

  def evaluate(self, state: steps.SslState, position: Position, step: int) -> dict:
    with self.clock.not_training():
      start = time.perf_counter()
      if self.test_set is None:
        self.test_set = mnist.load_split(self.config, "test")
      result = test_accuracies(self.setup, state, *self.test_set)
      result.update(step=step, epoch=round(position.epoch, 4), eval_seconds=round(time.perf_counter() - start, 1))
    logging.info(
      "eval at step %d (epoch %.2f): test accuracy %.4f (%d errors per 10k), live critic %.4f",
      step, position.epoch, result["test_accuracy"], result["test_errors_per_10k"], result["test_accuracy_live"],
    )  # fmt: skip
    return result

  def _write(self, step: int, result: dict) -> None:
    if self.writer is None:
      return
    self.writer.write(step, {"epoch": result["epoch"], **sample_quality.scalars(result)})
    records = [r for r in metric_writers.read_metrics(self.workdir) if "eval_test_accuracy" in r]
    plots.plot_recognition(records, os.path.join(self.workdir, CURVE_FILE), REFERENCE_CURVE, self.workdir)


def test_accuracies(setup: steps.SslSetup, state: steps.SslState, images_: np.ndarray, labels: np.ndarray) -> dict:
  """The averaged (as the reference reads it), live and debiased-average critics' accuracy on a test set."""
  frozen = state.critic_frozen
  averaged = steps.critic_accuracy(setup, steps.averaged_critic_params(setup, state), frozen, images_, labels)
  live = steps.critic_accuracy(setup, state.critic_params, frozen, images_, labels)
  debiased_params = steps.averaged_critic_params(setup, state, debias=True)
  debiased = steps.critic_accuracy(setup, debiased_params, frozen, images_, labels)
  return {
    "test_accuracy": averaged,
    "test_errors_per_10k": round((1.0 - averaged) * 10_000, 1),
    "test_accuracy_live": live,
    "test_accuracy_debiased": debiased,
    "num_test_images": len(labels),
  }


class SampleGrids(periodic.SampleGrids):
  """G's samples of the same noise after each sample epoch and at the end, as periodic.SampleGrids writes them
  (G is unconditional: no rows)."""

  def __init__(self, schedule: Schedule, setup: steps.SslSetup, config, root_key, workdir: str, clock, is_main):
    self.schedule, self.workdir, self.clock, self.is_main = schedule, workdir, clock, is_main
    key = rng.stream(root_key, rng.SAMPLE_GRID)
    self.fixed_z = steps.draw_latents(setup, key, config.num_sample_images)
    self.sample_fn = jax.jit(functools.partial(_sample, setup))

  def samples(self, state: steps.SslState) -> jax.Array:
    return self.sample_fn(state, self.fixed_z)


def _sample(setup: steps.SslSetup, state: steps.SslState, z: jax.Array) -> jax.Array:
  """G's images of z, in [-1, 1] as the grids take them (G draws in [0, 1], on the batch's statistics)."""
  return setup.generator.apply({"params": state.generator_params}, z) * 2.0 - 1.0


class CheckCollapse(Action):
  """Stops the run when its critic stops telling real from fake usefully: the known failure of this recipe, in
  which the unlabelled loss falls to about 0 while G's feature-matching loss climbs (to ~100) and the test
  accuracy decays. Both must hold over `patience` consecutive metric windows (isolated spikes recover); the
  error names the step and the values, and the checkpoint before it is kept (this action acts before the
  checkpoint of its step)."""

  def __init__(self, schedule: Schedule, config: ml_collections.ConfigDict, saver: CheckpointSaver):
    self.schedule, self.saver = schedule, saver
    self.unlabelled_below = config.collapse_unlabelled_loss
    self.generator_above = config.collapse_generator_loss
    self.patience = config.collapse_patience
    self.pending: list[jax.Array] = []
    self.collapsed_since: list[tuple[int, float, float]] = []  # (step, unlabelled, generator) of the windows

  def __call__(self, before: Position, after: Position, state: steps.SslState, metrics: dict) -> None:
    if self.patience <= 0:
      return
    self.pending.append((metrics["unlabelled_loss"], metrics["generator_loss"]))  # no device op per step
    if not self.schedule.record(before, after):
      return
    unlabelled, generator = (float(v) for v in np.mean(np.asarray(jax.device_get(self.pending)), axis=0))
    self.pending = []
    if not (unlabelled < self.unlabelled_below and generator > self.generator_above):
      self.collapsed_since = []
      return
    self.collapsed_since.append((after.step, unlabelled, generator))
    if len(self.collapsed_since) >= self.patience:
      first = self.collapsed_since[0]
      raise TrainingDiverged(
        f"the semi-supervised GAN collapsed by step {after.step}: unlabelled_loss {unlabelled:.3g} < "
        f"{self.unlabelled_below:g} and generator_loss {generator:.3g} > {self.generator_above:g} in "
        f"{len(self.collapsed_since)} metric windows in a row since step {first[0]}; the last checkpoint before "
        f"it is kept ({self.saver.last_kept()}). Try a lower learning rate or another seed"
      )
