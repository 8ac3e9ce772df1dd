"""Process-level XLA settings, applied before JAX starts its backends (i.e. before the first computation)."""

import os
import platform

# XLA:CPU fuses dots, element-wise ops and reductions into YNNPACK kernels with this option (measured on the
# 2-core CI-like machine: +5-6 % generator steps/s with conv_impl='hybrid', README). It only touches the CPU
# backend.
CPU_FLAGS = ("--xla_cpu_experimental_ynn_fusion_type=dot,eltwise,reduce",)


def cpu_flags_for(config) -> tuple[str, ...]:
  """The default XLA:CPU flags for a run of `config`: none for the semi-supervised GAN, whose MLPs the YNN
  fusion slows down (2.3x fewer iterations per second on 2 cores), CPU_FLAGS for the rest."""
  return () if config.get("conditioning") == "semi_supervised" else CPU_FLAGS


def configure_xla(environ=os.environ, cpu_flags: tuple[str, ...] = CPU_FLAGS) -> str:
  """Add the default XLA flags `cpu_flags` to XLA_FLAGS unless the user already set that option; returns
  XLA_FLAGS.

  Set GANJAX_DEFAULT_XLA_FLAGS=0 to keep XLA's own defaults (e.g. to measure what the flags are worth).
  """
  flags = environ.get("XLA_FLAGS", "")
  if environ.get("GANJAX_DEFAULT_XLA_FLAGS", "1") != "0":
    for flag in cpu_flags:
      if flag.split("=")[0] not in flags:
        flags = f"{flags} {flag}".strip()
    environ["XLA_FLAGS"] = flags
  return flags


CACHE_ENV = "GANJAX_COMPILATION_CACHE"


def compilation_cache_dir(environ=os.environ) -> str | None:
  """Where compiled programs persist across processes: $GANJAX_COMPILATION_CACHE, else ~/.cache/ganjax/xla
  (under $XDG_CACHE_HOME if set); None when that variable is '0' (off)."""
  path = environ.get(CACHE_ENV)
  if path == "0":
    return None
  if path:
    return os.path.abspath(os.path.expanduser(path))
  cache_home = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(cache_home, "ganjax", "xla")


def configure_compilation_cache(environ=os.environ) -> str | None:
  """Turn on JAX's persistent compilation cache (before the first compilation); returns its directory.

  A resumed run, a sweep's next cell or a rerun then loads its train step instead of compiling it again
  (docs/performance.md). JAX keys every entry by the program, the XLA flags and the versions, so a stale entry
  is never used; only programs that take over a second to compile are stored.
  """
  import jax  # noqa: PLC0415 (configure_xla must be able to run before JAX is imported)

  path = compilation_cache_dir(environ)
  if path:
    jax.config.update("jax_compilation_cache_dir", path)
  return path


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
  """The CPU's model name (Linux's /proc/cpuinfo), else what the platform module knows: results name it."""
  if os.path.exists(cpuinfo):
    with open(cpuinfo) as f:
      model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    if model:
      return model
  return platform.processor() or platform.machine()
