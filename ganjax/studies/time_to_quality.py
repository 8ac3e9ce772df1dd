"""Time to quality: how much training wall time a config needs before its generator meets the quality targets.

`time_to_quality(config, workdir, out_dir)` trains the run in the run's own loop (train.run: progress records,
sample grids, a clean stop on SIGTERM / Ctrl-C) and, as one more action of that loop, evaluates the generator
every `Cadence.every_seconds` of training (or every `every_steps` generator steps) on the same noise, until
every target of `Targets` holds, `max_train_seconds` of training have passed or the config's length is trained.
Training and evaluation are timed apart: the clock is read after blocking on the step's outputs, and the first
step (compilation included) counts as training, also recorded on its own. One JSON line per evaluation goes to
<out_dir>/time_to_quality.jsonl, a summary naming the hardware to <out_dir>/time_to_quality.md
(ganjax/studies/time_to_quality_records.py).

Resumable: each evaluation writes its record, then a checkpoint. Rerunning with the same workdir and out_dir
continues from the newest checkpoint; records past it are dropped and measured again. A resumed run compiles
again, which adds that time (seconds) to training. experiments/time_to_quality.py is the command line.
"""

import dataclasses
import datetime
import math
import os
import time
from collections.abc import Callable

import jax
import ml_collections

from ganjax import conditioning, periodic, rng, steps, stopping, train
from ganjax.data import mnist
from ganjax.errors import ConfigError
from ganjax.eval import calibration, sample_quality
from ganjax.studies import cells
from ganjax.studies import time_to_quality_records as records_lib
from ganjax.synth import generation

RECORDS_FILE, SUMMARY_FILE = "time_to_quality.jsonl", "time_to_quality.md"
CALIBRATION_SAMPLES = 10_000
# FID of 10k random MNIST training images against the 10k test images: what a perfect generator scores at 10k
# samples (experiments/results/calibration.md, row 'train (real)'); docs/recipes.md's FID target is 8x it.
REAL_DATA_FID_FLOOR = 1.90
FID_FLOOR_MULTIPLE = 8


@dataclasses.dataclass(frozen=True)
class Targets:
  """docs/recipes.md's targets: FID at most `fid`, every other metric at least its value."""

  fid: float = FID_FLOOR_MULTIPLE * REAL_DATA_FID_FLOOR
  classifier_score: float = 9.5
  recall: float = 0.6
  min_class_share: float = 0.07
  label_agreement: float = 0.98  # digit-conditional runs only, as CAS
  cas: float = 0.975  # checked only once every other target holds: it trains a classifier (minutes on a CPU)

  def short_by(self, name: str, value: float) -> float:
    """How far `value` is from the target (<= 0: met; NaN never meets it)."""
    target = getattr(self, name)
    return value - target if name == "fid" else target - value

  def check(self, result: dict) -> dict[str, bool | None]:
    """Which targets hold (None: CAS not computed yet). Label agreement and CAS apply when the result has
    label agreement, i.e. the generator draws the digits it is asked for."""
    checks = {}
    for name in (field.name for field in dataclasses.fields(self)):
      if name in result:
        checks[name] = bool(self.short_by(name, result[name]) <= 0)
      elif name == "cas" and "label_agreement" in result:
        checks[name] = None
    return checks

  def others_hold(self, result: dict) -> bool:
    """Every target but CAS holds: the condition for computing CAS."""
    return all(met for name, met in self.check(result).items() if name != "cas")

  def all_met(self, result: dict) -> bool:
    return all(met is True for met in self.check(result).values())


@dataclasses.dataclass(frozen=True)
class Cadence:
  """When to evaluate, in training time (evaluation excluded) or generator steps, and when to give up."""

  every_seconds: float = 60.0  # 0: off
  every_steps: int = 0  # 0: off
  max_train_seconds: float = math.inf

  def due(self, steps_since: int, seconds_since: float, train_seconds: float) -> bool:
    """An evaluation is due `steps_since` steps and `seconds_since` training seconds after the previous one."""
    by_steps = self.every_steps > 0 and steps_since >= self.every_steps
    by_time = self.every_seconds > 0 and seconds_since >= self.every_seconds
    return by_steps or by_time or train_seconds >= self.max_train_seconds


