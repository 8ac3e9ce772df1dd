"""Atomic file writes: a reader (or a crash) sees the old file whole or the new one whole, never a part."""

import contextlib
import os
from collections.abc import Iterator


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
