"""Sample-quality metrics of a trained run (any checkpoint) or of an exported .npz, vs the 10k MNIST test images.

  python evaluate.py --workdir=runs/cwgan_gp                    # the newest checkpoint
  python evaluate.py --workdir=runs/cwgan_gp --all_steps --ema=False
  python evaluate.py --npz=synthetic/cwgan_gp.npz --cas          # an exported dataset, with CAS
  python evaluate.py --workdir=runs/ssl_gan --cas                 # a semi_supervised run: G's digits its critic names
  python evaluate.py --workdir=runs/ssl_gan --cas --recognizer=cnn --min_confidence=0.99   # named by the CNN it teaches
  python evaluate.py --workdir=runs/few_labels --namer_workdir=runs/ssl_gan   # few_labels, named by that critic
  python evaluate.py --workdir=runs/few_labels --namer_workdir=runs/ssl_gan --recognizer=cnn --cas   # ... by its CNN

Prints one JSON object per evaluation and writes them to --out (default: eval_step<N>[_live].json in the
workdir, ending _namer_<RUN's name> with --namer_workdir=RUN, _cnn with --recognizer=cnn, _conf<p> with
--min_confidence=p; or <npz>.eval.json). Metrics: ganjax/metrics.py;
README "Reading the metrics" calibrates them.
"""

import json
import os

import jax
import ml_collections
from absl import app, flags

from ganjax import cli, config_defaults, saved_run
from ganjax.errors import ConfigError
from ganjax.eval import sample_quality
from ganjax.few_labels import naming
from ganjax.ssl import namer as ssl_namer
from ganjax.ssl import synthesis as ssl_synthesis
from ganjax.synth import export, generation

_WORKDIR = flags.DEFINE_string("workdir", None, "A training run's --workdir.")
_NPZ = flags.DEFINE_string("npz", None, "An exported dataset (python export.py) instead of a run.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the newest).")
_ALL_STEPS = flags.DEFINE_boolean("all_steps", False, "Evaluate every kept checkpoint of the run.")
_EMA = flags.DEFINE_boolean("ema", True, "Sample with the EMA generator when the run kept one.")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 10_000, "Generated images per evaluation.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the noise drawn.")
_BATCH_NORM = flags.DEFINE_enum(
  "batch_norm", None, ["moving", "batch"], "G's BatchNorm statistics when sampling (default: the run's config)."
)
_LATENT_SCALE = flags.DEFINE_float(
  "latent_scale", None, "Std of G's noise when sampling, > 0 (default: the run's config.sampling_latent_scale)."
)
_CAS = flags.DEFINE_boolean("cas", False, "Also train a classifier on the samples (CAS; ~2 min on CPU).")
_OUT = flags.DEFINE_string("out", None, "JSON file to write (missing directories are created).")
_NAMER_WORKDIR = flags.DEFINE_string(
  "namer_workdir",
  "",
  "A few_labels --workdir only: the semi_supervised run (same labelled few) whose averaged critic (or with "
  "--recognizer=cnn the CNN it teaches) names its clusters and checks every sample instead of the run's own namer.",
)

_RECOGNIZER = flags.DEFINE_string("recognizer", "critic", cli.RECOGNIZER_HELP)
_MIN_CONFIDENCE = flags.DEFINE_float("min_confidence", None, cli.MIN_CONFIDENCE_HELP)


def naming_choice() -> ssl_synthesis.NamingChoice:
  return ssl_synthesis.NamingChoice(_RECOGNIZER.value, _MIN_CONFIDENCE.value)


def data_config(provenance: dict) -> ml_collections.ConfigDict:
  """The config whose data_dir finds the test split: the export's run's (a mix's: its first source's whose run is
  here), else the defaults (TFDS_DATA_DIR)."""
  for origin in [provenance, *(source["provenance"] for source in provenance.get("mixed_from", []))]:
    workdir = origin.get("workdir")
    if workdir and os.path.exists(workdir):
      return saved_run.load(workdir)
  return config_defaults.get_config()


def evaluate_npz(path: str) -> list[dict]:
  images, labels, provenance = export.load_dataset(path)
  evaluator_run = sample_quality.Evaluation.create(data_config(provenance))
  result = evaluator_run.evaluate_images(images, labels, jax.random.key(_SEED.value) if _CAS.value else None)
  origin = {"checkpoint_step": provenance.get("checkpoint_step"), "label_source": provenance.get("label_source")}
  return [{"npz": os.path.abspath(path), **origin, **result}]


def load_run(workdir: str) -> generation.TrainedRun:
  load_naming = ssl_namer.loader(_NAMER_WORKDIR.value, naming_choice()) if _NAMER_WORKDIR.value else naming.load
  run = generation.load_run(workdir, _STEP.value, load_naming=load_naming)
  return run.with_sampling(batch_norm=_BATCH_NORM.value, latent_scale=_LATENT_SCALE.value)


