"""What every command-line entry point shares: quiet library logs, XLA flags, one-line errors."""

import logging as std_logging
import os
import sys
from collections.abc import Callable

from absl import logging

from ganjax import runtime
from ganjax.errors import GanjaxError

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


def run(fn: Callable, *args, **kwargs):
  """Call fn after the process-level set-up; a GanjaxError becomes one 'error: ...' line and exit status 1."""
  logging.get_absl_handler().python_handler.addFilter(_OnlyGanjaxInfo(sys.argv[0]))
  runtime.configure_xla()  # before JAX's first computation starts its backends
  try:
    return fn(*args, **kwargs)
  except GanjaxError as e:
    logging.flush()
    sys.exit(f"error: {e}")
