"""train_and_evaluate(config, workdir): the training loop and every side effect of a run.

Writes to the workdir: config.json, checkpoints/ (orbax), metrics.jsonl, tensorboard/, samples/*.png and
losses.png. Rerunning with the same workdir resumes from the newest checkpoint that restores.
"""

import functools
import math
import os
import tempfile
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from ganjax import checkpoints as checkpoints_lib
from ganjax import config as config_lib
from ganjax import images, metric_writers, parallel, plots, steps
from ganjax.data import clusters, mnist
from ganjax.errors import TrainingDiverged, WorkdirError
from ganjax.eval import sample_quality
from ganjax.synth import generation


def prepare_workdir(workdir: str, config: ml_collections.ConfigDict, is_main: bool) -> str:
  """Create the workdir, prove it writable and record the resolved config, before any training."""
  workdir = os.path.abspath(workdir)
  try:
    os.makedirs(workdir, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=workdir, prefix=".config", suffix=".json", delete=False) as f:
      f.write(config.to_json_best_effort(indent=2, sort_keys=True))
    if is_main:
      os.replace(f.name, os.path.join(workdir, "config.json"))
    else:
      os.remove(f.name)
  except OSError as e:
    raise WorkdirError(f"cannot write to workdir {workdir!r}: {e.strerror}; choose a writable --workdir") from e
  return workdir


