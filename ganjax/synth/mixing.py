"""Mix exported datasets into one: each digit's images taken from several exports in given shares.

  python export.py --mix=synthetic/ssl_gan.npz:0.7,synthetic/few_labels.npz:0.3 --out=synthetic/mixed.npz

Two generators' digits together can train a better classifier than either's alone (docs/ssl_gan.md,
"Labelled digits"). The mix is an export like any other (ganjax/synth/export.py's format): its
provenance says `label_source: "mix"` and keeps each source's path, share, count per digit and whole provenance.
Of each source it takes the first images of each digit in file order: an export's order is its random draw.
"""

import dataclasses
import datetime
import math
import os

import numpy as np

from ganjax.data import mnist
from ganjax.errors import ConfigError, DataError
from ganjax.synth import export

LABEL_SOURCE = "mix"


@dataclasses.dataclass(frozen=True)
class Source:
  path: str
  share: float  # of each digit's images


def parse(spec: str) -> tuple[Source, ...]:
  """`PATH:SHARE,PATH:SHARE,...` -> sources; ConfigError in one line for an item that is not PATH:SHARE, a share
  outside (0, 1], shares that do not add up to 1, or a file named twice."""
  sources = []
  for item in spec.split(","):
    path, _, share = item.strip().rpartition(":")
    try:
      share = float(share)
    except ValueError:
      share = math.nan
    if not path or not 0 < share <= 1:
      raise ConfigError(f"mix item {item.strip()!r}: give PATH:SHARE with a share in (0, 1], e.g. a.npz:0.7,b.npz:0.3")
    sources.append(Source(path, share))
  paths = [os.path.abspath(s.path) for s in sources]
  if len(set(paths)) < len(paths):
    raise ConfigError(f"mix={spec!r} names a file twice; give each export once with its whole share")
  if not math.isclose(sum(s.share for s in sources), 1.0, abs_tol=1e-6):
    raise ConfigError(f"mix={spec!r}: the shares add up to {sum(s.share for s in sources):g}; they must add up to 1")
  return tuple(sources)


def counts_per_digit(shares: list[float], num_per_class: int) -> list[int]:
  """Images per digit from each source: num_per_class split by the shares, the largest remainders rounded up, so
  that the counts add up to num_per_class exactly."""
  exact = [share * num_per_class for share in shares]
  counts = [math.floor(x) for x in exact]
  by_remainder = sorted(range(len(shares)), key=lambda i: counts[i] - exact[i])  # largest remainder first
  for i in by_remainder[: num_per_class - sum(counts)]:
    counts[i] += 1
  return counts


def mix(sources: tuple[Source, ...], num_per_class: int) -> tuple[np.ndarray, np.ndarray, dict]:
  """(images uint8 [10 num_per_class, 28, 28, 1], labels, provenance) of the mix, digits in order and each digit's
  sources in the given order; DataError in one line when a source is not an export or has too few of a digit."""
  if num_per_class < 1:
    raise ConfigError(f"num_per_class={num_per_class}; it must be >= 1")
  counts = counts_per_digit([s.share for s in sources], num_per_class)
  loaded = [export.load_dataset(s.path) for s in sources]
  chosen_images, chosen_labels = [], []
  for digit in range(mnist.NUM_DIGITS):
    for source, count, (images, labels, _) in zip(sources, counts, loaded):
      members = np.flatnonzero(labels == digit)
      if len(members) < count:
        raise DataError(
          f"{source.path} holds {len(members)} images of digit {digit}; the mix takes {count} ({source.share:g} of "
          f"num_per_class={num_per_class}); lower --num_per_class or export more"
        )
      chosen_images.append(images[members[:count]])
      chosen_labels.append(labels[members[:count]])
  labels = np.concatenate(chosen_labels)
  provenance = {
    "label_source": LABEL_SOURCE,
    "mixed_from": [
      {"path": os.path.abspath(s.path), "share": s.share, "per_class": count, "provenance": prov}
      for s, count, (_, _, prov) in zip(sources, counts, loaded)
    ],
    "num_per_class": num_per_class,
    "num_images": len(labels),
    "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
  }
  return np.concatenate(chosen_images), labels, provenance


def write_mix(spec: str, num_per_class: int, out_path: str) -> dict:
  """Write the mix `spec` (PATH:SHARE,...) of num_per_class images per digit to out_path (and its per-digit PNG
  grids), atomically; returns its provenance."""
  images, labels, provenance = mix(parse(spec), num_per_class)
  export.write_dataset(out_path, images, labels, provenance)
  return provenance
