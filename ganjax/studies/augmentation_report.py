"""The augmentation benchmark's summaries: mean ± std per column and N, the markdown table and the plot."""

import numpy as np

from ganjax import files
from ganjax.studies import cells


def summarize(current: dict) -> dict:
  """{(column title, N): [rows]} -> {(column title, N): (mean, std (ddof 1), seeds, mean wall s)}."""
  summary = {}
  for column, found in current.items():
    if found:
      accuracies = [c["accuracy"] for c in found]
      std = float(np.std(accuracies, ddof=1)) if len(found) > 1 else 0.0
      summary[column] = (float(np.mean(accuracies)), std, len(found), np.mean([c["wall_s"] for c in found]))
  return summary


def table_lines(summary: dict, titles: list[str], per_class: list[int]) -> list[str]:
  """The markdown table: a row per N (0: all), a column per treatment, then seeds and classifier s / cell."""
  rows = []
  for n in per_class:
    found = [summary.get((t, n)) for t in titles]
    shown = [f"{100 * c[0]:.2f} ± {100 * c[1]:.2f}" if c else "–" for c in found]
    seeds = max((c[2] for c in found if c), default=0)
    walls = [c[3] for c in found if c]
    rows.append([str(n or "all"), *shown, str(seeds), f"{np.mean(walls) if walls else 0:.0f}"])
  return cells.markdown_table(["N / class", *titles, "seeds", "classifier s / cell"], rows)


def plot(summary: dict, columns: tuple, per_class: list[int], path: str) -> None:
  """Accuracy against N, one panel per regime (a, b), one line per treatment; written atomically."""
  from ganjax.plots import plt

  x = [n or 6000 for n in per_class]  # "all" is ~6000 per class
  figure, panels = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
  for axes, regime, name in zip(panels, "ab", ("(a) cGAN trained on the same N / class", "(b) cGAN trained on 60k")):
    for column_regime, treatment, title in columns:
      if column_regime not in ("none", regime):
        continue
      points = [(xi, summary[title, n]) for xi, n in zip(x, per_class) if (title, n) in summary]
      if points:
        means = [100 * p[1][0] for p in points]
        stds = [100 * p[1][1] for p in points]
        label = "real + " + treatment.replace("+", " + ").replace("gan", "GAN") if column_regime != "none" else title
        axes.errorbar([p[0] for p in points], means, yerr=stds, marker="o", capsize=3, label=label)
    axes.set_xscale("log")
    axes.set_xticks(x, [str(n or "all") for n in per_class])
    axes.minorticks_off()
    axes.set(xlabel="real labelled images per class", title=name)
    axes.grid(alpha=0.3)
    axes.legend()
  panels[0].set_ylabel("MNIST test accuracy (%)")
  figure.tight_layout()
  with files.atomic_path(path) as tmp:
    figure.savefig(tmp, dpi=100)
  plt.close(figure)