def real_data_fid_floor(evaluation: sample_quality.Evaluation, config: ml_collections.ConfigDict, num: int) -> float:
  """What a perfect generator scores at `num` samples: the calibrated constant at 10k, else measured as the
  calibration does (random training images, all of MNIST's, against the test set); FID grows as num shrinks."""
  if num == CALIBRATION_SAMPLES:
    return REAL_DATA_FID_FLOOR
  full = config.copy_and_resolve_references()
  full.train_subset, full.examples_per_class = 0, 0
  images, labels = mnist.load_split(full, "train")
  images, _ = calibration.random_subset(images, labels, min(num, len(images)), jax.random.key(0))
  return float(evaluation.evaluate_images(images, None)["fid"])


class GeneratorQuality:
  """The project's metrics of the generator in a state, as the run's own evaluations compute them
  (sample_quality.Evaluation.evaluate_state: the same noise and balanced digits each time, sampled as the config
  says), of `num_samples` samples; CAS (a classifier trained on the samples: minutes) only once every other
  target holds. A run that samples digits through a naming has it prepared at the first evaluation."""

  def __init__(self, evaluation, setup: steps.GanSetup, config, targets: Targets, num_samples: int, key, naming=None):
    self.evaluation, self.setup, self.targets, self.key, self.prepare_naming = evaluation, setup, targets, key, naming
    self.config = config.copy_and_resolve_references()
    self.config.eval_num_samples, self.config.eval_cas = num_samples, False  # CAS: only if the others hold
    self.naming = None

  def __call__(self, state: steps.TrainState) -> dict:
    if self.naming is None and self.prepare_naming is not None:
      self.naming = self.prepare_naming()
    cas_if = self.targets.others_hold
    return self.evaluation.evaluate_state(self.setup, state, self.config, self.key, naming=self.naming, cas_if=cas_if)


class MeasureQuality(periodic.Action):
  """An action of the training loop: evaluates the generator when `cadence` says (and at the config's last
  step), off the training clock, until every target holds or max_train_seconds of training have passed (`done`).
  Each evaluation appends its record to `records`, rewrites <out_dir>/time_to_quality.jsonl, then saves a
  checkpoint (so every checkpoint of this study has its record). The training clock is read after blocking on
  the step's outputs; the first step of each (re)start, compilation included, is also recorded on its own."""

  def __init__(
    self,
    experiment: train.Experiment,
    records: list[dict],
    cadence: Cadence,
    targets: Targets,
    quality: Callable[[steps.TrainState], dict],
    path: str,
    saver: periodic.CheckpointSaver,
    clock: periodic.TrainingClock,
  ):
    self.experiment, self.records, self.cadence, self.targets = experiment, records, cadence, targets
    self.quality, self.path, self.saver, self.clock = quality, path, saver, clock
    last = records[-1] if records else {"train_seconds": 0, "first_step_seconds": 0, "all_met": False}
    self.train_seconds, self.first_steps = last["train_seconds"], last["first_step_seconds"]
    self.done = last["all_met"] or self.train_seconds >= cadence.max_train_seconds
    self.segment, self.since = clock.training(), (experiment.start.step, self.train_seconds)

  def __call__(self, before, after: periodic.Position, state: steps.TrainState, metrics: dict) -> None:
    if after.step == self.experiment.start.step + 1:  # compilation: paid again by every (re)start
      jax.block_until_ready(metrics)
      self.first_steps += self.clock.training() - self.segment
    now = self.train_seconds + self.clock.training() - self.segment  # before blocking: only whether one is due
    due = self.cadence.due(after.step - self.since[0], now - self.since[1], now)
    if not (due or after.step == self.experiment.total_steps):
      return
    jax.block_until_ready((state, metrics))  # the steps dispatched so far are done: now the clock is true
    self.train_seconds += self.clock.training() - self.segment
    with self.clock.not_training():
      record = self._evaluate(state, after)
      self.records.append(record)
      if self.experiment.is_main:
        records_lib.write_records(self.path, self.records)
        print(records_lib.record_line(record), flush=True)
      self.saver.save(after, state)  # after its record: every checkpoint of this study has one
    self.done = record["all_met"] or self.train_seconds >= self.cadence.max_train_seconds
    self.segment, self.since = self.clock.training(), (after.step, self.train_seconds)

  def _evaluate(self, state: steps.TrainState, position: periodic.Position) -> dict:
    """One evaluation's record: where, how long it took, the metrics and which targets hold."""
    start, result = self.clock.now(), self.quality(self.experiment.devices.unreplicate(state))
    seconds = round(self.clock.now() - start, 3)
    record = {"step": position.step, "epoch": round(position.epoch, 4), "eval_seconds": seconds}
    record |= sample_quality.scalars(result, prefix="")
    record |= {"targets": self.targets.check(result), "all_met": self.targets.all_met(result)}
    return record | {"train_seconds": round(self.train_seconds, 3), "first_step_seconds": round(self.first_steps, 3)}

  @property
  def stopped(self) -> str:
    """Why the measurement ended, if no evaluation met every target."""
    if self.train_seconds >= self.cadence.max_train_seconds:
      return "max_train_seconds reached"
    return "end of the config's training"


