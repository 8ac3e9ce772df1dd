"""The optimisers a config names (config.generator_optimizer, config.critic_optimizer): which optax functions, and
every argument a config may give one, checked against its range with a one-line error naming the field."""

import inspect
import math
from collections.abc import Callable

import jax.numpy as jnp
import ml_collections
import optax

from ganjax.errors import ConfigError

OPTIMIZERS = {"adam": optax.adam, "adamw": optax.adamw, "rmsprop": optax.rmsprop, "sgd": optax.sgd}

# Fields the configs give one optimiser that another may not take (config_defaults: adam's b1, b2, eps;
# rmsprop's decay, eps, eps_in_sqrt): left over after --config.*_optimizer.name switches the optimiser.
INHERITED_OPTIMIZER_FIELDS = ("b1", "b2", "eps", "decay", "eps_in_sqrt")


def _number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fraction(value) -> bool:
  return _number(value) and 0 <= value < 1


def _non_negative(value) -> bool:
  return _number(value) and value >= 0


def _dtype_name(value) -> bool:
  if value is None:
    return True
  if not isinstance(value, str):
    return False
  try:
    jnp.dtype(value)
  except TypeError:
    return False
  return True


# Every argument of the OPTIMIZERS' optax functions: (accepts the value, what is allowed).
ARGUMENT_RANGES: dict[str, tuple[Callable[[object], bool], str]] = {
  "learning_rate": (lambda v: _number(v) and v > 0, "it must be a number > 0"),
  "b1": (_fraction, "it must be a number in [0, 1) (0: no momentum)"),
  "b2": (_fraction, "it must be a number in [0, 1)"),
  "eps": (_non_negative, "it must be a number >= 0"),
  "eps_root": (_non_negative, "it must be a number >= 0"),
  "decay": (_fraction, "it must be a number in [0, 1)"),
  "initial_scale": (_non_negative, "it must be a number >= 0"),
  "weight_decay": (_non_negative, "it must be a number >= 0"),
  "momentum": (lambda v: v is None or _fraction(v), "it must be None (no momentum) or a number in [0, 1)"),
  "nesterov": (lambda v: isinstance(v, bool), "it must be True or False"),
  "eps_in_sqrt": (lambda v: isinstance(v, bool), "it must be True or False"),
  "centered": (lambda v: isinstance(v, bool), "it must be True or False"),
  "bias_correction": (lambda v: isinstance(v, bool), "it must be True or False"),
  "mu_dtype": (_dtype_name, "it must be None (the parameters' dtype) or a dtype name such as 'bfloat16'"),
  "accumulator_dtype": (_dtype_name, "it must be None (the parameters' dtype) or a dtype name such as 'bfloat16'"),
  "mask": (lambda v: v is None, "it must be None (a config decays every parameter)"),
}


def optimizer_arguments(optimizer_config: ml_collections.ConfigDict, field: str) -> tuple[str, dict]:
  """(name, the arguments of its optax function), each checked against ARGUMENT_RANGES: another optimiser's
  fields are dropped, any other unknown field or a value out of range is a ConfigError naming it."""
  kwargs = dict(optimizer_config)
  name = kwargs.pop("name", None)
  if name not in OPTIMIZERS:
    raise ConfigError(f"{field}.name={name!r} is not an optimiser; allowed: {', '.join(OPTIMIZERS)}")
  allowed = inspect.signature(OPTIMIZERS[name]).parameters
  unknown = sorted(set(kwargs) - set(allowed) - set(INHERITED_OPTIMIZER_FIELDS))
  if unknown:
    raise ConfigError(f"{field}: optax.{name} takes no argument {unknown[0]!r}; allowed: {', '.join(allowed)}")
  kwargs = {k: v for k, v in kwargs.items() if k in allowed}
  for argument in ("learning_rate", *sorted(kwargs)):  # the learning rate is required
    accepts, what = ARGUMENT_RANGES.get(argument, (lambda v: True, ""))
    value = kwargs.get(argument)
    if not accepts(value):
      raise ConfigError(f"{field}.{argument}={value!r} is not allowed; {what}")
  return name, kwargs


def make_optimizer(optimizer_config: ml_collections.ConfigDict, field: str) -> optax.GradientTransformation:
  """The optax optimiser a config sub-dict names, e.g. {name: 'adam', learning_rate: 1e-4, b1: 0.5}."""
  name, kwargs = optimizer_arguments(optimizer_config, field)
  return OPTIMIZERS[name](**kwargs)