def evaluate_run(run: generation.TrainedRun) -> list[dict]:
  steps = generation.checkpoint_steps(run.workdir) if _ALL_STEPS.value else [run.step]
  config = run.config
  config.eval_num_samples, config.eval_cas = _NUM_SAMPLES.value, _CAS.value
  evaluator_run = sample_quality.Evaluation.create(config)
  results = []
  for step in steps:
    if step != run.step:
      run = run.at_step(step)
    key = jax.random.key(_SEED.value)
    result = evaluator_run.evaluate_state(run.setup, run.state, config, key, _EMA.value, naming=run.naming)
    record = {"workdir": run.workdir, "step": step, "epoch": round(run.epoch, 3)}
    sampling = {
      "sampling_batch_norm": run.setup.sampling_batch_norm,
      "sampling_latent_scale": run.setup.sampling_latent_scale,
    }
    results.append({**record, **sampling, **result})
    print(json.dumps(results[-1]), flush=True)
  return results


def load_semi_supervised(workdir: str) -> ssl_synthesis.SslRun:
  """A semi_supervised run at its newest verified checkpoint; the flags that do not apply are refused first."""
  given = {
    "--step": _STEP.value is not None,
    "--all_steps": _ALL_STEPS.value,
    "--batch_norm": _BATCH_NORM.value is not None,
    "--latent_scale": _LATENT_SCALE.value is not None,
  }
  refused = [flag for flag, on in given.items() if on]
  if refused:
    raise ConfigError(
      f"{', '.join(refused)}: not for {workdir}, a semi_supervised run (evaluated at its newest verified "
      "checkpoint, its G sampled on batch statistics of z ~ U[0, 1]); leave it out"
    )
  return ssl_synthesis.load(workdir, naming_choice())


def evaluate_semi_supervised(run: ssl_synthesis.SslRun) -> list[dict]:
  """The metrics of --num_samples of G's digits (balanced) as its critic names them (ganjax/ssl/synthesis.py),
  as a few_labels run is evaluated: FID, precision / recall, label agreement, and CAS with --cas."""
  key = jax.random.key(_SEED.value)
  quotas = ssl_synthesis.per_class_quotas(_NUM_SAMPLES.value)
  images, labels = ssl_synthesis.generate_digits(run, key, quotas)  # a digit G rarely draws fails here, in seconds
  evaluator_run = sample_quality.Evaluation.create(run.config)
  result = evaluator_run.evaluate_images(images, labels, jax.random.fold_in(key, 1) if _CAS.value else None)
  record = {"workdir": run.workdir, "step": run.step, **result, "ema": False, "few_labels": run.naming.provenance}
  print(json.dumps(record), flush=True)
  return [record]


def default_out(step: int) -> str:
  """Where a run's evaluation goes without --out: eval_step<N>[_live][_<bn>_bn][_z<s>].json in its workdir."""
  suffix = "all" if _ALL_STEPS.value else f"step{step}"
  mode = f"_{_BATCH_NORM.value}_bn" if _BATCH_NORM.value else ""
  mode += f"_z{_LATENT_SCALE.value:g}" if _LATENT_SCALE.value is not None else ""
  mode += f"_namer_{os.path.basename(os.path.abspath(_NAMER_WORKDIR.value))}" if _NAMER_WORKDIR.value else ""
  mode += "_cnn" if _RECOGNIZER.value == "cnn" else ""
  mode += f"_conf{_MIN_CONFIDENCE.value:g}" if _MIN_CONFIDENCE.value is not None else ""
  return os.path.join(_WORKDIR.value, f"eval_{suffix}{'' if _EMA.value else '_live'}{mode}.json")


def run_evaluation() -> list[dict]:
  if bool(_WORKDIR.value) == bool(_NPZ.value):
    raise ConfigError("pass exactly one of --workdir (a training run) and --npz (an exported dataset)")
  if _NUM_SAMPLES.value < 10:
    raise ConfigError(f"--num_samples={_NUM_SAMPLES.value}; it must be >= 10")
  if _OUT.value is not None:
    cli.check_output_path("--out", _OUT.value)  # before the minutes of evaluation
  if _NAMER_WORKDIR.value and not _WORKDIR.value:
    raise ConfigError(
      f"--namer_workdir={_NAMER_WORKDIR.value} needs --workdir, a few_labels run; an --npz keeps its own labels"
    )
  if _NAMER_WORKDIR.value:
    ssl_namer.check(_WORKDIR.value, _NAMER_WORKDIR.value)  # a run that is not few_labels is refused here
  naming_choice().validate()
  run, evaluate = None, None  # seconds to load: the run's step names the default output
  if _WORKDIR.value and not _NAMER_WORKDIR.value and ssl_synthesis.is_semi_supervised(_WORKDIR.value):
    run, evaluate = load_semi_supervised(_WORKDIR.value), evaluate_semi_supervised
  elif not _NAMER_WORKDIR.value:
    export.check_own_naming(naming_choice(), _WORKDIR.value or _NPZ.value)
  if _WORKDIR.value and run is None:
    run, evaluate = load_run(_WORKDIR.value), evaluate_run
  out = _OUT.value
  if out is None:
    out = default_out(run.step) if run else os.path.splitext(_NPZ.value)[0] + ".eval.json"
    cli.check_output_path("the default --out", out)  # a read-only workdir fails here too, not after evaluating
  results = evaluate(run) if run else evaluate_npz(_NPZ.value)
  sample_quality.write_json(out, results if len(results) > 1 else results[0])
  print(f"wrote {out}")
  return results


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  results = cli.run(run_evaluation)
  if _NPZ.value:
    print(json.dumps(results[0]))


if __name__ == "__main__":
  app.run(main)
