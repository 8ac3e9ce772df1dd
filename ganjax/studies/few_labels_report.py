"""The few-labels benchmark's report: mean ± std per treatment and N (accuracy and errors per 10k), the
synthetic sets' label agreement and CAS, the semi-supervised treatments paired with label spreading subset by
subset, wall times, the markdown page and the plot."""

import numpy as np

from ganjax import files
from ganjax.studies import cells
from ganjax.studies import few_labels_ssl as ssl

# Published semi-supervised GANs at 100 labels (N = 10), test errors per 10k: mean (std) over label subsets.
PUBLISHED_N10 = (
  ("Improved GAN (Salimans et al. 2016, Table 1)", "93 ± 6.5"),
  ("Triple-GAN (Li et al. 2017)", "91 ± 58"),
  ("Bad GAN (Dai et al. 2017)", "79.5 ± 9.8"),
)
# The label-spreading treatments (the shipped labeller's) a semi-supervised one is paired with, subset by subset.
REFERENCES = ("pseudo", "pseudo:strong")
GAN_REFERENCE = ("ssl_pseudo_cnn_gan", "ssl_pseudo_cnn")  # (G's digits added, the same CNN without them)


def summarize(rows: list[dict], treatments: tuple) -> dict:
  """{(treatment, N): {"mean", "std", "subsets", "wall_s", measures...}} over the label subsets."""
  summary = {}
  for treatment, _ in treatments:
    for n in sorted({r["n_per_class"] for r in rows}):
      found = [r for r in rows if r["treatment"] == treatment and r["n_per_class"] == n and r["accuracy"] is not None]
      if not found:
        continue
      accuracies = np.array([r["accuracy"] for r in found])
      entry = {
        "mean": float(accuracies.mean()),
        "std": float(accuracies.std(ddof=1)) if len(found) > 1 else 0.0,
        "subsets": len(found),
        "wall_s": float(np.mean([r["wall_s"] for r in found])),
      }
      for measure in ("label_agreement", "cas"):
        values = [r[measure] for r in found if measure in r]
        if values:
          entry[measure] = (float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0)
      summary[treatment, n] = entry
  return summary


def _mean_std(mean: float, std: float, subsets: int, digits: int) -> str:
  """'mean ± std', or the bare value of a single subset (whose std says nothing)."""
  return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if subsets > 1 else "")


def _cell(entry: dict | None, errors: bool, row_subsets: int) -> str:
  """An accuracy (%) or errors-per-10k cell, '(k of S)' where fewer subsets than the row's gave a value."""
  if entry is None:
    return "–"
  if errors:
    shown = _mean_std(1e4 * (1 - entry["mean"]), 1e4 * entry["std"], entry["subsets"], 0)
  else:
    shown = _mean_std(100 * entry["mean"], 100 * entry["std"], entry["subsets"], 2)
  return shown + (f" ({entry['subsets']} of {row_subsets})" if entry["subsets"] < row_subsets else "")


def table(summary: dict, treatments: tuple, per_class: list[int], errors: bool) -> list[str]:
  """Rows N, columns treatments (then subsets): accuracy (%) or test errors per 10k, mean ± std."""
  rows = []
  for n in per_class:
    entries = [summary.get((t, n)) for t, _ in treatments]
    subsets = max((e["subsets"] for e in entries if e), default=0)
    rows.append([str(n), *(_cell(e, errors, subsets) for e in entries), str(subsets)])
  return cells.markdown_table(["N / class", *(t for _, t in treatments), "subsets"], rows)


def gan_table(summary: dict, per_class: list[int], treatment: str = "classic+gan") -> list[str]:
  """The synthetic sets (those of `treatment`'s cells), per N: label agreement and CAS (%), mean ± std over subsets."""
  rows = []
  for n in per_class:
    entry = summary.get((treatment, n))
    if entry is None or "label_agreement" not in entry:
      continue
    shown = [
      _mean_std(100 * entry[m][0], 100 * entry[m][1], entry["subsets"], 2) if m in entry else "–"
      for m in ("label_agreement", "cas")
    ]
    rows.append([str(n), *shown, str(entry["subsets"])])
  return cells.markdown_table(["N / class", "label agreement", "CAS", "subsets"], rows)


def paired_differences(rows: list[dict], treatment: str, reference: str, n: int) -> dict[int, float]:
  """{label seed: treatment's test errors per 10k minus reference's} over the subsets of N where both gave one."""

  def accuracies(name: str) -> dict[int, float]:
    found = [r for r in rows if r["treatment"] == name and r["n_per_class"] == n and r["accuracy"] is not None]
    return {r["label_seed"]: r["accuracy"] for r in found}

  mine, theirs = accuracies(treatment), accuracies(reference)
  # Rounded, and + 0.0 turns a -0.0 into 0.0: the accuracies lie on a 1/10k grid, so no real difference is lost.
  return {seed: round(1e4 * (theirs[seed] - mine[seed]), 3) + 0.0 for seed in sorted(mine.keys() & theirs.keys())}


def _paired_cell(differences: dict[int, float]) -> str:
  """'mean ± std (s0 +d0, s1 +d1, ...)' of paired differences; '–' for none."""
  if not differences:
    return "–"
  values = np.array(list(differences.values()))
  spread = f" ± {values.std(ddof=1):.0f}" if len(values) > 1 else ""
  return f"{values.mean():+.0f}{spread} (" + ", ".join(f"s{s} {d:+.0f}" for s, d in differences.items()) + ")"


