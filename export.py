"""Export a labelled synthetic MNIST dataset from a trained run (ganjax/synth/export.py says what the file holds).

python export.py --workdir=runs/cwgan_gp --num_per_class=1000 --out=synthetic/cwgan_gp.npz
python export.py ... --filter=evaluator --keep_fraction=0.5   # keep the evaluator's most confident half
python export.py --workdir=runs/ssl_gan --out=synthetic/ssl_gan.npz   # semi_supervised: G's digits its critic names
python export.py --workdir=runs/ssl_gan --recognizer=cnn --min_confidence=0.99 --out=x.npz  # named by the CNN it teaches
python export.py --workdir=runs/few_labels --namer_workdir=runs/ssl_gan --out=x.npz  # few_labels, named by that critic
python export.py --workdir=runs/few_labels --namer_workdir=runs/ssl_gan --recognizer=cnn --out=x.npz  # ... by its CNN
python export.py --workdir=runs/ssl_gan --recognizer=cnn --filter=diverse --keep_fraction=0.25 --out=x.npz  # a cover of 4x
python export.py --mix=ssl.npz:0.7,few.npz:0.3 --out=mixed.npz   # each digit 70 % from one export, 30 % from another
"""

from absl import app, flags

from ganjax import cli
from ganjax.errors import ConfigError
from ganjax.ssl import synthesis as ssl_synthesis
from ganjax.synth import export, mixing

_WORKDIR = flags.DEFINE_string("workdir", None, "A training run's --workdir (or give --mix).")
_OUT = flags.DEFINE_string(
  "out", None, "The .npz to write (PNG grids per class go beside it; missing directories are created)."
)
_NUM_PER_CLASS = flags.DEFINE_integer("num_per_class", 1000, "Images per digit class.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the noise (and labels) drawn.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step to export from (default: the newest).")
_EMA = flags.DEFINE_boolean("ema", True, "Use the EMA generator when the run kept one.")
_FILTER = flags.DEFINE_enum(
  "filter", "none", export.FILTERS, "Keep only the best candidates by this score, or (diverse) those that cover them."
)
_KEEP = flags.DEFINE_float("keep_fraction", 0.5, "With --filter: the fraction of candidates kept.")
_LATENT_SCALE = flags.DEFINE_float(
  "latent_scale", None, "Std of G's noise, > 0 (default: the run's config.sampling_latent_scale; >1: more varied)."
)
_NAMER_WORKDIR = flags.DEFINE_string(
  "namer_workdir",
  "",
  "A few_labels --workdir only: the semi_supervised run (same labelled few) whose averaged critic (or with "
  "--recognizer=cnn the CNN it teaches) names its clusters and checks every sample instead of the run's own namer.",
)
_RECOGNIZER = flags.DEFINE_string("recognizer", "critic", cli.RECOGNIZER_HELP)
_MIN_CONFIDENCE = flags.DEFINE_float("min_confidence", None, cli.MIN_CONFIDENCE_HELP)
_MIX = flags.DEFINE_string(
  "mix",
  None,
  "Instead of --workdir: PATH:SHARE,PATH:SHARE,... exports of export.py whose digits make up --num_per_class of "
  "each digit in these shares (ganjax/synth/mixing.py).",
)
flags.mark_flags_as_required(["out"])
SAMPLING_FLAGS = (  # what --mix refuses: its digits are already drawn and named
  "seed",
  "step",
  "ema",
  "filter",
  "keep_fraction",
  "latent_scale",
  "namer_workdir",
  "recognizer",
  "min_confidence",
)


def naming_choice() -> ssl_synthesis.NamingChoice:
  return ssl_synthesis.NamingChoice(_RECOGNIZER.value, _MIN_CONFIDENCE.value)


def export_to_out(options: export.ExportOptions) -> dict:
  cli.check_output_path("--out", _OUT.value, ".npz")  # before the restore and the sampling
  return export.export_dataset(
    _WORKDIR.value, _OUT.value, options, _STEP.value, namer_workdir=_NAMER_WORKDIR.value, naming=naming_choice()
  )


def mix_to_out() -> dict:
  """The --mix mode: ConfigError in one line for --workdir or a sampling flag beside it."""
  given = [name for name in ("workdir", *SAMPLING_FLAGS) if flags.FLAGS[name].present]
  if given:
    raise ConfigError(f"--{given[0]} does not apply to --mix, which takes digits already exported; leave it out")
  cli.check_output_path("--out", _OUT.value, ".npz")
  return mixing.write_mix(_MIX.value, _NUM_PER_CLASS.value, _OUT.value)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if _MIX.value is not None:
    provenance = cli.run(mix_to_out)
    parts = ", ".join(f"{s['per_class']} from {s['path']}" for s in provenance["mixed_from"])
    print(f"wrote {provenance['num_images']} images ({_NUM_PER_CLASS.value} per class: {parts}) to {_OUT.value}")
    return
  if _WORKDIR.value is None:
    raise app.UsageError("give --workdir (a training run) or --mix (exports to mix)")
  options = export.ExportOptions(
    _NUM_PER_CLASS.value, _SEED.value, _EMA.value, _FILTER.value, _KEEP.value, _LATENT_SCALE.value
  )
  provenance = cli.run(export_to_out, options)
  print(
    f"wrote {provenance['num_images']} images ({options.num_per_class} per class, labels from "
    f"{provenance['label_source']}, step {provenance['checkpoint_step']}, ema={provenance['use_ema']}, "
    f"filter={options.filter}) to {_OUT.value}"
  )
  namer = provenance["few_labels"] or {}
  if namer.get("namer") in ssl_synthesis.NAMERS.values():
    print(f"named by {namer['namer']} of {namer['workdir']} (step {namer['step']}), p >= {namer['min_confidence']}")


if __name__ == "__main__":
  app.run(main)
