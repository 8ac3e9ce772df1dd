"""What every command-line entry point shares: quiet library logs, XLA flags, one-line errors."""

import errno
import logging as std_logging
import os
import re
import shutil
import sys
from collections.abc import Callable

from absl import logging

from ganjax import runtime, stopping
from ganjax.errors import GanjaxError, OutputPathError

# export.py's and evaluate.py's flags for a semi_supervised run's namer (ganjax.ssl.synthesis.NamingChoice)
RECOGNIZER_HELP = (
  "A semi_supervised --workdir, or with --namer_workdir: who names G's digits. critic: its averaged critic; cnn: "
  "the strong CNN the critic teaches (recognize.py --recognizer=cnn keeps it; trained here if not)."
)
MIN_CONFIDENCE_HELP = (
  "A semi_supervised --workdir, or with --namer_workdir: keep a digit only when the namer gives it this "
  "probability, in [0, 1) (default: the --workdir run's few_labels_min_confidence)."
)

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class _OnlyGanjaxInfo(std_logging.Filter):
  """Keep the console readable: libraries (orbax logs every save) speak at WARNING and above only."""

  def __init__(self, script: str):
    super().__init__()
    self.script = os.path.abspath(script)

  def filter(self, record):
    if "OpenCV is not installed" in record.getMessage():  # tfds's hint; Pillow decodes MNIST fine
      return False
    if record.getMessage().startswith("Given directory is read only"):  # orbax, on every read-only checkpoint load
      return False
    if disk_full(record.exc_info[1] if record.exc_info else None) or _ENOSPC_TEXT in record.getMessage():
      return False  # a background save's pages of traceback: the error reaches run() as one line
    pathname = os.path.abspath(record.pathname)
    return record.levelno >= std_logging.WARNING or pathname.startswith(PACKAGE_DIR) or pathname == self.script


def check_output_path(flag_name: str, path: str, suffix: str | None = None) -> None:
  """OutputPathError unless `path` can be written as a file (missing parent directories are created when it is
  written): called by a script before its slow work, so a bad --out fails in seconds, not after it."""
  wanted = f"give a file path ending in {suffix}" if suffix else "give a file path"
  if not path:
    raise OutputPathError(f"{flag_name} is empty; {wanted}")
  if os.path.isdir(path):
    raise OutputPathError(f"{flag_name}={path} is a directory; {wanted}")
  if suffix and not path.endswith(suffix):
    raise OutputPathError(f"{flag_name}={path} does not end in {suffix}; {wanted}")
  parent = os.path.dirname(os.path.abspath(path))
  while not os.path.exists(parent):  # the nearest existing ancestor is where the directories will be made
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent):
    raise OutputPathError(f"{flag_name}={path} is under {parent}, which is a file, not a directory; {wanted}")
  if not os.access(parent, os.W_OK | os.X_OK):
    raise OutputPathError(f"{flag_name}={path}: directory {parent} is not writable; {wanted} somewhere writable")


def run(fn: Callable, *args, cpu_flags: tuple[str, ...] = runtime.CPU_FLAGS, **kwargs):
  """Call fn after the process-level set-up (XLA's flags: `cpu_flags` by default). A GanjaxError becomes one
  'error: ...' line and exit status 1; a run stopped by a signal, its one 'stopped at step N ...' line and
  128 + the signal number; a Ctrl-C before training (or a second one), one line and 130."""
  logging.get_absl_handler().python_handler.addFilter(_OnlyGanjaxInfo(sys.argv[0]))
  runtime.configure_xla(cpu_flags=cpu_flags)  # before JAX's first computation starts its backends
  runtime.configure_compilation_cache()
  try:
    return fn(*args, **kwargs)
  except stopping.RunStopped as e:
    _exit(str(e), e.exit_code)
  except GanjaxError as e:
    _exit(f"error: {e}", 1)
  except KeyboardInterrupt:
    _exit("interrupted (Ctrl-C); checkpoints already written are kept, rerun the same command to resume", 130)
  except Exception as e:
    full = disk_full(e)
    if full is None:
      raise
    _exit(disk_full_line(full), 1)


_ENOSPC_TEXT = os.strerror(errno.ENOSPC)  # "No space left on device", also in TensorStore's (orbax's) errors


def disk_full(error: BaseException | None) -> BaseException | None:
  """The error in `error`'s chain (causes and contexts) that says the disk is full, or None."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if (isinstance(error, OSError) and error.errno == errno.ENOSPC) or _ENOSPC_TEXT in str(error):
      return error
    error = error.__cause__ or error.__context__
  return None


def disk_full_line(error: BaseException) -> str:
  """'error: the disk is full: ...': the path that could not be written, the space free there and, when the
  error says, the size of the write that failed."""
  text = str(error)
  path = error.filename if isinstance(error, OSError) and error.filename else None
  found = re.search(r'Failed writing: "([^"]+)"', text) or re.search(r'file "([^"]+)"', text)
  path = path or (found.group(1) if found else None)
  size = re.search(r"Failed to write (\d+) bytes", text)
  parts = [f"{int(size.group(1)):,} bytes could not be written"] if size else []
  if path:
    existing = os.path.abspath(path)
    while not os.path.isdir(existing):
      existing = os.path.dirname(existing)
    parts.append(f"{shutil.disk_usage(existing).free:,} bytes free there")
  where = f"writing {path} ({'; '.join(parts)})" if path else "writing the run's files"
  return (
    f"error: the disk is full {where}; free some space (or use a --workdir on a disk with room) and rerun the "
    "same command: the checkpoints already written are kept"
  )


def _exit(line: str, status: int) -> None:
  """Print the one line and end the process now: not sys.exit, whose interpreter shutdown makes the background
  threads of a failed orbax restore print pages of asyncio tracebacks after the line."""
  logging.flush()
  sys.stdout.flush()
  print(line, file=sys.stderr, flush=True)
  os._exit(status)
