"""The loss curves and sample-quality metrics of a run as PNGs, from its metrics.jsonl."""

import os

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from ganjax import files

PANELS = (
  ("losses", ("critic_loss", "generator_loss")),
  ("critic logits", ("real_logit", "fake_logit", "wasserstein_estimate")),
  ("gradient penalty", ("gradient_penalty",)),
)


EVAL_PANELS = (
  ("FID (log)", ("eval_fid",)),
  ("score", ("eval_classifier_score",)),
  ("precision / recall", ("eval_precision", "eval_recall")),
  ("classes", ("eval_min_class_share", "eval_label_agreement", "eval_cas")),
  ("critic's test accuracy", ("eval_test_accuracy", "eval_test_accuracy_live")),
)


def plot_losses(records: list[dict], path: str, title: str = "") -> None:
  _plot(records, PANELS, path, title)


def plot_evaluations(records: list[dict], path: str, title: str = "") -> None:
  """The evaluation metrics over training (nothing is written if the run never evaluated)."""
  _plot(records, EVAL_PANELS, path, title, marker="o")


def _plot(records: list[dict], panel_spec, path: str, title: str, marker: str | None = None) -> None:
  panels = [(name, [k for k in keys if any(k in r for r in records)]) for name, keys in panel_spec]
  panels = [(name, keys) for name, keys in panels if keys]
  if not panels:
    return
  fig, axes = plt.subplots(len(panels), 1, figsize=(8, 3 * len(panels)), sharex=True, squeeze=False)
  for ax, (name, keys) in zip(axes[:, 0], panels):
    for key in keys:
      points = [(r["epoch"], r[key]) for r in records if key in r]
      ax.plot(*zip(*points), label=key, marker=marker)
    if name.endswith("(log)"):
      ax.set_yscale("log")
    ax.set_ylabel(name)
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
  axes[-1, 0].set_xlabel("epoch")
  if title:
    axes[0, 0].set_title(title)
  fig.tight_layout()
  with files.atomic_path(path) as tmp:
    fig.savefig(tmp, dpi=100)
  plt.close(fig)


def plot_recognition(records: list[dict], path: str, reference: dict[int, float], title: str = "") -> None:
  """A semi-supervised critic's test accuracy per epoch (averaged and live), beside a reference curve."""
  epochs = [r["epoch"] for r in records]
  fig, ax = plt.subplots(figsize=(7, 4.5))
  ax.plot(epochs, [r["eval_test_accuracy"] for r in records], marker=".", label="averaged critic (what is read)")
  ax.plot(epochs, [r["eval_test_accuracy_live"] for r in records], alpha=0.5, label="live critic")
  shown = {e: a for e, a in reference.items() if e <= max(epochs, default=0) * 1.2 + 1}
  if shown:
    ax.plot(list(shown), list(shown.values()), "o--", label="the reference recipe (published port)")
  ax.set(xlabel="epoch", ylabel="test accuracy", ylim=(max(0.0, min(0.6, *ax.get_ylim())), 1.0), title=title)
  ax.grid(alpha=0.3)
  ax.legend(loc="lower right")
  fig.tight_layout()
  with files.atomic_path(path) as tmp:
    fig.savefig(tmp, dpi=100)
  plt.close(fig)


def sample_grid_figure(rows: list[tuple[str, str]], epochs: list[int], path: str, title: str = "") -> None:
  """The sample grids of several runs at several epochs side by side, as the paper's Figures 4-5 show them.

  rows: (label, workdir) per run; each workdir must hold samples/epoch_NNN.png for every epoch.
  """
  cells = [[os.path.join(workdir, "samples", f"epoch_{epoch:03d}.png") for epoch in epochs] for _, workdir in rows]
  missing = [p for row in cells for p in row if not os.path.exists(p)]
  if missing:
    raise FileNotFoundError(f"no sample grid at {missing[0]}; grids exist only for the config's sample_epochs")
  fig, axes = plt.subplots(len(rows), len(epochs), figsize=(3.2 * len(epochs), 3.4 * len(rows)), squeeze=False)
  for (label, _), row_axes, row_paths in zip(rows, axes, cells):
    for ax, epoch, grid_path in zip(row_axes, epochs, row_paths):
      ax.imshow(plt.imread(grid_path), cmap="gray")
      ax.set_title(f"{label}, epoch {epoch}")
      ax.axis("off")
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  with files.atomic_path(path) as tmp:
    fig.savefig(tmp, dpi=100)
  plt.close(fig)