def grid_labels(num_images: int, num_classes: int) -> jax.Array | None:
  """The labels of a conditional sample grid: row r shows digit r % num_classes (None if unconditional)."""
  if not num_classes:
    return None
  return (jnp.arange(num_images) // math.isqrt(num_images)) % num_classes


@jax.jit
def _all_finite(tree) -> jax.Array:
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


class _Run:
  """The bookkeeping of one training loop: position, metric windows, grids. Not part of the maths."""

  def __init__(
    self, config, workdir, setup, num_examples, total_steps, start_step, batches_consumed, root_key, cluster_shares
  ):
    self.config, self.workdir, self.setup = config, workdir, setup
    self.is_main = jax.process_index() == 0  # only process 0 writes logs, metrics, grids and plots
    self.per_epoch = config_lib.batches_per_epoch(config, num_examples)
    self.total_steps, self.batches_consumed = total_steps, batches_consumed
    self.num_epochs = total_steps * config.num_critic_steps / self.per_epoch
    self.root_key = root_key
    self.pending: list[dict] = []
    self.window = (time.perf_counter(), start_step)
    self.last_checkpoint = start_step if start_step else None
    self.sample_fn = jax.jit(functools.partial(steps.sample, setup))
    sample_key = jax.random.fold_in(root_key, 3)
    self.fixed_z = jax.random.normal(sample_key, (config.num_sample_images, config.latent_dim))
    label_key = jax.random.fold_in(sample_key, 1)
    if setup.num_clusters:  # a self-conditioned run's grid: clusters drawn as sampling draws them, in order
      labels = generation.cluster_labels(cluster_shares, label_key, config.num_sample_images)
      self.fixed_labels = jnp.asarray(np.sort(labels))
    else:
      self.fixed_labels = grid_labels(config.num_sample_images, config.num_classes)
    if setup.clusters_per_class:  # row r still shows digit r, each in a style drawn by its share
      digits = np.asarray(self.fixed_labels)
      self.fixed_labels = jnp.asarray(generation.digit_cluster_labels(setup, cluster_shares, digits, label_key))
    self.evaluation: sample_quality.Evaluation | None = None  # built at the first evaluation

  @property
  def epoch(self) -> float:
    return self.batches_consumed / self.per_epoch

  def record(self, step: int) -> dict:
    """What a checkpoint holds beside the state: the RNG key and the data position."""
    return {
      "step": step,
      "batches_consumed": self.batches_consumed,
      "epoch": self.epoch,
      "rng_key": checkpoints_lib.key_to_list(self.root_key),
      "seed": self.config.seed,
    }

  def flush_metrics(self, step: int, writer: metric_writers.MetricWriter | None) -> None:
    """Fetch the window's metrics from the device (the only per-window host sync), check, log, write."""
    if not self.pending:
      return
    means = jax.device_get(jax.tree.map(lambda *m: jnp.mean(jnp.stack(m)), *self.pending))
    scalars = {k: float(v) for k, v in sorted(means.items())}
    bad = {k: v for k, v in scalars.items() if not math.isfinite(v)}
    if bad:
      where = f"step {self.last_checkpoint}" if self.last_checkpoint else "none written yet"
      raise TrainingDiverged(
        f"training diverged before step {step}: {', '.join(f'{k}={v}' for k, v in bad.items())}; "
        f"the last good checkpoint is kept ({where}) in {self.workdir}/checkpoints. Try a lower learning rate."
      )
    now = time.perf_counter()
    start_time, start_step = self.window
    steps_per_sec = (step - start_step) / max(now - start_time, 1e-9)
    scalars.update(
      epoch=round(self.epoch, 4),
      steps_per_sec=steps_per_sec,
      images_per_sec=steps_per_sec * self.config.batch_size * self.config.num_critic_steps,
    )
    eta = (self.total_steps - step) / steps_per_sec if steps_per_sec > 0 else math.inf
    if self.is_main:
      writer.write(step, scalars)
      logging.info(metric_writers.progress_line(step, self.total_steps, self.epoch, self.num_epochs, scalars, eta))
    self.pending, self.window = [], (now, step)

  def evaluate(self, state: steps.TrainState, step: int) -> dict:
    """Sample metrics of `state` (the same noise every time: epochs differ by the generator alone)."""
    start = time.perf_counter()
    if self.evaluation is None:
      self.evaluation = sample_quality.Evaluation.create(self.config)
    result = self.evaluation.evaluate_state(self.setup, state, self.config, jax.random.fold_in(self.root_key, 4))
    result.update(step=step, epoch=round(self.epoch, 4), eval_seconds=round(time.perf_counter() - start, 1))
    logging.info(
      "eval at step %d (epoch %.2f): %s",
      step,
      self.epoch,
      sample_quality.summary_line(result),
    )
    self.window = (self.window[0] + time.perf_counter() - start, self.window[1])  # not training time
    return result

  def save_grid(self, name: str, state: steps.TrainState) -> None:
    samples = self.sample_fn(state, self.fixed_z, self.fixed_labels)  # every process takes part; process 0 writes
    if not self.is_main:
      return
    samples = np.asarray(samples)
    path = os.path.join(self.workdir, "samples", name)
    images.save_grid(path, samples)
    logging.info("wrote %s", path)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> steps.TrainState:
  """Train (or resume) the run `config` describes in `workdir`; returns the final training state."""
  config_lib.validate(config)
  parallel.initialize_distributed(config)
  is_main = jax.process_index() == 0
  if not is_main:
    logging.set_verbosity(logging.WARNING)  # one progress log per run, from process 0
  workdir = prepare_workdir(workdir, config, is_main)
  devices = parallel.DataParallel(config)
  setup = devices.make_setup(config)
  train_images, train_labels = mnist.load_split(config, "train")
  num_examples = len(train_images)
  total_steps = config_lib.total_train_steps(config, num_examples)

  root_key = jax.random.key(config.seed)
  state = steps.create_state(setup, jax.random.fold_in(root_key, 0), train_images.shape[1:])
  cluster_key, clusters_path = jax.random.fold_in(root_key, 5), os.path.join(workdir, clusters.CLUSTERS_FILE)
  if config.num_clusters:  # self-conditioning: the clusters replace the labels, which are not used
    assignments = clusters.load_or_compute(workdir, train_images, config.num_clusters, cluster_key, write=is_main)
    logging.info(
      "self-conditioned on %d k-means clusters (%s); their purity w.r.t. the digit labels, not used: %.3f",
      config.num_clusters,
      clusters_path,
      clusters.purity(assignments, train_labels),
    )
  elif setup.clusters_per_class:  # (digit, style) pairs replace the digits
    assignments = clusters.load_or_compute(
      workdir, train_images, setup.clusters_per_class, cluster_key, write=is_main, labels=train_labels
    )
    logging.info("each digit split into %d k-means clusters (%s)", setup.clusters_per_class, clusters_path)
  if setup.conditioned_on_clusters:
    train_labels = assignments
    state = state.replace(cluster_shares=jnp.asarray(clusters.shares(assignments, setup.num_classes)))
  checkpoints = checkpoints_lib.Checkpoints(
    os.path.join(workdir, "checkpoints"), config.checkpoint_every_steps, config.keep_checkpoints
  )
  restored = checkpoints.restore_latest(devices.abstract_state(state))
  batches_consumed = 0
  if restored is not None:
    state, record = restored
    root_key = checkpoints_lib.key_from_list(record["rng_key"])
    batches_consumed = record["batches_consumed"]
    logging.info("resumed from step %d (epoch %.2f) in %s", record["step"], record["epoch"], workdir)
  start_step = int(state.step)
  unreplicated_shares = None if state.cluster_shares is None else np.asarray(state.cluster_shares)
  state = devices.put_state(state)

  shuffler = mnist.EpochShuffler(jax.random.fold_in(root_key, 1), num_examples, config.batch_size)
  step_key = jax.random.fold_in(root_key, 2)
  run = _Run(
    config, workdir, setup, num_examples, total_steps, start_step, batches_consumed, root_key, unreplicated_shares
  )
  writer = metric_writers.MetricWriter(workdir, start_step) if is_main else None
  train_step = devices.compile_train_step(setup)
  device_images, device_labels = devices.put_dataset(train_images, train_labels)
  logging.info(
    "training %s for %d generator steps (%.2f epochs of %d batches of %d) from step %d on %d x %s (%s, %d process(es))",
    config.loss,
    total_steps,
    run.num_epochs,
    run.per_epoch,
    config.batch_size,
    start_step,
    devices.num_devices,
    devices.devices[0].device_kind,
    devices.mode,
    jax.process_count(),
  )
  try:
    for step in range(start_step, total_steps):
      batch = devices.batch(
        device_images, device_labels, shuffler.indices(run.batches_consumed, config.num_critic_steps)
      )
      epochs_before = run.batches_consumed // run.per_epoch
      state, metrics = train_step(state, batch, step_key)
      run.batches_consumed += config.num_critic_steps
      run.pending.append(devices.unreplicate(metrics))
      done = step + 1
      if step == start_step:
        jax.block_until_ready(metrics)
        logging.info("first step (compilation included) took %.1fs", time.perf_counter() - run.window[0])
        run.window = (time.perf_counter(), done)
        run.pending = []
      save = checkpoints.should_save(done) or done == total_steps
      if done % config.log_every_steps == 0 or save:
        run.flush_metrics(done, writer)
      if save:
        if not bool(_all_finite(state)):
          raise TrainingDiverged(f"parameters became NaN/inf by step {done}; the last good checkpoint is kept")
        checkpoints.save(done, devices.unreplicate(state), run.record(done))
        run.last_checkpoint = done
      epochs_after = run.batches_consumed // run.per_epoch
      for epoch in config.sample_epochs:
        if epochs_before < epoch <= epochs_after:
          run.save_grid(f"epoch_{epoch:03d}.png", devices.unreplicate(state))
      every = config.eval_every_epochs
      last_and_evaluated_at_end = done == total_steps and config.eval_at_end
      if every and int(epochs_before / every) < int(epochs_after / every) and not last_and_evaluated_at_end:
        result = run.evaluate(devices.unreplicate(state), done)
        if writer is not None:
          writer.write(done, {"epoch": result["epoch"], **sample_quality.scalars(result)})
    if total_steps > start_step or not os.path.exists(os.path.join(workdir, "samples", "final.png")):
      run.save_grid("final.png", devices.unreplicate(state))
    if config.eval_at_end and (total_steps > start_step or sample_quality.read_json(workdir) is None):
      result = run.evaluate(devices.unreplicate(state), total_steps)
      if writer is not None:
        sample_quality.write_json(os.path.join(workdir, sample_quality.EVAL_FILE), result)
        if total_steps > start_step:  # a rerun that only restores a missing eval.json has its record already
          writer.write(total_steps, {"epoch": result["epoch"], **sample_quality.scalars(result)})
  finally:
    checkpoints.wait()
    checkpoints.close()
    if writer is not None:
      writer.close()
      records = metric_writers.read_metrics(workdir)
      if records:
        plots.plot_losses(records, os.path.join(workdir, "losses.png"), f"{config.loss} ({workdir})")
        plots.plot_evaluations(records, os.path.join(workdir, "eval.png"), f"{config.loss} ({workdir})")
  return devices.unreplicate(state)
