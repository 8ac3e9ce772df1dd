"""Time to quality: how much training wall time a config needs before its generator meets the quality targets.

`time_to_quality(config, workdir, out_dir)` trains the run `train.build` sets up, with its compiled train step,
and evaluates the generator every `Cadence.every_seconds` of training (or every `every_steps` generator steps)
on the same noise, until every target of `Targets` holds, `max_train_seconds` of training have passed or the
config's length is trained. Training and evaluation are timed apart: the clock is read after blocking on the
step's outputs, and the first step (compilation included) counts as training, also recorded on its own. One
JSON line per evaluation goes to <out_dir>/time_to_quality.jsonl, a summary naming the hardware to
<out_dir>/time_to_quality.md.

Resumable: each evaluation writes its record, then a checkpoint. Rerunning with the same workdir and out_dir
continues from the newest checkpoint; records past it are dropped and measured again. A resumed run compiles
again, which adds that time (seconds) to training. experiments/time_to_quality.py is the command line.
"""

import dataclasses
import datetime
import json
import math
import os
import time
from collections.abc import Callable

import jax
import ml_collections

from ganjax import conditioning, files, runtime, steps, train
from ganjax.data import mnist
from ganjax.errors import ConfigError, WorkdirError
from ganjax.eval import calibration, classifiers, sample_quality
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
  """The project's metrics of the generator in a state: `num_samples` samples of the same noise (and balanced
  digits) each time, sampled as the config says (EMA, BatchNorm, noise scale), so evaluations differ by G alone.
  CAS only when every other target holds."""

  def __init__(self, evaluation, setup: steps.GanSetup, targets: Targets, num_samples: int, key: jax.Array):
    self.evaluation, self.setup, self.targets, self.key = evaluation, setup, targets, key
    num_digits = setup.conditioning.num_digits
    self.labels = conditioning.balanced_labels(num_samples, num_digits) if num_digits else None
    self.num_samples = num_samples

  def __call__(self, state: steps.TrainState) -> dict:
    images = generation.generate(self.setup, state, self.key, self.num_samples, self.labels)
    result = self.evaluation.evaluate_images(images, self.labels)
    if self.labels is not None and self.targets.others_hold(result):  # the key evaluate_state's CAS uses
      reference, cas_key = self.evaluation.reference, jax.random.fold_in(self.key, 1)
      args = (images, self.labels, reference.images, self.evaluation.test_labels, cas_key)
      result["cas"] = float(classifiers.classification_accuracy_score(*args))
    return result


def read_records(path: str) -> list[dict]:
  """The evaluations recorded so far (the file is rewritten whole at each, never left cut short)."""
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def write_records(path: str, records: list[dict]) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  files.atomic_write(path, "".join(json.dumps(r) + "\n" for r in records))


def resumed_records(path: str, step: int, num_samples: int) -> list[dict]:
  """The records the checkpoint at `step` (0: none) continues; later ones are to be dropped (their training is
  redone). Every checkpoint of this study follows its record, so a checkpoint without one is another's."""
  records = read_records(path)
  if step and not any(r["step"] == step for r in records):
    raise WorkdirError(
      f"the workdir's checkpoint at step {step} has no record in {path}: it was not written by this measurement; "
      "give that measurement's --out_dir, or a fresh --workdir"
    )
  if not step and records:
    raise WorkdirError(f"{path} holds a measurement whose workdir is not this one; use a fresh --out_dir")
  if records and records[0].get("num_samples", num_samples) != num_samples:
    raise ConfigError(f"--num_samples={num_samples}, but {path} was measured with {records[0]['num_samples']:g}")
  return [r for r in records if r["step"] <= step]


def hardware() -> dict:
  device = jax.devices()[0]
  kind, count, cpus = device.device_kind, jax.device_count(), os.cpu_count()
  cpu = runtime.cpu_model()
  line = f"{count} x {kind} ({device.platform}), {cpus} CPUs ({cpu}), jax {jax.__version__}"
  return {
    "device_kind": kind,
    "platform": device.platform,
    "device_count": count,
    "cpu_count": cpus,
    "cpu": cpu,
    "line": line,
  }


