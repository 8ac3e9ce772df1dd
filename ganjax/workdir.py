"""A training workdir's lock: one writer at a time (what the workdir holds: ganjax/saved_run.py).

The lock is an exclusive `fcntl.flock` of the workdir directory, held for the whole run: the kernel releases it
when the process ends in any way (kill -9 included), so a dead run leaves no stale lock. `<workdir>/.lock` names
the holder (pid, host, start time) for the message a second writer gets.
"""

import contextlib
import datetime
import fcntl
import os
import socket

from ganjax.errors import WorkdirError
from ganjax.saved_run import LOCK_FILE


class WorkdirLock:
  """An exclusive lock on a workdir for this process's lifetime (or until release()).

  The lock is an flock of the workdir directory itself, which no `rm` can take from under its holder; `.lock`
  only names the holder (pid, host, start) for the message a second writer gets, and release() puts it back as
  it was (or removes it), so a failed start leaves the workdir byte-identical. Where a directory cannot be
  flocked (NFS), `.lock` is locked instead, checked to be the file its path still names.
  """

  def __init__(self, workdir: str):
    self.workdir = workdir
    self.path = os.path.join(workdir, LOCK_FILE)
    self._fd: int | None = None
    self._previous: bytes | None = None  # .lock as it was before this holder named itself (None: absent)

  def acquire(self) -> "WorkdirLock":
    """Take the lock, or raise WorkdirError naming its holder."""
    fd, created = self._locked_fd()
    try:
      self._previous = None if created else _read_or_none(self.path)
      started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
      _write_in_place(self.path, f"pid {os.getpid()} on {socket.gethostname()} (started {started})\n".encode())
    except OSError as e:
      os.close(fd)  # closing releases the flock
      raise WorkdirError(f"cannot write to workdir {self.workdir!r}: {e.strerror}") from e
    self._fd = fd
    return self

  def _locked_fd(self) -> tuple[int, bool]:
    """A descriptor holding the exclusive flock (of the workdir, or of `.lock` where directories cannot be
    flocked), and whether this call created `.lock`."""
    path, created = self.workdir, False
    while True:
      try:
        if path == self.workdir:
          fd = os.open(path, os.O_RDONLY)
        else:
          created = not os.path.exists(path)
          fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
      except OSError as e:
        raise WorkdirError(f"cannot write to workdir {self.workdir!r}: {e.strerror}") from e
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        os.close(fd)
        holder = (_read_or_none(self.path) or b"").decode(errors="replace").strip() or "another process"
        raise WorkdirError(
          f"workdir {self.workdir!r} is in use by {holder}; wait for that run to end, or use another --workdir"
        ) from None
      except OSError:  # no flock of directories here: lock the file
        os.close(fd)
        path = self.path
        continue
      if path == self.workdir or _names(path, fd):
        return fd, created
      os.close(fd)  # `.lock` was replaced after it was opened: lock the one the path names now

  def release(self) -> None:
    if self._fd is None:
      return
    try:
      if self._previous is None:
        with contextlib.suppress(FileNotFoundError):
          os.remove(self.path)
      else:
        _write_in_place(self.path, self._previous)
    finally:
      os.close(self._fd)  # closing releases the flock
      self._fd = None

  def __enter__(self) -> "WorkdirLock":
    return self.acquire()

  def __exit__(self, *exc) -> None:
    self.release()


def _read_or_none(path: str) -> bytes | None:
  try:
    with open(path, "rb") as f:
      return f.read()
  except FileNotFoundError:
    return None


def _write_in_place(path: str, data: bytes) -> None:
  """Overwrite `path` without replacing it (where `.lock` is the locked file, its inode must stay)."""
  with open(path, "ab") as f:
    f.truncate(0)
    f.write(data)


def _names(path: str, fd: int) -> bool:
  """Whether `path` still names the file open as `fd`."""
  try:
    here, there = os.stat(path), os.fstat(fd)
  except FileNotFoundError:
    return False
  return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)
