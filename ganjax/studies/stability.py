"""Blow-ups in a run's training metrics: where a loss leaves its usual range, how far, and whether it recovers.

A GAN's losses wander, so a fixed threshold does not say what is unusual. `blow_ups` compares each logged
record (metrics.jsonl: a mean over `log_every_steps` steps) with the median and the median absolute deviation
(MAD) of the `window` usual records before it: a blow-up starts where the record is more than `threshold`
robust standard deviations (1.4826 x MAD) away, and ends at the first record back within `recovered` of them,
measured against the median from before it started. Records inside a blow-up never join the history. Its
size is the peak's distance in those units.
"""

import collections
import dataclasses
import statistics

# WGAN critic metrics first: the ones the recipes' blow-ups showed in (critic loss ~50, penalty ~4).
DEFAULT_METRICS = ("critic_loss", "gradient_penalty", "wasserstein_estimate", "generator_loss")
MAD_TO_STD = 1.4826  # a normal distribution's standard deviation per unit of MAD


@dataclasses.dataclass(frozen=True)
class BlowUp:
  """One excursion of `metric`: from `start_step` to `end_step` (None: not back by the last record)."""

  metric: str
  start_step: int
  start_epoch: float
  peak_step: int
  peak_value: float
  usual_value: float  # the median of the window before it started
  size: float  # the peak's distance from usual_value, in robust standard deviations
  end_step: int | None


def _usual(values: list[float]) -> tuple[float, float]:
  """(median, robust standard deviation) of `values`; the deviation is never below 1e-6 x |median| + 1e-12."""
  median = statistics.median(values)
  spread = MAD_TO_STD * statistics.median(abs(v - median) for v in values)
  return median, max(spread, 1e-6 * abs(median) + 1e-12)


def blow_ups(
  records: list[dict], metric: str, window: int = 10, threshold: float = 10.0, recovered: float = 5.0
) -> list[BlowUp]:
  """The blow-ups of `metric` in `records` (dicts with 'step', 'epoch' and the metric; records without it are
  skipped). Needs `window` records of history before the first record it judges."""
  if window < 3 or not 0 < recovered < threshold:
    raise ValueError(
      f"window={window}, recovered={recovered}, threshold={threshold}: need window >= 3 and 0 < recovered < threshold"
    )
  series = [r for r in records if isinstance(r.get(metric), (int, float))]
  found, usual_history, i = [], collections.deque(maxlen=window), 0
  while i < len(series):
    if len(usual_history) < window:
      usual_history.append(series[i][metric])
      i += 1
      continue
    median, spread = _usual(list(usual_history))
    if abs(series[i][metric] - median) <= threshold * spread:
      usual_history.append(series[i][metric])
      i += 1
      continue
    end = i
    while end < len(series) and abs(series[end][metric] - median) > recovered * spread:
      end += 1
    found.append(_blow_up(metric, series[i:end], median, spread, series[end] if end < len(series) else None))
    i = end  # the excursion's records never enter the history
  return found


def _blow_up(metric: str, excursion: list[dict], median: float, spread: float, back: dict | None) -> BlowUp:
  peak = max(excursion, key=lambda r: abs(r[metric] - median))
  return BlowUp(
    metric=metric,
    start_step=int(excursion[0]["step"]),
    start_epoch=float(excursion[0]["epoch"]),
    peak_step=int(peak["step"]),
    peak_value=float(peak[metric]),
    usual_value=median,
    size=abs(peak[metric] - median) / spread,
    end_step=None if back is None else int(back["step"]),
  )


def markdown(events: list[BlowUp]) -> str:
  """The events as a markdown table, in the order of their start."""
  lines = ["| metric | from step (epoch) | peak step | peak | usual | size (robust std) | back at step |"]
  lines.append("|---" * 7 + "|")
  for e in sorted(events, key=lambda e: (e.start_step, e.metric)):
    back = "not recovered" if e.end_step is None else str(e.end_step)
    lines.append(
      f"| {e.metric} | {e.start_step} ({e.start_epoch:.2f}) | {e.peak_step} | {e.peak_value:.4g} "
      f"| {e.usual_value:.4g} | {e.size:.0f} | {back} |"
    )
  return "\n".join(lines)