def summarise(records: list[dict], targets: Targets, stopped: str) -> dict:
  """The first evaluation where every target held (or the last one), and the best value of each metric seen
  with how far it is from its target (short_by <= 0: met)."""
  hit = next((r for r in records if r["all_met"]), None)
  at = hit or (records[-1] if records else {"step": 0, "epoch": 0.0, "train_seconds": 0.0, "first_step_seconds": 0})
  best = {}
  for name in dict.fromkeys(n for r in records for n in r["targets"]):
    seen = [(r[name], r["step"]) for r in records if isinstance(r.get(name), float) and math.isfinite(r[name])]
    if seen:
      value, step = min(seen, key=lambda pair: targets.short_by(name, pair[0]))  # the closest to its target
      best[name] = {"value": value, "step": step, "target": getattr(targets, name)}
      best[name]["short_by"] = targets.short_by(name, value)
  summary = {"reached": hit is not None, "stopped": "every target met" if hit else stopped}
  summary |= {k: at[k] for k in ("step", "epoch", "train_seconds", "first_step_seconds")}
  return summary | {"evaluations": len(records), "eval_seconds": sum(r["eval_seconds"] for r in records), "best": best}


def summary_line(name: str, summary: dict) -> str:
  """'<name>: every target met after 812.3 s of training (step ..., epoch ...; 14 evaluations took 420 s more)',
  or 'not reached ...; best <metric value (short by d)> ...' naming the targets never met."""
  where = f"step {summary['step']}, epoch {summary['epoch']:.2f}, first step {summary['first_step_seconds']:.1f} s"
  evals = f"{summary['evaluations']} evaluations took {summary['eval_seconds']:.0f} s more"
  if summary["reached"]:
    return f"{name}: every target met after {summary['train_seconds']:.1f} s of training ({where}; {evals})"
  best = summary["best"].items()
  missed = [f"{k} {b['value']:.4g} (short by {b['short_by']:.3g})" for k, b in best if b["short_by"] > 0]
  head = f"{name}: not reached in {summary['train_seconds']:.1f} s of training"
  return f"{head} ({where}; {summary['stopped']}; {evals}); best {', '.join(missed)}"


METRICS = ("fid", "classifier_score", "recall", "min_class_share", "label_agreement", "cas")


def write_markdown(path: str, name: str, summary: dict, records: list[dict], command: str) -> None:
  """The summary, the best value of each metric against its target, and every evaluation."""
  lines = [f"# Time to quality: {name}", "", f"{summary['date']}, {summary['hardware']['line']}.", ""]
  lines += [f"`{command}`", ""] if command else []
  lines += [f"**{summary_line(name, summary)}**", ""]
  lines += ["| metric | target | best | at step | short by |", "|---" * 5 + "|"]
  for key, b in summary["best"].items():
    lines.append(f"| {key} | {b['target']:.4g} | {b['value']:.4g} | {b['step']} | {max(b['short_by'], 0):.3g} |")
  lines += ["", f"| step | epoch | train s | eval s | {' | '.join(METRICS)} | met |", "|---" * (len(METRICS) + 5) + "|"]
  for r in records:
    cells = [str(r["step"]), f"{r['epoch']:.2f}", f"{r['train_seconds']:.1f}", f"{r['eval_seconds']:.1f}"]
    cells += [f"{r[m]:.4g}" if m in r else "-" for m in METRICS]
    cells.append(f"{sum(v is True for v in r['targets'].values())}/{len(r['targets'])}")
    lines.append("| " + " | ".join(cells) + " |")
  files.atomic_write(path, "\n".join(lines) + "\n")


def record_line(record: dict) -> str:
  """The console line of one evaluation: training time, evaluation time, metrics, targets met."""
  checks = record["targets"]
  missed = [n if m is False else f"{n} unchecked" for n, m in checks.items() if m is not True]
  met = f"targets met {sum(m is True for m in checks.values())}/{len(checks)}"
  return (
    f"step {record['step']} epoch {record['epoch']:.2f}: {record['train_seconds']:.1f} s of training "
    f"(+{record['eval_seconds']:.1f} s evaluating) | {sample_quality.summary_line(record)} | {met}"
    + (f", not: {', '.join(missed)}" if missed else "")
  )


