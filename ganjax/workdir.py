"""A training workdir's lock: one writer at a time (what the workdir holds: ganjax/saved_run.py).

The lock is an exclusive `fcntl.flock` on `<workdir>/.lock`, held for the whole run: the kernel releases it
when the process ends in any way (kill -9 included), so a dead run leaves no stale lock. The file names the
holder (pid, host, start time) for the message a second writer gets.
"""

import datetime
import fcntl
import os
import socket

from ganjax.errors import WorkdirError
from ganjax.saved_run import LOCK_FILE

class WorkdirLock:
  """An exclusive lock on a workdir for this process's lifetime (or until release())."""

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, LOCK_FILE)
    self._file = None

  def acquire(self) -> "WorkdirLock":
    """Take the lock, or raise WorkdirError naming its holder."""
    try:
      handle = open(self.path, "a+")
    except OSError as e:
      raise WorkdirError(f"cannot write to workdir {os.path.dirname(self.path)!r}: {e.strerror}") from e
    try:
      fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      handle.seek(0)
      holder = handle.read().strip() or "another process"
      handle.close()
      raise WorkdirError(
        f"workdir {os.path.dirname(self.path)!r} is in use by {holder}; wait for that run to end, or use "
        "another --workdir"
      ) from None
    handle.seek(0)
    handle.truncate()
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    handle.write(f"pid {os.getpid()} on {socket.gethostname()} (started {started})\n")
    handle.flush()
    self._file = handle
    return self

  def release(self) -> None:
    if self._file is not None:
      fcntl.flock(self._file, fcntl.LOCK_UN)
      self._file.close()
      self._file = None

  def __enter__(self) -> "WorkdirLock":
    return self.acquire()

  def __exit__(self, *exc) -> None:
    self.release()
