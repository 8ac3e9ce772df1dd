"""The augmentation benchmark: does GAN data help a small digit classifier trained on few labels?

  python experiments/augment.py --full_gan_workdir=runs/cwgan_gp      # N in {10, 100, 1000, all}, 3 seeds
  python experiments/augment.py --quick        # ~15 min on 2 CPU cores, into experiments/results/augment_quick
  python experiments/augment.py --quick_test --out_dir=/tmp/augment   # < 1 min: the test's smoke run

A fixed classifier recipe (classifiers.SMALL_CNN_RECIPE: same steps and batch whatever the training set) is
trained on the first N labelled MNIST training images of each class under four treatments: real only; real +
classic augmentation (augmentations.classic, on every batch); real + GAN samples (from a conditional WGAN-GP,
configs/cwgan_gp.py: --synthetic_ratio x as many as the real images, class-balanced, concatenated with them);
real + classic + GAN (the augmentation applied to real and synthetic alike). Two regimes, one panel each:
  (a) small data: one cGAN per N trained only on the same N labelled images per class (--small_gan_steps),
      under <out_dir>/gans/a_N{N}_s{seed}; at N = all it is regime (b)'s GAN, which sees the same 60k images.
  (b) full data: a cGAN trained on all 60k training images (--full_gan_workdir, else trained here under
      <out_dir>/gans/b_full_s0 for --full_gan_steps).
No GAN sees a test image. The score is accuracy on the 10k MNIST test images, mean +- std (ddof 1) over
seeds; the real-only and classic columns do not involve a GAN and are shared by both regimes.

Resumable: each finished cell (regime, N, treatment, seed, and the settings it depends on) is one line of
<out_dir>/augment.jsonl and is skipped on rerun; GAN runs resume from their checkpoints. Writes augment.md
(table, settings, hardware, wall times), augment.jsonl and augment.png to --out_dir; with --gan_config or
--critic_augment the report is named after that cGAN, e.g. augment_cwgan_gp_tuned.md / .png, so runs of
several cGANs can share an --out_dir (and its cells without a GAN).

--quick: N in {10, 100}, 3 seeds, 300 classifier steps (15 % of the recipe), and quarter-width GANs
(generator 64-32-16, critic 16-32, batch <= 64) for 300 generator steps each, the full-data one included
unless --full_gan_workdir is given. It shows the pipeline end to end; its GANs are too short to answer the
question. --quick_test: N = 10, 1 seed, 20 classifier steps, tiny GANs (8-8-4 / 4-8, batch 16) for 3 steps.
A preset sets only the flags not given explicitly. The benchmark is ganjax.studies.augmentation.

Regime (a) with the tuned cGAN and DiffAugment (translation and cutout of every critic input, real and fake;
ganjax/diff_augment.py), without regime (b); its cGANs are named a_N{N}_s{seed}_cwgan_gp_tuned_da-...:
  python experiments/augment.py --n_per_class=10 --seeds=5 --regimes=a --gan_config=cwgan_gp_tuned \
      --critic_augment=translation,cutout --out_dir=experiments/results/augment_diffaugment

The few-labels benchmark has its own script, `python experiments/few_labels.py`, which takes the flags that
`augment.py --few_labels` took (without --few_labels); augment.py refuses --few_labels with a line saying so.
"""

import importlib
import os
import sys

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from configs import default
from ganjax import cli, diff_augment
from ganjax.studies import augmentation

DEFAULTS = augmentation.Settings()
CONDITIONAL_CONFIGS = ("cwgan_gp", "cwgan_gp_tuned", "cgan", "cgan_tuned")  # digit-conditioned: they draw labels
flags.DEFINE_list("n_per_class", list(DEFAULTS.n_per_class), "Real labelled images per class.")
flags.DEFINE_integer("seeds", DEFAULTS.seeds, "Seeds 0..S-1 (classifier init/order/augmentation, GAN sample noise).")
flags.DEFINE_float("synthetic_ratio", DEFAULTS.synthetic_ratio, "Synthetic images per real image (GAN treatments).")
flags.DEFINE_integer("classifier_steps", DEFAULTS.classifier_steps, "Steps of the classifier recipe.")
flags.DEFINE_float("classic_strength", DEFAULTS.classic_strength, "augmentations.classic strength (1: its defaults).")
flags.DEFINE_integer("small_gan_steps", DEFAULTS.small_gan_steps, "Generator steps of each regime-(a) cGAN.")
flags.DEFINE_bool("gan_per_seed", DEFAULTS.gan_per_seed, "Regime (a): one cGAN per seed (else seed 0's for all).")
flags.DEFINE_string("full_gan_workdir", DEFAULTS.full_gan_workdir, "A trained full-data cGAN run (regime b).")
flags.DEFINE_integer("full_gan_steps", DEFAULTS.full_gan_steps, "Generator steps of the regime-(b) cGAN trained here.")
flags.DEFINE_string("out_dir", DEFAULTS.out_dir, "Output directory.")
flags.DEFINE_string("gan_config", DEFAULTS.gan_config, "The configs/ module of the cGANs trained here.")
flags.DEFINE_string("critic_augment", DEFAULTS.critic_augment, "DiffAugment of those cGANs, e.g. translation,cutout.")
flags.DEFINE_list("regimes", list(DEFAULTS.regimes), "GAN regimes to run: a, b (the columns without a GAN always run).")
_QUICK = flags.DEFINE_bool("quick", False, "Preset: ~15 min on 2 CPU cores (module docstring).")
_QUICK_TEST = flags.DEFINE_bool("quick_test", False, "Preset: a < 1 min smoke run for tests.")
SETTINGS_FLAGS = ("n_per_class", "seeds", "synthetic_ratio", "classifier_steps", "classic_strength")
SETTINGS_FLAGS += ("small_gan_steps", "gan_per_seed", "full_gan_workdir", "full_gan_steps", "out_dir")
SETTINGS_FLAGS += ("gan_config", "critic_augment", "regimes")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  command = f"python experiments/augment.py {' '.join(sys.argv[1:])}"
  preset = "quick_test" if _QUICK_TEST.value else "quick" if _QUICK.value else ""
  explicit = {name: flags.FLAGS[name].value for name in SETTINGS_FLAGS if flags.FLAGS[name].present}
  settings = augmentation.preset_settings(preset, **explicit)
  if settings.synthetic_ratio <= 0:
    raise app.UsageError("--synthetic_ratio must be > 0")
  if not set(settings.regimes) <= {"a", "b"}:
    raise app.UsageError(f"--regimes={','.join(settings.regimes)}; allowed: a, b (comma-separated)")
  if settings.gan_config not in CONDITIONAL_CONFIGS:
    raise app.UsageError(f"--gan_config={settings.gan_config}; allowed: {', '.join(CONDITIONAL_CONFIGS)}")
  try:
    diff_augment.parse(settings.critic_augment)
  except ValueError as error:
    raise app.UsageError(f"--critic_augment={settings.critic_augment}: {error}")
  gan_base = importlib.import_module(f"configs.{settings.gan_config}").get_config()  # + augmentation.gan_overrides
  cli.run(augmentation.run_benchmark, settings, gan_base, default.get_config(), command)


if __name__ == "__main__":
  if "--few_labels" in sys.argv:  # deprecated: the few-labels benchmark's flags moved with it
    sys.exit("error: --few_labels moved: python experiments/few_labels.py takes the same flags without it")
  app.run(main)
