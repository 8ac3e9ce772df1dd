"""What every command-line entry point shares: quiet library logs, XLA flags, one-line errors."""

import logging as std_logging
import os
import sys
from collections.abc import Callable

from absl import logging

from ganjax import runtime, stopping
from ganjax.errors import GanjaxError, OutputPathError

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class _OnlyGanjaxInfo(std_logging.Filter):
  """Keep the console readable: libraries (orbax logs every save) speak at WARNING and above only."""

  def __init__(self, script: str):
    super().__init__()
    self.script = os.path.abspath(script)

  def filter(self, record):
    if "OpenCV is not installed" in record.getMessage():  # tfds's hint; Pillow decodes MNIST fine
      return False
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


def run(fn: Callable, *args, **kwargs):
  """Call fn after the process-level set-up. A GanjaxError becomes one 'error: ...' line and exit status 1; a
  run stopped by a signal, its one 'stopped at step N ...' line and 128 + the signal number; a Ctrl-C before
  training (or a second one), one line and 130."""
  logging.get_absl_handler().python_handler.addFilter(_OnlyGanjaxInfo(sys.argv[0]))
  runtime.configure_xla()  # before JAX's first computation starts its backends
  runtime.configure_compilation_cache()
  try:
    return fn(*args, **kwargs)
  except stopping.RunStopped as e:
    _exit(str(e), e.exit_code)
  except GanjaxError as e:
    _exit(f"error: {e}", 1)
  except KeyboardInterrupt:
    _exit("interrupted (Ctrl-C); checkpoints already written are kept, rerun the same command to resume", 130)


def _exit(line: str, status: int) -> None:
  """Print the one line and end the process now: not sys.exit, whose interpreter shutdown makes the background
  threads of a failed orbax restore print pages of asyncio tracebacks after the line."""
  logging.flush()
  sys.stdout.flush()
  print(line, file=sys.stderr, flush=True)
  os._exit(status)
