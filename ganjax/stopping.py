"""Clean stops: SIGTERM (schedulers, `docker stop`) and Ctrl-C end a run after the current step, with a checkpoint.

Inside `StopRequests()` the first SIGTERM or SIGINT only sets a flag; the training loop checks it after each step,
saves a checkpoint and raises RunStopped, so a preempted run loses nothing. A second Ctrl-C stops at once
(KeyboardInterrupt). With several processes the flag is agreed on at log steps (an all-gather), so that every
process stops after the same step and the checkpoint, written collectively, is whole.
"""

import signal

import jax
import numpy as np
from jax.experimental import multihost_utils

from ganjax.errors import GanjaxError

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class RunStopped(GanjaxError):
  """The run stopped on a signal after writing a checkpoint; rerunning the same command resumes it."""

  def __init__(self, message: str, signal_number: int):
    super().__init__(message)
    self.exit_code = 128 + signal_number  # what a shell reports for a process ended by that signal


class StopRequests:
  """A context in which SIGTERM / SIGINT request a stop instead of ending the process."""

  def __init__(self):
    self.signal_number: int | None = None
    self._previous = {}

  def _request(self, signal_number, frame) -> None:
    del frame
    if self.signal_number == signal.SIGINT and signal_number == signal.SIGINT:
      raise KeyboardInterrupt  # a second Ctrl-C: stop now
    self.signal_number = signal_number

  def __enter__(self) -> "StopRequests":
    for number in SIGNALS:
      self._previous[number] = signal.signal(number, self._request)
    return self

  def __exit__(self, *exc) -> None:
    for number, handler in self._previous.items():
      signal.signal(number, handler)

  def requested(self, at_sync_point: bool) -> int | None:
    """The signal asking this run to stop after the current step, or None. With several processes, only at
    `at_sync_point` steps (the same on every process), where the processes agree."""
    if jax.process_count() == 1:
      return self.signal_number
    if not at_sync_point:
      return None
    numbers = multihost_utils.process_allgather(np.asarray(self.signal_number or 0, np.int32))
    return int(np.max(numbers)) or None
