"""The few-labels benchmark: N labelled images per class and the other training images unlabelled.

  python experiments/few_labels.py --gan_workdir=runs/few_labels          # ~2.5 h on 2 CPU cores
  python experiments/few_labels.py --quick_test --out_dir=/tmp/few        # ~2 min: the test's smoke run
  python experiments/few_labels.py --strong_steps=3750 --ssl_workdirs='runs/ssl_n{labels_per_class}_s{label_seed}'

N labelled images per class are drawn at random with label seeds 0.. (--subsets=N:count,...), the other
training images unlabelled. Treatments: real, real + classic, pseudo-labels + classic (self-training, --rounds,
--labeller), and both with labelled synthetic digits from one label-free GAN (--gan_workdir: a conditioning
clusters or few_labels run) named by each subset's self-trained classifier; --strong_steps=3750 adds the
pseudo-labelled sets with a strong CNN. Without --gan_workdir only the cells without a GAN run.
--ssl_workdirs names each subset's semi_supervised run (configs/ssl_gan.py with that labels_per_class and
label_seed, on the whole training split), checked before any cell: its critic alone, and with --strong_steps the
strong CNN on the critic's labels, without and with G's digits it names (ganjax/studies/few_labels_ssl.py).

Resumable: each finished cell is one line of <out_dir>/few_labels.jsonl and is skipped on rerun; each subset's
namer is kept in <out_dir>/namers/. Writes few_labels.{md,jsonl,png} to --out_dir; --report_only rewrites the
report from the cells done; --only=ssl_pseudo_cnn,... runs only those treatments' cells (keys as in
few_labels.jsonl). --quick_test: one subset of 5 labels per class, 20 classifier steps, 1 round, 20 synthetic
digits per class, unchecked (min confidence 0), strong CNN for 5 steps; flags given explicitly
override it. The benchmark is ganjax.studies.few_labels_benchmark; docs/few_labels.md says what it measures.
"""

import dataclasses
import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import default
from ganjax import cli
from ganjax.few_labels.self_training import LABELLERS
from ganjax.studies import few_labels_benchmark as benchmark

DEFAULTS = benchmark.Settings()
flags.DEFINE_list("subsets", [f"{n}:{k}" for n, k in DEFAULTS.subsets], "N:label subsets, ... (N labels per class).")
flags.DEFINE_integer("classifier_steps", DEFAULTS.classifier_steps, "Steps of the small classifier recipe.")
flags.DEFINE_integer("rounds", DEFAULTS.rounds, "Self-training rounds after the labelled-only one.")
flags.DEFINE_enum("labeller", DEFAULTS.labeller, LABELLERS, "Who labels the unlabelled images each round.")
flags.DEFINE_string("gan_workdir", DEFAULTS.gan_workdir, "A trained label-free GAN run ('' = no GAN cells).")
flags.DEFINE_integer("synthetic_per_class", DEFAULTS.synthetic_per_class, "Synthetic digits per class.")
flags.DEFINE_float("min_confidence", DEFAULTS.min_confidence, "The namer's check of each sample.")
flags.DEFINE_integer("strong_steps", DEFAULTS.strong_steps, "> 0 adds the strong-CNN treatments (3750: full).")
_SSL_HELP = "Each subset's semi_supervised run: a path with {labels_per_class}, {label_seed} ('' = none)."
flags.DEFINE_string("ssl_workdirs", DEFAULTS.ssl_workdirs, _SSL_HELP)
flags.DEFINE_bool("cas", DEFAULTS.cas, "Also the CAS of each subset's synthetic set.")
flags.DEFINE_bool("report_only", DEFAULTS.report_only, "Write the report of the cells done; run none.")
flags.DEFINE_list("only", [], "Run only these treatments' cells (keys as in few_labels.jsonl); report every cell.")
flags.DEFINE_string("out_dir", DEFAULTS.out_dir, "Output directory.")
_QUICK_TEST = flags.DEFINE_bool("quick_test", False, "Preset: a ~2 min smoke run for tests (module docstring).")
SETTINGS_FLAGS = ("classifier_steps", "rounds", "labeller", "gan_workdir", "synthetic_per_class", "min_confidence")
SETTINGS_FLAGS += ("strong_steps", "ssl_workdirs", "cas", "report_only", "out_dir")


def parse_subsets(items: list[str]) -> tuple[tuple[int, int], ...]:
  """--subsets=10:5,100:3 -> ((10, 5), (100, 3)); a UsageError naming the flag otherwise."""
  try:
    subsets = tuple(tuple(int(x) for x in item.split(":")) for item in items)
  except ValueError:
    raise app.UsageError(f"--subsets={','.join(items)}; expected N:count,... e.g. 10:5,100:3") from None
  if any(len(item) != 2 or min(item) < 1 for item in subsets):
    raise app.UsageError(f"--subsets={','.join(items)}; expected N:count with N, count >= 1")
  return subsets


def settings_from_flags() -> benchmark.Settings:
  """The preset (--quick_test) under the flags given explicitly."""
  explicit = {name: flags.FLAGS[name].value for name in SETTINGS_FLAGS if flags.FLAGS[name].present}
  if flags.FLAGS["only"].present:
    explicit["only"] = tuple(flags.FLAGS.only)
  if flags.FLAGS["subsets"].present:
    explicit["subsets"] = parse_subsets(flags.FLAGS.subsets)
  return dataclasses.replace(benchmark.QUICK_TEST if _QUICK_TEST.value else DEFAULTS, **explicit)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  command = f"python experiments/few_labels.py {' '.join(sys.argv[1:])}"
  cli.run(benchmark.run_benchmark, settings_from_flags(), default.get_config(), command)


if __name__ == "__main__":
  app.run(main)
