"""Atomic file writes (a reader, or a crash, sees the old file whole or the new one whole, never a part) and the
reader of JSON-lines files that forgives the one thing an append can leave behind: a torn last line; and the
.npz files a run or a study keeps (write_npz; read_npz for those a reader recomputes when they do not read)."""

import contextlib
import json
import os
import zipfile
from collections.abc import Iterator

import numpy as np
from absl import logging


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
  """Yield a temporary path beside `path` to write to; it replaces `path` only if the block succeeds.

  The temporary name keeps `path`'s suffix (foo.png -> foo.tmp.png), so writers that choose a format by
  suffix (PIL, numpy) write the right one. On an error the temporary file is removed and `path` is untouched.
  """
  root, suffix = os.path.splitext(path)
  tmp = f"{root}.tmp{suffix}"
  try:
    yield tmp
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.remove(tmp)
    raise


def atomic_write(path: str, data: str | bytes) -> None:
  """Write `data` (text or bytes) to `path` atomically."""
  with atomic_path(path) as tmp, open(tmp, "wb" if isinstance(data, bytes) else "w") as f:
    f.write(data)


def write_npz(path: str, **arrays) -> None:
  """Write `arrays` to the .npz at `path` atomically (a crash never leaves a half-written file)."""
  with atomic_path(path) as tmp, open(tmp, "wb") as f:
    np.savez(f, **arrays)


NPZ_READ_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)  # what a torn or damaged .npz raises


def load_npz(path: str) -> dict[str, np.ndarray]:
  """The arrays of the .npz at `path`, read whole; one of NPZ_READ_ERRORS if it is missing, torn or damaged."""
  with np.load(path) as f:
    return {name: f[name] for name in f.files}


def read_npz(path: str) -> dict[str, np.ndarray] | None:
  """The arrays of the .npz at `path`; None if there is none, or (with one warning) if it does not read: what a
  run keeps in its workdir can always be made again, so a torn or damaged file is a reason to remake it."""
  if not os.path.exists(path):
    return None
  try:
    return load_npz(path)
  except NPZ_READ_ERRORS as e:
    logging.warning("%s does not read (%s); it is made afresh", path, e)
    return None


class JsonLinesError(ValueError):
  """A line before the last of a JSON-lines file is not JSON: damage that dropping a torn append cannot explain."""

  def __init__(self, path: str, line: int, reason: str):
    super().__init__(f"{path}:{line} is not a JSON line ({reason}); only a torn last line is dropped")
    self.path, self.line, self.reason = path, line, reason


def parse_json_lines(path: str, data: bytes) -> tuple[list, int]:
  """(the records of JSON-lines `data`, read from `path`; how many of its bytes hold them).

  A last line that is not a whole record (a process killed, or a power cut, mid-append leaves one) is dropped with
  one warning; a damaged line before it is a JsonLinesError naming the file and the line."""
  records, end = [], 0
  lines = data.split(b"\n")
  for number, line in enumerate(lines, 1):
    if line.strip():
      try:
        records.append(json.loads(line))
      except ValueError as e:  # JSONDecodeError, or bytes that are not UTF-8
        if any(rest.strip() for rest in lines[number:]):
          raise JsonLinesError(path, number, str(e)) from None
        logging.warning("dropped the last record of %s: it was cut short (a write interrupted by a crash)", path)
        return records, end
    end = min(len(data), end + len(line) + 1)
  return records, end


def read_json_lines(path: str) -> list:
  """The records of the JSON-lines file `path`, one a line ([] if there is no file); see parse_json_lines."""
  if not os.path.exists(path):
    return []
  with open(path, "rb") as f:
    return parse_json_lines(path, f.read())[0]