def ssl_table(summary: dict, treatments: tuple, per_class: list[int], rows: list[dict]) -> list[str]:
  """The semi-supervised treatments, a row per treatment and N: test errors per 10k (mean ± std) and the paired
  difference from each label-spreading treatment run (mean ± std over the subsets both ran, then each one's);
  when both CNN treatments are asked for, a last column pairs G's digits' treatment with the CNN without them."""
  titles = dict(treatments)
  references = [r for r in REFERENCES if r in titles]
  with_gan, without_gan = GAN_REFERENCE
  pair_gan = {with_gan, without_gan} <= titles.keys()
  lines = []
  for treatment in (t for t in ssl.KEYS if t in titles):
    for n in (n for n in per_class if (treatment, n) in summary):
      entry = summary[treatment, n]
      deltas = [_paired_cell(paired_differences(rows, treatment, r, n)) for r in references]
      if pair_gan:
        deltas.append(_paired_cell(paired_differences(rows, with_gan, without_gan, n) if treatment == with_gan else {}))
      lines.append([titles[treatment], str(n), _cell(entry, True, entry["subsets"]), *deltas])
  header = ["treatment", "N / class", "errors per 10k", *(f"Δ errors vs {titles[r]}" for r in references)]
  header += [f"Δ errors vs {titles[without_gan]}"] if pair_gan else []
  return cells.markdown_table(header, lines)


SYNTHETIC_SETS_TITLE = "## The synthetic sets (each subset's naming of the one GAN)"
CRITIC_SETS_TITLE = "G's digits named by its critic (critic's labels + its GAN):"


def synthetic_sets(summary: dict, treatments: tuple, per_class: list[int], rows: list[dict], treatment: str, title):
  """`title`, the table of `treatment`'s synthetic sets and a line per subset that got none; [] unless the
  treatment is asked for and has a cell (none without a GAN, or for the critic alone): no empty table."""
  failed = [r for r in rows if r.get("failed") and r["treatment"] == treatment]
  if treatment not in dict(treatments) or not (failed or any((treatment, n) in summary for n in per_class)):
    return []
  return [
    *title,
    "",
    *gan_table(summary, per_class, treatment),
    "",
    *[f"- N = {r['n_per_class']}, subset {r['label_seed']}: no synthetic set ({r['failed']})" for r in failed],
  ]


def ssl_section(summary: dict, treatments: tuple, per_class: list[int], rows: list[dict]) -> list[str]:
  """few_labels.md's semi-supervised section ([] when no semi-supervised treatment was asked for)."""
  if not any(t in ssl.KEYS for t, _ in treatments):
    return []
  return [
    "",
    "## Semi-supervised GAN: each subset's own run (Δ: paired by subset, negative = fewer errors)",
    "",
    *ssl_table(summary, treatments, per_class, rows),
    *synthetic_sets(summary, treatments, per_class, rows, "ssl_pseudo_cnn_gan", ["", CRITIC_SETS_TITLE]),
  ]


def wall_lines(summary: dict, treatments: tuple, per_class: list[int]) -> list[str]:
  rows = []
  for n in per_class:
    walls = [summary.get((t, n), {}).get("wall_s") for t, _ in treatments]
    rows.append([str(n), *("–" if w is None else f"{w:.0f}" for w in walls)])
  return cells.markdown_table(["N / class", *(t for _, t in treatments)], rows)


def tables(summary: dict, treatments: tuple, per_class: list[int], rows: list[dict]) -> list[str]:
  """few_labels.md's sections: accuracy, errors per 10k with the published numbers, the synthetic sets (and
  the subsets without one; none without GAN cells), the semi-supervised treatments if any, the mean wall time
  per cell."""
  return [
    "## Test accuracy (%)",
    "",
    *table(summary, treatments, per_class, errors=False),
    "",
    "## Test errors per 10k (Salimans et al.'s Table 1 unit)",
    "",
    *table(summary, treatments, per_class, errors=True),
    "",
    "Published at N = 10 (100 labels): " + "; ".join(f"{name}: {value}" for name, value in PUBLISHED_N10) + ".",
    "",
    *synthetic_sets(summary, treatments, per_class, rows, "classic+gan", [SYNTHETIC_SETS_TITLE]),
    *ssl_section(summary, treatments, per_class, rows),
    "",
    "## Mean wall time per cell (s; pseudo-labels: all self-training rounds)",
    "",
    *wall_lines(summary, treatments, per_class),
  ]


def plot(summary: dict, treatments: tuple, per_class: list[int], path: str) -> None:
  """Test errors per 10k against N (log-log), one line per treatment; written atomically."""
  from ganjax.plots import plt

  figure, axes = plt.subplots(figsize=(7, 4.5))
  for treatment, title in treatments:
    points = [(n, summary[treatment, n]) for n in per_class if (treatment, n) in summary]
    if points:
      errors = [1e4 * (1 - e["mean"]) for _, e in points]
      axes.errorbar(
        [n for n, _ in points], errors, yerr=[1e4 * e["std"] for _, e in points], marker="o", capsize=3, label=title
      )
  axes.axhline(79.5, color="gray", linestyle=":", label="Bad GAN, N = 10 (79.5)")
  axes.set(xscale="log", yscale="log", xlabel="labelled images per class", ylabel="MNIST test errors per 10k")
  axes.set_xticks(per_class, [str(n) for n in per_class])
  axes.minorticks_off()
  axes.grid(alpha=0.3)
  axes.legend(fontsize=8)
  figure.tight_layout()
  with files.atomic_path(path) as tmp:
    figure.savefig(tmp, dpi=100)
  plt.close(figure)
