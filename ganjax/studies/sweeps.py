"""A sweep's specification: config files, `field=v1,v2,...` overrides and the safe names of its cells."""

import ast
import hashlib
import importlib.util
import os
import re

import ml_collections

from ganjax.errors import ConfigError

# The checkout this package sits in: config paths may be given relative to it as well as to the working
# directory. Config files import `configs.default`, so the checkout must be on sys.path (the scripts put it there).
CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_value(text: str):
  """A Python literal (1e-4, (8, 8, 4), False), else the text itself as a string."""
  try:
    return ast.literal_eval(text.strip())
  except (ValueError, SyntaxError):
    return text.strip()


def parse_assignment(spec: str, flag: str, many: bool) -> tuple[str, list]:
  """'field=v1,v2' -> ('field', [v1, v2]) (--set: one value, all of the text); ConfigError if malformed.
  Values are one Python literal list if they parse as one ('(8, 8, 4),(16, 16, 8)' keeps its tuples)."""
  field, sep, text = spec.partition("=")
  values = parse_value(f"[{text}]") if many else [parse_value(text)] if text.strip() else []
  if isinstance(values, str):  # not one literal list: 'adam,sgd'
    texts = text.split(",")
    values = [parse_value(t) for t in texts] if all(t.strip() for t in texts) else []
  if not sep or not values or not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", field.strip()):
    example = "field=v1,v2,..." if many else "field=value"
    raise ConfigError(f"--{flag}={spec!r} is malformed; expected {example}, e.g. --{flag}=ema_decay=0.999")
  if field.strip() in ("seed", "eval_at_end"):
    raise ConfigError(f"--{flag}={spec!r}: {field.strip()} is set by the runner (use --seeds)")
  return field.strip(), values


def load_config(path: str) -> tuple[str, ml_collections.ConfigDict]:
  """(name, ConfigDict) of a config file, found from the working directory or the checkout's root."""
  found = next((p for p in (path, os.path.join(CHECKOUT, path)) if os.path.isfile(p)), None)
  if found is None or not path.endswith(".py"):
    raise ConfigError(f"--configs: no config file {path!r} (a .py file with get_config(), e.g. configs/cgan.py)")
  name = os.path.splitext(os.path.basename(found))[0]
  spec = importlib.util.spec_from_file_location(f"ablate_config_{name}", found)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise ConfigError(f"--configs: {path!r} defines no get_config()")
  return name, module.get_config()


def set_field(config: ml_collections.ConfigDict, field: str, value, where: str) -> None:
  """config.<field> = value; the locked ConfigDict rejects unknown fields and wrong types, named here."""
  *parents, leaf = field.split(".")
  config.lock()
  try:
    node = config
    for parent in parents:
      node = node[parent]
    node[leaf] = value
  except (KeyError, AttributeError, TypeError) as e:
    message = str(e.args[0]) if e.args else str(e)
    hint = message[message.find("Did you mean") :] if "Did you mean" in message else message.split("Other fields")[0]
    raise ConfigError(f"{where}: cannot set {field}={value!r}: {hint.strip()}") from e
  finally:
    config.unlock()


def slug(text: str) -> str:
  """A file-name-safe form of text; a short hash keeps lossy or shortened forms unique."""
  safe = re.sub(r"[^A-Za-z0-9._=+-]", "_", text)
  if safe != text or len(safe) > 150:
    safe = f"{safe[:140]}~{hashlib.sha1(text.encode()).hexdigest()[:6]}"
  return safe


def default_name(config_paths: list[str], sweeps: list[str]) -> str:
  """A sweep's name when none is given: its config names and swept fields, e.g. 'cgan+cwgan_gp-ema_decay'."""
  names = [os.path.splitext(os.path.basename(p))[0] for p in config_paths]
  return slug("+".join(names) + "".join("-" + s.partition("=")[0] for s in sweeps))
