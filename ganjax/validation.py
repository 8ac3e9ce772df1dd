"""The checks a config's validation is made of: each bad value is a ConfigError of one line naming the field,
the value and what is allowed."""

import math

import ml_collections

from ganjax.errors import ConfigError


def require(ok: bool, field: str, value, allowed: str) -> None:
  if not ok:
    raise ConfigError(f"config.{field}={value!r} is not allowed; {allowed}")


def is_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def positive_ints(config: ml_collections.ConfigDict, *fields: str) -> None:
  for field in fields:
    require(is_int(config[field]) and config[field] >= 1, field, config[field], "it must be an integer >= 1")
