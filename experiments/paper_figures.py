"""The paper's Figures 4-5 for ganjax runs: each run's sample grids at epochs 10 and 60, side by side.

  python experiments/paper_figures.py --runs=gan=runs/gan,wgan=runs/wgan --out=docs/samples/paper_epochs.png

Each run writes samples/epoch_NNN.png at its config's sample_epochs ((10, 60) by default, the paper's).
"""

import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ganjax import cli, plots
from ganjax.errors import GanjaxError, WorkdirError

_RUNS = flags.DEFINE_list("runs", [], "label=workdir pairs, one row each.")
_EPOCHS = flags.DEFINE_list("epochs", ["10", "60"], "Epochs (columns): the grids samples/epoch_NNN.png.")
_OUT = flags.DEFINE_string("out", "paper_epochs.png", "Output PNG.")
_TITLE = flags.DEFINE_string("title", "", "Figure title (e.g. the hardware and wall times).")


def parse_runs(values: list[str]) -> list[tuple[str, str]]:
  rows = []
  for value in values:
    label, sep, workdir = value.partition("=")
    if not sep or not label or not workdir:
      raise GanjaxError(f"--runs entry {value!r} is not label=workdir")
    rows.append((label, workdir))
  if not rows:
    raise GanjaxError("--runs is empty; give label=workdir pairs, e.g. --runs=gan=runs/gan,wgan=runs/wgan")
  return rows


def make_figure():
  rows = parse_runs(_RUNS.value)
  if not all(e.isdigit() for e in _EPOCHS.value):
    raise GanjaxError(f"--epochs={','.join(_EPOCHS.value)} is not a list of whole epochs, e.g. 10,60")
  cli.check_output_path("--out", _OUT.value, ".png")
  try:
    plots.sample_grid_figure(rows, [int(e) for e in _EPOCHS.value], _OUT.value, _TITLE.value)
  except FileNotFoundError as e:
    raise WorkdirError(str(e)) from None
  print(f"wrote {_OUT.value}")


def main(argv):
  del argv
  cli.run(make_figure)


if __name__ == "__main__":
  app.run(main)