def time_to_quality(
  config: ml_collections.ConfigDict,
  workdir: str,
  out_dir: str,
  cadence: Cadence = Cadence(),
  num_samples: int = CALIBRATION_SAMPLES,
  name: str = "run",
  command: str = "",
  targets: Targets | None = None,
  evaluation: sample_quality.Evaluation | None = None,
  quality: Callable[[steps.TrainState], dict] | None = None,
  clock: Callable[[], float] = time.perf_counter,
  prepare_naming: conditioning.PrepareNaming | None = None,
) -> dict:
  """Train `config` in `workdir` (resuming it) until its generator meets `targets` (default: docs/recipes.md's,
  the FID target 8x the real-data floor at `num_samples`); returns the summary (summarise) and writes
  <out_dir>/time_to_quality.{jsonl,md}. The training loop is the run's own (train.run: progress records, sample
  grids, a clean stop on SIGTERM / Ctrl-C) with the evaluations as one more action. `prepare_naming` prepares
  the naming of a run that samples digits through one (as in train.build). `evaluation` (the test-set
  reference), `quality` (state -> metrics, replacing GeneratorQuality) and `clock` are for reuse and tests."""
  if num_samples <= 0:
    raise ConfigError(f"--num_samples={num_samples}: evaluate at least one sample")
  if conditioning.Conditioning(config.conditioning).recognizes:  # before build touches the workdir
    raise ConfigError(
      "conditioning='semi_supervised': time to quality measures a GAN's samples; a semi_supervised run's measure "
      "is its critic's test accuracy, every epoch in its metrics.jsonl (python main.py, python recognize.py)"
    )
  if cadence.every_seconds <= 0 and cadence.every_steps <= 0:
    raise ConfigError("give --eval_every_seconds or --eval_every_steps (> 0): when to evaluate")
  path = os.path.join(out_dir, RECORDS_FILE)
  newest = max(generation.checkpoint_steps(workdir), default=0)
  records_lib.resumed_records(path, newest, num_samples)  # refused before build touches the workdir
  with stopping.StopRequests() as stop:
    experiment = train.build(config, workdir, prepare_naming=prepare_naming)
    try:
      records = records_lib.resumed_records(path, experiment.start.step, num_samples)  # the one that restored
      records_lib.write_records(path, records)
      if quality is None:
        quality, targets = _generator_quality(experiment, evaluation, targets, num_samples)
      targets = targets or Targets()
    except BaseException:
      train.release(experiment)
      raise
    training_clock, saver = periodic.TrainingClock(clock), train.checkpoint_saver(experiment)
    measure = MeasureQuality(experiment, records, cadence, targets, quality, path, saver, training_clock)
    actions = train.periodic_actions(experiment, training_clock, saver, scheduled=("report", "grids"))
    train.run(experiment, [*actions, measure], stop, should_stop=lambda: measure.done)
  summary = records_lib.summarise(records, targets, measure.stopped)
  summary |= {"hardware": cells.hardware(), "date": datetime.date.today().isoformat()}
  if experiment.is_main:
    records_lib.write_markdown(os.path.join(out_dir, SUMMARY_FILE), name, summary, records, command)
    print(f"{records_lib.summary_line(name, summary)} on {summary['hardware']['line']}", flush=True)
  return summary


def _generator_quality(experiment: train.Experiment, evaluation, targets: Targets | None, num_samples: int):
  """(GeneratorQuality, targets): the run's own evaluation at `num_samples`, on the noise of its periodic
  evaluations (comparable numbers), and the targets at the real-data floor of that sample size."""
  start = time.perf_counter()
  evaluation = evaluation or sample_quality.Evaluation.create(experiment.config)
  floor = real_data_fid_floor(evaluation, experiment.config, num_samples)
  targets = targets or Targets(fid=FID_FLOOR_MULTIPLE * floor)
  key = rng.stream(experiment.root_key, rng.EVAL)
  args = (evaluation, experiment.setup, experiment.config, targets, num_samples, key, experiment.prepare_naming)
  print(f"evaluation set up in {time.perf_counter() - start:.1f} s, apart; FID floor {floor:.3g}", flush=True)
  return GeneratorQuality(*args), targets
