"""Errors a user can fix: main.py prints them as one line and exits non-zero, without a traceback."""


class GanjaxError(Exception):
  """Base class: the message names the bad value and what is allowed or what to do."""


class ConfigError(GanjaxError, ValueError):
  """A config field has a value that is not allowed."""


class DataError(GanjaxError):
  """The dataset cannot be found, prepared or read."""


class WorkdirError(GanjaxError):
  """The work directory cannot be used (not writable, or its checkpoints do not fit the config)."""


class TrainingDiverged(GanjaxError):
  """A loss became NaN or infinite; the last checkpoint before it is kept (named unverified if it was)."""


class OutputPathError(GanjaxError):
  """A file to write (a script's --out) cannot be written there: checked before any slow work."""


class GenerationError(GanjaxError):
  """A trained generator cannot produce what was asked for (e.g. a digit it rarely draws)."""
