"""A training workdir's lock: one writer at a time (what the workdir holds: ganjax/saved_run.py).

The lock is an exclusive `fcntl.flock` of the workdir directory, held for the whole run: the kernel releases it
when the process ends in any way (kill -9 included), so a dead run leaves no stale lock. `<workdir>/.lock` names
the holder (pid, host, start time) for the message a second writer gets, once the run knows it can start.
"""

import contextlib
import datetime
import fcntl
import os
import re
import socket

from ganjax.errors import WorkdirError
from ganjax.saved_run import LOCK_FILE


class WorkdirLock:
  """An exclusive lock on a workdir for this process's lifetime (or until release()).

  The lock is an flock of the workdir directory itself, which no `rm` can take from under its holder. acquire()
  writes nothing: `.lock` names the holder (pid, host, start) only once name_holder() is called, when the run
  knows it can start, and release() puts it back as it was (or removes it); so a failed start, even one killed
  -9, leaves the workdir byte-identical. Where a directory cannot be flocked (NFS), `.lock` is locked instead,
  checked to be the file its path still names. As a context manager: acquire() and name_holder().
  """

  def __init__(self, workdir: str):
    self.workdir = workdir
    self.path = os.path.join(workdir, LOCK_FILE)
    self._fd: int | None = None
    self._created = False  # this holder created .lock (the locked file, where directories cannot be flocked)
    self._previous: bytes | None = None  # .lock as it was before this holder named itself (None: absent)
    self._named = False

  def acquire(self) -> "WorkdirLock":
    """Take the lock, or raise WorkdirError naming its holder. Writes nothing in the workdir (see name_holder)."""
    fd, self._created = self._locked_fd()
    self._previous = None if self._created else _read_or_none(self.path)
    self._fd, self._named = fd, False
    return self

  def name_holder(self) -> None:
    """Name this process in `.lock` (pid, host, start) for the message a second writer gets; called once the run
    is known to start, as the first thing it writes."""
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    try:
      _write_in_place(self.path, f"pid {os.getpid()} on {socket.gethostname()} (started {started})\n".encode())
    except OSError as e:
      raise WorkdirError(f"cannot write to workdir {self.workdir!r}: {e.strerror}") from e
    self._named = True

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
        raise WorkdirError(
          f"workdir {self.workdir!r} is in use by {self._holder()}; wait for that run to end, or use another --workdir"
        ) from None
      except OSError:  # no flock of directories here: lock the file
        os.close(fd)
        path = self.path
        continue
      if path == self.workdir or _names(path, fd):
        return fd, created
      os.close(fd)  # `.lock` was replaced after it was opened: lock the one the path names now

  def _holder(self) -> str:
    """Who holds the lock, as `.lock` names it; a holder that has not named itself yet is a run starting up (an
    absent `.lock`, or one naming a process of this host that is gone: left by a run killed -9)."""
    named = (_read_or_none(self.path) or b"").decode(errors="replace").strip()
    match = re.match(r"pid (\d+) on (\S+) ", named)
    if not named or (match and match[2] == socket.gethostname() and not _alive(int(match[1]))):
      return "another process, a run starting up (or one whose .lock was removed)"
    return named

  def release(self) -> None:
    """Put `.lock` back as it was before this holder named itself (or created it), and release the lock."""
    if self._fd is None:
      return
    try:
      if self._previous is None and (self._named or self._created):
        with contextlib.suppress(FileNotFoundError):
          os.remove(self.path)
      elif self._named:
        _write_in_place(self.path, self._previous)
    finally:
      os.close(self._fd)  # closing releases the flock
      self._fd = None

  def __enter__(self) -> "WorkdirLock":
    self.acquire()
    try:
      self.name_holder()
    except BaseException:
      self.release()
      raise
    return self

  def __exit__(self, *exc) -> None:
    self.release()


def _read_or_none(path: str) -> bytes | None:
  try:
    with open(path, "rb") as f:
      return f.read()
  except FileNotFoundError:
    return None


def _alive(pid: int) -> bool:
  """Whether process `pid` of this host exists."""
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # another user's
    return True
  return True


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
