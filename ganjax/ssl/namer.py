"""A semi_supervised run's averaged critic as the namer of a few_labels run (export.py and evaluate.py
--namer_workdir), or the CNN that critic teaches (--recognizer=cnn): it names the GAN's k-means clusters and
checks every sample in place of the run's own namer, whose few_labels.npz is neither read nor trained; neither
run's training state is modified (the CNN is kept in the critic's workdir, as recognize.py keeps it).

As ganjax/few_labels/naming.py names them: digit d draws cluster k with probability P(k | d), the share of the
training images labelled d that fall in k, the labelled few with their true labels and every other image with
the namer's digit (its argmax); a sample is kept when the namer reads its digit with probability >= the
few_labels run's few_labels_min_confidence (or --min_confidence). The labelled few must be the same images in
both runs, so the critic's run must match the few_labels run's LABELLED_FEW_FIELDS.
"""

import functools
import os
from collections.abc import Callable

import numpy as np

from ganjax import conditioning, files, saved_run
from ganjax.data import labelled, mnist
from ganjax.errors import ConfigError, WorkdirError
from ganjax.ssl import recognizer, synthesis
from ganjax.synth import generation

# What draws the labelled few: the same values give the same labelled images (ganjax/data/labelled.py).
LABELLED_FEW_FIELDS = ("labels_per_class", "label_seed", "train_subset", "examples_per_class")
TRAIN_COMMAND = "python main.py --config=configs/ssl_gan.py"


def check(workdir: str, namer_workdir: str) -> None:
  """ConfigError / WorkdirError in one line, in seconds and before anything is restored or written, unless
  `workdir` holds a few_labels run and `namer_workdir` a trained semi_supervised run of the same labelled few."""
  flag = f"--namer_workdir={namer_workdir}"
  config = saved_run.load(workdir)
  kind = conditioning.Conditioning(config.get("conditioning", "none"), config.get("num_clusters", 0))
  if not (kind.needs_naming and kind.self_conditioned):  # few_labels: named clusters of a label-free GAN
    raise ConfigError(
      f"{flag} names the clusters of a few_labels run, and {workdir} holds a run with conditioning "
      f"{config.get('conditioning')!r}; leave --namer_workdir out"
    )
  if not os.path.exists(os.path.join(namer_workdir, saved_run.CONFIG_FILE)):
    raise WorkdirError(f"{flag} holds no run; give a semi_supervised run's workdir (trained with {TRAIN_COMMAND})")
  namer_config = saved_run.load(namer_workdir)
  if not conditioning.Conditioning(namer_config.get("conditioning", "none")).recognizes:
    raise ConfigError(
      f"{flag} holds a run with conditioning {namer_config.get('conditioning')!r}; the namer is the critic of a "
      f"semi_supervised run ({TRAIN_COMMAND})"
    )
  differ = [field for field in LABELLED_FEW_FIELDS if namer_config.get(field) != config.get(field)]
  if differ:
    found = ", ".join(f"{field}={namer_config.get(field)!r}" for field in differ)
    wanted = ", ".join(f"{field}={config.get(field)!r}" for field in differ)
    raise ConfigError(
      f"{flag} was trained on other labelled images ({found}) than {workdir} ({wanted}); the labelled few must "
      f"be the same: give a semi_supervised run with {wanted}"
    )
  if not generation.checkpoint_steps(namer_workdir):
    raise WorkdirError(f"{flag} has no checkpoint yet; train it first ({TRAIN_COMMAND} --workdir={namer_workdir})")


def _assignments(workdir: str, num_images: int) -> np.ndarray:
  """The cluster of each of the run's training images (its clusters.npz), or WorkdirError in one line."""
  path = os.path.join(workdir, saved_run.CLUSTERS_FILE)
  if not os.path.exists(path):
    raise WorkdirError(f"{path} is missing: a few_labels run writes it when it starts; rerun its training command")
  try:
    assignments = files.load_npz(path)["assignments"]
  except files.NPZ_READ_ERRORS as e:
    raise WorkdirError(f"{path} does not read ({e!r}); rerun the run's training command, which makes it again") from e
  if assignments.shape != (num_images,):
    raise WorkdirError(f"{path} holds {len(assignments)} clusters for {num_images} training images; rerun the run")
  return assignments


def critic_naming(
  workdir: str, namer_workdir: str, choice: synthesis.NamingChoice | None = None
) -> recognizer.CriticNaming:
  """The naming of the few_labels run in `workdir` by the averaged critic of the semi_supervised run in
  `namer_workdir` (its newest verified checkpoint), or by the CNN that critic teaches, as `choice` says
  (synthesis.choose_naming). Its provenance names the namer, the critic's workdir and step next to the labelled
  few (labels_per_class, label_seed, labelled_indices)."""
  check(workdir, namer_workdir)
  choice = choice or synthesis.NamingChoice()  # the critic, at the few_labels run's threshold
  choice.validate()
  workdir, namer_workdir = os.path.abspath(workdir), os.path.abspath(namer_workdir)
  config = saved_run.load(workdir)
  namer_config, critic, step = recognizer.load(namer_workdir)
  images, labels = mnist.load_split(config, "train")
  assignments = _assignments(workdir, len(images))
  labelled_indices = labelled.draw_labelled(labels, config.labels_per_class, config.label_seed)
  source = {
    "workdir": namer_workdir,
    "step": step,
    "labels_per_class": config.labels_per_class,
    "label_seed": config.label_seed,
    "labelled_indices": [int(i) for i in labelled_indices],
  }
  naming = recognizer.CriticNaming(critic, config.few_labels_min_confidence, source)
  naming = synthesis.choose_naming(naming, choice, namer_workdir, namer_config, step)
  labelled_labels = np.asarray(labels)[labelled_indices]  # the only training labels read
  return recognizer.name_clusters(naming, images, assignments, config.num_clusters, labelled_indices, labelled_labels)


def loader(
  namer_workdir: str, choice: synthesis.NamingChoice | None = None
) -> Callable[[str], recognizer.CriticNaming]:
  """workdir -> critic_naming(workdir, namer_workdir, choice): generation.load_run's load_naming."""
  return functools.partial(critic_naming, namer_workdir=namer_workdir, choice=choice)