def _train(
  experiment: train.Experiment, records: list[dict], cadence: Cadence, targets: Targets, quality, path, clock
) -> str:
  """Train from the restored state, evaluating when `cadence` says, until every target holds (records grows by
  one per evaluation); returns why it stopped. Evaluations and checkpoints happen off the training clock."""
  _, checkpoint, report = train.periodic_actions(experiment)
  train_seconds, first_steps = (records[-1]["train_seconds"], records[-1]["first_step_seconds"]) if records else (0, 0)
  done = bool(records) and (records[-1]["all_met"] or train_seconds >= cadence.max_train_seconds)
  segment, since = clock(), (experiment.start.step, train_seconds)
  try:
    for before, position, state, metrics in [] if done else train.train_steps(experiment):
      report(before, position, metrics)
      if position.step == experiment.start.step + 1:  # compilation: paid again by every (re)start
        jax.block_until_ready(metrics)
        first_steps += clock() - segment
      now = train_seconds + clock() - segment  # before blocking: only whether an evaluation is due
      if not (cadence.due(position.step - since[0], now - since[1], now) or position.step == experiment.total_steps):
        continue
      jax.block_until_ready((state, metrics))  # the steps dispatched so far are done: now the clock is true
      train_seconds += clock() - segment
      with report.not_training():
        record = _evaluate(experiment, state, position, quality, targets, clock) | {
          "train_seconds": round(train_seconds, 3),
          "first_step_seconds": round(first_steps, 3),
        }
        records.append(record)
        if experiment.is_main:
          write_records(path, records)
          print(record_line(record), flush=True)
        checkpoint.save(position, state)  # after its record: every checkpoint of this study has one
      if record["all_met"] or train_seconds >= cadence.max_train_seconds:
        break
      segment, since = clock(), (position.step, train_seconds)
  finally:
    report.close(f"{experiment.config.loss} ({experiment.workdir})")
  return "max_train_seconds reached" if train_seconds >= cadence.max_train_seconds else "end of the config's training"


def _evaluate(experiment: train.Experiment, state, position, quality, targets: Targets, clock) -> dict:
  """One evaluation's record: where, how long it took, the metrics and which targets hold."""
  start, result = clock(), quality(experiment.devices.unreplicate(state))
  record = {"step": position.step, "epoch": round(position.epoch, 4), "eval_seconds": round(clock() - start, 3)}
  record |= sample_quality.scalars(result, prefix="")
  return record | {"targets": targets.check(result), "all_met": targets.all_met(result)}


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
) -> dict:
  """Train `config` in `workdir` (resuming it) until its generator meets `targets` (default: docs/recipes.md's,
  the FID target 8x the real-data floor at `num_samples`); returns the summary (summarise) and writes
  <out_dir>/time_to_quality.{jsonl,md}. `evaluation` (the test-set reference), `quality` (state -> metrics,
  replacing GeneratorQuality) and `clock` are for reuse and tests."""
  if num_samples <= 0:
    raise ConfigError(f"--num_samples={num_samples}: evaluate at least one sample")
  if cadence.every_seconds <= 0 and cadence.every_steps <= 0:
    raise ConfigError("give --eval_every_seconds or --eval_every_steps (> 0): when to evaluate")
  if config.conditioning == "few_labels":  # its GAN is the clusters run's: time that instead
    raise ConfigError("conditioning=few_labels: time its GAN as conditioning=clusters (the same training)")
  path = os.path.join(out_dir, RECORDS_FILE)
  resumed_records(path, max(generation.checkpoint_steps(workdir), default=0), num_samples)  # before build writes
  experiment = train.build(config, workdir)
  try:
    records = resumed_records(path, experiment.start.step, num_samples)  # the checkpoint that restored
    write_records(path, records)
    if quality is None:
      start = time.perf_counter()
      evaluation = evaluation or sample_quality.Evaluation.create(experiment.config)
      floor = real_data_fid_floor(evaluation, experiment.config, num_samples)
      targets = targets or Targets(fid=FID_FLOOR_MULTIPLE * floor)
      key = jax.random.fold_in(experiment.root_key, 4)  # the noise of periodic.Evaluate: comparable numbers
      quality = GeneratorQuality(evaluation, experiment.setup, targets, num_samples, key)
      print(f"evaluation set up in {time.perf_counter() - start:.1f} s, apart; FID floor {floor:.3g}", flush=True)
    targets = targets or Targets()
    stopped = _train(experiment, records, cadence, targets, quality, path, clock)
  finally:
    train.release(experiment)
  summary = summarise(records, targets, stopped) | {"hardware": hardware(), "date": datetime.date.today().isoformat()}
  if experiment.is_main:
    write_markdown(os.path.join(out_dir, SUMMARY_FILE), name, summary, records, command)
    print(f"{summary_line(name, summary)} on {summary['hardware']['line']}", flush=True)
  return summary
